//! Reading what cloudflared's tunnel-management commands print: the JSON
//! of `tunnel list` and `tunnel create`, the line `tunnel route dns` logs,
//! and the failure each ends with.
//!
//! From cloudflared's source: `--output json` is `renderOutput`
//! (`cmd/cloudflared/tunnel/subcommands.go`), the tunnels of
//! `cfapi.Tunnel` (`cfapi/tunnel.go`; a list with no tunnel is `null`); a
//! route's result is logged as `DNSRouteResult.SuccessSummary`
//! (`cfapi/hostname.go`); an API error reads `Failed to <op>: code: N,
//! reason: …` (`cfapi/base_client.go`); a failing command prints its error
//! last, on stderr, and exits 1, or 255 for a usage error
//! (`cmd/cloudflared/cliutil/errors.go`).

use std::path::Path;

use crate::TunnelError;
use crate::launch::CommandOutput;
use crate::parse;

/// A Go `time.Time` zero value, as `deleted_at` of a tunnel never deleted.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A tunnel as `tunnel list --output json` or `tunnel create --output
/// json` describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) deleted: bool,
}

/// The tunnels in `tunnel list --output json`; `null` is none.
pub(crate) fn tunnel_list(stdout: &str) -> Option<Vec<Listed>> {
    let value: serde_json::Value = serde_json::from_str(stdout.trim()).ok()?;
    match value {
        serde_json::Value::Null => Some(Vec::new()),
        serde_json::Value::Array(items) => items.iter().map(listed).collect(),
        _ => None,
    }
}

/// The tunnel `tunnel create --output json` made.
pub(crate) fn created_tunnel(stdout: &str) -> Option<Listed> {
    let value: serde_json::Value = serde_json::from_str(stdout.trim()).ok()?;
    listed(&value)
}

fn listed(value: &serde_json::Value) -> Option<Listed> {
    let deleted_at = value.get("deleted_at").and_then(|d| d.as_str());
    Some(Listed {
        id: value.get("id")?.as_str()?.to_owned(),
        name: value.get("name")?.as_str()?.to_owned(),
        deleted: deleted_at.is_some_and(|at| !at.is_empty() && at != ZERO_TIME),
    })
}

/// What `tunnel route dns` says it did, from its log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Routed {
    /// The DNS name the record has: the hostname asked for, or, outside
    /// the certificate's zone, that hostname with the zone appended.
    pub(crate) name: String,
    /// Whether the record is new (else it already routed to this tunnel).
    pub(crate) added: bool,
}

/// The result of `tunnel route dns` in its output: `Added CNAME <name>
/// which will route to this tunnel`, `<name> is already configured to
/// route to your tunnel`, or `<name> updated to route to your tunnel`.
pub(crate) fn routed(output: &str) -> Option<Routed> {
    output.lines().find_map(|line| {
        let message = log_message(line);
        if let Some(rest) = message.strip_prefix("Added CNAME ") {
            let name = rest.split(" which will route to this tunnel").next()?;
            return Some(Routed {
                name: name.trim().to_owned(),
                added: true,
            });
        }
        for (suffix, added) in [
            (" is already configured to route to your tunnel", false),
            (" updated to route to your tunnel", true),
        ] {
            if let Some((name, _)) = message.split_once(suffix) {
                return Some(Routed {
                    name: name.trim().to_owned(),
                    added,
                });
            }
        }
        None
    })
}

/// Whether `name`, the record cloudflared made, is `hostname` itself (DNS
/// names compare without case or a final dot).
pub(crate) fn same_name(name: &str, hostname: &str) -> bool {
    let plain = |s: &str| s.trim_end_matches('.').to_ascii_lowercase();
    plain(name) == plain(hostname)
}

/// Why a management command failed, as a typed error. `command` is the
/// subcommand (`create`, `route dns`, …), `certificate` the one it was
/// given.
pub(crate) fn failure(command: &str, output: &CommandOutput, certificate: &Path) -> TunnelError {
    let all = format!("{}\n{}", output.stdout, output.stderr);
    let detail = last_words(&output.stderr)
        .unwrap_or_else(|| last_words(&output.stdout).unwrap_or_default());
    if let Some(usage) = all
        .lines()
        .find_map(|l| l.trim().strip_prefix("Incorrect Usage"))
    {
        return TunnelError::Usage {
            detail: usage.trim_start_matches(['.', ':']).trim().to_owned(),
        };
    }
    if all.contains("Error locating origin cert") {
        return TunnelError::NotLoggedIn {
            searched: vec![certificate.to_owned()],
        };
    }
    let rejected = [
        "Error decoding origin cert",
        "Origin certificate needs to be refreshed",
        "code: 10000",
        "Authentication error",
    ];
    if rejected.iter().any(|marker| all.contains(marker)) {
        return TunnelError::CertificateRejected {
            path: certificate.to_owned(),
            detail,
        };
    }
    if all.contains("REST request failed") {
        return TunnelError::ApiUnreachable {
            detail: parse::network_cause(&detail).to_owned(),
        };
    }
    TunnelError::CommandFailed {
        command: command.to_owned(),
        code: output.code,
        detail,
    }
}

/// Whether a failed `route dns` met a record already there (API code
/// 1003: an A, AAAA or CNAME record with that name).
pub(crate) fn record_exists(output: &CommandOutput) -> bool {
    output.stderr.contains("code: 1003")
}

/// The last line that says something, without a log line's time and
/// level, or a wrapper said twice.
fn last_words(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty() && !line.starts_with("See 'cloudflared"))
        .map(|line| parse::without_repeats(log_message(line)))
}

/// The message of a zerolog console line (`<RFC 3339> <LVL> message`);
/// other lines as they are.
fn log_message(line: &str) -> &str {
    let mut parts = line.splitn(3, ' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(time), Some("DBG" | "INF" | "WRN" | "ERR" | "FTL"), Some(message))
            if time.len() >= 20 && time.as_bytes()[4] == b'-' && time.contains('T') =>
        {
            message
        }
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn failed(code: i32, stdout: &str, stderr: &str) -> CommandOutput {
        CommandOutput {
            code: Some(code),
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    fn cert() -> PathBuf {
        PathBuf::from("/home/u/.cloudflared/cert.pem")
    }

    /// `tunnel list --output json` with tunnels, and with none (`null`).
    #[test]
    fn reads_the_tunnel_list_and_its_empty_form() {
        let listed = r#"[
  {
    "id": "6ff42ae2-765d-4adf-8112-31c55c1551ef",
    "name": "drop",
    "created_at": "2026-08-20T10:00:00Z",
    "deleted_at": "0001-01-01T00:00:00Z",
    "connections": []
  },
  {
    "id": "0b7c1a7e-2f6d-4c1e-9b8a-5d4e3f2a1b0c",
    "name": "old",
    "created_at": "2026-08-01T10:00:00Z",
    "deleted_at": "2026-08-02T10:00:00Z",
    "connections": null
  }
]
"#;
        let tunnels = tunnel_list(listed).unwrap();
        assert_eq!(tunnels.len(), 2);
        assert_eq!(tunnels[0].name, "drop");
        assert!(!tunnels[0].deleted);
        assert!(tunnels[1].deleted);
        assert_eq!(tunnel_list("null\n"), Some(Vec::new()));
        assert_eq!(tunnel_list("No tunnels were found"), None);
    }

    /// `tunnel create --output json` gives the new tunnel, token and all.
    #[test]
    fn reads_the_created_tunnel() {
        let created = r#"{"id":"6ff42ae2-765d-4adf-8112-31c55c1551ef","name":"drop","created_at":"2026-08-20T10:00:00Z","deleted_at":"0001-01-01T00:00:00Z","connections":[],"token":"eyJh"}"#;
        let tunnel = created_tunnel(created).unwrap();
        assert_eq!(tunnel.id, "6ff42ae2-765d-4adf-8112-31c55c1551ef");
        assert_eq!(tunnel.name, "drop");
    }

    /// Each result of `route dns`, and the record name outside the zone.
    #[test]
    fn reads_what_route_dns_did() {
        let added = "2026-08-20T10:00:00Z INF Added CNAME drop.example.com which will route to this tunnel tunnelID=6ff42ae2-765d-4adf-8112-31c55c1551ef\n";
        assert_eq!(
            routed(added),
            Some(Routed {
                name: "drop.example.com".into(),
                added: true
            })
        );
        let kept = "2026-08-20T10:00:00Z INF drop.example.com is already configured to route to your tunnel tunnelID=6ff4\n";
        assert_eq!(routed(kept).map(|r| r.added), Some(false));
        let outside = "2023-03-01T19:04:05Z INF Added CNAME sub.domain2.com.domain1.com which will route to this tunnel tunnelID=x";
        let record = routed(outside).unwrap();
        assert!(!same_name(&record.name, "sub.domain2.com"));
        assert!(same_name("Drop.Example.com.", "drop.example.com"));
        assert_eq!(routed("nothing here"), None);
    }

    /// A missing or unusable certificate, an unreachable API, a refused
    /// flag and anything else each get their own error.
    #[test]
    fn a_failing_command_is_classified_by_what_it_printed() {
        let not_logged_in = failed(
            1,
            "",
            "2026-08-20T10:00:00Z ERR Cannot determine default origin certificate path. No file cert.pem in [~/.cloudflared ~/.cloudflare-warp ~/cloudflare-warp /etc/cloudflared /usr/local/etc/cloudflared]. You need to specify the origin certificate path by specifying the origincert option in the configuration file, or set TUNNEL_ORIGIN_CERT environment variable originCertPath=\nfailed to create tunnel: couldn't create client to talk to Cloudflare Tunnel backend: Error locating origin cert: client didn't specify origincert path\n",
        );
        assert!(matches!(
            failure("create", &not_logged_in, &cert()),
            TunnelError::NotLoggedIn { .. }
        ));

        let rejected = failed(
            1,
            "",
            "Error Parsing page 1: REST request failed: Failed to list tunnels: code: 10000, reason: Authentication error\n",
        );
        assert!(matches!(
            failure("list", &rejected, &cert()),
            TunnelError::CertificateRejected { .. }
        ));

        let undecodable = failed(
            1,
            "",
            "Error decoding origin cert: missing token in the certificate\n",
        );
        let err = failure("list", &undecodable, &cert());
        let TunnelError::CertificateRejected { detail, .. } = &err else {
            panic!("rejected, got {err:?}");
        };
        assert_eq!(
            detail,
            "Error decoding origin cert: missing token in the certificate"
        );

        let offline = failed(
            1,
            "",
            "Error Parsing page 1: REST request failed: Get \"https://api.cloudflare.com/client/v4/accounts/x/cfd_tunnel?is_deleted=false\": dial tcp: lookup api.cloudflare.com on 127.0.0.53:53: no such host\n",
        );
        let TunnelError::ApiUnreachable { detail } = failure("list", &offline, &cert()) else {
            panic!("unreachable");
        };
        assert!(
            detail.starts_with("dial tcp: lookup api.cloudflare.com"),
            "{detail}"
        );

        let usage = failed(
            0,
            "Incorrect Usage: flag provided but not defined: -bogus\n\nNAME:\n",
            "",
        );
        assert!(matches!(
            failure("list", &usage, &cert()),
            TunnelError::Usage { .. }
        ));

        let other = failed(
            255,
            "",
            "\"cloudflared tunnel create\" requires exactly 1 argument, the name of tunnel to create.\nSee 'cloudflared tunnel create --help'.\n",
        );
        let TunnelError::CommandFailed {
            command,
            code,
            detail,
        } = failure("create", &other, &cert())
        else {
            panic!("failed");
        };
        assert_eq!((command.as_str(), code), ("create", Some(255)));
        assert!(
            detail.starts_with("\"cloudflared tunnel create\" requires"),
            "{detail}"
        );
    }

    /// The real cloudflared (2026.8.2) offline, with a well-formed
    /// certificate: each management command ends with the API's failure,
    /// `REST request failed: ` doubled for `list`. Each is the API out of
    /// reach, and its detail is the network's cause, said once.
    #[test]
    fn the_real_commands_offline_mean_the_api_is_out_of_reach() {
        let cause = "dial tcp: lookup api.cloudflare.com on 10.255.255.53:53: dial udp 10.255.255.53:53: connect: network is unreachable";
        let printed = [
            (
                "list",
                "Error Parsing page 1: REST request failed: REST request failed: Get \"https://api.cloudflare.com/client/v4/accounts/abcdabcdabcdabcd1234567890abcdef/cfd_tunnel?is_deleted=false&page=1\": dial tcp: lookup api.cloudflare.com on 10.255.255.53:53: dial udp 10.255.255.53:53: connect: network is unreachable\n",
            ),
            (
                "create",
                "failed to create tunnel: Create Tunnel API call failed: REST request failed: Post \"https://api.cloudflare.com/client/v4/accounts/abcdabcdabcdabcd1234567890abcdef/cfd_tunnel\": dial tcp: lookup api.cloudflare.com on 10.255.255.53:53: dial udp 10.255.255.53:53: connect: network is unreachable\n",
            ),
            (
                "route dns",
                "REST request failed: Put \"https://api.cloudflare.com/client/v4/zones/7b0a4d77dfb881c1a3b7d61ea9443e19/tunnels/6ff42ae2-765d-4adf-8112-31c55c1551ef/routes\": dial tcp: lookup api.cloudflare.com on 10.255.255.53:53: dial udp 10.255.255.53:53: connect: network is unreachable\n",
            ),
            (
                "token",
                "2026-12-06T17:43:43Z ERR Could not get the Token for the given Tunnel 6ff42ae2-765d-4adf-8112-31c55c1551ef error=\"REST request failed: Get \\\"https://api.cloudflare.com/client/v4/accounts/abcdabcdabcdabcd1234567890abcdef/cfd_tunnel/6ff42ae2-765d-4adf-8112-31c55c1551ef/token\\\": dial tcp: lookup api.cloudflare.com on 10.255.255.53:53: dial udp 10.255.255.53:53: connect: network is unreachable\"\nREST request failed: Get \"https://api.cloudflare.com/client/v4/accounts/abcdabcdabcdabcd1234567890abcdef/cfd_tunnel/6ff42ae2-765d-4adf-8112-31c55c1551ef/token\": dial tcp: lookup api.cloudflare.com on 10.255.255.53:53: dial udp 10.255.255.53:53: connect: network is unreachable\n",
            ),
            (
                "delete",
                "Can't get tunnel information. Please check tunnel id: 6ff42ae2-765d-4adf-8112-31c55c1551ef: REST request failed: Get \"https://api.cloudflare.com/client/v4/accounts/abcdabcdabcdabcd1234567890abcdef/cfd_tunnel/6ff42ae2-765d-4adf-8112-31c55c1551ef\": dial tcp: lookup api.cloudflare.com on 10.255.255.53:53: dial udp 10.255.255.53:53: connect: network is unreachable\n",
            ),
        ];
        for (command, stderr) in printed {
            let err = failure(command, &failed(1, "", stderr), &cert());
            let TunnelError::ApiUnreachable { detail } = &err else {
                panic!("{command}: unreachable, got {err:?}");
            };
            assert_eq!(detail, cause, "{command}");
            assert!(!err.to_string().contains("REST request failed"), "{err}");
            assert!(err.is_network());
        }
    }

    /// A cause the network markers do not name is still given without
    /// the doubled wrapper and the request; any other detail loses the
    /// repeat.
    #[test]
    fn a_doubled_wrapper_never_reaches_the_user() {
        let tls = failed(
            1,
            "",
            "Error Parsing page 1: REST request failed: REST request failed: Get \"https://api.cloudflare.com/client/v4/accounts/x/cfd_tunnel?is_deleted=false&page=1\": tls: failed to verify certificate: x509: certificate signed by unknown authority\n",
        );
        let TunnelError::ApiUnreachable { detail } = failure("list", &tls, &cert()) else {
            panic!("unreachable");
        };
        assert_eq!(
            detail,
            "tls: failed to verify certificate: x509: certificate signed by unknown authority"
        );
        let revoked = failed(
            1,
            "",
            "Error Parsing page 1: REST request failed: REST request failed: Failed to list tunnels: code: 10000, reason: Authentication error\n",
        );
        let TunnelError::CertificateRejected { detail, .. } = failure("list", &revoked, &cert())
        else {
            panic!("rejected");
        };
        assert_eq!(
            detail,
            "Error Parsing page 1: REST request failed: Failed to list tunnels: code: 10000, reason: Authentication error"
        );
    }

    /// The 1003 of a record already there is recognised.
    #[test]
    fn an_existing_record_is_recognised() {
        let exists = failed(
            1,
            "",
            "Failed to add route: code: 1003, reason: Failed to create record drop.example.com with err An A, AAAA, or CNAME record with that host already exists.\n",
        );
        assert!(record_exists(&exists));
        assert!(!record_exists(&failed(1, "", "not found\n")));
    }
}
