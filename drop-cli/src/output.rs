//! How pages are shown: aligned text rows and JSON objects.

use std::path::Path;

use drop_registry::Record;
use serde_json::{Value, json};

use crate::urls::page_url;

/// One page as listings show it.
pub struct PageRow<'a> {
    pub id: &'a str,
    pub record: &'a Record,
    pub url: String,
    pub source_exists: bool,
}

impl<'a> PageRow<'a> {
    pub fn new(base: &str, id: &'a str, record: &'a Record) -> Self {
        PageRow {
            id,
            record,
            url: page_url(base, id, record),
            source_exists: record.source.exists(),
        }
    }

    fn tags(&self) -> String {
        let mut tags = Vec::new();
        if self.record.is_app() {
            tags.push("[app]");
        }
        if !self.source_exists {
            tags.push("[source missing]");
        }
        tags.join(" ")
    }

    fn access(&self) -> &'static str {
        if self.record.is_protected() {
            "(password)"
        } else {
            "(public)"
        }
    }

    pub fn to_json(&self) -> Value {
        let r = self.record;
        json!({
            "id": self.id,
            "url": self.url,
            "type": r.kind,
            "name": r.name,
            "description": r.description,
            "source": r.source,
            "is_dir": r.is_dir,
            "protected": r.is_protected(),
            "source_exists": self.source_exists,
            "created_at": r.created_at,
        })
    }
}

/// Rows as SPEC.md shows them: `  id  [tags]  URL (public)  description`,
/// ids and tags padded to one width.
pub fn render_rows(rows: &[PageRow<'_>]) -> String {
    let id_width = rows.iter().map(|r| r.id.len()).max().unwrap_or(0);
    let tags: Vec<String> = rows.iter().map(PageRow::tags).collect();
    let tag_width = tags.iter().map(String::len).max().unwrap_or(0);
    let mut out = String::new();
    for (row, tags) in rows.iter().zip(&tags) {
        out.push_str(&format!("  {:<id_width$}  ", row.id));
        if tag_width > 0 {
            out.push_str(&format!("{tags:<tag_width$}  "));
        }
        out.push_str(&format!("{} {}", row.url, row.access()));
        if !row.record.description.is_empty() {
            out.push_str(&format!("  {}", row.record.description));
        }
        out.push('\n');
    }
    out
}

/// Prints a JSON document on stdout.
pub fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("json values serialise")
    );
}

/// Whether `source` lies in `dir` (component-wise, not by string prefix).
pub fn is_under(source: &Path, dir: &Path) -> bool {
    source.starts_with(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_align_ids_and_tags_like_the_spec() {
        let app = Record {
            kind: "app".into(),
            ..Record::static_page("/".into(), true)
        };
        let page = Record::static_page("/".into(), true);
        let rows = vec![
            PageRow {
                id: "abc123",
                record: &app,
                url: "https://a".into(),
                source_exists: true,
            },
            PageRow {
                id: "def456",
                record: &page,
                url: "https://b/p/def456/".into(),
                source_exists: true,
            },
        ];
        assert_eq!(
            render_rows(&rows),
            "  abc123  [app]  https://a (public)\n  def456         https://b/p/def456/ (public)\n"
        );
    }

    #[test]
    fn rows_without_tags_have_no_tag_column() {
        let page = Record::static_page("/".into(), true);
        let rows = vec![PageRow {
            id: "abc",
            record: &page,
            url: "u".into(),
            source_exists: true,
        }];
        assert_eq!(render_rows(&rows), "  abc  u (public)\n");
    }
}
