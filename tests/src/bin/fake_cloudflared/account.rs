//! The fake's Cloudflare account and its login certificate.
//!
//! The certificate is found and read as cloudflared does
//! (`credentials/origin_cert.go`, `credentials/credentials.go`):
//! `--origincert` or `TUNNEL_ORIGIN_CERT`, else `cert.pem` in
//! `~/.cloudflared`, `~/.cloudflare-warp`, `~/cloudflare-warp`,
//! `/etc/cloudflared`, `/usr/local/etc/cloudflared`; a PEM file whose
//! `ARGO TUNNEL TOKEN` block holds JSON `{zoneID, accountID, apiToken,
//! endpoint?}`; each failure logged and worded as there.
//!
//! The account is what Cloudflare's API would hold: its zones (id →
//! domain name, which the certificate does not carry), tunnels and DNS
//! records, in `account.json` under `FAKE_CLOUDFLARED_ACCOUNT` (default
//! `~/.fake-cloudflare-account`), changed under an exclusive lock so fakes
//! running at once share one account:
//! `{"account_id", "api_token", "zones": {id: name}, "tunnels": [{"id",
//! "name", "secret", "created_at", "deleted_at"}], "dns": [{"name", "type",
//! "content"}]}`. A certificate whose account id or API token differ from
//! the account's gets the API's `code: 10000, reason: Authentication
//! error`.
//!
//! With `FAKE_CLOUDFLARED_API=offline` the API cannot be reached: each
//! request fails as cloudflared's REST client fails on a machine whose
//! resolver knows no `api.cloudflare.com` ([`unreachable`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::{Flags, knob, log};

/// cloudflared's folders for `cert.pem` and credentials, `~` unexpanded.
pub(super) const SEARCH_DIRS: [&str; 5] = [
    "~/.cloudflared",
    "~/.cloudflare-warp",
    "~/cloudflare-warp",
    "/etc/cloudflared",
    "/usr/local/etc/cloudflared",
];
/// Go's zero `time.Time`, as a tunnel never deleted has it.
pub(super) const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
/// The API's answer to a token that is not the account's.
pub(super) const AUTHENTICATION_ERROR: &str = "code: 10000, reason: Authentication error";

/// `~/…` with `HOME`, as go-homedir expands it.
pub(super) fn expand(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(rest),
        None => PathBuf::from(path),
    }
}

/// The certificate path cloudflared would use: the flag or variable,
/// else the first `cert.pem` in its folders, else `""`.
pub(super) fn origin_cert_path(flags: &Flags) -> String {
    if let Some(path) = flags.get("origincert") {
        return path.to_owned();
    }
    SEARCH_DIRS
        .iter()
        .map(|dir| expand(dir).join("cert.pem"))
        .find(|path| path.metadata().is_ok_and(|m| !m.is_dir()))
        .map(|path| path.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A login certificate that decoded.
pub(super) struct Certificate {
    pub(super) path: PathBuf,
    pub(super) zone_id: String,
    pub(super) account_id: String,
    pub(super) api_token: String,
}

/// `credentials.Read`: finds, reads and decodes the certificate, logging
/// as cloudflared does; the error is cloudflared's, wrapped as there.
pub(super) fn read_certificate(path: &str) -> Result<Certificate, String> {
    let path = locate(path).map_err(|e| format!("Error locating origin cert: {e}"))?;
    let shown = path.display();
    let Ok(bytes) = std::fs::read(&path) else {
        return Err(format!(
            "Can't read origin cert from {shown}: cannot read {shown} to load origin certificate"
        ));
    };
    let token = decode(&bytes).map_err(|e| format!("Error decoding origin cert: {e}"))?;
    let field = |name: &str| token[name].as_str().unwrap_or_default().to_owned();
    let certificate = Certificate {
        zone_id: field("zoneID"),
        account_id: field("accountID"),
        api_token: field("apiToken"),
        path: path.clone(),
    };
    if certificate.account_id.is_empty() {
        // A Go raw string: the `\n` is printed as it is.
        return Err(format!(
            "Origin certificate needs to be refreshed before creating new tunnels.\\nDelete {shown} and run \"cloudflared login\" to obtain a new cert."
        ));
    }
    Ok(certificate)
}

/// `credentials.FindOriginCert`.
fn locate(path: &str) -> Result<PathBuf, String> {
    if path.is_empty() {
        let dirs = SEARCH_DIRS.join(" ");
        log(
            "ERR",
            &format!(
                "Cannot determine default origin certificate path. No file cert.pem in [{dirs}]. You need to specify the origin certificate path by specifying the origincert option in the configuration file, or set TUNNEL_ORIGIN_CERT environment variable originCertPath="
            ),
        );
        return Err("client didn't specify origincert path".into());
    }
    let expanded = expand(path);
    if !expanded.metadata().is_ok_and(|m| !m.is_dir()) {
        let shown = expanded.display();
        log(
            "ERR",
            &format!(
                "Cannot find a valid certificate for your origin at the path:\n\n    {shown}\n\nIf the path above is wrong, specify the path with the -origincert option.\nIf you don't have a certificate signed by Cloudflare, run the command:\n\n\tcloudflared login\n originCertPath={path}"
            ),
        );
        return Err(format!(
            "cannot find a valid certificate at the path {shown}"
        ));
    }
    Ok(expanded)
}

/// `decodeOriginCert`: the JSON of the one `ARGO TUNNEL TOKEN` block;
/// the legacy key and certificate blocks are skipped.
fn decode(bytes: &[u8]) -> Result<Value, String> {
    if bytes.is_empty() {
        return Err("cannot decode empty certificate".into());
    }
    let text = String::from_utf8_lossy(bytes);
    let mut token: Option<Value> = None;
    for (kind, body) in pem_blocks(&text) {
        match kind.as_str() {
            "PRIVATE KEY" | "CERTIFICATE" => {}
            "ARGO TUNNEL TOKEN" => {
                if token.is_some() {
                    return Err("found multiple tokens in the certificate".into());
                }
                token = Some(serde_json::from_slice(&body).unwrap_or(Value::Null));
            }
            other => return Err(format!("unknown block {other} in the certificate")),
        }
    }
    let token = token.unwrap_or(Value::Null);
    let present = |name: &str| token[name].as_str().is_some_and(|v| !v.is_empty());
    if !present("zoneID") || !present("apiToken") {
        return Err("missing token in the certificate".into());
    }
    Ok(token)
}

/// The blocks of a PEM text: their type and decoded bytes.
fn pem_blocks(text: &str) -> Vec<(String, Vec<u8>)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines().map(str::trim) {
        if let Some(kind) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            current = Some((kind.to_owned(), String::new()));
        } else if line.starts_with("-----END ") {
            if let Some((kind, body)) = current.take()
                && let Ok(bytes) = STANDARD.decode(body)
            {
                blocks.push((kind, bytes));
            }
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
        }
    }
    blocks
}

/// The account's folder.
fn account_dir() -> PathBuf {
    knob("FAKE_CLOUDFLARED_ACCOUNT")
        .map(PathBuf::from)
        .unwrap_or_else(|| expand("~/.fake-cloudflare-account"))
}

/// The error of a `method` request to the API's `path` (after
/// `/client/v4/`) when `FAKE_CLOUDFLARED_API=offline`, as cloudflared's
/// REST client words it; `None` when the API answers.
pub(super) fn unreachable(method: &str, path: &str) -> Option<String> {
    (knob("FAKE_CLOUDFLARED_API").as_deref() == Some("offline")).then(|| {
        format!(
            "REST request failed: {method} \"https://api.cloudflare.com/client/v4/{path}\": dial tcp: lookup api.cloudflare.com on 127.0.0.53:53: no such host"
        )
    })
}

/// Reads the account, lets `change` see and change it, and writes it
/// back, all under an exclusive lock.
pub(super) fn with_account<T>(change: impl FnOnce(&mut Value) -> T) -> T {
    drop_tests::tunnel::with_account_in(&account_dir(), change)
}

/// The API's check of a certificate against the account: `Err` with the
/// API's words when its account id or token are not the account's.
pub(super) fn authenticate(certificate: &Certificate, account: &Value) -> Result<(), String> {
    let matches = |key: &str, value: &str| account[key].as_str().is_none_or(|v| v == value);
    match matches("account_id", &certificate.account_id)
        && matches("api_token", &certificate.api_token)
    {
        true => Ok(()),
        false => Err(AUTHENTICATION_ERROR.into()),
    }
}

/// The account's tunnels, deleted ones too.
pub(super) fn tunnels(account: &mut Value) -> &mut Vec<Value> {
    if !account["tunnels"].is_array() {
        account["tunnels"] = json!([]);
    }
    account["tunnels"].as_array_mut().expect("an array")
}

/// Whether a tunnel record is deleted.
pub(super) fn is_deleted(tunnel: &Value) -> bool {
    tunnel["deleted_at"]
        .as_str()
        .is_some_and(|at| at != ZERO_TIME)
}

/// A tunnel as `cfapi.Tunnel` marshals it: its fields in the struct's
/// order.
pub(super) fn rendered(tunnel: &Value) -> Vec<(&'static str, Value)> {
    vec![
        ("id", tunnel["id"].clone()),
        ("name", tunnel["name"].clone()),
        ("created_at", tunnel["created_at"].clone()),
        (
            "deleted_at",
            json!(tunnel["deleted_at"].as_str().unwrap_or(ZERO_TIME)),
        ),
        ("connections", json!([])),
    ]
}

/// The credentials `connection.Credentials` marshals to for `tunnel`.
pub(super) fn credentials(account_id: &str, tunnel: &Value) -> Value {
    json!({
        "AccountTag": account_id,
        "TunnelSecret": tunnel["secret"],
        "TunnelID": tunnel["id"],
        "Endpoint": "",
    })
}

/// Writes credentials as cloudflared does: refusing an existing file,
/// owner-read-only.
pub(super) fn write_credentials(path: &Path, credentials: &Value) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    if path.exists() {
        return Err(format!("{} already exists", path.display()));
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(path)
        .map_err(|e| format!("open {}: {e}", path.display()))?;
    file.write_all(credentials.to_string().as_bytes())
        .map_err(|e| e.to_string())
}

/// A tunnel secret: 32 random bytes, base64 as Go marshals `[]byte`.
pub(super) fn new_secret() -> String {
    let bytes: Vec<u8> = (0..4).flat_map(|_| super::random().to_le_bytes()).collect();
    STANDARD.encode(bytes)
}
