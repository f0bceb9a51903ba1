//! The CLI's errors: each becomes one `Error:` line that says what to do.

use std::path::PathBuf;

/// Everything a `drop` command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// From the registry or another state file.
    #[error(transparent)]
    Registry(#[from] drop_registry::RegistryError),
    /// Arguments that do not make a command (what clap refuses on the
    /// command line, from a caller clap does not see).
    #[error("{0}")]
    Usage(String),
    /// A path given on the command line does not exist.
    #[error("`{}` does not exist; check the path (relative paths are from the current folder)", path.display())]
    NoSuchPath {
        /// As the user gave it.
        path: PathBuf,
    },
    /// A folder without `.drop-publish`.
    #[error(
        "folder `{dir}` has no .drop-publish manifest; drop serves only the files it lists. Create one, for example:\n  printf 'index.html\\n*.css\\nassets/**\\n' > {manifest}\nthen run `drop add` again",
        dir = dir.display(),
        manifest = dir.join(".drop-publish").display()
    )]
    NoManifest {
        /// The folder.
        dir: PathBuf,
    },
    /// A name that is also a published path, of another page.
    #[error(
        "`{query}` is the name of page {named} and also the path `{}` of page {published}: give the id, or the path as ./{query}",
        path.display()
    )]
    NameOrPath {
        /// What the user asked for.
        query: String,
        /// The page of that name.
        named: String,
        /// The page published from that path.
        published: String,
        /// The path, made absolute.
        path: PathBuf,
    },
    /// `drop remove PATH` of a path no page is published from.
    #[error("no page is published from `{}`; see `drop list --all`", path.display())]
    NotPublished {
        /// The path, made absolute.
        path: PathBuf,
    },
    /// A `.drop-publish` that does not parse or lists nothing.
    #[error("`{}` {problem}; list one pattern a line (`index.html`, `*.css`, `assets/**`)", path.display())]
    BadManifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A file that drop never serves.
    #[error("`{}` is never published: environment files and the manifest stay private", path.display())]
    NeverServed {
        /// The file.
        path: PathBuf,
    },
    /// What looks like a secret, without `--allow-secret`.
    #[error("`{}` looks like a secret ({what}): a page opens for anyone holding its link, so drop does not publish it. If you mean to, run 'drop add <PATH> --allow-secret' yourself", path.display())]
    LooksSecret {
        /// What was asked for.
        path: PathBuf,
        /// What it looks like.
        what: &'static str,
    },
    /// Something inside the drop home: its registry, key and logs.
    #[error("`{}` is inside drop's own folder `{}` (the registry, the session key, logs), which is never published; publish something else", path.display(), home.display())]
    InDropHome {
        /// What was asked for.
        path: PathBuf,
        /// The drop home.
        home: PathBuf,
    },
    /// `/` or the user's home folder: never one page.
    #[error(
        "`{}` is {what}, not a folder to publish: publish the folder that holds the files the human should see (with a .drop-publish listing them), or the files themselves",
        path.display()
    )]
    FolderTooBroad {
        /// The folder.
        path: PathBuf,
        /// What it is: `the whole filesystem`, `your home folder`.
        what: &'static str,
    },
    /// A path the registry (JSON) cannot hold.
    #[error("`{}` is not valid UTF-8; rename it, or publish a folder above it", path.display())]
    NotUtf8 {
        /// The path.
        path: PathBuf,
    },
    /// Neither a regular file nor a folder.
    #[error("`{}` is neither a file nor a folder", path.display())]
    NotPublishable {
        /// The path.
        path: PathBuf,
    },
    /// A `--name` that cannot be a URL slug.
    #[error(
        "name `{name}` is not valid: use 1-64 lowercase letters, digits, `-`, `_` or `.`, starting with a letter or digit"
    )]
    BadName {
        /// The name given.
        name: String,
    },
    /// A `--desc` longer than listings show.
    #[error("--desc is {length} characters long; keep it to {max} (it is one line in `drop list`)")]
    DescriptionTooLong {
        /// Its length, in characters.
        length: usize,
        /// The most accepted.
        max: usize,
    },
    /// A `--name` equal to an entry at the top of the published folder.
    #[error("name `{name}` is also the name of an entry in `{}`, which its URL would hide; choose another name", dir.display())]
    NameShadowsFile {
        /// The name.
        name: String,
        /// The folder.
        dir: PathBuf,
    },
    /// A `--name` already used by another page.
    #[error(
        "name `{name}` is already used by page {id}; choose another or `drop remove {name}` first"
    )]
    NameTaken {
        /// The name.
        name: String,
        /// The page that has it.
        id: String,
    },
    /// `--password` with `--run`.
    #[error(
        "passwords protect pages drop serves; an app is reached on its own port, so it cannot have one"
    )]
    PasswordOnApp,
    /// `--once` with `--run`.
    #[error(
        "a one-time link is for a page drop serves; an app is reached on its own port, so it cannot be one (--expires works for apps)"
    )]
    OnceOnApp,
    /// A password nobody could type into the login form.
    #[error("{0}: give another, or --password alone for a generated one")]
    BadPassword(&'static str),
    /// A password anyone with the link could guess.
    #[error(
        "a password of {} is guessed in moments: give one of at least {min}, or --password alone for a generated one",
        crate::plural::count(*length, "character", "characters")
    )]
    PasswordTooShort {
        /// Its length, in characters.
        length: usize,
        /// The fewest accepted.
        min: usize,
    },
    /// An app's command longer than any command line needs.
    #[error(
        "the app's command is {length} bytes long; keep it to {max} (put a longer one in a script in the app's folder and run that)"
    )]
    CommandTooLong {
        /// Its length, in bytes.
        length: usize,
        /// The most accepted.
        max: usize,
    },
    /// An app on the port drop's own server serves on.
    #[error(
        "port {port} is the port drop's server serves pages on; give the app the port it listens on"
    )]
    ServersPort {
        /// The port.
        port: u16,
    },
    /// `--port 0` for an app.
    #[error("an app needs the real port it listens on: give --port N with N from 1 to 65535")]
    BadAppPort,
    /// Another app has this port.
    #[error("port {port} is already used by app {app}; give this app another port")]
    PortTaken {
        /// The port.
        port: u16,
        /// The app that has it: its name, else its id.
        app: String,
    },
    /// Re-adding a running app with another command or port: its record
    /// would no longer say what runs.
    #[error(
        "app {label} is running with {running}; changing it to {asked} now would make its URL lie. Stop it first ('drop stop {label}'), or add it again with --restart to apply the change (drop stops the app and starts it again)"
    )]
    RunningAppChange {
        /// The app's name or id.
        label: String,
        /// What runs now (`port 5055`, `the command `…``).
        running: String,
        /// What was asked.
        asked: String,
    },
    /// `drop doctor` found the link broken.
    #[error("the link does not work: {check}; fix: {fix}")]
    LinkBroken {
        /// The first failed check, in one line.
        check: String,
        /// Its fix.
        fix: String,
    },
    /// An app command on something that is not an app.
    #[error(
        "`{query}` is a page, not an app; apps are added with `drop add <path> --run CMD --port N`"
    )]
    NotAnApp {
        /// What the user asked for.
        query: String,
    },
    /// The daemon could not start or stop an app: its words, and the
    /// stable code it gave (`port_in_use`, `app_exited`…).
    #[error("{message}")]
    App {
        /// What failed, for scripts.
        code: String,
        /// Why, for the user.
        message: String,
    },
    /// The daemon's control socket could not be used.
    #[error(transparent)]
    Control(#[from] drop_core::daemon::ControlError),
    /// The daemon could not run.
    #[error(transparent)]
    Daemon(#[from] drop_core::daemon::DaemonError),
    /// A `DROP_*` setting that is not a number.
    #[error("{name} is `{value}`; set it to a whole number from 1 to {max}, or unset it")]
    BadSetting {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// The largest value it takes.
        max: u64,
    },
    /// `drop wait` on an app: apps are not counted.
    #[error("`{query}` is an app; drop counts who opens pages, not apps")]
    WaitOnApp {
        /// What the user asked for.
        query: String,
    },
    /// The page waited for was removed.
    #[error("page {id} was removed (or expired) while waiting")]
    PageGone {
        /// The page.
        id: String,
    },
    /// `drop wait` on a page nobody can open now.
    #[error("nobody can open page {id}: {why}")]
    NobodyCanOpen {
        /// The page.
        id: String,
        /// Why not, with what to do.
        why: String,
    },
    /// Nobody opened the page in time.
    #[error(
        "page {id} was not opened within {waited}; the link still works: wait again, or ask the human"
    )]
    NotOpened {
        /// The page.
        id: String,
        /// How long `drop wait` waited, as people write it.
        waited: String,
    },
    /// The caller of `drop mcp`'s `wait` cancelled it.
    #[error("waiting for page {id} was cancelled")]
    WaitCancelled {
        /// The page.
        id: String,
    },
    /// A time or span that does not parse.
    #[error(
        "{what} `{value}` is not a span (30m, 2h, 7d, 1w) or an RFC 3339 time with its offset (2026-12-31T18:00:00Z), within 10 years"
    )]
    BadTime {
        /// The flag.
        what: &'static str,
        /// What was given.
        value: String,
    },
    /// A span that does not parse, for a flag that takes only spans.
    #[error(
        "{what} `{value}` is not a span: a whole number and a unit, such as 30s, 10m, 2h, 7d or 1w (at most 10 years)"
    )]
    BadSpan {
        /// The flag.
        what: &'static str,
        /// What was given.
        value: String,
    },
    /// A time that has passed.
    #[error("{what} `{value}` is in the past; give a span (2h) or a time to come")]
    PastTime {
        /// The flag.
        what: &'static str,
        /// What was given.
        value: String,
    },
    /// Two settings that cannot hold together.
    #[error(
        "{first} ({first_value}) must be less than {second} ({second_value}); lower the first or raise the second"
    )]
    SettingsClash {
        /// The one that must be smaller.
        first: &'static str,
        /// Its value, and whether it is its default (`5000 ms, its default`).
        first_value: String,
        /// The other.
        second: &'static str,
        /// Its value, and whether it is its default.
        second_value: String,
    },
    /// A `DROP_*` setting that is not a list of URLs, or not one URL.
    #[error("{name} is `{value}`; {expected}, or unset it")]
    BadUrlSetting {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it takes.
        expected: &'static str,
    },
    /// A hostname no DNS can hold.
    #[error(
        "`{hostname}` is not a hostname: use letters, digits and hyphens in dot-separated parts, such as drop.example.com"
    )]
    BadHostname {
        /// As given.
        hostname: String,
    },
    /// A setup that failed after it created the tunnel.
    #[error(
        "{error}; {}",
        match deleted {
            true => format!("the tunnel \"{tunnel}\" this setup had created is deleted again"),
            false => format!("the tunnel \"{tunnel}\" this setup created is left in the account: delete it with `cloudflared tunnel delete {tunnel}`"),
        }
    )]
    SetupUndone {
        /// Why it failed.
        error: Box<CliError>,
        /// The tunnel it had created.
        tunnel: String,
        /// Whether the tunnel was deleted again.
        deleted: bool,
    },
    /// The named tunnel that is set up cannot serve.
    #[error("{0}")]
    NamedTunnelBroken(String),
    /// `drop tunnel setup` of a hostname whose DNS record points elsewhere.
    #[error("{refusal}: 'drop tunnel setup --hostname {hostname} --replace-dns' does that")]
    DnsTaken {
        /// The hostname.
        hostname: String,
        /// What cloudflared said.
        refusal: drop_tunnel::TunnelError,
    },
    /// The named tunnel could not be set up or used.
    #[error(transparent)]
    Tunnel(#[from] drop_tunnel::TunnelError),
    /// The server could not start.
    #[error("{0}")]
    ServerFailed(String),
    /// The server just launched exited: its words, and the stable code it
    /// gave (`port_in_use`, `already_serving`…).
    #[error("{message}")]
    ServerExited {
        /// What failed, for scripts.
        code: String,
        /// Why, for the user.
        message: String,
    },
    /// The server did not answer in time.
    #[error("the server did not answer within {secs} s; see its log `{}`", log.display())]
    ServerTimeout {
        /// How long `start` waited.
        secs: u64,
        /// The server's log.
        log: PathBuf,
    },
    /// The port to serve on is taken.
    #[error(
        "port {port} is already in use; stop what uses it or choose another with `drop start --port N`"
    )]
    PortInUse {
        /// The port.
        port: u16,
    },
    /// The Python drop's server still serves this home.
    #[error(
        "the Python drop's server (pid {pid}) still serves this home{}: run 'drop stop' to stop it (this drop checks that the pid is that server), then 'drop start'",
        port.map_or(String::new(), |p| format!(" on port {p}"))
    )]
    LegacyServer {
        /// Its pid (from `server.pid`).
        pid: u32,
        /// Its port, when its command line tells.
        port: Option<u16>,
    },
    /// A link too long for a QR code.
    #[error(transparent)]
    Qr(#[from] crate::qr::QrError),
    /// `drop mcp` could not hold its session with the client.
    #[error("the MCP session on stdin/stdout failed: {what}")]
    Mcp {
        /// What failed.
        what: &'static str,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Any other I/O failure, with what was being done.
    #[error("could not {action}")]
    Io {
        /// What drop was doing.
        action: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    /// A stable name for this kind of failure: what scripts match on
    /// (`--json` errors carry it), while the message may be reworded.
    pub fn code(&self) -> &str {
        use drop_core::daemon::{ControlError, DaemonError};
        match self {
            CliError::Registry(e) => e.code(),
            CliError::Usage(_) => "usage",
            CliError::NoSuchPath { .. } => "no_such_path",
            CliError::NoManifest { .. } => "no_manifest",
            CliError::NotPublished { .. } => "not_published",
            CliError::NameOrPath { .. } => "ambiguous",
            CliError::BadManifest { .. } => "bad_manifest",
            CliError::NeverServed { .. } => "never_served",
            CliError::LooksSecret { .. } => "looks_secret",
            CliError::InDropHome { .. } => "in_drop_home",
            CliError::NotUtf8 { .. } => "not_utf8",
            CliError::FolderTooBroad { .. } => "folder_too_broad",
            CliError::NotPublishable { .. } => "not_publishable",
            CliError::BadName { .. } => "bad_name",
            CliError::DescriptionTooLong { .. } => "description_too_long",
            CliError::NameShadowsFile { .. } => "name_shadows_file",
            CliError::NameTaken { .. } => "name_taken",
            CliError::PasswordOnApp => "password_on_app",
            CliError::BadAppPort => "bad_app_port",
            CliError::OnceOnApp => "once_on_app",
            CliError::BadPassword(_) | CliError::PasswordTooShort { .. } => "bad_password",
            CliError::PortTaken { .. } | CliError::ServersPort { .. } => "port_taken",
            CliError::CommandTooLong { .. } => "command_too_long",
            CliError::RunningAppChange { .. } => "running_app_change",
            CliError::LinkBroken { .. } => "link_broken",
            CliError::NotAnApp { .. } => "not_an_app",
            CliError::App { code, .. } | CliError::ServerExited { code, .. } => code,
            CliError::Control(ControlError::Io { .. }) => "server_unreachable",
            CliError::Control(ControlError::Unreadable { .. }) => "server_reply_unreadable",
            CliError::Control(ControlError::NoReply) => "server_no_reply",
            CliError::Daemon(DaemonError::AlreadyServing { .. }) => "already_serving",
            CliError::Daemon(DaemonError::Registry(e)) => e.code(),
            CliError::Daemon(DaemonError::Io { .. }) => "io_failed",
            CliError::BadSetting { .. }
            | CliError::BadUrlSetting { .. }
            | CliError::SettingsClash { .. } => "bad_setting",
            CliError::WaitOnApp { .. } => "wait_on_app",
            CliError::PageGone { .. } => "page_gone",
            CliError::NotOpened { .. } => "not_opened",
            CliError::WaitCancelled { .. } => "cancelled",
            CliError::NobodyCanOpen { .. } => "nobody_can_open",
            CliError::BadTime { .. } | CliError::BadSpan { .. } => "bad_time",
            CliError::PastTime { .. } => "past_time",
            CliError::NamedTunnelBroken(_) => "named_tunnel_broken",
            CliError::BadHostname { .. } => "bad_hostname",
            CliError::SetupUndone { error, .. } => error.code(),
            CliError::Tunnel(e) | CliError::DnsTaken { refusal: e, .. } => e.code(),
            CliError::ServerFailed(_) => "server_failed",
            CliError::ServerTimeout { .. } => "server_timeout",
            CliError::PortInUse { .. } => "port_in_use",
            CliError::LegacyServer { .. } => "legacy_server",
            CliError::Io { .. } => "io_failed",
            CliError::Mcp { .. } => "mcp_failed",
            CliError::Qr(_) => "qr_failed",
        }
    }

    /// The error as `--json` prints it: `{"error": {"code", "message",
    /// "causes"}}`, the causes each in its own words.
    pub fn to_json(&self) -> serde_json::Value {
        let mut causes = Vec::new();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            causes.push(cause.to_string());
            source = cause.source();
        }
        let causes: Vec<String> = causes.into_iter().map(clipped).collect();
        serde_json::json!({
            "error": { "code": self.code(), "message": self.message(), "causes": causes }
        })
    }

    /// What the error says, [`clipped`]: a path or value of any length
    /// given to drop comes back at a readable length.
    pub fn message(&self) -> String {
        clipped(self.to_string())
    }

    /// Wraps an I/O error with what drop was doing.
    pub fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
        let action = action.into();
        move |source| CliError::Io { action, source }
    }
}

/// The most characters of a message or cause drop shows.
const MAX_MESSAGE_CHARS: usize = 2_000;

/// `text`, cut to [`MAX_MESSAGE_CHARS`] with what was left out said.
pub fn clipped(text: String) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        None => text,
        Some((cut, _)) => {
            let left_out = text[cut..].chars().count();
            let more = crate::plural::count(left_out, "more character", "more characters");
            format!("{}… ({more})", &text[..cut])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message of a 300,000-character path comes back at a readable
    /// length, saying how much was left out; a short one as it is.
    #[test]
    fn long_messages_are_clipped() {
        let err = CliError::NoSuchPath {
            path: PathBuf::from("x".repeat(300_000)),
        };
        let message = err.message();
        assert!(message.chars().count() < 2_100, "{}", message.len());
        assert!(message.ends_with(" more characters)"), "{message}");
        let doc = err.to_json();
        assert_eq!(doc["error"]["message"], message);
        assert_eq!(clipped("short".into()), "short");
        assert_eq!(
            clipped("é".repeat(2_001)),
            format!("{}… (1 more character)", "é".repeat(2_000))
        );
    }
}
