//! Pages: the secret ids in their URLs, the `.drop-publish` manifests that
//! limit folders (and the references in their HTML a manifest leaves out),
//! the resolver that turns a request path into a file or a refusal, and the
//! catalog of pages the server keeps in memory.

pub(crate) mod catalog;
pub(crate) mod id;
pub(crate) mod manifest;
mod never_served;
pub(crate) mod references;
pub(crate) mod safe_path;
pub(crate) mod watch;

pub use catalog::{Catalog, PageEntry};
pub use id::{PAGE_ID_LEN, new_page_id};
pub use manifest::{MANIFEST_NAME, MAX_MANIFEST_BYTES, Manifest, ManifestError};
pub use never_served::{is_never_served, is_secret_name, looks_secret, never_served_in_folder};
pub use references::{Fix, Served, Uncovered, lines_to_add, scan_references, served_files};
pub use watch::follow_registry;
