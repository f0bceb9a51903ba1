//! The registry's one error type.

use std::path::PathBuf;

/// What can go wrong reading or writing drop's state files.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Another drop process held the lock for too long.
    #[error("registry `{}` is locked by another drop process; try again", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A file or folder could not be read.
    #[error("could not read `{}`", path.display())]
    Read {
        /// What was read.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file or folder could not be written.
    #[error("could not write `{}`", path.display())]
    Write {
        /// What was written.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A state file does not parse. It was left as it is, and copied.
    #[error(
        "`{}` is not a valid drop registry; it was left untouched and copied to `{}`: fix or move it, then run drop again",
        path.display(),
        copy.display()
    )]
    Corrupt {
        /// The file that does not parse.
        path: PathBuf,
        /// Where a copy of its bytes was kept.
        copy: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// No page has this id, id prefix or name.
    #[error("no page matches `{query}`; see `drop list --all`")]
    NotFound {
        /// What the user asked for.
        query: String,
    },
    /// An id prefix matches more than one page.
    #[error("`{query}` matches several pages: {}; give more of the id", candidates.join(", "))]
    Ambiguous {
        /// What the user asked for.
        query: String,
        /// Every id that starts with it.
        candidates: Vec<String>,
    },
    /// An id prefix shorter than a destructive command accepts.
    #[error(
        "`{query}` is too short to name a page here: give at least {min} characters of the id, or its name (it matches {})",
        matching.join(", ")
    )]
    PrefixTooShort {
        /// What the user asked for.
        query: String,
        /// The fewest characters accepted.
        min: usize,
        /// Every id that starts with it.
        matching: Vec<String>,
    },
}

impl RegistryError {
    /// A stable name for this kind of failure, for scripts (`--json`).
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::Locked { .. } => "registry_locked",
            RegistryError::Read { .. } => "read_failed",
            RegistryError::Write { .. } => "write_failed",
            RegistryError::Corrupt { .. } => "registry_corrupt",
            RegistryError::NotFound { .. } => "not_found",
            RegistryError::Ambiguous { .. } => "ambiguous",
            RegistryError::PrefixTooShort { .. } => "prefix_too_short",
        }
    }
}
