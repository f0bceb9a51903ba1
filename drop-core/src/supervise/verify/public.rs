//! The real checks: HTTPS to the edge (or where `DROP_TUNNEL_EDGE` points),
//! and DNS-over-HTTPS resolvers raced, never the local resolver.

use std::net::{IpAddr, SocketAddr};

use super::refusal::{self, Answer, DevServer};
use super::{
    LinkChecker, LinkConfig, LinkError, MAX_ANSWER, Origin, PROBE_ANSWER, PROBE_HEADER,
    PROBE_PREFIX, REQUEST_TIMEOUT, host_of,
};

/// The real checks: HTTPS to the edge, then DNS-over-HTTPS resolvers
/// raced (never the local resolver).
#[derive(Debug, Clone)]
pub struct PublicChecker {
    config: LinkConfig,
    client: reqwest::Client,
}

impl PublicChecker {
    /// A checker asking where `config` says.
    pub fn new(config: LinkConfig) -> Self {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a TLS client with bundled roots");
        PublicChecker { config, client }
    }

    async fn ask_resolver(&self, doh: &str, host: &str) -> Result<Vec<IpAddr>, LinkError> {
        let unreachable = |detail: String| LinkError::DnsUnreachable { detail };
        let response = self
            .client
            .get(doh)
            .query(&[("name", host), ("type", "A")])
            .header("accept", "application/dns-json")
            .send()
            .await
            .map_err(|e| unreachable(format!("{doh}: {}", error_chain(&e))))?;
        if !response.status().is_success() {
            return Err(unreachable(format!(
                "{doh} answered HTTP {}",
                response.status().as_u16()
            )));
        }
        let text = read_capped(response)
            .await
            .map_err(|e| unreachable(format!("{doh}: {e}")))?;
        let body: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| unreachable(format!("{doh}: not a DNS JSON answer ({e})")))?;
        let addrs = answers(&body, host);
        match (body["Status"].as_u64(), addrs.is_empty()) {
            (Some(0), false) => Ok(addrs),
            // NXDOMAIN (3), or a name with no address yet.
            (Some(0 | 3), _) => Err(LinkError::NotPublished {
                host: host.to_owned(),
            }),
            (status, _) => Err(unreachable(format!("{doh}: status {status:?}"))),
        }
    }
}

/// Whether `status` is the edge's own failure rather than the origin's
/// answer: 502 and 504 (bad gateway, timeout to the origin), 520–527
/// (Cloudflare's origin errors) and 530 (no tunnel connected, error 1033).
fn edge_failure(status: u16) -> bool {
    matches!(status, 502 | 504 | 520..=527 | 530)
}

/// An error with its causes, as one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    line
}

/// The usable addresses of `host` in a DNS JSON answer: A records of the
/// name asked, or of a name it is a CNAME of (in the answer's order).
fn answers(body: &serde_json::Value, host: &str) -> Vec<IpAddr> {
    let records: Vec<&serde_json::Value> =
        body["Answer"].as_array().into_iter().flatten().collect();
    let name_of = |r: &serde_json::Value| {
        r["name"]
            .as_str()
            .unwrap_or_default()
            .trim_end_matches('.')
            .to_ascii_lowercase()
    };
    let mut names = vec![host.trim_end_matches('.').to_ascii_lowercase()];
    for record in &records {
        if record["type"].as_u64() == Some(5) && names.contains(&name_of(record)) {
            let target = record["data"].as_str().unwrap_or_default();
            names.push(target.trim_end_matches('.').to_ascii_lowercase());
        }
    }
    records
        .iter()
        .filter(|r| r["type"].as_u64() == Some(1) && names.contains(&name_of(r)))
        .filter_map(|r| r["data"].as_str()?.parse::<IpAddr>().ok())
        .filter(|ip| !ip.is_unspecified() && !ip.is_multicast())
        .collect()
}

/// The body of `response`, at most [`MAX_ANSWER`] bytes of it.
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(format!("an answer longer than {MAX_ANSWER} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[async_trait::async_trait]
impl LinkChecker for PublicChecker {
    async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, LinkError> {
        let asks = self
            .config
            .doh_urls
            .iter()
            .map(|doh| Box::pin(self.ask_resolver(doh, host)));
        // The first resolver that knows the name wins; "not yet" from one
        // is kept only if no other knows better.
        let mut pending: Vec<_> = asks.collect();
        let mut last = LinkError::DnsUnreachable {
            detail: "no resolver configured".into(),
        };
        while !pending.is_empty() {
            let (result, _, rest) = futures_util::future::select_all(pending).await;
            pending = rest;
            match result {
                Ok(addrs) => return Ok(addrs),
                Err(e @ LinkError::NotPublished { .. }) => last = e,
                Err(e) if !matches!(last, LinkError::NotPublished { .. }) => last = e,
                Err(_) => {}
            }
        }
        Err(last)
    }

    async fn reach(&self, url: &str, origin: &Origin) -> Result<(), LinkError> {
        let host = host_of(url);
        let unreachable = |detail: String| LinkError::EdgeUnreachable {
            host: host.to_owned(),
            detail,
        };
        // The daemon is asked at its probe path; an app at `/`, what the
        // human opens, with the nonce in a header drop alone answers.
        let request = match origin {
            Origin::Daemon { nonce } => {
                self.through_edge(host, &format!("{PROBE_PREFIX}{nonce}"))
                    .await
            }
            Origin::App { nonce, .. } => self
                .through_edge(host, "/")
                .await
                .map(|r| r.header(PROBE_HEADER, nonce.as_str())),
        }?;
        let response = match request.send().await {
            Ok(response) => response,
            // Nothing through the edge: the app's own silence, when it is.
            Err(e) => {
                return Err(match origin {
                    Origin::App { local, .. } if self.ask_app(*local).await.is_none() => {
                        LinkError::AppNotAnswering {
                            host: host.to_owned(),
                        }
                    }
                    _ => unreachable(error_chain(&e)),
                });
            }
        };
        let location = (response.headers().get("location"))
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let answer = Answer {
            status: response.status().as_u16(),
            body: read_prefix(response).await,
        };
        let drop_answered = answer.status == 200 && answer.body == PROBE_ANSWER.as_bytes();
        match origin {
            Origin::Daemon { .. } if drop_answered => Ok(()),
            Origin::Daemon { .. } => Err(LinkError::EdgeNotConnected {
                host: host.to_owned(),
                status: answer.status,
            }),
            Origin::App { .. } if drop_answered => Err(LinkError::NotRouted {
                host: host.to_owned(),
            }),
            Origin::App {
                local, keep_host, ..
            } => {
                let app = AppAnswer {
                    host,
                    local: *local,
                    keep_host: *keep_host,
                };
                self.judge_app(app, answer, location).await
            }
        }
    }
}

/// An app's answer through the tunnel, and what judging it needs.
struct AppAnswer<'a> {
    host: &'a str,
    local: SocketAddr,
    keep_host: bool,
}

impl PublicChecker {
    /// Whether the app's answer through the tunnel is one the human can
    /// use: not a redirect to this machine, and no failure the app does
    /// not also give on its own port (asked only then). The edge's own
    /// failures are the edge's, unless the app fails the same at home.
    async fn judge_app(
        &self,
        app: AppAnswer<'_>,
        answer: Answer,
        location: Option<String>,
    ) -> Result<(), LinkError> {
        let host = app.host.to_owned();
        if (300..400).contains(&answer.status)
            && let Some(location) = location.filter(|l| refusal::leads_here(l, app.local.port()))
        {
            return Err(LinkError::RedirectsToLocal {
                host,
                location,
                keep_host: app.keep_host,
            });
        }
        if answer.status < 400 {
            return Ok(());
        }
        let at_home = self.ask_app(app.local).await;
        if edge_failure(answer.status) {
            return Err(match at_home {
                None => LinkError::AppNotAnswering { host },
                Some(home) if home.status == answer.status => LinkError::AppFails {
                    host,
                    status: answer.status,
                },
                Some(_) => LinkError::EdgeNotConnected {
                    host,
                    status: answer.status,
                },
            });
        }
        match refusal::is_refusal(&answer, at_home.as_ref()) {
            true => Err(LinkError::Refused {
                host,
                status: answer.status,
                local_status: at_home.map(|a| a.status),
                dev_server: DevServer::of(&answer),
                keep_host: app.keep_host,
            }),
            false => Ok(()),
        }
    }
}

impl PublicChecker {
    /// A GET of `path` at `host` through the edge: where `DROP_TUNNEL_EDGE`
    /// says, else at the address of the hostname's parent zone (the edge
    /// routes by name), so neither public DNS nor the local resolver is
    /// asked for the new name yet.
    async fn through_edge(
        &self,
        host: &str,
        path: &str,
    ) -> Result<reqwest::RequestBuilder, LinkError> {
        if let Some(edge) = &self.config.edge {
            let url = format!("{}{path}", edge.trim_end_matches('/'));
            return Ok(self.client.get(url).header("host", host));
        }
        let unreachable = |detail: &str| LinkError::EdgeUnreachable {
            host: host.to_owned(),
            detail: detail.to_owned(),
        };
        let parent =
            parent_of(host).ok_or_else(|| unreachable("a hostname without a parent zone"))?;
        let addrs = self.resolve(parent).await.map_err(|e| match e {
            // This machine reaches no resolver: say that, not "the edge".
            e @ LinkError::DnsUnreachable { .. } => e,
            e => unreachable(&format!("the edge's address: {e}")),
        })?;
        let pinned = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .resolve(host, SocketAddr::new(addrs[0], 443))
            .build()
            .expect("a TLS client with bundled roots");
        Ok(pinned.get(format!("https://{host}{path}")))
    }

    /// What the app at `local` answers to `/` on its own port, as a
    /// browser on this machine would ask it; `None` when it does not.
    async fn ask_app(&self, local: SocketAddr) -> Option<Answer> {
        let response = (self.client.get(format!("http://{local}/")))
            .header("host", format!("localhost:{}", local.port()))
            .send()
            .await
            .ok()?;
        Some(Answer {
            status: response.status().as_u16(),
            body: read_prefix(response).await,
        })
    }
}

/// The first [`MAX_ANSWER`] bytes of `response`'s body (what arrived of
/// them before an error); the rest is not read.
async fn read_prefix(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < MAX_ANSWER {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(MAX_ANSWER);
    body
}

/// The zone above `host`: `trycloudflare.com` for `a-b.trycloudflare.com`.
fn parent_of(host: &str) -> Option<&str> {
    let (_, parent) = host.split_once('.')?;
    parent.contains('.').then_some(parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on loopback standing for both the edge (a request whose
    /// `Host` is the tunnel's hostname) and an app: `answer` gets the
    /// request's head and gives status and body.
    fn serve(answer: fn(&str) -> (u16, &'static str)) -> SocketAddr {
        serve_with_headers(move |head| {
            let (status, body) = answer(head);
            (status, "", body)
        })
    }

    /// [`serve`], the answer with header lines of its own (each ending in
    /// CRLF).
    fn serve_with_headers(
        answer: impl Fn(&str) -> (u16, &'static str, &'static str) + Send + 'static,
    ) -> SocketAddr {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut head = [0u8; 4096];
                let n = stream.read(&mut head).unwrap_or(0);
                let head = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
                let (status, headers, body) = answer(&head);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        addr
    }

    async fn reach_app(app: SocketAddr) -> Result<(), LinkError> {
        reach_app_at(app, app, false).await
    }

    /// Reaches the app at `local` through `edge`, sent the public
    /// hostname when `keep_host`.
    async fn reach_app_at(
        edge: SocketAddr,
        local: SocketAddr,
        keep_host: bool,
    ) -> Result<(), LinkError> {
        let checker = PublicChecker::new(LinkConfig {
            doh_urls: vec![],
            edge: Some(format!("http://{edge}")),
        });
        let origin = Origin::App {
            nonce: "n".into(),
            local,
            keep_host,
        };
        checker
            .reach("https://a-b.trycloudflare.com", &origin)
            .await
    }

    /// Vite's host check, as its dev server answers: what the human gets
    /// through the tunnel is a refusal the app does not give on its own
    /// port, so the link is not called working, and the fix names Vite's
    /// setting.
    #[tokio::test]
    async fn a_dev_server_refusing_the_tunnels_host_is_a_broken_link() {
        let vite = serve(|head| match head.contains("host: localhost:") {
            true => (200, "<!doctype html><script type=module src=/@vite/client>"),
            false => (
                403,
                "Blocked request. This host (\"a-b.trycloudflare.com\") is not allowed.\nTo allow this host, add \"a-b.trycloudflare.com\" to `server.allowedHosts` in vite.config.js.",
            ),
        });
        let reached = reach_app(vite).await;
        let Err(refused @ LinkError::Refused { .. }) = &reached else {
            panic!("called working: {reached:?}");
        };
        assert_eq!(
            refused,
            &LinkError::Refused {
                host: "a-b.trycloudflare.com".into(),
                status: 403,
                local_status: Some(200),
                dev_server: Some(DevServer::Vite),
                keep_host: false,
            }
        );
        assert!(refused.to_string().contains("Blocked request"), "{refused}");
        assert!(refused.fix().unwrap().contains("allowedHosts"));
    }

    /// An app whose `/` is a 404 on its own port too (an API) refuses
    /// nobody; an app that answers is reached; a tunnel that hands the
    /// hostname to drop's page server (its answer to the probe header) is
    /// not routed to the app.
    #[tokio::test]
    async fn an_apps_own_answers_are_told_from_refusals_and_from_drop() {
        let api = serve(|_| (404, "{\"error\":\"not found\"}"));
        assert_eq!(reach_app(api).await, Ok(()));
        let page = serve(|_| (200, "<html>hello</html>"));
        assert_eq!(reach_app(page).await, Ok(()));
        let drop_itself = serve(|head| match head.contains("x-drop-probe: n") {
            true => (200, "drop\n"),
            false => (404, "Not found"),
        });
        assert!(matches!(
            reach_app(drop_itself).await,
            Err(LinkError::NotRouted { .. })
        ));
    }

    /// An app that builds its redirect from the Host it is sent
    /// (`localhost:PORT`) sends the human to this machine: a broken link,
    /// whose fix is `--keep-host`; a relative redirect is fine.
    #[tokio::test]
    async fn a_redirect_to_this_machine_is_a_broken_link() {
        let to_localhost =
            serve_with_headers(|_| (302, "Location: http://localhost:7003/login\r\n", ""));
        let reached = reach_app(to_localhost).await;
        let Err(redirect @ LinkError::RedirectsToLocal { .. }) = &reached else {
            panic!("called working: {reached:?}");
        };
        assert!(redirect.fix().unwrap().contains("--keep-host --restart"));
        let relative = serve_with_headers(|_| (302, "Location: /login\r\n", ""));
        assert_eq!(reach_app(relative).await, Ok(()));
    }

    /// The app's own failures are the app's, not the edge's: one that
    /// answers 502 by itself, and one that answers nothing, say so and
    /// point at its output; a 502 only through the edge is the edge's.
    #[tokio::test]
    async fn an_app_that_fails_by_itself_is_not_blamed_on_the_edge() {
        let failing = serve(|_| (502, "upstream down"));
        assert!(matches!(
            reach_app(failing).await,
            Err(LinkError::AppFails { status: 502, .. })
        ));
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let gone = closed.local_addr().unwrap();
        drop(closed);
        let edge = serve(|_| (502, "bad gateway"));
        let reached = reach_app_at(edge, gone, false).await;
        let Err(silent @ LinkError::AppNotAnswering { .. }) = &reached else {
            panic!("{reached:?}");
        };
        assert!(silent.fix().unwrap().contains("drop logs"));
        let app = serve(|_| (200, "fine"));
        assert!(matches!(
            reach_app_at(edge, app, false).await,
            Err(LinkError::EdgeNotConnected { status: 502, .. })
        ));
    }

    /// An edge or resolver that answers without end is cut off at
    /// [`MAX_ANSWER`], not read into memory.
    #[tokio::test]
    async fn endless_answers_are_cut_off() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut head = [0u8; 1024];
                let _ = stream.read(&mut head);
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/dns-json\r\n\r\n");
                let chunk = vec![b'x'; 64 * 1024];
                while stream.write_all(&chunk).is_ok() {}
            }
        });
        let base = format!("http://127.0.0.1:{port}");
        let checker = PublicChecker::new(LinkConfig {
            doh_urls: vec![format!("{base}/dns-query")],
            edge: Some(base),
        });
        let origin = Origin::Daemon { nonce: "n".into() };
        let reached = checker.reach("https://a.trycloudflare.com", &origin).await;
        assert!(
            matches!(
                reached,
                Err(LinkError::EdgeNotConnected { status: 200, .. })
            ),
            "{reached:?}"
        );
        let resolved = checker.resolve("a.trycloudflare.com").await;
        let Err(LinkError::DnsUnreachable { detail }) = resolved else {
            panic!("{resolved:?}");
        };
        assert!(detail.contains("longer than"), "{detail}");
    }

    #[test]
    fn the_edge_is_found_at_the_parent_zone() {
        assert_eq!(
            parent_of("a-b-c.trycloudflare.com"),
            Some("trycloudflare.com")
        );
        assert_eq!(parent_of("app.example.co.uk"), Some("example.co.uk"));
        assert_eq!(parent_of("example.com"), None, "no zone above a zone");
        assert_eq!(parent_of("localhost"), None);
    }

    #[test]
    fn only_a_records_of_the_name_asked_count_as_answers() {
        let body = serde_json::json!({
            "Status": 0,
            "Answer": [
                {"name": "x.", "type": 5, "data": "y."},
                {"name": "y.", "type": 1, "data": "104.16.1.2"},
                {"name": "evil.", "type": 1, "data": "203.0.113.9"},
                {"name": "x.", "type": 1, "data": "0.0.0.0"},
            ]
        });
        assert_eq!(
            answers(&body, "x"),
            ["104.16.1.2".parse::<IpAddr>().unwrap()]
        );
        assert!(answers(&body, "other").is_empty());
        assert!(answers(&serde_json::json!({"Status": 3}), "x").is_empty());
    }

    #[test]
    fn the_edges_own_failures_are_told_from_an_apps_answers() {
        for status in [502, 504, 520, 524, 527, 530] {
            assert!(edge_failure(status), "{status}");
        }
        for status in [200, 301, 401, 404, 500, 503] {
            assert!(!edge_failure(status), "{status}");
        }
    }
}
