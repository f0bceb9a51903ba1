//! Where pages are reached, built from saved state only (`server.json`,
//! `tunnel.json`, the records), so listing stays fast and offline. While the
//! server is tunneled, static pages are on its tunnel URL; an app is on its
//! own tunnel URL when it has one, else on `http://HOST:PORT/`.

use std::net::IpAddr;

use drop_core::daemon::{DEFAULT_PORT, url_host};
use drop_registry::{
    Home, Record, RegistryError, ServerState, TunnelPhase, TunnelReason, TunnelState,
};

use crate::running::running_server;

/// Who can open a URL, as `--json` says it (`reach`) and text notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// A public address (or a host name the user chose): anyone.
    Public,
    /// A tunnel URL: anyone.
    Tunnel,
    /// A private address (home or office network, CGNAT, link-local):
    /// only machines on the same network.
    LocalNetwork,
    /// A loopback address: only this machine.
    ThisMachine,
}

impl Reach {
    /// Who can open a URL whose host is `host` and that is not a tunnel's.
    pub fn of_host(host: &str) -> Self {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match host.parse::<IpAddr>() {
            Ok(ip) if ip.is_loopback() => Reach::ThisMachine,
            Ok(ip) if !drop_nat::could_be_public(ip) => Reach::LocalNetwork,
            _ if host.eq_ignore_ascii_case("localhost") => Reach::ThisMachine,
            _ => Reach::Public,
        }
    }

    /// Its name in `--json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reach::Public => "public",
            Reach::Tunnel => "tunnel",
            Reach::LocalNetwork => "local-network",
            Reach::ThisMachine => "this-machine",
        }
    }

    /// The line under a URL that opens only on this machine's network
    /// (a loopback URL was asked for by name, and says so itself).
    pub fn note(self) -> Option<&'static str> {
        (self == Reach::LocalNetwork).then_some(
            "  (local network only: it opens only on a machine on this network; 'drop start --tunnel' gives a public URL)",
        )
    }

    /// The tag in listings of a URL that opens only on this machine's network.
    pub fn tag(self) -> Option<&'static str> {
        (self == Reach::LocalNetwork).then_some("[local network]")
    }
}

/// The URLs of one drop home as things stand.
#[derive(Debug, Clone)]
pub struct Urls {
    local_base: String,
    tunnel_base: Option<String>,
    /// The server's tunnel, while it runs but has no URL to hand out yet
    /// (starting, verifying, down…): local URLs stand in until it is up.
    pending: Option<TunnelPhase>,
    /// NAT detection found the outward address not to be the external one.
    behind_nat: bool,
}

impl Urls {
    /// From a server state and the server's tunnel, if any.
    pub fn new(state: Option<&ServerState>, tunnel: Option<&TunnelState>) -> Self {
        let tunnel_base = tunnel
            .and_then(TunnelState::current_url)
            .map(|url| url.trim_end_matches('/').to_owned());
        let tunneled = state.is_some_and(|s| s.tunnel);
        let pending = tunnel
            .filter(|t| tunneled && t.current_url().is_none())
            .map(|t| t.state.clone());
        Urls {
            local_base: local_base(state),
            tunnel_base,
            pending,
            behind_nat: state.is_some_and(|s| s.tunnel_reason == Some(TunnelReason::BehindNat)),
        }
    }

    /// From the files of `home`. A tunnel counts only while the server that
    /// keeps it runs: a `tunnel.json` left by a killed server is stale.
    pub fn load(home: &Home) -> Result<Self, RegistryError> {
        // A home only the Python drop used: the address of its URLs.
        let state = home
            .load_server_state()?
            .or_else(|| home.legacy_files().any().then(|| legacy_state(home)));
        let running = running_server(state.as_ref()).is_some();
        let tunnel = home.load_tunnel_state()?.filter(|_| running);
        Ok(Urls::new(state.as_ref(), tunnel.as_ref()))
    }

    /// Where static pages are: the tunnel URL while it is up.
    pub fn base(&self) -> &str {
        self.tunnel_base.as_deref().unwrap_or(&self.local_base)
    }

    /// The server's own address, `http://HOST:PORT`.
    pub fn local_base(&self) -> &str {
        &self.local_base
    }

    /// The host in local URLs (the chosen one, else this machine's outward
    /// address), without brackets.
    pub fn host(&self) -> String {
        let base = self.local_base.trim_start_matches("http://");
        let host = base.rsplit_once(':').map_or(base, |(host, _)| host);
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned()
    }

    /// Whether pages are reached through the server's tunnel.
    pub fn tunneled(&self) -> bool {
        self.tunnel_base.is_some()
    }

    /// A page's URL: `BASE/p/<id>/`, with `<name>/` after it when it has one.
    pub fn page(&self, id: &str, record: &Record) -> String {
        if record.name.is_empty() {
            format!("{}/p/{id}/", self.base())
        } else {
            format!("{}/p/{id}/{}/", self.base(), record.name)
        }
    }

    /// An app's URL: its own tunnel's while it has one, else the server's
    /// host on the app's port.
    pub fn app(&self, record: &Record) -> String {
        match record.current_tunnel_url() {
            Some(url) => url.to_owned(),
            None => self.app_local(record),
        }
    }

    /// An app's own address, `http://HOST:PORT/`.
    pub fn app_local(&self, record: &Record) -> String {
        let base = &self.local_base;
        let host = base
            .rsplit_once(':')
            .map_or(base.as_str(), |(host, _)| host);
        format!("{host}:{}/", record.port.unwrap_or_default())
    }

    /// Who can open the server's URL (and static pages').
    pub fn reach(&self) -> Reach {
        match self.tunneled() {
            true => Reach::Tunnel,
            false => self.local_reach(),
        }
    }

    /// Who can open the URL of a record.
    pub fn reach_of(&self, record: &Record) -> Reach {
        match (record.is_app(), record.current_tunnel_url()) {
            (true, Some(_)) => Reach::Tunnel,
            (true, None) => self.local_reach(),
            (false, _) => self.reach(),
        }
    }

    /// Who can open a local URL: behind NAT, the outward address is not
    /// the one the internet sees, whatever it looks like.
    fn local_reach(&self) -> Reach {
        match Reach::of_host(&self.host()) {
            Reach::Public if self.behind_nat => Reach::LocalNetwork,
            reach => reach,
        }
    }

    /// The line under a URL of this `reach`, when the human should know
    /// something: a tunnel not up yet (the local URL stands in), or a URL
    /// for the local network only.
    pub fn reach_note(&self, reach: Reach) -> Option<String> {
        match (&self.pending, reach) {
            (Some(phase), Reach::LocalNetwork | Reach::Public) => Some(format!(
                "  (the tunnel is {}: this local URL stands in until it is up; 'drop status' shows the public URL then)",
                phase.words()
            )),
            _ => reach.note().map(str::to_owned),
        }
    }

    /// The URL of any record.
    pub fn of(&self, id: &str, record: &Record) -> String {
        if record.is_app() {
            self.app(record)
        } else {
            self.page(id, record)
        }
    }
}

/// The state a first start begins from: in a home the Python drop used,
/// its port and host, so the URLs it handed out keep working.
pub fn legacy_state(home: &Home) -> ServerState {
    let legacy = home.legacy_files();
    ServerState {
        host: legacy.host,
        ..ServerState::new(legacy.port.unwrap_or(DEFAULT_PORT))
    }
}

/// `http://HOST:PORT`: the saved host, else this machine's outward address,
/// else loopback.
fn local_base(state: Option<&ServerState>) -> String {
    let port = state.map_or(DEFAULT_PORT, |s| s.port);
    let outward = drop_nat::outward_ip().map(|ip| ip.to_string());
    let host = url_host(state.and_then(|s| s.host.as_deref()), outward.as_deref());
    format!("http://{}:{port}", bracket_ipv6(&host))
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

    #[test]
    fn reach_says_who_can_open_a_url() {
        assert_eq!(Reach::of_host("8.8.8.8"), Reach::Public);
        assert_eq!(Reach::of_host("drop.example.com"), Reach::Public);
        assert_eq!(Reach::of_host("192.168.1.50"), Reach::LocalNetwork);
        assert_eq!(Reach::of_host("10.0.0.7"), Reach::LocalNetwork);
        assert_eq!(Reach::of_host("100.64.0.1"), Reach::LocalNetwork, "CGNAT");
        assert_eq!(Reach::of_host("[fd00::1]"), Reach::LocalNetwork);
        assert_eq!(Reach::of_host("127.0.0.1"), Reach::ThisMachine);
        assert_eq!(Reach::of_host("[::1]"), Reach::ThisMachine);
        assert_eq!(Reach::of_host("localhost"), Reach::ThisMachine);
        assert_eq!(Reach::LocalNetwork.tag(), Some("[local network]"));
        assert_eq!(Reach::Public.note(), None);
    }
    use drop_registry::TunnelPhase;

    fn state(host: &str, port: u16) -> ServerState {
        ServerState {
            host: Some(host.into()),
            ..ServerState::new(port)
        }
    }

    fn tunnel(url: &str, state: TunnelPhase) -> TunnelState {
        TunnelState {
            url: url.into(),
            state,
            ..TunnelState::default()
        }
    }

    #[test]
    fn base_uses_saved_host_and_port_and_brackets_ipv6() {
        assert_eq!(
            Urls::new(Some(&state("203.0.113.5", 9000)), None).base(),
            "http://203.0.113.5:9000"
        );
        assert_eq!(
            Urls::new(Some(&state("::1", 80)), None).base(),
            "http://[::1]:80"
        );
        assert_eq!(Urls::new(Some(&state("::1", 80)), None).host(), "::1");
        assert_eq!(
            Urls::new(Some(&state("example.org", 80)), None).host(),
            "example.org"
        );
        assert_eq!(
            Urls::new(Some(&state("example.org", 8080)), None).base(),
            "http://example.org:8080"
        );
    }

    #[test]
    fn pages_move_to_the_tunnel_only_while_it_is_up() {
        let s = state("192.168.1.50", 8080);
        let page = Record::static_page("/x".into(), false);
        let up = tunnel("https://random-words.trycloudflare.com", TunnelPhase::Up);
        assert_eq!(
            Urls::new(Some(&s), Some(&up)).page("def456", &page),
            "https://random-words.trycloudflare.com/p/def456/"
        );
        let down = tunnel("", TunnelPhase::Down);
        assert_eq!(
            Urls::new(Some(&s), Some(&down)).page("def456", &page),
            "http://192.168.1.50:8080/p/def456/"
        );
    }

    #[test]
    fn apps_use_their_own_tunnel_or_port() {
        let urls = Urls::new(Some(&state("203.0.113.5", 8080)), None);
        let mut app = Record::app("/x".into(), true, "serve".into(), 5000);
        assert_eq!(urls.app(&app), "http://203.0.113.5:5000/");
        app.tunnel_url = Some("https://other-random.trycloudflare.com".into());
        app.tunnel_state = Some(TunnelPhase::Up);
        assert_eq!(urls.app(&app), "https://other-random.trycloudflare.com");
        assert_eq!(
            Urls::new(Some(&state("::1", 8080)), None).app_local(&app),
            "http://[::1]:5000/"
        );
    }

    #[test]
    fn page_urls_carry_the_slug_when_named() {
        let urls = Urls::new(Some(&state("h", 1)), None);
        let mut record = Record::static_page("/x".into(), false);
        assert_eq!(urls.page("abc", &record), "http://h:1/p/abc/");
        record.name = "docs".into();
        assert_eq!(urls.page("abc", &record), "http://h:1/p/abc/docs/");
    }
}
