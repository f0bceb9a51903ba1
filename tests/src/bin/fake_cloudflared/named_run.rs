//! The fake's `tunnel run`: a named tunnel, from its credentials, serving
//! the ingress rules of its config file.
//!
//! As cloudflared does (`cmd/cloudflared/tunnel/subcommands.go`,
//! `subcommand_context.go`, `credential_finder.go`, `ingress/ingress.go`,
//! `supervisor/`): the tunnel is the argument after `run` or the config's
//! `tunnel:`; a UUID is used as it is, a name looked up; `--token` (or
//! `TUNNEL_TOKEN`) replaces both, and one that does not decode is a usage
//! error; the credentials file is `--credentials-file` (flag, variable or
//! config), else `<id>.json` beside the certificate or in cloudflared's
//! folders; missing, it ends the run with `Tunnel credentials file '…'
//! doesn't exist or is not a file`, exit 1. The last ingress rule must
//! match everything. Then `Starting tunnel tunnelID=…`, the usual start
//! lines and metrics (`/ready`, and `/config` with the ingress rules), and
//! four connections registered. A tunnel the account does not have (never
//! created, or deleted, perhaps from the dashboard, even while it runs) is
//! refused by the edge at every registration, `Unauthorized: Failed to get
//! tunnel` (`Unauthorized: Invalid tunnel secret` for credentials of
//! another secret), and cloudflared retries forever. With UDP blocked,
//! QUIC fails once and the tunnel switches to HTTP/2 by itself, unless
//! `--protocol quic` was asked for.
//!
//! It records `{"pid":…,"tunnel":…,"ingress":[{"hostname":…,"service":…}]}`
//! once the config is read (the catch-all rule's hostname is `""`; a rule
//! with `originRequest: {httpHostHeader: …}` has `"httpHostHeader"` too), and
//! `{"pid":…,"connected":<protocol>}` once registered.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use super::manage::{self, resolve, usage_error};
use super::{
    EDGE_IP, Flags, State, Subcommand, Transport, account, bare, bind_metrics, knob, knob_ms, log,
    prechecks, record, retry_quic_forever, serve_metrics, sleep_ms, until_signalled, uuid,
};

/// Where the edge's four connections land.
const LOCATIONS: [&str; 4] = ["sjc08", "lax01", "sjc07", "lax05"];

/// The config file, as far as the commands of named tunnels read it.
#[derive(Debug, Default)]
pub(super) struct ConfigFile {
    path: String,
    /// Top-level `key: value` settings.
    values: BTreeMap<String, String>,
    /// The `ingress:` rules, each its `key: value` pairs.
    ingress: Vec<BTreeMap<String, String>>,
}

impl ConfigFile {
    /// `tunnel`'s flags with the config's values applied as altsrc applies
    /// them: where neither the command line nor a variable set them. Only
    /// `origincert` matters to the fake.
    pub(super) fn applied_to(&self, mut flags: Flags) -> Flags {
        if !flags.values.contains_key("origincert")
            && let Some(path) = self.values.get("origincert")
        {
            flags.values.insert("origincert", path.clone());
        }
        flags
    }
}

/// Runs a named tunnel with its config file; its exit code.
pub(super) async fn run(flags: &Flags, sub: &Subcommand, config: ConfigFile) -> u8 {
    if sub.args.len() > 1 {
        return usage_error(
            "\"cloudflared tunnel run\" accepts only one argument, the ID or name of the tunnel to run.",
            "run",
        );
    }
    let credentials = match credentials_of(flags, sub, &config) {
        Ok(credentials) => credentials,
        Err(code) => return code,
    };
    let id = credentials["TunnelID"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    log("INF", &format!("Starting tunnel tunnelID={id}"));
    let rules = match ingress_rules(&config) {
        Ok(rules) => rules,
        Err(e) => {
            log("ERR", &format!("Couldn't start tunnel error=\"{e}\""));
            return bare(&e);
        }
    };
    record(&json!({ "pid": std::process::id(), "tunnel": id, "ingress": rules }));
    if knob("FAKE_CLOUDFLARED_CHILD").is_some() {
        super::start_child();
    }
    if let Some(secs) = knob("FAKE_CLOUDFLARED_EXIT_AFTER_SECS").and_then(|s| s.parse::<f64>().ok())
    {
        tokio::spawn(super::exit_after(Duration::from_secs_f64(secs)));
    }
    let protocol = resolve(flags, sub, "protocol").unwrap_or_else(|| "auto".into());
    let state = Arc::new(State {
        hostname: String::new(),
        connector: uuid(),
        config: Some(config_json(&rules)),
        ready: AtomicBool::new(false),
        connected: AtomicBool::new(false),
    });
    start_lines(flags, sub, &config, &state, &protocol);
    if knob("FAKE_CLOUDFLARED_NO_METRICS").is_none() {
        let requested = flags.get("metrics").unwrap_or("localhost:0");
        let Some(listener) = bind_metrics(requested).await else {
            return bare(&format!(
                "Error opening metrics server listener: failed to bind to address ({requested})"
            ));
        };
        let addr = listener.local_addr().expect("bound address");
        log("INF", &format!("Starting metrics server on {addr}/metrics"));
        tokio::spawn(serve_metrics(listener, state.clone()));
    }
    let udp_blocked = knob("FAKE_CLOUDFLARED_UDP").as_deref() == Some("blocked");
    if !flags.is_true("no-prechecks") {
        let transport = match protocol.as_str() {
            "http2" => Transport::Http2,
            _ => Transport::Quic,
        };
        tokio::spawn(prechecks((udp_blocked, false), transport));
    }
    let edge = connect(&state, &credentials, &protocol, udp_blocked);
    tokio::select! {
        () = edge => unreachable!("the edge never ends"),
        code = until_signalled(&state, flags) => code,
    }
}

/// `--config`, read: a missing file ends the command (exit 1).
pub(super) fn read_config_file(flags: &Flags) -> Result<ConfigFile, u8> {
    let Some(path) = flags.get("config") else {
        return Ok(ConfigFile::default());
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return Err(bare(&format!("open {path}: no such file or directory")));
    };
    let mut config = parse_config(&text);
    config.path = path.to_owned();
    if config.values.is_empty() && config.ingress.is_empty() {
        log("ERR", &format!("Configuration file {path} was empty"));
    }
    Ok(config)
}

/// The YAML a config file holds, as far as `key: value` lines and the
/// `ingress:` list of such go (what drop-tunnel writes, and the usual
/// hand-written file); a rule's nested settings are kept as
/// `originRequest.httpHostHeader`, other nested settings are skipped.
fn parse_config(text: &str) -> ConfigFile {
    let mut config = ConfigFile::default();
    let mut in_ingress = false;
    // A rule's key whose settings follow, more indented, and its indent.
    let mut section: Option<(String, usize)> = None;
    for line in text.lines() {
        let content = line.trim_end();
        let trimmed = content.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indented = content.len() != trimmed.len();
        if !indented {
            let (key, value) = split_pair(trimmed);
            in_ingress = key == "ingress" && value.is_empty();
            if !in_ingress {
                config.values.insert(key, value);
            }
            continue;
        }
        if !in_ingress {
            continue;
        }
        let item = trimmed.strip_prefix("- ").map(str::trim_start);
        if let Some(first) = item {
            section = None;
            config.ingress.push(BTreeMap::new());
            let (key, value) = split_pair(first);
            config
                .ingress
                .last_mut()
                .expect("a rule")
                .insert(key, value);
        } else if let Some(rule) = config.ingress.last_mut() {
            let depth = content.len() - trimmed.len();
            let (key, value) = split_pair(trimmed);
            let key = match &section {
                Some((parent, at)) if depth > *at => format!("{parent}.{key}"),
                _ => {
                    section = value.is_empty().then(|| (key.clone(), depth));
                    key
                }
            };
            rule.entry(key).or_insert(value);
        }
    }
    config
}

/// `key: value`, the value unquoted (double quotes as JSON, single quotes
/// as YAML), a trailing comment dropped.
fn split_pair(line: &str) -> (String, String) {
    let (key, value) = line.split_once(':').unwrap_or((line, ""));
    let value = value.trim();
    let value = if value.starts_with('"') {
        serde_json::from_str::<String>(value).unwrap_or_default()
    } else if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        inner.replace("''", "'")
    } else {
        value
            .split(" #")
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    (key.trim().to_owned(), value)
}

/// The tunnel's credentials, found and read as `tunnel run` does; on
/// failure, the exit code after saying why.
fn credentials_of(flags: &Flags, sub: &Subcommand, config: &ConfigFile) -> Result<Value, u8> {
    if let Some(token) = resolve(flags, sub, "token") {
        return from_token(&token)
            .ok_or_else(|| usage_error("Provided Tunnel token is not valid.", "run"));
    }
    let reference = sub
        .args
        .first()
        .cloned()
        .or_else(|| config.values.get("tunnel").cloned())
        .filter(|r| !r.is_empty());
    let Some(reference) = reference else {
        return Err(usage_error(
            "\"cloudflared tunnel run\" requires the ID or name of the tunnel to run as the last command line argument or in the configuration file.",
            "run",
        ));
    };
    let with_config = with_config_credentials(sub, config);
    let id = manage::find_id(flags, &with_config, &reference)
        .map_err(|e| bare(&format!("error parsing tunnel ID: {e}")))?;
    if let Some(contents) = resolve(flags, sub, "credentials-contents") {
        return parse_credentials(&contents, "TUNNEL_CRED_CONTENTS", &id);
    }
    let path = match resolve(flags, &with_config, "credentials-file") {
        Some(given) => {
            let path = account::expand(&given);
            if !path.is_file() {
                return Err(bare(&format!(
                    "Tunnel credentials file '{}' doesn't exist or is not a file",
                    path.display()
                )));
            }
            path
        }
        None => match manage::credentials_path(flags, &with_config, &id) {
            Some(path) => path,
            None => return Err(bare("tunnel credentials file not found")),
        },
    };
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    if path.extension().is_some_and(|e| e == "pem") && serde_json::from_str::<Value>(&text).is_err()
    {
        return Err(bare(
            "The tunnel credentials file should be .json but you gave a .pem. The tunnel credentials file was originally created by `cloudflared tunnel create`. You may have accidentally used the filepath to cert.pem, which is generated by `cloudflared tunnel login`.",
        ));
    }
    parse_credentials(&text, &path.to_string_lossy(), &id)
}

/// `run`'s flags with the config's `credentials-file` applied as altsrc
/// applies it: when neither its command line nor its variable set it.
fn with_config_credentials(sub: &Subcommand, config: &ConfigFile) -> Subcommand {
    let mut flags = sub.flags.clone();
    let from_config = ["credentials-file", "cred-file"]
        .iter()
        .find_map(|key| config.values.get(*key));
    if !flags.values.contains_key("credentials-file")
        && let Some(path) = from_config
    {
        flags.values.insert("credentials-file", path.clone());
    }
    Subcommand {
        name: sub.name,
        specs: sub.specs,
        flags,
        args: sub.args.clone(),
    }
}

/// Credentials JSON, with the id resolved before (old files have none);
/// invalid JSON is reported as cloudflared reports it.
fn parse_credentials(text: &str, path: &str, id: &str) -> Result<Value, u8> {
    match serde_json::from_str::<Value>(text) {
        Ok(mut credentials) if credentials.is_object() => {
            credentials["TunnelID"] = json!(id);
            Ok(credentials)
        }
        Ok(_) | Err(_) => {
            let why = serde_json::from_str::<Value>(text)
                .err()
                .map_or("json: cannot unmarshal into Go value".into(), |e| {
                    e.to_string()
                });
            log(
                "ERR",
                &format!(
                    "The credentials file at {path} contained invalid JSON. This is probably caused by passing the wrong filepath. Reminder: the credentials file is a .json file created via `cloudflared tunnel create`."
                ),
            );
            log(
                "ERR",
                &format!("Invalid JSON when parsing credentials file: {why}"),
            );
            Err(bare("Invalid JSON when parsing tunnel credentials file"))
        }
    }
}

/// A `--token`: base64 of `{"a","s","t"}`.
fn from_token(token: &str) -> Option<Value> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let token: Value = serde_json::from_slice(&bytes).ok()?;
    Some(json!({
        "AccountTag": token["a"].as_str()?,
        "TunnelSecret": token["s"].as_str()?,
        "TunnelID": token["t"].as_str()?,
        "Endpoint": "",
    }))
}

/// The config's ingress rules, checked as `ingress.validateIngress` does.
fn ingress_rules(config: &ConfigFile) -> Result<Vec<Value>, String> {
    let rules: Vec<Value> = config
        .ingress
        .iter()
        .map(|rule| {
            let field = |k: &str| rule.get(k).cloned().unwrap_or_default();
            let mut json = json!({ "hostname": field("hostname"), "service": field("service") });
            if let Some(host) = rule.get("originRequest.httpHostHeader") {
                json["httpHostHeader"] = json!(host);
            }
            json
        })
        .collect();
    for (at, rule) in rules.iter().enumerate() {
        let hostname = rule["hostname"].as_str().unwrap_or_default();
        if hostname.contains(':') {
            return Err("Hostname cannot contain a port".into());
        }
        let stars = hostname.matches('*').count();
        if stars > 1 || (stars == 1 && !hostname.starts_with("*.")) {
            return Err("Hostname patterns can have at most one wildcard character (\"*\") and it can only be used for subdomains, e.g. \"*.example.com\"".into());
        }
        let last = at + 1 == rules.len();
        if last && !hostname.is_empty() && hostname != "*" {
            return Err("The last ingress rule must match all URLs (i.e. it should not have a hostname or path filter)".into());
        }
    }
    if rules.is_empty() {
        log(
            "WRN",
            "No ingress rules were defined in provided config (if any) nor from the cli, cloudflared will return 503 for all incoming HTTP requests",
        );
    }
    Ok(rules)
}

/// What `/config` serves: the orchestrator's versioned configuration.
fn config_json(rules: &[Value]) -> String {
    let ingress: Vec<Value> = rules
        .iter()
        .map(|rule| {
            let origin_request = match rule.get("httpHostHeader") {
                Some(host) => json!({ "httpHostHeader": host }),
                None => json!({}),
            };
            json!({
                "hostname": rule["hostname"], "path": null, "service": rule["service"],
                "Handlers": null, "originRequest": origin_request,
            })
        })
        .collect();
    json!({
        "version": -1,
        "config": { "ingress": ingress, "warp-routing": { "connectTimeout": 0, "maxActiveFlows": 0, "tcpKeepAlive": 0 }, "originRequest": {} },
    })
    .to_string()
}

/// The lines between `Starting tunnel` and the metrics server.
fn start_lines(
    flags: &Flags,
    sub: &Subcommand,
    config: &ConfigFile,
    state: &State,
    protocol: &str,
) {
    if config.path.is_empty() {
        log("INF", super::NO_CONFIG);
    }
    log(
        "INF",
        "Version 2026.8.2 (Checksum 4f1c9a0e5b7d3c2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a)",
    );
    log("INF", "GOOS: linux, GOVersion: go1.26.4, GoArch: amd64");
    let mut settings = flags.settings.clone();
    settings.extend(sub.flags.settings.clone());
    for key in ["credentials-file", "cred-file"] {
        if let Some(path) = ["credentials-file", "cred-file"]
            .iter()
            .find_map(|k| config.values.get(*k))
        {
            settings.entry(key.into()).or_insert_with(|| path.clone());
        }
    }
    let map: Vec<String> = settings.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    log("INF", &format!("Settings: map[{}]", map.join(" ")));
    log(
        "INF",
        &format!("Generated Connector ID: {}", state.connector),
    );
    let initial = if protocol == "http2" { "http2" } else { "quic" };
    log("INF", &format!("Initial protocol {initial}"));
    log("INF", "ICMP proxy will use 10.0.0.5 as source for IPv4");
    log(
        "INF",
        "ICMP proxy will use fe80::1 in zone eth0 as source for IPv6",
    );
}

/// What the edge says to these credentials now.
fn edge_refusal(credentials: &Value) -> Option<&'static str> {
    let id = credentials["TunnelID"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let secret = credentials["TunnelSecret"].clone();
    let account_tag = credentials["AccountTag"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    account::with_account(|account| {
        let same_account = account["account_id"]
            .as_str()
            .is_none_or(|a| a == account_tag);
        let tunnel = account::tunnels(account)
            .iter()
            .find(|t| t["id"] == id.as_str() && !account::is_deleted(t));
        match tunnel {
            Some(tunnel) if same_account && tunnel["secret"] == secret => None,
            Some(_) if same_account => Some("Unauthorized: Invalid tunnel secret"),
            _ => Some("Unauthorized: Failed to get tunnel"),
        }
    })
}

/// The edge, forever: refused while the account refuses the tunnel, else
/// four connections registered; refused again if the tunnel is deleted
/// meanwhile.
async fn connect(state: &State, credentials: &Value, protocol: &str, udp_blocked: bool) {
    let fields = format!("connIndex=0 event=0 ip={EDGE_IP}");
    log("INF", &super::curve_line());
    refused_while(credentials, &fields).await;
    let mut transport = match protocol {
        "http2" => Transport::Http2,
        _ => Transport::Quic,
    };
    if udp_blocked && transport == Transport::Quic {
        if protocol == "quic" {
            retry_quic_forever().await;
        }
        log(
            "ERR",
            &format!(
                "Failed to dial a quic connection error=\"failed to dial to edge with quic: timeout: no recent network activity\" {fields}"
            ),
        );
        log("INF", &format!("Retrying connection in up to 2s {fields}"));
        log(
            "WRN",
            &format!(
                "If this log occurs persistently, and cloudflared is unable to connect to Cloudflare Network with `quic` protocol, then most likely your machine/network is getting its egress UDP to port 7844 (or others) blocked or dropped. {fields}"
            ),
        );
        log(
            "INF",
            &format!("Switching to fallback protocol http2 {fields}"),
        );
        transport = Transport::Http2;
    }
    tokio::time::sleep(super::timing::register_delay()).await;
    for (index, location) in LOCATIONS.iter().enumerate() {
        log(
            "INF",
            &format!(
                "Registered tunnel connection connIndex={index} connection={} event=0 ip={EDGE_IP} location={location} protocol={}",
                uuid(),
                transport.name()
            ),
        );
        if index == 0 {
            state.ready.store(true, Ordering::SeqCst);
            state.connected.store(true, Ordering::SeqCst);
            record(&json!({
                "pid": std::process::id(), "connected": transport.name(), "at_ms": super::now_ms(),
            }));
        }
    }
    loop {
        sleep_ms(200).await;
        if edge_refusal(credentials).is_some() {
            state.ready.store(false, Ordering::SeqCst);
            log(
                "ERR",
                &format!(
                    "Connection terminated error=\"control stream encountered a failure while serving\" {fields}"
                ),
            );
            refused_while(credentials, &fields).await;
        }
    }
}

/// Logs a registration refusal and a retry, again and again, while the
/// edge refuses the tunnel (forever for a deleted one).
async fn refused_while(credentials: &Value, fields: &str) {
    let mut ceiling = 2u64;
    while let Some(refusal) = edge_refusal(credentials) {
        log(
            "ERR",
            &format!("Register tunnel error from server side error=\"{refusal}\" {fields}"),
        );
        log(
            "INF",
            &format!("Retrying connection in up to {}s {fields}", ceiling),
        );
        sleep_ms(knob_ms("FAKE_CLOUDFLARED_RETRY_MS", 200)).await;
        ceiling = (ceiling * 2).min(64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config drop-tunnel writes and a hand-written one read alike.
    #[test]
    fn reads_the_config_drop_tunnel_writes_and_a_hand_written_one() {
        let text = "# comment\ntunnel: \"6ff4\"\ncredentials-file: '/x/y.json'\nno-autoupdate: true\ningress:\n  - hostname: \"drop.example.com\"\n    service: \"http://127.0.0.1:8080\"\n  - hostname: api.example.com # the API\n    service: http://127.0.0.1:5000\n    originRequest:\n      noTLSVerify: true\n  - service: http_status:404\n";
        let config = parse_config(text);
        assert_eq!(config.values["tunnel"], "6ff4");
        assert_eq!(config.values["credentials-file"], "/x/y.json");
        assert_eq!(config.ingress.len(), 3);
        assert_eq!(config.ingress[1]["hostname"], "api.example.com");
        assert_eq!(config.ingress[1]["originRequest.noTLSVerify"], "true");
        assert!(!config.ingress[1].contains_key("noTLSVerify"));
        assert_eq!(config.ingress[2]["service"], "http_status:404");
        assert!(ingress_rules(&config).is_ok());
    }
}
