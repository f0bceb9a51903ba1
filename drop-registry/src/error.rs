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
    /// A file or folder of the home that another user owns: they could
    /// change it, or planted it for drop to trust.
    #[error(
        "`{}` belongs to user {owner}, not to you (user {user}): drop keeps its state only in a home that is yours alone. Run drop as that user, or give it a home of your own (--home or DROP_HOME); if this home is yours, give it back to yourself with `chown -R`",
        path.display()
    )]
    NotOwned {
        /// What another user owns.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
        /// The effective uid drop runs as.
        user: u32,
    },
    /// A symbolic link where drop keeps one of its files.
    #[error(
        "`{}` is a symbolic link: drop never follows links in its home, which could make it write or chmod a file elsewhere. Remove it and run drop again",
        path.display()
    )]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// Something else than a regular file (a FIFO, a folder…) where drop
    /// keeps a file, or than a folder where it keeps a folder.
    #[error("`{}` is not {expected}: remove or move it and run drop again", path.display())]
    WrongType {
        /// What is there.
        path: PathBuf,
        /// What drop keeps there.
        expected: &'static str,
    },
    /// A state file that does not parse and changed moments ago: another
    /// program may be writing it in place. Read it again shortly; only a
    /// file that stays so is [`RegistryError::Corrupt`].
    #[error("`{}` is being written by another program; read it again in a moment", path.display())]
    Torn {
        /// The file.
        path: PathBuf,
        /// The parse error of the read.
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
    /// Whether it says only that the file is not there (yet).
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }

    /// A stable name for this kind of failure, for scripts (`--json`).
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::Locked { .. } => "registry_locked",
            RegistryError::Read { .. } => "read_failed",
            RegistryError::Write { .. } => "write_failed",
            RegistryError::Corrupt { .. } => "registry_corrupt",
            RegistryError::Torn { .. } => "registry_busy",
            RegistryError::NotOwned { .. } => "home_not_owned",
            RegistryError::Symlink { .. } => "home_symlink",
            RegistryError::WrongType { .. } => "home_wrong_type",
            RegistryError::NotFound { .. } => "not_found",
            RegistryError::Ambiguous { .. } => "ambiguous",
            RegistryError::PrefixTooShort { .. } => "prefix_too_short",
        }
    }
}
