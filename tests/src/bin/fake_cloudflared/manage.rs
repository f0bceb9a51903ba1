//! The fake's commands that manage named tunnels: `create`, `list`,
//! `route dns`, `delete`, `token` (and `login`, which it cannot do).
//!
//! Each follows cloudflared's source for its arguments, output and exit
//! code (`cmd/cloudflared/tunnel/subcommands.go`,
//! `subcommand_context.go`, `cfapi/`): results on stdout (`--output json`
//! indented by two spaces, an empty list `null`), log lines on stderr, a
//! failure's error printed last on stderr with exit 1, a usage error with
//! `See 'cloudflared tunnel <cmd> --help'.` and exit 255.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::account::{self, Certificate, ZERO_TIME};
use super::{FlagSpec, Flags, Kind, Subcommand, bare, log, uuid};

const CREATE: &[FlagSpec] = &[
    FlagSpec {
        names: &["output", "o"],
        env: None,
        kind: Kind::Text,
    },
    FlagSpec {
        names: &["credentials-file", "cred-file"],
        env: Some("TUNNEL_CRED_FILE"),
        kind: Kind::Text,
    },
    FlagSpec {
        names: &["secret", "s"],
        env: Some("TUNNEL_CREATE_SECRET"),
        kind: Kind::Text,
    },
];
const LIST: &[FlagSpec] = &[
    FlagSpec {
        names: &["output", "o"],
        env: None,
        kind: Kind::Text,
    },
    FlagSpec {
        names: &["show-deleted", "d"],
        env: None,
        kind: Kind::Bool,
    },
    FlagSpec {
        names: &["name", "n"],
        env: None,
        kind: Kind::Text,
    },
];
const ROUTE_DNS: &[FlagSpec] = &[FlagSpec {
    names: &["overwrite-dns", "f"],
    env: Some("TUNNEL_FORCE_PROVISIONING_DNS"),
    kind: Kind::Bool,
}];
const RUN: &[FlagSpec] = &[
    FlagSpec {
        names: &["credentials-file", "cred-file"],
        env: Some("TUNNEL_CRED_FILE"),
        kind: Kind::Text,
    },
    FlagSpec {
        names: &["credentials-contents"],
        env: Some("TUNNEL_CRED_CONTENTS"),
        kind: Kind::Text,
    },
    FlagSpec {
        names: &["token"],
        env: Some("TUNNEL_TOKEN"),
        kind: Kind::Text,
    },
    FlagSpec {
        names: &["protocol", "p"],
        env: Some("TUNNEL_TRANSPORT_PROTOCOL"),
        kind: Kind::Text,
    },
];
const DELETE: &[FlagSpec] = &[
    FlagSpec {
        names: &["credentials-file", "cred-file"],
        env: Some("TUNNEL_CRED_FILE"),
        kind: Kind::Text,
    },
    FlagSpec {
        names: &["force", "f"],
        env: Some("TUNNEL_RUN_FORCE_OVERWRITE"),
        kind: Kind::Bool,
    },
];
const TOKEN: &[FlagSpec] = &[FlagSpec {
    names: &["credentials-file", "cred-file"],
    env: Some("TUNNEL_CRED_FILE"),
    kind: Kind::Text,
}];

/// The subcommands of `tunnel` the fake knows, with their flags.
pub(super) const SUBCOMMANDS: &[(&str, &[FlagSpec])] = &[
    ("create", CREATE),
    ("list", LIST),
    ("route dns", ROUTE_DNS),
    ("run", RUN),
    ("delete", DELETE),
    ("token", TOKEN),
    ("login", &[]),
];

/// The flags of subcommand `name`.
pub(super) fn flags_of(name: &str) -> &'static [FlagSpec] {
    SUBCOMMANDS
        .iter()
        .find(|(known, _)| *known == name)
        .map_or(&[], |(_, specs)| specs)
}

/// Runs a subcommand other than `run`; its exit code.
pub(super) fn run(flags: &Flags, sub: &Subcommand) -> u8 {
    match sub.name {
        "create" => create(flags, sub),
        "list" => list(flags, sub),
        "route dns" => route_dns(flags, sub),
        "delete" => delete(flags, sub),
        "token" => token(flags, sub),
        _ => bare(
            "fake cloudflared: `tunnel login` opens a browser; write the cert.pem it would write instead",
        ),
    }
}

/// `cliutil.UsageError` as `WithErrorHandler` reports it: exit -1 (255).
pub(super) fn usage_error(message: &str, command: &str) -> u8 {
    eprintln!("{message}\nSee 'cloudflared tunnel {command} --help'.");
    255
}

/// A flag of the subcommand, else of `tunnel` (`--credentials-file` is
/// both), the most specific command line first (urfave/cli's
/// `resolveFlagDeep`).
pub(super) fn resolve(flags: &Flags, sub: &Subcommand, name: &str) -> Option<String> {
    let defined_here = sub.specs.iter().any(|spec| spec.names[0] == name);
    let value = match () {
        _ if sub.flags.on_command_line(name) => sub.flags.get(name),
        _ if flags.on_command_line(name) => flags.get(name),
        _ if defined_here => sub.flags.get(name),
        _ => flags.get(name),
    };
    value.map(str::to_owned)
}

/// `sc.client()`: the certificate, read as cloudflared reads it.
fn client(flags: &Flags) -> Result<Certificate, String> {
    account::read_certificate(&account::origin_cert_path(flags))
}

/// `tunnel create NAME`.
fn create(flags: &Flags, sub: &Subcommand) -> u8 {
    if sub.args.len() != 1 {
        return usage_error(
            "\"cloudflared tunnel create\" requires exactly 1 argument, the name of tunnel to create.",
            "create",
        );
    }
    let name = &sub.args[0];
    let failed = |e: String| bare(&format!("failed to create tunnel: {e}"));
    let certificate = match client(flags) {
        Ok(certificate) => certificate,
        Err(e) => {
            return failed(format!(
                "couldn't create client to talk to Cloudflare Tunnel backend: {e}"
            ));
        }
    };
    let secret = match sub.flags.get("secret") {
        None => account::new_secret(),
        Some(given) => {
            use base64::Engine;
            match base64::engine::general_purpose::STANDARD.decode(given) {
                Err(_) => return failed("Couldn't decode tunnel secret from base64".into()),
                Ok(bytes) if bytes.len() < 32 => {
                    return failed("Decoded tunnel secret must be at least 32 bytes long".into());
                }
                Ok(_) => given.to_owned(),
            }
        }
    };
    let path = format!("accounts/{}/cfd_tunnel", certificate.account_id);
    if let Some(e) = account::unreachable("Post", &path) {
        return failed(format!("Create Tunnel API call failed: {e}"));
    }
    let created = account::with_account(|account| create_in(account, &certificate, name, secret));
    let tunnel = match created {
        Ok(tunnel) => tunnel,
        Err(e) => return failed(format!("Create Tunnel API call failed: {e}")),
    };
    let id = tunnel["id"].as_str().unwrap_or_default().to_owned();
    let (path, chosen) = match resolve(flags, sub, "credentials-file") {
        Some(path) => (account::expand(&path), false),
        None => (
            folder_of(&certificate.path).join(format!("{id}.json")),
            true,
        ),
    };
    let credentials = account::credentials(&certificate.account_id, &tunnel);
    if let Err(e) = account::write_credentials(&path, &credentials) {
        account::with_account(|account| {
            account::tunnels(account).retain(|t| t["id"] != id.as_str());
        });
        return failed(format!(
            "Your tunnel '{name}' was created with ID {id}. However, cloudflared couldn't write tunnel credentials to {}.\nThe file-writing error is: {e}\nThe tunnel was deleted, because the tunnel can't be run without the credentials file",
            path.display()
        ));
    }
    if sub.flags.get("output") == Some("json") {
        let mut shown = account::rendered(&tunnel);
        shown.push(("token", json!(token_of(&certificate.account_id, &tunnel))));
        println!("{}", object_text(&shown, ""));
        return 0;
    }
    let mut said = format!("Tunnel credentials written to {}.", path.display());
    if chosen {
        said += " cloudflared chose this file based on where your origin certificate was found.";
    }
    println!("{said} Keep this file secret. To revoke these credentials, delete the tunnel.");
    println!("\nCreated tunnel {name} with id {id}");
    0
}

/// `client.CreateTunnel`: a new tunnel, unless the name is taken.
fn create_in(
    account: &mut Value,
    certificate: &Certificate,
    name: &str,
    secret: String,
) -> Result<Value, String> {
    if name.is_empty() {
        return Err("tunnel name required".into());
    }
    if is_uuid(name) {
        return Err("you cannot use UUIDs as tunnel names".into());
    }
    account::authenticate(certificate, account)
        .map_err(|e| format!("Failed to create tunnel: {e}"))?;
    let tunnels = account::tunnels(account);
    if tunnels
        .iter()
        .any(|t| t["name"] == name && !account::is_deleted(t))
    {
        return Err("tunnel with name already exists".into());
    }
    let tunnel = json!({
        "id": uuid(),
        "name": name,
        "secret": secret,
        "created_at": drop_registry::now_rfc3339(),
        "deleted_at": ZERO_TIME,
    });
    tunnels.push(tunnel.clone());
    Ok(tunnel)
}

/// `tunnel list`.
fn list(flags: &Flags, sub: &Subcommand) -> u8 {
    let certificate = match client(flags) {
        Ok(certificate) => certificate,
        Err(e) => return bare(&e),
    };
    if let Some(e) = account::unreachable("Get", &list_path(&certificate, sub.flags.get("name"))) {
        return bare(&format!("Error Parsing page 1: REST request failed: {e}"));
    }
    let listed = account::with_account(|account| {
        account::authenticate(&certificate, account).map_err(|e| {
            format!("Error Parsing page 1: REST request failed: Failed to list tunnels: {e}")
        })?;
        let mut found: Vec<Value> = account::tunnels(account)
            .iter()
            .filter(|t| sub.flags.is_true("show-deleted") || !account::is_deleted(t))
            .filter(|t| sub.flags.get("name").is_none_or(|n| t["name"] == n))
            .cloned()
            .collect();
        found.sort_by_key(|t| t["name"].as_str().unwrap_or_default().to_owned());
        Ok::<_, String>(found)
    });
    let tunnels = match listed {
        Ok(tunnels) => tunnels,
        Err(e) => return bare(&e),
    };
    match sub.flags.get("output") {
        Some("json") if tunnels.is_empty() => println!("null"),
        Some("json") => {
            let objects: Vec<String> = tunnels
                .iter()
                .map(|t| format!("  {}", object_text(&account::rendered(t), "  ")))
                .collect();
            println!("[\n{}\n]", objects.join(",\n"));
        }
        Some(other) => return bare(&format!("Unknown output format '{other}'")),
        None if tunnels.is_empty() => println!(
            "No tunnels were found for the given filter flags. You can use 'cloudflared tunnel create' to create a tunnel."
        ),
        None => {
            println!(
                "You can obtain more detailed information for each tunnel with `cloudflared tunnel info <name/uuid>`"
            );
            println!("ID                                   NAME CREATED CONNECTIONS ");
            for t in &tunnels {
                let field = |k: &str| t[k].as_str().unwrap_or_default().to_owned();
                println!("{} {} {} ", field("id"), field("name"), field("created_at"));
            }
        }
    }
    0
}

/// The API's path for listing tunnels (`name`: of that name only).
fn list_path(certificate: &Certificate, name: Option<&str>) -> String {
    let name = name.map(|n| format!("&name={n}")).unwrap_or_default();
    format!(
        "accounts/{}/cfd_tunnel?is_deleted=false{name}&page=1",
        certificate.account_id
    )
}

/// `tunnel route dns TUNNEL HOSTNAME`: a CNAME to `<id>.cfargotunnel.com`
/// in the certificate's zone. A hostname outside the zone gets the zone
/// appended, as the API does; a name with another A, AAAA or CNAME record
/// is refused with code 1003 unless `--overwrite-dns`.
fn route_dns(flags: &Flags, sub: &Subcommand) -> u8 {
    if sub.args.len() != 2 {
        return usage_error(
            "This command expects the format \"cloudflared tunnel route dns <tunnel name/id> <hostname>\"",
            "route dns",
        );
    }
    let id = match find_id(flags, sub, &sub.args[0]) {
        Ok(id) => id,
        Err(e) => return bare(&e),
    };
    let hostname = &sub.args[1];
    if !valid_hostname(hostname) {
        return bare(&format!("{hostname} is not a valid hostname"));
    }
    let certificate = match client(flags) {
        Ok(certificate) => certificate,
        Err(e) => return bare(&e),
    };
    let path = format!("zones/{}/tunnels/{id}/routes", certificate.zone_id);
    if let Some(e) = account::unreachable("Put", &path) {
        return bare(&e);
    }
    let overwrite = sub.flags.is_true("overwrite-dns");
    let routed =
        account::with_account(|account| add_route(account, &certificate, &id, hostname, overwrite));
    match routed {
        Ok(summary) => {
            log("INF", &format!("{summary} tunnelID={id}"));
            0
        }
        Err(e) => bare(&e),
    }
}

/// `PUT zones/<zone>/tunnels/<id>/routes`, and the summary of its result.
fn add_route(
    account: &mut Value,
    certificate: &Certificate,
    id: &str,
    hostname: &str,
    overwrite: bool,
) -> Result<String, String> {
    account::authenticate(certificate, account).map_err(|e| format!("Failed to add route: {e}"))?;
    let live = account::tunnels(account)
        .iter()
        .any(|t| t["id"] == id && !account::is_deleted(t));
    if !live {
        return Err("not found".into());
    }
    let Some(zone) = account["zones"][&certificate.zone_id].as_str() else {
        return Err(format!(
            "fake cloudflared: account.json names no zone for zone id {}",
            certificate.zone_id
        ));
    };
    let hostname = hostname.to_ascii_lowercase();
    let name = match hostname == zone || hostname.ends_with(&format!(".{zone}")) {
        true => hostname,
        false => format!("{hostname}.{zone}"),
    };
    let target = format!("{id}.cfargotunnel.com");
    if !account["dns"].is_array() {
        account["dns"] = json!([]);
    }
    let records = account["dns"].as_array_mut().expect("an array");
    let existing = records.iter().position(|r| r["name"] == name.as_str());
    match existing {
        Some(at) if records[at]["type"] == "CNAME" && records[at]["content"] == target.as_str() => {
            return Ok(format!(
                "{name} is already configured to route to your tunnel"
            ));
        }
        Some(at) if overwrite => {
            records.remove(at);
        }
        Some(_) => {
            return Err(format!(
                "Failed to add route: code: 1003, reason: Failed to create record {name} with err An A, AAAA, or CNAME record with that host already exists. For more details, refer to <https://developers.cloudflare.com/dns/manage-dns-records/troubleshooting/records-with-same-name/>."
            ));
        }
        None => {}
    }
    records.push(json!({ "name": name, "type": "CNAME", "content": target }));
    Ok(format!(
        "Added CNAME {name} which will route to this tunnel"
    ))
}

/// `tunnel delete TUNNEL…`: each marked deleted, and its credentials file
/// removed where the credential finder finds it.
fn delete(flags: &Flags, sub: &Subcommand) -> u8 {
    if sub.args.is_empty() {
        return usage_error(
            "\"cloudflared tunnel delete\" requires at least 1 argument, the ID or name of the tunnel to delete.",
            "delete",
        );
    }
    let certificate = match client(flags) {
        Ok(certificate) => certificate,
        Err(e) => return bare(&e),
    };
    let mut ids = Vec::new();
    for reference in &sub.args {
        match id_by_name_or_uuid(&certificate, reference) {
            Ok(id) => ids.push(id),
            Err(e) => return bare(&e),
        }
    }
    for id in ids {
        let path = format!("accounts/{}/cfd_tunnel/{id}", certificate.account_id);
        if let Some(e) = account::unreachable("Get", &path) {
            return bare(&format!(
                "Can't get tunnel information. Please check tunnel id: {id}: {e}"
            ));
        }
        let deleted = account::with_account(|account| {
            account::authenticate(&certificate, account).map_err(|e| {
                format!("Can't get tunnel information. Please check tunnel id: {id}: Failed to get tunnel: {e}")
            })?;
            let Some(tunnel) = account::tunnels(account)
                .iter_mut()
                .find(|t| t["id"] == id.as_str())
            else {
                return Err(format!(
                    "Can't get tunnel information. Please check tunnel id: {id}: not found"
                ));
            };
            if account::is_deleted(tunnel) {
                return Err(format!("Tunnel {id} has already been deleted"));
            }
            tunnel["deleted_at"] = json!(drop_registry::now_rfc3339());
            Ok(())
        });
        if let Err(e) = deleted {
            return bare(&e);
        }
        if let Some(path) = credentials_path(flags, sub, &id) {
            let _ = std::fs::remove_file(path);
        }
    }
    0
}

/// `tunnel token [--cred-file PATH] TUNNEL`: the tunnel's token, or its
/// credentials written to PATH.
fn token(flags: &Flags, sub: &Subcommand) -> u8 {
    if sub.args.len() != 1 {
        return usage_error(
            "\"cloudflared tunnel token\" requires exactly 1 argument, the name or UUID of tunnel to fetch the credentials token for.",
            "token",
        );
    }
    let id = match find_id(flags, sub, &sub.args[0]) {
        Ok(id) => id,
        Err(e) => return bare(&format!("error parsing tunnel ID: {e}")),
    };
    let certificate = match client(flags) {
        Ok(certificate) => certificate,
        Err(e) => return bare(&e),
    };
    let path = format!("accounts/{}/cfd_tunnel/{id}/token", certificate.account_id);
    let found = match account::unreachable("Get", &path) {
        Some(e) => Err(e),
        None => fetch_tunnel(&certificate, &id),
    };
    let tunnel = match found {
        Ok(tunnel) => tunnel,
        Err(e) => {
            log(
                "ERR",
                &format!("Could not get the Token for the given Tunnel {id} error={e:?}"),
            );
            return bare(&e);
        }
    };
    match resolve(flags, sub, "credentials-file") {
        Some(path) => {
            let path = account::expand(&path);
            let credentials = account::credentials(&certificate.account_id, &tunnel);
            match account::write_credentials(&path, &credentials) {
                Ok(()) => 0,
                Err(e) => bare(&format!(
                    "error writing token credentials to JSON file in path {}: {e}",
                    path.display()
                )),
            }
        }
        None => {
            println!("{}", token_of(&certificate.account_id, &tunnel));
            0
        }
    }
}

/// The live tunnel `id` of the certificate's account.
fn fetch_tunnel(certificate: &Certificate, id: &str) -> Result<Value, String> {
    account::with_account(|account| {
        account::authenticate(certificate, account)
            .map_err(|e| format!("Failed to get tunnel token: {e}"))?;
        let tunnel = account::tunnels(account)
            .iter()
            .find(|t| t["id"] == id && !account::is_deleted(t))
            .cloned();
        tunnel.ok_or_else(|| "not found".to_owned())
    })
}

/// `sc.findID`: a UUID as it is, else the id in `--credentials-file`,
/// else the live tunnel of that name.
pub(super) fn find_id(flags: &Flags, sub: &Subcommand, reference: &str) -> Result<String, String> {
    if is_uuid(reference) {
        return Ok(reference.to_ascii_lowercase());
    }
    if let Some(path) = resolve(flags, sub, "credentials-file")
        && let Ok(text) = std::fs::read_to_string(account::expand(&path))
        && let Ok(credentials) = serde_json::from_str::<Value>(&text)
        && let Some(id) = credentials["TunnelID"].as_str()
    {
        return Ok(id.to_owned());
    }
    let certificate = client(flags)?;
    id_by_name_or_uuid(&certificate, reference)
}

/// A UUID, or the id of the one live tunnel with that name.
fn id_by_name_or_uuid(certificate: &Certificate, reference: &str) -> Result<String, String> {
    if is_uuid(reference) {
        return Ok(reference.to_ascii_lowercase());
    }
    if let Some(e) = account::unreachable("Get", &list_path(certificate, Some(reference))) {
        return Err(format!("Error Parsing page 1: REST request failed: {e}"));
    }
    account::with_account(|account| {
        account::authenticate(certificate, account).map_err(|e| {
            format!("Error Parsing page 1: REST request failed: Failed to list tunnels: {e}")
        })?;
        account::tunnels(account)
            .iter()
            .find(|t| t["name"] == reference && !account::is_deleted(t))
            .and_then(|t| t["id"].as_str().map(str::to_owned))
            .ok_or_else(|| {
                format!("{reference} is neither the ID nor the name of any of your tunnels")
            })
    })
}

/// Where the credential finder finds a tunnel's credentials: the flag's
/// file, else `<id>.json` beside the certificate, else in cloudflared's
/// folders (`cmd/cloudflared/tunnel/credential_finder.go`).
pub(super) fn credentials_path(flags: &Flags, sub: &Subcommand, id: &str) -> Option<PathBuf> {
    if let Some(path) = resolve(flags, sub, "credentials-file") {
        let path = account::expand(&path);
        return path.is_file().then_some(path);
    }
    let certificate = account::origin_cert_path(flags);
    let beside = (!certificate.is_empty())
        .then(|| folder_of(&account::expand(&certificate)).join(format!("{id}.json")));
    let in_folders = account::SEARCH_DIRS
        .iter()
        .map(|dir| account::expand(dir).join(format!("{id}.json")));
    beside
        .into_iter()
        .chain(in_folders)
        .find(|path| path.is_file())
}

/// The token `tunnel token` prints: base64 of `{"a","s","t"}`.
fn token_of(account_id: &str, tunnel: &Value) -> String {
    use base64::Engine;
    let token = json!({ "a": account_id, "s": tunnel["secret"], "t": tunnel["id"] });
    base64::engine::general_purpose::STANDARD.encode(token.to_string())
}

/// An object as Go's encoder with a two-space indent writes a struct: its
/// fields in order, each on its own line after `margin`.
fn object_text(fields: &[(&str, Value)], margin: &str) -> String {
    let lines: Vec<String> = fields
        .iter()
        .map(|(name, value)| format!("{margin}  \"{name}\": {value}"))
        .collect();
    format!("{{\n{}\n{margin}}}", lines.join(",\n"))
}

fn folder_of(path: &Path) -> PathBuf {
    path.parent().map(Path::to_owned).unwrap_or_default()
}

/// `uuid.Parse` for the canonical form.
pub(super) fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `validateHostname`: `^[*_a-zA-Z0-9][-_.a-zA-Z0-9]*$` (ASCII only).
fn valid_hostname(hostname: &str) -> bool {
    let mut chars = hostname.chars();
    chars
        .next()
        .is_some_and(|c| c == '*' || c == '_' || c.is_ascii_alphanumeric())
        && chars.all(|c| c == '-' || c == '_' || c == '.' || c.is_ascii_alphanumeric())
}
