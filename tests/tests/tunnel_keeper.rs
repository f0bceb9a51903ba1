//! The daemon's tunnel keeper (drop-core) with the real cloudflared
//! provider and the fake cloudflared: what it records is what the tunnel
//! processes themselves printed.

use std::sync::Arc;
use std::time::Duration;

use drop_core::supervise::{TunnelKeeper, TunnelOutcome};
use drop_registry::{Home, Record, RegistryError, TunnelPhase};
use drop_tests::tunnel::FakeCloudflared;
use drop_tunnel::Cloudflared;

/// Restarting an app's tunnel again and again (the new one opened while
/// the old one closes, on the same port) records the new process's own URL
/// every time, never the one before.
#[tokio::test]
async fn every_restart_of_an_app_tunnel_records_its_own_new_url() {
    let fake = FakeCloudflared::new();
    let home_dir = tempfile::tempdir().unwrap();
    let home = Home::new(home_dir.path());
    home.ensure().unwrap();
    home.registry()
        .update(|pages| {
            let app = Record::app(home_dir.path().to_owned(), true, "serve".into(), 8080);
            pages.insert("app1".into(), app);
            Ok::<_, RegistryError>(())
        })
        .unwrap();
    let mut config = fake.config();
    // No drain on close: twenty restarts in seconds, not minutes.
    config.stop_grace = Duration::from_secs(1);
    let provider = Cloudflared::new(config);
    let marker = provider.config_file();
    let keeper = TunnelKeeper::new(home.clone(), Arc::new(provider), marker, None);
    let mut seen = Vec::new();
    for round in 0..20 {
        let TunnelOutcome::Up { url } = keeper.open_app("app1", 8080).await else {
            panic!("round {round}: not up");
        };
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
