//! What each tool takes. The input schemas a client sees are derived from
//! these types, their doc comments becoming the descriptions a model reads.

use rmcp::schemars::transform::{RecursiveTransform, Transform};
use rmcp::schemars::{JsonSchema, Schema};
use serde::Deserialize;
use serde_json::Value;

use crate::error::CliError;

/// `publish`: a file, or a folder with a `.drop-publish` manifest.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars", transform = one_line_descriptions)]
pub struct PublishArgs {
    /// The file or folder to publish: an absolute path, or one relative to
    /// the folder the MCP server was started in. A folder needs a
    /// `.drop-publish` file listing what it serves (one pattern a line, such
    /// as `index.html`, `*.css`, `assets/**`).
    pub path: String,
    /// A slug for the URL (lowercase letters, digits, `-`, `_`, `.`), also
    /// usable instead of the id in the other tools.
    #[serde(default)]
    pub name: Option<String>,
    /// A description shown in listings.
    #[serde(default)]
    pub description: Option<String>,
    /// Protect the page with a password: `true` for a generated one
    /// (returned once, as `password`: hand it to the human; a page that
    /// has a password keeps it, `password_kept`), or the password itself
    /// (at least 8 characters).
    #[serde(default)]
    pub password: Option<PasswordArg>,
    /// A new generated password even if the page has one (returned once,
    /// as `password`): whoever had the old one must sign in again.
    #[serde(default)]
    pub new_password: bool,
    /// Stop serving it after this span (`30m`, `2h`, `7d`, `1w`) or at this
    /// RFC 3339 time (`2026-12-31T18:00:00Z`); `never` takes an end away.
    #[serde(default)]
    pub expires: Option<String>,
    /// The link opens for one human once (a link preview does not use it
    /// up); afterwards it answers 404.
    #[serde(default)]
    pub once: bool,
}

/// `true` (generate one) or the password itself.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars", transform = one_line_descriptions)]
#[serde(untagged)]
pub enum PasswordArg {
    /// `true`: a generated password; `false`: none asked for.
    Generated(bool),
    /// This password.
    Given(String),
}

impl PasswordArg {
    /// As `drop add --password` takes it: `Some("")` for a generated one.
    /// An empty password given is refused, never taken for that.
    pub fn into_flag(self) -> Result<Option<String>, CliError> {
        match self {
            PasswordArg::Generated(true) => Ok(Some(String::new())),
            PasswordArg::Generated(false) => Ok(None),
            PasswordArg::Given(password) if password.is_empty() => Err(CliError::BadPassword(
                "an empty password is no password (`true` asks for a generated one)",
            )),
            PasswordArg::Given(password) => Ok(Some(password)),
        }
    }
}

/// `wait`: until a human opens a page.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars", transform = one_line_descriptions)]
pub struct WaitArgs {
    /// The page: its id, name, the path it was published from, or an id
    /// prefix of at least 4 characters.
    pub page: String,
    /// Give up after this many seconds with the error `not_opened` (the
    /// link keeps working; wait again later). 0 looks once and answers at
    /// once.
    pub timeout_s: u64,
    /// Count an opening at any time since the page was published, not
    /// only from now on.
    #[serde(default)]
    pub since_publish: bool,
}

/// `doctor`: a page, an app, or the server.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars", transform = one_line_descriptions)]
pub struct DoctorArgs {
    /// The page or app (id, name, path it was published from, or id
    /// prefix); the server when left out.
    #[serde(default)]
    pub page: Option<String>,
}

/// `remove`: pages and apps to unpublish.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars", transform = one_line_descriptions)]
pub struct RemoveArgs {
    /// Ids, names, paths they were published from, or id prefixes of at
    /// least 4 characters. Every one is looked up before anything is
    /// removed, so a typo removes nothing.
    #[schemars(length(min = 1))]
    pub pages: Vec<String>,
}

/// `add_app`: a web app drop runs and gives a URL.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars", transform = one_line_descriptions)]
pub struct AddAppArgs {
    /// The app's folder (its command runs there): absolute, or relative to
    /// the folder the MCP server was started in.
    pub path: String,
    /// The shell command that runs the app, listening on `port`.
    pub run: String,
    /// The port the app listens on (1 to 65535).
    #[schemars(range(min = 1))]
    pub port: u16,
    /// A name for the app, usable instead of its id.
    #[serde(default)]
    pub name: Option<String>,
    /// Send the app the public hostname as `Host` through its tunnel. By
    /// default it gets `localhost:PORT`, which dev servers that check the
    /// host (Vite, webpack, Django) accept; set this only for an app that
    /// builds absolute links from `Host`.
    #[serde(default)]
    pub keep_host: Option<bool>,
}

/// `start_app`, `stop_app`: one app.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars", transform = one_line_descriptions)]
pub struct AppArgs {
    /// The app: its id, name, the path it was added from, or an id prefix.
    pub app: String,
}

/// `logs`: the end of an app's output.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars", transform = one_line_descriptions)]
pub struct LogsArgs {
    /// The app: its id, name, the path it was added from, or an id prefix.
    pub app: String,
    /// How many of the last lines to return.
    #[serde(default = "default_log_lines")]
    pub lines: usize,
}

fn default_log_lines() -> usize {
    50
}

/// Doc comments wrap at 80 columns; a model reads each description as one
/// line.
fn one_line_descriptions(schema: &mut Schema) {
    let mut unwrap = RecursiveTransform(|schema: &mut Schema| {
        if let Some(Value::String(text)) = schema.get_mut("description") {
            *text = text.replace('\n', " ");
        }
    });
    unwrap.transform(schema);
}
