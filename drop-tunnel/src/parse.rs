//! Reading cloudflared's output: the public URL, readiness and failures.
//!
//! Pure functions over lines of text, so transcripts of the real
//! cloudflared can be tested without a process.

use std::net::SocketAddr;

use crate::Protocol;

const SCHEME: &str = "https://";
const DOMAIN: &str = ".trycloudflare.com";

/// The first quick-tunnel URL in `line`, as `https://<label>.trycloudflare.com`.
///
/// Equivalent to the regex `https://[a-z0-9-]+\.trycloudflare\.com` minus
/// `api.trycloudflare.com`, which cloudflared's own error lines contain.
pub(crate) fn quick_tunnel_url(line: &str) -> Option<String> {
    line.match_indices(SCHEME)
        .find_map(|(at, _)| url_at(&line[at + SCHEME.len()..]))
}

/// The URL for a hostname served by `/quicktunnel` (which has no scheme).
pub(crate) fn url_from_hostname(hostname: &str) -> Option<String> {
    let host = hostname.trim();
    let host = host.strip_prefix(SCHEME).unwrap_or(host);
    url_at(host)
}

/// The hostname in a `/quicktunnel` response body, e.g.
/// `{"hostname":"a-b-c-d.trycloudflare.com"}`.
pub(crate) fn quick_tunnel_hostname(body: &str) -> Option<String> {
    // Only the JSON object matters; anything around it (a chunk-size line of
    // a chunked response) is ignored.
    let json = &body[body.find('{')?..=body.rfind('}')?];
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    Some(value.get("hostname")?.as_str()?.to_owned())
}

/// Whether `line` says an edge connection is registered: from then on the
/// URL answers.
pub(crate) fn is_registered(line: &str) -> bool {
    line.contains("Registered tunnel connection")
}

/// The protocol of a `Registered tunnel connection … protocol=quic` line.
pub(crate) fn registered_protocol(line: &str) -> Option<Protocol> {
    let (_, rest) = line.split_once("Registered tunnel connection")?;
    let value = rest
        .split_whitespace()
        .find_map(|field| field.strip_prefix("protocol="))?;
    match value {
        "quic" => Some(Protocol::Quic),
        "http2" => Some(Protocol::Http2),
        _ => None,
    }
}

/// The edge's refusal of a named tunnel at registration, from `Register
/// tunnel error from server side error="Unauthorized: Failed to get
/// tunnel"`: what the edge said. Only refusals (`Unauthorized`): a deleted
/// tunnel, or credentials that are not its own.
pub(crate) fn edge_refusal(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("Register tunnel error from server side")?;
    let (_, quoted) = rest.split_once("error=\"")?;
    let said = quoted.split('"').next()?;
    said.contains("Unauthorized").then(|| said.to_owned())
}

/// The address of the metrics server, from `Starting metrics server on
/// 127.0.0.1:PORT/metrics` (cloudflared picks the port for `127.0.0.1:0`).
pub(crate) fn metrics_address(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once("Starting metrics server on ")?;
    rest.split_whitespace()
        .next()?
        .trim_end_matches("/metrics")
        .parse()
        .ok()
}

/// Whether `line` is a failed QUIC dial to the edge: what cloudflared logs,
/// again and again, where UDP port 7844 is blocked.
pub(crate) fn is_quic_dial_failure(line: &str) -> bool {
    line.contains("Failed to dial a quic connection")
}

/// Whether `line` is a row of the connectivity pre-checks table saying UDP
/// (QUIC) fails: `|  UDP Connectivity  region1…  FAIL  QUIC connection failed  |`.
pub(crate) fn prechecks_udp_failed(line: &str) -> bool {
    line.contains("UDP Connectivity") && line.split_whitespace().any(|word| word == "FAIL")
}

/// A failure cloudflared explains in its log before it exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The quick-tunnel service answered 429.
    RateLimited,
    /// The quick-tunnel service could not be reached.
    NoNetwork {
        /// cloudflared's explanation.
        detail: String,
    },
    /// The quick tunnel was made, but Cloudflare's edge could not be
    /// found: the DNS lookup of its addresses (SRV records) failed.
    EdgeUnreachable {
        /// The lookup's error, e.g. `lookup _v2-origintunneld._tcp.argotunnel.com
        /// on 127.0.0.1:53: no such host`.
        detail: String,
    },
    /// cloudflared refused a flag or its value (it then prints its help on
    /// stdout and exits 0).
    Usage {
        /// What it refused.
        detail: String,
    },
}

/// The failure a log describes, if any; a rate limit wins over the rest
/// because it changes how long to wait.
pub(crate) fn failure(log: &str) -> Option<Failure> {
    if log.lines().any(is_rate_limit) {
        return Some(Failure::RateLimited);
    }
    log.lines()
        .find_map(usage)
        .or_else(|| log.lines().find_map(no_network))
        .or_else(|| log.lines().find_map(edge_unreachable))
}

/// `Incorrect Usage. flag provided but not defined: -x` (a command with
/// subcommands) or `Incorrect Usage: …` (one without).
fn usage(line: &str) -> Option<Failure> {
    let rest = line.trim().strip_prefix("Incorrect Usage")?;
    let detail = rest.trim_start_matches(['.', ':']).trim();
    Some(Failure::Usage {
        detail: detail.to_owned(),
    })
}

fn is_rate_limit(line: &str) -> bool {
    // The 429 body is `error code: 1015`, which cloudflared fails to decode
    // as JSON; the status only appears in the ERR line since 2024.10.
    line.contains("429 Too Many Requests") || line.contains("error code: 1015")
}

fn no_network(line: &str) -> Option<Failure> {
    // Only this line: "connection refused" alone also appears when the
    // *origin* is down, which is no reason for cloudflared to exit.
    let (_, detail) = line.split_once("failed to request quick Tunnel: ")?;
    Some(Failure::NoNetwork {
        detail: network_cause(detail).to_owned(),
    })
}

/// Edge discovery failing, after the URL box: `ERR edge discovery: error
/// looking up Cloudflare edge IPs: … error="lookup …"`, then the bare
/// `Could not lookup srv records on _v2-origintunneld._tcp.argotunnel.com:
/// lookup …` that cloudflared exits 1 with.
fn edge_unreachable(line: &str) -> Option<Failure> {
    let cause = if let Some((_, rest)) = line.split_once("Could not lookup srv records on ") {
        rest.split_once(": ").map_or(rest, |(_, cause)| cause)
    } else if line.contains("error looking up Cloudflare edge IPs") {
        line.split_once("error=\"")?.1
    } else {
        return None;
    };
    // Inside `error="…"` the cause ends at the quote.
    let cause = cause.split('"').next().unwrap_or(cause);
    Some(Failure::EdgeUnreachable {
        detail: cause.trim().to_owned(),
    })
}

/// Where the cause begins in a Go error chain about the network.
const NETWORK_CAUSES: [&str; 3] = ["dial tcp", "context deadline", "net/http:"];
/// What cloudflared's API client wraps each failure in (twice, at times).
const REST_WRAPPER: &str = "REST request failed: ";

/// The useful end of a Go error chain about the network: from `dial tcp`,
/// `context deadline` or `net/http:` on; else what follows the last `REST
/// request failed: ` and a request's `Post "https://…": `.
pub(crate) fn network_cause(detail: &str) -> &str {
    if let Some(at) = NETWORK_CAUSES.iter().filter_map(|m| detail.find(m)).min() {
        return detail[at..].trim();
    }
    let unwrapped = detail
        .rsplit_once(REST_WRAPPER)
        .map_or(detail, |(_, rest)| rest);
    past_request(unwrapped).trim()
}

/// `cause` of `Get "https://…": cause`, Go's error for a failed request;
/// anything else as it is.
fn past_request(text: &str) -> &str {
    let Some((method, rest)) = text.split_once(" \"") else {
        return text;
    };
    // Go names the method as `Get`, `Post`, `Put`…
    let is_method = method.starts_with(|c: char| c.is_ascii_uppercase())
        && method.bytes().all(|b| b.is_ascii_alphabetic());
    if !is_method {
        return text;
    }
    rest.split_once("\": ").map_or(text, |(_, cause)| cause)
}

/// `text` without a segment of its error chain said twice in a row, as
/// cloudflared's API errors do (`REST request failed: REST request failed:
/// …`).
pub(crate) fn without_repeats(text: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for segment in text.split(": ") {
        if kept.last() != Some(&segment) {
            kept.push(segment);
        }
    }
    kept.join(": ")
}

fn url_at(rest: &str) -> Option<String> {
    let label_len = rest.bytes().take_while(|b| is_label_byte(*b)).count();
    let label = &rest[..label_len];
    let after = rest[label_len..].strip_prefix(DOMAIN)?;
    // `https://x.trycloudflare.com.example.net` is someone else's host.
    let bytes = after.as_bytes();
    let continues = match bytes {
        [b, ..] if is_label_byte(*b) => true,
        [b'.', b, ..] => is_label_byte(*b),
        _ => false,
    };
    (!continues && !label.is_empty() && label != "api").then(|| format!("{SCHEME}{label}{DOMAIN}"))
}

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2026.x transcript, new box text.
    const NEW_BOX: &str = "\
2026-08-20T10:00:00Z INF Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way to experiment and try it out. However, be aware that these account-less Tunnels have no uptime guarantee, are subject to … by following: https://developers.cloudflare.com/cloudflare-one/connections/connect-apps
2026-08-20T10:00:00Z INF Requesting new quick Tunnel on trycloudflare.com...
2026-08-20T10:00:02Z INF +--------------------------------------------------------------------------------------------+
2026-08-20T10:00:02Z INF |  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):  |
2026-08-20T10:00:02Z INF |  https://seasonal-deck-organisms-sf.trycloudflare.com                                      |
2026-08-20T10:00:02Z INF +--------------------------------------------------------------------------------------------+
2026-08-20T10:00:02Z INF Cannot determine default configuration path. No file [config.yml config.yaml] in [~/.cloudflared ~/.cloudflare-warp ~/cloudflare-warp /etc/cloudflared /usr/local/etc/cloudflared]
2026-08-20T10:00:02Z INF Version 2026.8.2 (Checksum <sha256 hex of binary>)
2026-08-20T10:00:02Z INF GOOS: linux, GOVersion: go1.24.6, GoArch: amd64
2026-08-20T10:00:02Z INF Settings: map[ha-connections:1 no-autoupdate:true protocol:quic url:http://localhost:8080]
2026-08-20T10:00:02Z INF Generated Connector ID: 0b7c…-uuid
2026-08-20T10:00:02Z INF Initial protocol quic
2026-08-20T10:00:02Z INF ICMP proxy will use 10.0.0.5 as source for IPv4
2026-08-20T10:00:02Z INF ICMP proxy will use fe80::1 in zone eth0 as source for IPv6
2026-08-20T10:00:02Z INF Starting metrics server on 127.0.0.1:20241/metrics
2026-08-20T10:00:02Z INF Tunnel connection curve preferences: [X25519MLKEM768 CurveP256] connIndex=0 event=0 ip=198.41.192.107
2026-08-20T10:00:03Z INF Registered tunnel connection connIndex=0 connection=2f9c…-uuid event=0 ip=198.41.192.107 location=sjc08 protocol=quic
";

    /// The box before 2021.8.4.
    const OLD_BOX: &str = "\
2021-06-01T10:00:00Z INF Requesting new quick Tunnel on trycloudflare.com...
2021-06-01T10:00:02Z INF +----------------------------------------------------+
2021-06-01T10:00:02Z INF |  Your Quick Tunnel has been created! Visit it at:  |
2021-06-01T10:00:02Z INF |  https://oklahoma-solo-younger-truck.trycloudflare.com  |
2021-06-01T10:00:02Z INF +----------------------------------------------------+
";

    /// Since 2026.5 a second box follows the URL box. Its exact wording is
    /// not from a real transcript; what matters is that it is a box without our URL.
    const PRECHECKS_BOX: &str = "\
2026-08-20T10:00:05Z INF +--------------------------------------------------------------+
2026-08-20T10:00:05Z INF |  CONNECTIVITY PRE-CHECKS                                     |
2026-08-20T10:00:05Z INF |  https://api.trycloudflare.com/tunnel ........ reachable     |
2026-08-20T10:00:05Z INF |  region1.v2.argotunnel.com:7844 (UDP) ......... reachable     |
2026-08-20T10:00:05Z INF +--------------------------------------------------------------+
";

    const RATE_LIMITED: &str = "\
2026-08-20T10:00:00Z INF Requesting new quick Tunnel on trycloudflare.com...
2026-08-20T10:00:01Z ERR Error unmarshaling QuickTunnel response: error code: 1015 error=\"invalid character 'e' looking for beginning of value\" status_code=\"429 Too Many Requests\"
failed to unmarshal quick Tunnel: invalid character 'e' looking for beginning of value
";

    const NO_SUCH_HOST: &str = "failed to request quick Tunnel: Post \"https://api.trycloudflare.com/tunnel\": dial tcp: lookup api.trycloudflare.com on 127.0.0.53:53: no such host";
    const REFUSED: &str = "failed to request quick Tunnel: Post \"https://api.trycloudflare.com/tunnel\": dial tcp 104.16.230.132:443: connect: connection refused";
    const DEADLINE: &str = "failed to request quick Tunnel: Post \"https://api.trycloudflare.com/tunnel\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)";
    const ORIGIN_DOWN: &str = "2026-08-20T10:01:00Z ERR  error=\"Unable to reach the origin service. The service may be down or it may not be responding to traffic from cloudflared: dial tcp [::1]:8080: connect: connection refused\" cfRay=8b1c-SJC connIndex=0 event=1 ingressRule=0 originService=http://localhost:8080";

    fn first_url(log: &str) -> Option<String> {
        log.lines().find_map(quick_tunnel_url)
    }

    #[test]
    fn finds_the_url_in_the_new_box() {
        assert_eq!(
            first_url(NEW_BOX).as_deref(),
            Some("https://seasonal-deck-organisms-sf.trycloudflare.com")
        );
    }

    #[test]
    fn finds_the_url_in_the_old_box() {
        assert_eq!(
            first_url(OLD_BOX).as_deref(),
            Some("https://oklahoma-solo-younger-truck.trycloudflare.com")
        );
    }

    #[test]
    fn the_prechecks_box_holds_no_url() {
        assert_eq!(first_url(PRECHECKS_BOX), None);
        let both = format!("{NEW_BOX}{PRECHECKS_BOX}");
        assert_eq!(
            first_url(&both).as_deref(),
            Some("https://seasonal-deck-organisms-sf.trycloudflare.com")
        );
    }

    #[test]
    fn error_lines_naming_the_api_host_give_no_url() {
        for line in [NO_SUCH_HOST, REFUSED, DEADLINE, ORIGIN_DOWN] {
            assert_eq!(quick_tunnel_url(line), None, "{line}");
        }
        assert_eq!(first_url(RATE_LIMITED), None);
    }

    #[test]
    fn a_url_after_the_api_host_on_the_same_line_is_found() {
        let line = "see https://api.trycloudflare.com/tunnel then https://a-b.trycloudflare.com/x";
        assert_eq!(
            quick_tunnel_url(line).as_deref(),
            Some("https://a-b.trycloudflare.com")
        );
    }

    #[test]
    fn lookalike_hosts_are_not_quick_tunnels() {
        for line in [
            "https://a.trycloudflare.com.example.net/",
            "https://a.trycloudflare.community",
            "https://.trycloudflare.com",
            "https://A-B.trycloudflare.com",
            "http://a-b.trycloudflare.com",
            "https://a.b.trycloudflare.com",
        ] {
            assert_eq!(quick_tunnel_url(line), None, "{line}");
        }
    }

    #[test]
    fn a_url_at_the_end_of_a_sentence_is_found() {
        assert_eq!(
            quick_tunnel_url("Visit https://x-y.trycloudflare.com.").as_deref(),
            Some("https://x-y.trycloudflare.com")
        );
    }

    #[test]
    fn the_metrics_hostname_becomes_a_url() {
        let body = r#"{"hostname":"oklahoma-solo-younger-truck.trycloudflare.com"}"#;
        let host = quick_tunnel_hostname(body).unwrap();
        assert_eq!(
            url_from_hostname(&host).as_deref(),
            Some("https://oklahoma-solo-younger-truck.trycloudflare.com")
        );
        assert_eq!(url_from_hostname(""), None);
        assert_eq!(url_from_hostname("api.trycloudflare.com"), None);
        assert_eq!(
            url_from_hostname("https://a-b.trycloudflare.com").as_deref(),
            Some("https://a-b.trycloudflare.com")
        );
    }

    #[test]
    fn a_chunked_metrics_body_still_gives_the_hostname() {
        let body = "2f\r\n{\"hostname\":\"a-b-c-d.trycloudflare.com\"}\r\n0\r\n\r\n";
        assert_eq!(
            quick_tunnel_hostname(body).as_deref(),
            Some("a-b-c-d.trycloudflare.com")
        );
        assert_eq!(quick_tunnel_hostname("not json"), None);
    }

    #[test]
    fn only_the_registered_line_means_ready() {
        let registered: Vec<_> = NEW_BOX.lines().filter(|l| is_registered(l)).collect();
        assert_eq!(registered.len(), 1);
        assert!(registered[0].ends_with("protocol=quic"));
        assert!(!is_registered(
            "2026-08-20T10:05:00Z INF Unregistered tunnel connection connIndex=0 event=0 ip=198.41.192.107"
        ));
    }

    #[test]
    fn the_unmarshal_lines_mean_rate_limited() {
        assert_eq!(failure(RATE_LIMITED), Some(Failure::RateLimited));
        // Versions before 2024.10 print only the bare line, with the body.
        assert_eq!(
            failure("failed to unmarshal quick Tunnel: error code: 1015"),
            Some(Failure::RateLimited)
        );
    }

    #[test]
    fn request_failures_mean_no_network() {
        let cases = [
            (NO_SUCH_HOST, "no such host"),
            (REFUSED, "connection refused"),
            (DEADLINE, "context deadline exceeded"),
        ];
        for (line, needle) in cases {
            let Some(Failure::NoNetwork { detail }) = failure(line) else {
                panic!("{line} is no network");
            };
            assert!(detail.contains(needle), "{detail}");
            assert!(!detail.contains("Post"), "{detail}");
        }
    }

    /// The real cloudflared (2026.8.2) where the edge's SRV lookup fails:
    /// it prints the URL box, then exits 1 about a second later.
    const SRV_LOOKUP_FAILED: &str = "\
2026-12-06T16:40:01Z INF |  https://proxy-fixture-alpha-bravo.trycloudflare.com                                       |
2026-12-06T16:40:01Z INF +--------------------------------------------------------------------------------------------+
2026-12-06T16:40:01Z ERR Failed to fetch features, default to disable error=\"lookup cfd-features.argotunnel.com on 127.0.0.1:53: no such host\"
2026-12-06T16:40:01Z WRN Unable to lookup protocol percentage.
2026-12-06T16:40:01Z ERR edge discovery: error looking up Cloudflare edge IPs: the DNS query failed error=\"lookup _v2-origintunneld._tcp.argotunnel.com on 127.0.0.1:53: no such host\" event=0
2026-12-06T16:40:01Z INF Starting metrics server on 127.0.0.1:35237/metrics
2026-12-06T16:40:01Z INF Tunnel server stopped
2026-12-06T16:40:01Z ERR Initiating shutdown error=\"Could not lookup srv records on _v2-origintunneld._tcp.argotunnel.com: lookup _v2-origintunneld._tcp.argotunnel.com on 127.0.0.1:53: no such host\"
2026-12-06T16:40:02Z INF Metrics server stopped
Could not lookup srv records on _v2-origintunneld._tcp.argotunnel.com: lookup _v2-origintunneld._tcp.argotunnel.com on 127.0.0.1:53: no such host
";

    /// Each line that tells of the failed SRV lookup alone is enough, with
    /// the lookup's own words.
    #[test]
    fn a_failed_edge_lookup_means_the_edge_is_unreachable() {
        let expected = Some(Failure::EdgeUnreachable {
            detail: "lookup _v2-origintunneld._tcp.argotunnel.com on 127.0.0.1:53: no such host"
                .into(),
        });
        assert_eq!(failure(SRV_LOOKUP_FAILED), expected);
        let telling: Vec<&str> = SRV_LOOKUP_FAILED
            .lines()
            .filter(|line| failure(line).is_some())
            .collect();
        assert_eq!(telling.len(), 3, "{telling:?}");
        for line in telling {
            assert_eq!(failure(line), expected, "{line}");
        }
        assert_eq!(
            failure(
                "2026-12-06T16:40:01Z ERR Failed to fetch features, default to disable error=\"lookup cfd-features.argotunnel.com on 127.0.0.1:53: no such host\""
            ),
            None,
            "cloudflared carries on without its features"
        );
    }

    /// The real cloudflared (2026.8.2) with no network: no route at all,
    /// a DNS server that never answers, one that says NXDOMAIN, and an API
    /// that never answers. Each ends the process with this bare line.
    #[test]
    fn every_way_the_real_request_fails_offline_is_no_network() {
        let cases = [
            (
                "failed to request quick Tunnel: Post \"https://api.trycloudflare.com/tunnel\": dial tcp: lookup api.trycloudflare.com on 10.255.255.53:53: dial udp 10.255.255.53:53: connect: network is unreachable",
                "dial tcp: lookup api.trycloudflare.com on 10.255.255.53:53: dial udp 10.255.255.53:53: connect: network is unreachable",
            ),
            (
                "failed to request quick Tunnel: Post \"https://api.trycloudflare.com/tunnel\": dial tcp: lookup api.trycloudflare.com on 127.0.0.1:53: read udp 127.0.0.1:41930->127.0.0.1:53: i/o timeout",
                "dial tcp: lookup api.trycloudflare.com on 127.0.0.1:53: read udp 127.0.0.1:41930->127.0.0.1:53: i/o timeout",
            ),
            (
                "failed to request quick Tunnel: Post \"https://api.trycloudflare.com/tunnel\": dial tcp: lookup api.trycloudflare.com on 127.0.0.1:53: no such host",
                "dial tcp: lookup api.trycloudflare.com on 127.0.0.1:53: no such host",
            ),
            (
                "failed to request quick Tunnel: Post \"https://api.trycloudflare.com/tunnel\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
                "context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
            ),
        ];
        for (line, detail) in cases {
            let log = format!(
                "2026-12-06T16:26:25Z INF Requesting new quick Tunnel on trycloudflare.com...\n{line}\n"
            );
            assert_eq!(
                failure(&log),
                Some(Failure::NoNetwork {
                    detail: detail.into()
                }),
                "{line}"
            );
        }
    }

    #[test]
    fn an_unreachable_origin_is_no_failure_of_the_tunnel() {
        assert_eq!(failure(ORIGIN_DOWN), None);
        assert_eq!(failure(NEW_BOX), None);
        assert_eq!(
            failure("failed to parse quick Tunnel ID: invalid UUID length: 0"),
            None
        );
    }

    #[test]
    fn the_metrics_address_is_read_from_its_line() {
        let line = "2026-12-02T06:40:13Z INF Starting metrics server on 127.0.0.1:37817/metrics";
        assert_eq!(
            metrics_address(line),
            Some("127.0.0.1:37817".parse().unwrap())
        );
        assert_eq!(
            metrics_address("INF Starting metrics server on nonsense"),
            None
        );
        assert_eq!(metrics_address("INF Version 2026.8.2"), None);
    }

    #[test]
    fn a_failing_udp_row_of_the_prechecks_means_quic_is_blocked() {
        let fail = "2026-12-02T06:40:13Z INF |  UDP Connectivity  region1.v2.argotunnel.com  FAIL    QUIC connection failed                  |";
        let pass = "2026-12-02T06:40:13Z INF |  UDP Connectivity  region1.v2.argotunnel.com  PASS    QUIC connection successful    |";
        let tcp = "2026-12-02T06:40:13Z INF |  TCP Connectivity  region1.v2.argotunnel.com  FAIL    HTTP/2 connection is blocked or unreachable  |";
        assert!(prechecks_udp_failed(fail));
        assert!(!prechecks_udp_failed(pass));
        assert!(!prechecks_udp_failed(tcp));
        assert!(is_quic_dial_failure(
            "ERR Failed to dial a quic connection error=\"failed to dial to edge with quic: timeout: no recent network activity\" connIndex=0"
        ));
    }

    #[test]
    fn incorrect_usage_means_refused_arguments() {
        assert_eq!(
            failure(
                "Incorrect Usage. flag provided but not defined: -bogus\n\nNAME:\n   cloudflared tunnel"
            ),
            Some(Failure::Usage {
                detail: "flag provided but not defined: -bogus".into()
            })
        );
        assert_eq!(
            failure("Incorrect Usage: invalid value \"x\" for flag -grace-period: parse error"),
            Some(Failure::Usage {
                detail: "invalid value \"x\" for flag -grace-period: parse error".into()
            })
        );
    }

    /// The protocol of a registration is read from its line.
    #[test]
    fn a_registration_says_its_protocol() {
        let line = "2026-08-20T10:00:03Z INF Registered tunnel connection connIndex=0 connection=2f9c event=0 ip=198.41.192.107 location=sjc08 protocol=http2";
        assert_eq!(registered_protocol(line), Some(Protocol::Http2));
        assert_eq!(
            registered_protocol("INF Registered tunnel connection connIndex=0"),
            None
        );
    }

    /// The edge's refusal of a tunnel is read with its words; other
    /// registration errors are not refusals.
    #[test]
    fn the_edges_refusal_is_read_with_its_words() {
        let refused = "2024-09-11T21:31:15Z ERR Register tunnel error from server side error=\"Unauthorized: Failed to get tunnel\" connIndex=0 event=0 ip=198.41.192.77";
        assert_eq!(
            edge_refusal(refused).as_deref(),
            Some("Unauthorized: Failed to get tunnel")
        );
        let other =
            "ERR Register tunnel error from server side error=\"duplicate connection\" connIndex=0";
        assert_eq!(edge_refusal(other), None);
        assert_eq!(edge_refusal("INF Registered tunnel connection"), None);
    }
}
