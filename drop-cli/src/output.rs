//! What commands print: where it goes ([`Output`]: text, `--json`, or captured
//! for an in-process caller), and how pages are shown in it (aligned rows,
//! JSON objects).

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use drop_registry::{MAX_VISITORS, Record, TunnelPhase, parse_rfc3339};
use serde_json::{Value, json};

use drop_core::supervise::{AppStatus, sockets};

use crate::urls::{Reach, Urls};
use crate::when::{left_until, show_span};

/// One page as listings show it.
pub struct PageRow<'a> {
    pub id: &'a str,
    pub record: &'a Record,
    pub url: String,
    /// Who can open `url`.
    pub reach: Reach,
    pub source_exists: bool,
    /// For apps: what the app is doing now.
    pub app_status: Option<AppStatus>,
    /// A running app reached directly whose URL is for other machines,
    /// but which listens on loopback alone: `url` is then its loopback one.
    pub loopback_only: bool,
}

impl<'a> PageRow<'a> {
    pub fn new(urls: &Urls, id: &'a str, record: &'a Record) -> Self {
        let app_status = record.is_app().then(|| AppStatus::of(record));
        let mut row = PageRow {
            id,
            record,
            url: urls.of(id, record),
            reach: urls.reach_of(record),
            source_exists: record.source.exists(),
            app_status,
            loopback_only: false,
        };
        if let Some(local) = row.loopback_address() {
            row.url = format!("http://{local}/");
            row.reach = Reach::ThisMachine;
            row.loopback_only = true;
        }
        row
    }

    /// Where a running app without a tunnel listens, when that is loopback
    /// alone and its URL is for other machines (it ran through a tunnel,
    /// and the server came back without one): its URL would open nowhere.
    fn loopback_address(&self) -> Option<std::net::SocketAddr> {
        let running = matches!(self.app_status, Some(AppStatus::Running { .. }));
        let direct = matches!(self.reach, Reach::Public | Reach::LocalNetwork);
        let port = self.record.port.filter(|_| running && direct)?;
        let listeners = sockets::listeners(port);
        sockets::loopback_only(&listeners).then(|| sockets::local_target(&listeners, port))
    }

    fn tags(&self) -> String {
        let mut tags = Vec::new();
        if let Some(status) = self.app_status {
            tags.push("[app]".to_owned());
            tags.push(match status {
                AppStatus::Crashed {
                    exit_code: Some(code),
                } => format!("[crashed (exit {code})]"),
                AppStatus::Unverified { pid } => format!("[old process {pid}, left alone]"),
                other => format!("[{}]", other.word()),
            });
            if let Some(tunnel) = self.tunnel_trouble(status) {
                tags.push(tunnel);
            }
            if self.loopback_only {
                tags.push("[this machine only]".to_owned());
            }
        }
        if !self.source_exists {
            tags.push("[source missing]".to_owned());
        }
        for (field, _) in self.record.unreadable_times() {
            tags.push(format!("[bad {field}]"));
        }
        if let Some(tag) = self.reach.tag() {
            tags.push(tag.to_owned());
        }
        tags.join(" ")
    }

    /// A running app's tunnel that is not up, as a tag: listings must show
    /// a rate limit or a failure, not only `--json`.
    fn tunnel_trouble(&self, status: AppStatus) -> Option<String> {
        let phase = self.record.tunnel_state.as_ref()?;
        let running = matches!(status, AppStatus::Running { .. });
        (running && *phase != TunnelPhase::Up).then(|| format!("[tunnel {}]", phase.words()))
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
        let mut doc = json!({
            "id": self.id,
            "url": self.url,
            "reach": self.reach.as_str(),
            "type": r.kind,
            "name": r.name,
            "description": r.description,
            "source": r.source,
            "is_dir": r.is_dir,
            "protected": r.is_protected(),
            "source_exists": self.source_exists,
            "created_at": r.created_at,
            // Times that do not read as times: taken as expired or used.
            "bad_times": r.unreadable_times().iter().map(|(field, _)| *field).collect::<Vec<_>>(),
        });
        // Every row has every field, so a script reading `views` of an
        // app or `status` of a page finds a value (0, false or null).
        let page = !r.is_app();
        doc["receipt"] = json!(page.then(|| receipt(r, SystemTime::now())));
        doc["views"] = json!(r.views);
        doc["visitors"] = json!(r.visitors.len());
        doc["visitors_capped"] = json!(r.visitors.len() >= MAX_VISITORS);
        doc["bot_views"] = json!(r.bot_views);
        doc["first_opened_at"] = json!(r.first_opened_at);
        doc["last_opened_at"] = json!(r.last_opened_at);
        doc["expires_at"] = json!(r.expires_at);
        doc["once"] = json!(r.once);
        doc["used_at"] = json!(r.used_at);
        let status = self.app_status;
        doc["status"] = json!(status.as_ref().map(AppStatus::word));
        doc["run_cmd"] = json!(r.run_cmd);
        doc["port"] = json!(r.port);
        doc["keep_host"] = json!(r.keep_host);
        doc["pid"] = json!(match status {
            Some(AppStatus::Running { pid } | AppStatus::Unverified { pid }) => Some(pid),
            _ => None,
        });
        doc["exit_code"] = json!(match status {
            Some(AppStatus::Crashed { exit_code }) => exit_code,
            _ => None,
        });
        doc["tunnel"] = json!(status.map(|_| json!({
            // Withheld while it is checked from outside.
            "url": r.current_tunnel_url(),
            "protocol": r.tunnel_protocol,
            "pid": r.tunnel_pid,
            "state": r.tunnel_state,
            "error": r.tunnel_error,
            "verified_at": r.tunnel_verified_at,
        })));
        doc
    }
}

/// Rows as the README shows them: `  id  name  [tags]  URL (public)
/// description`, ids, names and tags padded to one width; the name column
/// is there when some page has a name.
pub fn render_rows(rows: &[PageRow<'_>]) -> String {
    let id_width = rows.iter().map(|r| r.id.len()).max().unwrap_or(0);
    let name_width = rows.iter().map(|r| r.record.name.len()).max().unwrap_or(0);
    let tags: Vec<String> = rows.iter().map(PageRow::tags).collect();
    let tag_width = tags.iter().map(String::len).max().unwrap_or(0);
    let mut out = String::new();
    for (row, tags) in rows.iter().zip(&tags) {
        out.push_str(&format!("  {:<id_width$}  ", row.id));
        if name_width > 0 {
            out.push_str(&format!("{:<name_width$}  ", row.record.name));
        }
        if tag_width > 0 {
            out.push_str(&format!("{tags:<tag_width$}  "));
        }
        out.push_str(&format!("{} {}", row.url, row.access()));
        if !row.record.description.is_empty() {
            out.push_str(&format!("  {}", printable(&row.record.description)));
        }
        if !row.record.is_app() {
            out.push_str(&format!("  — {}", receipt(row.record, SystemTime::now())));
        }
        out.push('\n');
    }
    out
}

/// Whether and when the human opened a page, and how long it lives:
/// `opened 2× by 1 visitor, last 3 min ago`, `never opened`, then
/// `expires in 2 h`, `opens once` or `used (opened once)`.
pub fn receipt(record: &Record, now: SystemTime) -> String {
    let mut text = match record.views {
        0 => "never opened".to_owned(),
        views => {
            let visitors = record.visitors.len().max(1);
            let plural = if visitors == 1 { "" } else { "s" };
            // Past the cap, distinct visitors are no longer told apart.
            let more = if visitors >= MAX_VISITORS { "+" } else { "" };
            let last = record
                .last_opened_at
                .as_deref()
                .and_then(parse_rfc3339)
                .map_or_else(String::new, |at| format!(", last {}", ago(now, at)));
            format!("opened {views}× by {visitors}{more} visitor{plural}{last}")
        }
    };
    match record.bot_views {
        0 => {}
        1 => text.push_str(" (and 1 link preview)"),
        n => text.push_str(&format!(" (and {n} link previews)")),
    }
    if record.once {
        text.push_str(match record.used_at {
            Some(_) => "; used (it opened once)",
            None => "; opens once",
        });
    }
    if let Some(at) = record.expires_at.as_deref().and_then(parse_rfc3339) {
        match left_until(at, now) {
            Some(left) => text.push_str(&format!("; expires in {}", show_span(left))),
            None => text.push_str("; expired"),
        }
    }
    text
}

/// `just now`, `3 min ago`, `2 h ago`, `5 d ago`.
fn ago(now: SystemTime, then: SystemTime) -> String {
    match now.duration_since(then) {
        Ok(d) if d.as_secs() >= 60 => format!("{} ago", show_span(d)),
        _ => "just now".to_owned(),
    }
}

/// How messages name a page: by its name when it has one, else its id.
pub fn label(id: &str, record: &Record) -> String {
    record.label(id).to_owned()
}

/// Where a command's words go: lines for people on a terminal, under
/// `--json` one document on stdout and notes on stderr, or, for a caller in
/// this process (`drop mcp`), kept: nothing is printed.
#[derive(Debug, Clone)]
pub struct Output {
    mode: Mode,
}

#[derive(Debug, Clone)]
enum Mode {
    Text,
    Json,
    Captured(Arc<Mutex<Captured>>),
}

/// What a command said under [`Output::captured`]: what `--json` would have
/// printed, for the caller to hand on.
#[derive(Debug, Default)]
pub struct Captured {
    /// The command's JSON documents, in order (one for every command).
    pub documents: Vec<Value>,
    /// The objects `--json` streams one a line (`logs`).
    pub lines: Vec<Value>,
    /// Its warnings for people (`note!`).
    pub notes: Vec<String>,
}

impl Output {
    /// Lines for people (`--json` not given).
    pub fn text() -> Self {
        Output { mode: Mode::Text }
    }

    /// `--json`: documents on stdout, notes on stderr.
    pub fn json() -> Self {
        Output { mode: Mode::Json }
    }

    /// Speaks JSON like [`Output::json`] but prints nothing: what the
    /// command says is kept in the returned [`Captured`]. Under `drop mcp`
    /// stdout carries the protocol alone.
    pub fn captured() -> (Self, Arc<Mutex<Captured>>) {
        let kept = Arc::new(Mutex::new(Captured::default()));
        let out = Output {
            mode: Mode::Captured(Arc::clone(&kept)),
        };
        (out, kept)
    }

    /// Whether the command ends with a JSON document rather than lines.
    pub fn is_json(&self) -> bool {
        !matches!(self.mode, Mode::Text)
    }

    /// A line for people on stdout; nothing under JSON, as the command's
    /// document says the same. Every command's text goes through here,
    /// [`escaped`].
    pub fn say(&self, line: std::fmt::Arguments<'_>) {
        if let Mode::Text = self.mode {
            println!("{}", escaped(line));
        }
    }

    /// A drawing for the terminal (a QR code), printed as it is: drop
    /// drew every byte of it. Nothing under JSON.
    pub fn drawing(&self, drawn: &str) {
        if let Mode::Text = self.mode {
            print!("{drawn}");
        }
    }

    /// A warning for people: on stdout with the rest of the text, on
    /// stderr under `--json` so that stdout stays one document.
    pub fn note(&self, line: std::fmt::Arguments<'_>) {
        match &self.mode {
            Mode::Text => println!("{}", escaped(line)),
            Mode::Json => eprintln!("{}", escaped(line)),
            Mode::Captured(captured) => keep(captured, |k| k.notes.push(line.to_string())),
        }
    }

    /// A line for people beside a stream that has stdout (a followed
    /// log): on stderr in text and under `--json`, so the stream stays
    /// what the app wrote.
    pub fn aside(&self, line: std::fmt::Arguments<'_>) {
        match &self.mode {
            Mode::Text | Mode::Json => eprintln!("{}", escaped(line)),
            Mode::Captured(captured) => keep(captured, |k| k.notes.push(line.to_string())),
        }
    }

    /// The command's JSON document (pretty, on stdout under `--json`);
    /// nothing in text mode, where the lines said it.
    pub fn document(&self, value: Value) {
        match &self.mode {
            Mode::Text => {}
            Mode::Json => println!(
                "{}",
                serde_json::to_string_pretty(&value).expect("json values serialise")
            ),
            Mode::Captured(captured) => keep(captured, |k| k.documents.push(value)),
        }
    }

    /// One JSON object on a line of its own, for output that streams
    /// (`logs --json`); false once stdout is closed.
    pub fn json_line(&self, value: Value) -> bool {
        if let Mode::Captured(captured) = &self.mode {
            keep(captured, |k| k.lines.push(value));
            return true;
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "{value}").and_then(|()| out.flush()).is_ok()
    }
}

/// Adds to what is kept. A command that panicked while holding the lock
/// left whole entries only, so a poisoned lock is still used.
fn keep(kept: &Mutex<Captured>, add: impl FnOnce(&mut Captured)) {
    add(&mut kept
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner));
}

/// A line for people: `say!(out, "…", …)` with `out` an [`Output`].
macro_rules! say {
    ($out:expr) => {
        $out.say(format_args!(""))
    };
    ($out:expr, $($arg:tt)*) => {
        $out.say(format_args!($($arg)*))
    };
}
pub(crate) use say;

/// A warning for people: `note!(out, "…", …)` (see [`Output::note`]).
macro_rules! note {
    ($out:expr, $($arg:tt)*) => {
        $out.note(format_args!($($arg)*))
    };
}
pub(crate) use note;

/// Text from outside (a path, a description, a published folder's HTML),
/// safe to print: the daemon's log shows it by the same rule.
pub use drop_core::printable;

/// `text` for a terminal, each of its lines [`printable`]: the line breaks
/// drop wrote stay, and nothing a file name, an app or a request carried
/// can move the cursor, clear the screen or reorder what is shown.
pub fn escaped(text: impl std::fmt::Display) -> String {
    text.to_string()
        .split('\n')
        .map(printable)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `path` as a word of a command to paste into a shell: as it is when it
/// holds only characters no shell reads specially, else in double quotes
/// with `"`, `\`, `$` and `` ` `` escaped (and escaped for the terminal).
pub fn shell_word(path: &Path) -> String {
    let text = path.to_string_lossy();
    let plain = |c: char| c.is_alphanumeric() || "/._-+,:@%=".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        return text.into_owned();
    }
    let mut quoted = String::from("\"");
    for c in text.chars() {
        if "\"\\$`".contains(c) {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    printable(&quoted)
}

/// Whether `source` lies in `dir` (component-wise, not by string prefix).
pub fn is_under(source: &Path, dir: &Path) -> bool {
    source.starts_with(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(id: &'a str, record: &'a Record, url: &str, app: Option<AppStatus>) -> PageRow<'a> {
        PageRow {
            id,
            record,
            url: url.into(),
            reach: Reach::Tunnel,
            source_exists: true,
            app_status: app,
            loopback_only: false,
        }
    }

    /// The README's `drop status` lines, byte for byte.
    #[test]
    fn rows_align_ids_and_tags_like_the_spec() {
        let app = Record::app("/".into(), true, "serve".into(), 5000);
        let page = Record::static_page("/".into(), true);
        let rows = vec![
            row(
                "abc123",
                &app,
                "https://other-random.trycloudflare.com",
                Some(AppStatus::Running { pid: 1 }),
            ),
            row(
                "def456",
                &page,
                "https://random-words.trycloudflare.com/p/def456/",
                None,
            ),
        ];
        assert_eq!(
            render_rows(&rows),
            "  abc123  [app] [running]  https://other-random.trycloudflare.com (public)\n  \
             def456                   https://random-words.trycloudflare.com/p/def456/ (public)  — never opened\n"
        );
    }

    /// The receipt says how often and how lately the human opened a page,
    /// previews apart, and how long it lives.
    #[test]
    fn receipts_read_like_a_sentence() {
        let now = SystemTime::now();
        let mut page = Record::static_page("/".into(), false);
        assert_eq!(receipt(&page, now), "never opened");
        page.views = 2;
        page.visitors = vec!["a".into()];
        page.last_opened_at = Some(drop_registry::rfc3339(
            now - std::time::Duration::from_secs(200),
        ));
        page.bot_views = 1;
        assert_eq!(
            receipt(&page, now),
            "opened 2× by 1 visitor, last 3 min ago (and 1 link preview)"
        );
        page.once = true;
        page.expires_at = Some(drop_registry::rfc3339(
            now + std::time::Duration::from_secs(7200),
        ));
        assert_eq!(
            receipt(&page, now),
            "opened 2× by 1 visitor, last 3 min ago (and 1 link preview); opens once; expires in 2 h"
        );
    }

    /// Every line drop prints is escaped, its own line breaks kept.
    #[test]
    fn printed_lines_keep_their_breaks_and_lose_escapes() {
        assert_eq!(escaped("one\ntwo"), "one\ntwo");
        assert_eq!(escaped("a\u{1b}[31mred\rb\nc"), "a\\u{1b}[31mred\\u{d}b\nc");
    }

    /// A path in a command to paste is quoted only when a shell would read
    /// something in it.
    #[test]
    fn paths_in_commands_to_paste_are_quoted_when_needed() {
        assert_eq!(
            shell_word(Path::new("/home/me/report.html")),
            "/home/me/report.html"
        );
        assert_eq!(
            shell_word(Path::new("/home/me/my report.html")),
            "\"/home/me/my report.html\""
        );
        assert_eq!(
            shell_word(Path::new("/tmp/a$b\"c`d")),
            "\"/tmp/a\\$b\\\"c\\`d\""
        );
        assert_eq!(shell_word(Path::new("/tmp/x\u{1b}y")), "\"/tmp/x\\u{1b}y\"");
    }

    /// Outside text cannot reach the terminal with escapes or reorder marks.
    #[test]
    fn text_from_a_folder_is_printed_escaped() {
        assert_eq!(printable("css/a.css"), "css/a.css");
        assert_eq!(printable("\u{1b}[2J"), "\\u{1b}[2J");
        assert_eq!(printable("a\nb\0"), "a\\u{a}b\\u{0}");
        assert_eq!(printable("x\u{202e}gpj.exe"), "x\\u{202e}gpj.exe");
        assert_eq!(printable("héllo"), "héllo");
        for invisible in [
            '\u{200b}', '\u{200e}', '\u{200f}', '\u{61c}', '\u{2028}', '\u{2029}', '\u{feff}',
        ] {
            assert_eq!(
                printable(&format!("a{invisible}b")),
                format!("a{}b", invisible.escape_unicode())
            );
        }
    }

    #[test]
    fn crashed_apps_show_their_exit_code() {
        let app = Record::app("/".into(), true, "serve".into(), 5000);
        let rows = vec![row(
            "a",
            &app,
            "u",
            Some(AppStatus::Crashed { exit_code: Some(3) }),
        )];
        assert_eq!(
            render_rows(&rows),
            "  a  [app] [crashed (exit 3)]  u (public)\n"
        );
    }

    /// Names are shown for every page and app that has one, in a column
    /// of their own: an app's URL does not carry it.
    #[test]
    fn rows_show_each_name_in_a_column_of_its_own() {
        let mut app = Record::app("/".into(), true, "serve".into(), 5000);
        app.name = "api".into();
        let mut page = Record::static_page("/".into(), true);
        page.name = "report".into();
        let plain = Record::static_page("/".into(), false);
        let rows = vec![
            row("a1", &app, "http://h:5000/", Some(AppStatus::Stopped)),
            row("b2", &page, "http://h:8080/p/b2/report/", None),
            row("c3", &plain, "http://h:8080/p/c3/", None),
        ];
        assert_eq!(
            render_rows(&rows),
            "  a1  api     [app] [stopped]  http://h:5000/ (public)\n  \
             b2  report                   http://h:8080/p/b2/report/ (public)  — never opened\n  \
             c3                           http://h:8080/p/c3/ (public)  — never opened\n"
        );
    }

    /// Pages and apps have the same fields in JSON: a script that reads
    /// `views` of an app, or `status` of a page, finds 0 or null.
    #[test]
    fn every_row_has_every_field() {
        let app = Record::app("/".into(), true, "serve".into(), 5000);
        let page = Record::static_page("/".into(), false);
        let app = row("a", &app, "u", Some(AppStatus::Stopped)).to_json();
        let page = row("p", &page, "u", None).to_json();
        let keys = |doc: &Value| doc.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&app), keys(&page));
        assert_eq!(app["views"], 0);
        assert_eq!(app["visitors"], 0);
        assert_eq!(app["receipt"], Value::Null);
        assert_eq!(page["status"], Value::Null);
        assert_eq!(page["tunnel"], Value::Null);
        assert_eq!(page["pid"], Value::Null);
    }

    /// A live pid of the Python drop that is not provably the app is shown
    /// as left alone, with its pid.
    #[test]
    fn an_unverified_old_process_shows_its_pid() {
        let app = Record::app("/".into(), true, "serve".into(), 5000);
        let rows = vec![row("a", &app, "u", Some(AppStatus::Unverified { pid: 42 }))];
        assert_eq!(
            render_rows(&rows),
            "  a  [app] [old process 42, left alone]  u (public)\n"
        );
        assert_eq!(rows[0].to_json()["pid"], 42);
        assert_eq!(rows[0].to_json()["status"], "unverified");
    }

    #[test]
    fn rows_without_tags_have_no_tag_column() {
        let page = Record::static_page("/".into(), true);
        assert_eq!(
            render_rows(&[row("abc", &page, "u", None)]),
            "  abc  u (public)  — never opened\n"
        );
    }
}
