//! Where pages are reached: the server's base URL and each page's URL,
//! built from saved state only, so listing stays fast and offline.

use std::net::IpAddr;

use drop_registry::{Record, ServerState};

/// The port when none was ever chosen.
pub const DEFAULT_PORT: u16 = 8080;

/// The server's base URL, `http://HOST:PORT`: the saved host, else this
/// machine's outward address, else loopback.
pub fn server_base(state: Option<&ServerState>) -> String {
    let port = state.map_or(DEFAULT_PORT, |s| s.port);
    let host = state
        .and_then(|s| s.host.clone())
        .unwrap_or_else(outward_host);
    format!("http://{}:{port}", bracket_ipv6(&host))
}

/// An app's URL: the server's host on the app's own port, `http://HOST:PORT/`.
pub fn app_url(base: &str, record: &Record) -> String {
    let host = base.rsplit_once(':').map_or(base, |(host, _)| host);
    format!("{host}:{}/", record.port.unwrap_or_default())
}

fn outward_host() -> String {
    drop_nat::outward_ip().map_or("127.0.0.1".into(), |ip| ip.to_string())
}

/// A page's URL: `BASE/p/<id>/`, with `<name>/` after it when it has one.
pub fn page_url(base: &str, id: &str, record: &Record) -> String {
    if record.name.is_empty() {
        format!("{base}/p/{id}/")
    } else {
        format!("{base}/p/{id}/{}/", record.name)
    }
}

fn bracket_ipv6(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => host.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(host: &str, port: u16) -> ServerState {
        ServerState {
            pid: None,
            start_time: None,
            port,
            host: Some(host.into()),
            bind: "0.0.0.0".into(),
            started_at: String::new(),
            extra: Default::default(),
        }
    }

    #[test]
    fn base_uses_saved_host_and_port_and_brackets_ipv6() {
        assert_eq!(
            server_base(Some(&state("203.0.113.5", 9000))),
            "http://203.0.113.5:9000"
        );
        assert_eq!(server_base(Some(&state("::1", 80))), "http://[::1]:80");
        assert_eq!(
            server_base(Some(&state("example.org", 8080))),
            "http://example.org:8080"
        );
    }

    #[test]
    fn app_urls_use_the_server_host_and_the_app_port() {
        let app = Record::app("/x".into(), true, "serve".into(), 5000);
        assert_eq!(
            app_url("http://203.0.113.5:8080", &app),
            "http://203.0.113.5:5000/"
        );
        assert_eq!(app_url("http://[::1]:8080", &app), "http://[::1]:5000/");
    }

    #[test]
    fn page_urls_carry_the_slug_when_named() {
        let mut record = Record::static_page("/x".into(), false);
        assert_eq!(page_url("http://h:1", "abc", &record), "http://h:1/p/abc/");
        record.name = "docs".into();
        assert_eq!(
            page_url("http://h:1", "abc", &record),
            "http://h:1/p/abc/docs/"
        );
    }
}
