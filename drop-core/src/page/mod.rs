//! Pages: the secret ids in their URLs, the `.drop-publish` manifests that
//! limit folders, the resolver that turns a request path into a file or a
//! refusal, and the catalog of pages the server keeps in memory.

pub mod catalog;
pub mod id;
pub mod manifest;
pub mod safe_path;

pub use catalog::{Catalog, PageEntry};
pub use id::new_page_id;
pub use manifest::{MANIFEST_NAME, Manifest, ManifestError};
pub use safe_path::is_never_served;
