//! What `drop add` tells of a folder: how many files its manifest serves,
//! and the local references in its HTML that would answer 404: those the
//! manifest leaves out, with the manifest lines that fix them, and those
//! to files that do not exist.

use std::path::Path;

use drop_core::page::{
    Fix, MANIFEST_NAME, Manifest, Served, Uncovered, lines_to_add, scan_references, served_files,
};
use serde_json::Value;

use crate::output::{Output, note, printable, say};

/// A folder's manifest, checked against the folder: how many files it
/// serves, and the local references in its HTML it leaves out, which
/// would answer 404.
pub struct FolderCheck {
    served: Served,
    uncovered: Vec<Uncovered>,
    /// Whether every reference was looked at (the scan has bounds).
    all_seen: bool,
}

/// At most this many uncovered references are listed one by one.
const MAX_LISTED_REFERENCES: usize = 10;

impl FolderCheck {
    pub fn of(dir: &Path) -> Self {
        match Manifest::load(dir) {
            Ok(manifest) => {
                let (uncovered, all_seen) = scan_references(dir, &manifest);
                FolderCheck {
                    served: served_files(dir, &manifest),
                    uncovered,
                    all_seen,
                }
            }
            // Checked just before; gone since: nothing to tell.
            Err(_) => FolderCheck {
                served: Served {
                    files: Vec::new(),
                    complete: false,
                },
                uncovered: Vec::new(),
                all_seen: true,
            },
        }
    }

    pub fn to_json(&self) -> Value {
        let uncovered: Vec<Value> = self
            .uncovered
            .iter()
            .map(|u| {
                let relative = match &u.fix {
                    Fix::MakeRelative { relative, .. } => Some(relative.clone()),
                    Fix::AddLine(_) | Fix::Missing => None,
                };
                serde_json::json!({
                    "from": u.from,
                    "reference": u.reference,
                    "target": u.target,
                    "exists": u.exists,
                    "manifest_line": u.fix.manifest_line(),
                    "write_instead": relative,
                })
            })
            .collect();
        serde_json::json!({
            "files": self.served.files.len(),
            "files_counted_all": self.served.complete,
            "uncovered_references": uncovered,
            "references_checked_all": self.all_seen,
            "manifest_lines_to_add": lines_to_add(&self.uncovered),
        })
    }

    /// The lines for people: the count, then each reference left out and
    /// the manifest lines that would serve them.
    pub fn say(&self, out: &Output, dir: &Path) {
        let count = self.served.files.len();
        let more = if self.served.complete { "" } else { " or more" };
        match count {
            0 => note!(
                out,
                "Warning: {MANIFEST_NAME} lists no file in this folder yet: every path answers 404 until it does."
            ),
            1 => say!(
                out,
                "  (serves 1 file{more}: the one {MANIFEST_NAME} lists)"
            ),
            n => say!(
                out,
                "  (serves {n} files{more}: the ones {MANIFEST_NAME} lists)"
            ),
        }
        if self.uncovered.is_empty() {
            return;
        }
        let more = if self.all_seen {
            ""
        } else {
            " (or more: the check stopped at its bounds)"
        };
        note!(
            out,
            "Warning: {}{more} in its HTML will answer 404:",
            crate::plural::count(self.uncovered.len(), "local reference", "local references")
        );
        for u in self.uncovered.iter().take(MAX_LISTED_REFERENCES) {
            let missing = if u.exists {
                ""
            } else {
                " (and no such file is in the folder)"
            };
            let (from, reference) = (printable(&u.from), printable(&u.reference));
            match &u.fix {
                Fix::AddLine(_) => {
                    note!(
                        out,
                        "  {from}: {reference} is not listed in {MANIFEST_NAME}"
                    )
                }
                Fix::Missing => note!(
                    out,
                    "  {from}: {reference} is missing: no such file is in the folder (create it, or correct the reference)"
                ),
                Fix::MakeRelative { relative, .. } => note!(
                    out,
                    "  {from}: {reference} starts with `/`, which leaves the page's URL: write {}{missing}",
                    printable(relative)
                ),
            }
        }
        if self.uncovered.len() > MAX_LISTED_REFERENCES {
            note!(
                out,
                "  … and {} more",
                self.uncovered.len() - MAX_LISTED_REFERENCES
            );
        }
        let lines = lines_to_add(&self.uncovered);
        if !lines.is_empty() {
            note!(
                out,
                "Add to {} to serve them (drop reads it at once):",
                printable(&dir.join(MANIFEST_NAME).to_string_lossy())
            );
            for line in lines.iter().take(MAX_LISTED_REFERENCES) {
                note!(out, "  {}", printable(line));
            }
            if lines.len() > MAX_LISTED_REFERENCES {
                note!(
                    out,
                    "  … and {} more (all of them under --json)",
                    lines.len() - MAX_LISTED_REFERENCES
                );
            }
        }
    }
}
