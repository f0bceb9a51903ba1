//! One page of the registry, with the field names the Python drop used.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::{PageKind, TunnelPhase, TunnelProtocol, TunnelState};

/// The most visitors a record remembers; more still count as views.
pub const MAX_VISITORS: usize = 200;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A published file, folder or app. Fields that this version does not know
/// are kept in `extra` and written back, so drops of different versions can
/// share one home.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// An app, or else a static page.
    #[serde(rename = "type", default, deserialize_with = "null_as_default")]
    pub kind: PageKind,
    /// Absolute path of the published file, folder or app source.
    pub source: PathBuf,
    /// Whether `source` is a folder.
    #[serde(default, deserialize_with = "null_as_default")]
    pub is_dir: bool,
    /// Optional slug, unique in the registry.
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// Free text shown in listings.
    #[serde(default, deserialize_with = "null_as_default")]
    pub description: String,
    /// Empty for public pages; an argon2id PHC string or `sha256:<hex>`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub password_hash: String,
    /// When the page was added, RFC 3339.
    #[serde(default, deserialize_with = "time_text_or_empty")]
    pub created_at: String,
    /// The app's shell command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_cmd: Option<String>,
    /// The port the app listens on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The app is sent the public hostname as `Host` through its tunnel,
    /// rather than `localhost:PORT` (which dev servers accept).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_host: bool,
    /// The app's process id while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The start time of `pid` (`/proc/<pid>/stat` field 22), so that a
    /// reused pid is never taken for the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start_time: Option<u64>,
    /// Set when the app ended without being asked to.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub crashed: bool,
    /// How it ended, when known (128 + n for signal n, as shells do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The app's public tunnel URL while one runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_url: Option<String>,
    /// The app's tunnel process id while one runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_pid: Option<u32>,
    /// The tunnel process's start time, for identity checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_start_time: Option<u64>,
    /// Where the app's tunnel is in its life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_state: Option<TunnelPhase>,
    /// Why the app's tunnel is not up, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_error: Option<String>,
    /// How the app's tunnel reaches the edge, while it has a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_protocol: Option<TunnelProtocol>,
    /// When the app's tunnel URL was last seen to work from outside.
    #[serde(
        default,
        deserialize_with = "time_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub tunnel_verified_at: Option<String>,
    /// How many times a human opened the page (its document, not every
    /// asset).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub views: u64,
    /// How many times link-preview bots fetched it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bot_views: u64,
    /// Who opened it: salted hashes of their addresses, at most
    /// [`MAX_VISITORS`] kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub visitors: Vec<String>,
    /// When a human first opened it, RFC 3339.
    #[serde(
        default,
        deserialize_with = "time_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub first_opened_at: Option<String>,
    /// When a human last opened it, RFC 3339.
    #[serde(
        default,
        deserialize_with = "time_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_opened_at: Option<String>,
    /// When it stops being served (and is removed), RFC 3339.
    #[serde(
        default,
        deserialize_with = "time_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<String>,
    /// It opens for one human once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub once: bool,
    /// Which `--once` this is: each `drop add --once` starts a new round,
    /// so a use of an earlier round (not yet written) does not count.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub once_round: u64,
    /// When a once-page was opened, RFC 3339.
    #[serde(
        default,
        deserialize_with = "time_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub used_at: Option<String>,
    /// Who opened a once-page (a salted hash of their address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_by: Option<String>,
    /// Fields written by other versions of drop, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Record {
    /// A new public file or folder page created now.
    pub fn static_page(source: PathBuf, is_dir: bool) -> Self {
        Record {
            kind: PageKind::Static,
            source,
            is_dir,
            name: String::new(),
            description: String::new(),
            password_hash: String::new(),
            created_at: crate::now_rfc3339(),
            run_cmd: None,
            port: None,
            keep_host: false,
            pid: None,
            pid_start_time: None,
            crashed: false,
            exit_code: None,
            tunnel_url: None,
            tunnel_pid: None,
            tunnel_start_time: None,
            tunnel_state: None,
            tunnel_error: None,
            tunnel_protocol: None,
            tunnel_verified_at: None,
            views: 0,
            bot_views: 0,
            visitors: Vec::new(),
            first_opened_at: None,
            last_opened_at: None,
            expires_at: None,
            once: false,
            once_round: 0,
            used_at: None,
            used_by: None,
            extra: Map::new(),
        }
    }

    /// Whether it has expired at `now`. An `expires_at` that does not read
    /// as a time counts as expired: a page is never served forever because
    /// its end was written wrong.
    pub fn expired(&self, now: std::time::SystemTime) -> bool {
        match self.expires_at.as_deref() {
            None => false,
            Some(text) => crate::parse_rfc3339(text).is_none_or(|at| now >= at),
        }
    }

    /// Whether its end has come by a time that reads: what the daemon's
    /// sweep and `drop cleanup` remove. A page whose end does not read is
    /// expired (never served) but kept, for the user to see and set anew.
    pub fn end_reached(&self, now: std::time::SystemTime) -> bool {
        self.expired(now) && !self.expiry_unreadable()
    }

    /// Whether `expires_at` is set but does not read as a time.
    pub fn expiry_unreadable(&self) -> bool {
        self.unreadable_times()
            .iter()
            .any(|(field, _)| *field == "expires_at")
    }

    /// The time fields that are set but do not read as times, with their
    /// text: `expires_at` (the page is then taken as expired) and `used_at`
    /// (its one-time link as used), never as open forever.
    pub fn unreadable_times(&self) -> Vec<(&'static str, &str)> {
        [("expires_at", &self.expires_at), ("used_at", &self.used_at)]
            .into_iter()
            .filter_map(|(field, text)| Some((field, text.as_deref()?)))
            .filter(|(_, text)| crate::parse_rfc3339(text).is_none())
            .collect()
    }

    /// How messages name the page or app whose id is `id`: by the name
    /// the user gave it, else by its id.
    pub fn label<'a>(&'a self, id: &'a str) -> &'a str {
        match self.name.is_empty() {
            true => id,
            false => &self.name,
        }
    }

    /// Whether drop runs this page as an app rather than serving files.
    pub fn is_app(&self) -> bool {
        self.kind == PageKind::App
    }

    /// A new stopped app that runs `run_cmd` and listens on `port`.
    pub fn app(source: PathBuf, is_dir: bool, run_cmd: String, port: u16) -> Self {
        Record {
            kind: PageKind::App,
            run_cmd: Some(run_cmd),
            port: Some(port),
            ..Record::static_page(source, is_dir)
        }
    }

    /// Records that the app runs as `pid`, started at `start_time`.
    pub fn mark_running(&mut self, pid: u32, start_time: u64) {
        self.pid = Some(pid);
        self.pid_start_time = Some(start_time);
        self.crashed = false;
        self.exit_code = None;
    }

    /// Records that the app ended: asked to (`crashed` false) or not.
    pub fn mark_ended(&mut self, crashed: bool, exit_code: Option<i32>) {
        self.pid = None;
        self.pid_start_time = None;
        self.crashed = crashed;
        self.exit_code = if crashed { exit_code } else { None };
    }

    /// Forgets the app's tunnel (it is closed).
    pub fn clear_tunnel(&mut self) {
        self.tunnel_url = None;
        self.tunnel_pid = None;
        self.tunnel_start_time = None;
        self.tunnel_state = None;
        self.tunnel_error = None;
        self.tunnel_protocol = None;
        self.tunnel_verified_at = None;
    }

    /// The app's tunnel as a [`TunnelState`], when one is recorded.
    pub fn tunnel(&self) -> Option<TunnelState> {
        let state = self.tunnel_state.clone()?;
        Some(TunnelState {
            url: self.tunnel_url.clone().unwrap_or_default(),
            pid: self.tunnel_pid,
            start_time: self.tunnel_start_time,
            state,
            error: self.tunnel_error.clone(),
            protocol: self.tunnel_protocol.clone(),
            verified_at: self.tunnel_verified_at.clone(),
            ..TunnelState::default()
        })
    }

    /// Records the app's tunnel.
    pub fn set_tunnel(&mut self, tunnel: TunnelState) {
        self.tunnel_url = Some(tunnel.url).filter(|u| !u.is_empty());
        self.tunnel_pid = tunnel.pid;
        self.tunnel_start_time = tunnel.start_time;
        self.tunnel_state = Some(tunnel.state);
        self.tunnel_error = tunnel.error;
        self.tunnel_protocol = tunnel.protocol;
        self.tunnel_verified_at = tunnel.verified_at;
    }

    /// The app's tunnel URL to hand out: while its tunnel is up, or
    /// reconnecting with that URL.
    pub fn current_tunnel_url(&self) -> Option<&str> {
        self.tunnel_state
            .as_ref()
            .filter(|phase| phase.holds_url())
            .and(self.tunnel_url.as_deref())
    }

    /// The folder an app runs in: its source folder, or the folder of its
    /// source file.
    pub fn working_dir(&self) -> PathBuf {
        if self.is_dir {
            self.source.clone()
        } else {
            self.source
                .parent()
                .map_or_else(|| PathBuf::from("/"), std::path::Path::to_path_buf)
        }
    }

    /// Whether a password guards this page.
    pub fn is_protected(&self) -> bool {
        !self.password_hash.is_empty()
    }
}

/// A recorded time as text, whatever JSON another program wrote there: a
/// string as it is, `null` as none, anything else (a number…) as its JSON
/// text, which reads as no time and so fails closed (SECURITY.md §4)
/// rather than making the whole registry unreadable.
fn time_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => None,
        Value::String(text) => Some(text),
        other => Some(other.to_string()),
    })
}

/// [`time_text`] for a time every record has.
fn time_text_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(time_text(d)?.unwrap_or_default())
}

/// The Python drop wrote `null` for empty values in places.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unknown_fields_through_a_round_trip() {
        let json = r#"{"type":"static","source":"/a","is_dir":false,"future_field":{"x":1}}"#;
        let record: Record = serde_json::from_str(json).unwrap();
        assert_eq!(record.extra["future_field"]["x"], 1);
        let back = serde_json::to_value(&record).unwrap();
        assert_eq!(back["future_field"]["x"], 1);
    }

    /// An end or a use that does not read as a time fails closed:
    /// expired, used, and named for `list` to flag.
    #[test]
    fn times_that_do_not_read_count_as_expired_and_are_named() {
        let now = std::time::SystemTime::now();
        let mut record = Record::static_page("/a".into(), false);
        assert!(!record.expired(now) && record.unreadable_times().is_empty());
        record.expires_at = Some("2999-01-01T00:00:00Z".into());
        assert!(!record.expired(now) && !record.expiry_unreadable());
        record.expires_at = Some("next tuesday".into());
        record.used_at = Some("".into());
        assert!(record.expired(now) && record.expiry_unreadable());
        assert_eq!(
            record.unreadable_times(),
            vec![("expires_at", "next tuesday"), ("used_at", "")]
        );
    }

    /// A time another program wrote as a number, a boolean or an object
    /// reads as a time that does not read (failing closed), not as a
    /// registry that does not parse, and is written back as its text.
    #[test]
    fn times_of_any_json_type_read_as_text_and_fail_closed() {
        let json = r#"{"source":"/a","expires_at":12345,"used_at":true,
            "created_at":{"at":1},"first_opened_at":[1],"last_opened_at":null}"#;
        let record: Record = serde_json::from_str(json).unwrap();
        let now = std::time::SystemTime::now();
        assert!(record.expired(now) && !record.end_reached(now));
        assert_eq!(
            record.unreadable_times(),
            vec![("expires_at", "12345"), ("used_at", "true")]
        );
        assert_eq!(record.created_at, r#"{"at":1}"#);
        assert_eq!(record.last_opened_at, None);
        let back = serde_json::to_value(&record).unwrap();
        assert_eq!(back["expires_at"], "12345");
        assert_eq!(back["first_opened_at"], "[1]");
    }

    #[test]
    fn reads_nulls_and_missing_fields_as_empty() {
        let json = r#"{"source":"/a","name":null,"password_hash":null,"port":null}"#;
        let record: Record = serde_json::from_str(json).unwrap();
        assert_eq!(record.kind, PageKind::Static);
        assert!(record.name.is_empty() && !record.is_protected());
        assert_eq!(record.port, None);
    }
}
