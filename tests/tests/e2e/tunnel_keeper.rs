//! The daemon's tunnel keeper (drop-core) with the real cloudflared
//! provider and the fake cloudflared: what it records is what the tunnel
//! processes themselves printed.

use std::sync::Arc;
use std::time::Duration;

use drop_core::supervise::{
    AppTarget, LinkCheck, LinkConfig, PublicChecker, TunnelKeeper, TunnelOutcome, TunnelSource,
};
use drop_registry::{Home, Record, RegistryError, TunnelPhase};
use drop_tests::EchoServer;
use drop_tests::dns::{Edge, FakeRecords, PublicDns};
use drop_tests::tunnel::FakeCloudflared;
use drop_tunnel::Cloudflared;

/// Restarting an app's tunnel again and again (the new one opened while
/// the old one closes, on the same port) records the new process's own URL
/// every time, never the one before, each checked through public DNS and
/// the edge (local stand-ins) before it is handed out.
#[tokio::test]
async fn every_restart_of_an_app_tunnel_records_its_own_new_url() {
    let fake = FakeCloudflared::new();
    let app = EchoServer::start("an app");
    let fakes = FakeRecords::new(&[fake.record_path()]);
    let (dns, edge) = (
        PublicDns::start(fakes.clone(), Duration::ZERO),
        Edge::start(fakes),
    );
    let links = LinkCheck {
        checker: Arc::new(PublicChecker::new(LinkConfig {
            doh_urls: vec![dns.url()],
            edge: Some(edge.url()),
        })),
        probes: Arc::default(),
        bound: Duration::from_secs(30),
        dns_settle: Duration::ZERO,
    };
    let home_dir = tempfile::tempdir().unwrap();
    let home = Home::new(home_dir.path());
    home.ensure().unwrap();
    home.registry()
        .update(|pages| {
            let app = Record::app(home_dir.path().to_owned(), true, "serve".into(), app.port);
            pages.insert("app1".into(), app);
            Ok::<_, RegistryError>(())
        })
        .unwrap();
    let mut config = fake.config();
    // No drain on close: twenty restarts in seconds, not minutes.
    config.stop_grace = Duration::from_secs(1);
    let provider = Cloudflared::new(config);
    let marker = provider.config_file().parent().unwrap().to_owned();
    let source = TunnelSource::quick(Arc::new(provider));
    let keeper = TunnelKeeper::new(home.clone(), source, marker, None, links);
    let mut seen = Vec::new();
    for round in 0..20 {
        let TunnelOutcome::Up { url } = keeper
            .open_app(
                "app1",
                AppTarget {
                    local: ([127, 0, 0, 1], app.port).into(),
                    keep_host: false,
                },
            )
            .await
        else {
            panic!("round {round}: not up");
        };
        assert!(record_verified(&home), "round {round}");
        let record = home.registry().load().unwrap().get("app1").unwrap().clone();
        assert_eq!(record.tunnel_state, Some(TunnelPhase::Up));
        assert_eq!(
            record.tunnel_url.as_deref(),
            Some(url.as_str()),
            "round {round}"
        );
        let pid = record.tunnel_pid.expect("a tunnel pid");
        assert_eq!(
            fake.url_of(pid).as_deref(),
            Some(url.as_str()),
            "round {round}: the URL its own process printed"
        );
        assert!(!seen.contains(&url), "round {round}: an old URL again");
        seen.push(url);
    }
    keeper.close_all().await;
    fake.assert_no_process_left();
}

fn record_verified(home: &Home) -> bool {
    let record = home.registry().load().unwrap().get("app1").unwrap().clone();
    record.tunnel_verified_at.is_some()
}
