//! The cloudflared provider against the fake: how it runs cloudflared, when
//! it calls a tunnel up, each typed failure, and that closing leaves nothing.

use std::os::unix::fs::symlink;
use std::time::{Duration, Instant};

use drop_tests::tunnel::{FakeCloudflared, alive, fake_cloudflared_bin, local};
use drop_tunnel::{Cloudflared, CloudflaredConfig, TunnelError, TunnelProvider};

/// A failure must be reported long before the start deadline.
const FAST: Duration = Duration::from_secs(2);

fn is_quick_tunnel_url(url: &str) -> bool {
    url.strip_prefix("https://")
        .and_then(|rest| rest.strip_suffix(".trycloudflare.com"))
        .is_some_and(|label| label.split('-').count() == 4)
}

/// The tunnel comes up with the fake's URL, cloudflared ran with the flags
/// the notes recommend, and `close` ends it gracefully, twice without harm.
#[tokio::test]
async fn opens_with_the_recommended_flags_and_closes_gracefully() {
    let fake = FakeCloudflared::new();
    let mut tunnel = fake.provider().open(local()).await.expect("tunnel up");

    assert!(is_quick_tunnel_url(tunnel.url()), "{}", tunnel.url());
    assert_eq!(fake.urls(), [tunnel.url()]);
    let pid = tunnel.pid().expect("a pid");
    assert!(alive(pid));

    let args = &fake.starts()[0];
    let config = fake.state_dir().join("cloudflared-empty.yml");
    assert_eq!(
        &args[..5],
        [
            "tunnel",
            "--url",
            "http://127.0.0.1:8080",
            "--no-autoupdate",
            "--config"
        ]
    );
    assert_eq!(args[5], config.to_str().unwrap());
    assert_eq!(
        std::fs::read(&config).unwrap(),
        b"",
        "an empty config of our own"
    );
    assert_eq!(args[6], "--metrics");
    assert!(
        args[7].starts_with("127.0.0.1:"),
        "metrics on loopback: {}",
        args[7]
    );
    assert!(
        fake.log().contains("Registered tunnel connection"),
        "up means registered"
    );
    assert!(tunnel.healthy().await);

    tunnel.close().await;
    assert!(!alive(pid), "closed means gone");
    assert!(
        fake.log()
            .contains("Initiating graceful shutdown due to signal terminated")
    );
    assert!(fake.log().contains("Metrics server stopped"));
    tunnel.close().await;
}

/// A printed URL is not yet reachable: `open` waits for the registration.
#[tokio::test]
async fn waits_for_the_registered_connection_before_calling_it_up() {
    let fake = FakeCloudflared::new().env("FAKE_CLOUDFLARED_REGISTER_DELAY_MS", "1000");
    let started = Instant::now();
    let mut tunnel = fake.provider().open(local()).await.expect("tunnel up");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    tunnel.close().await;
}

/// Without a metrics server the URL comes from the box in the log, and the
/// `Registered` line says when it is up.
#[tokio::test]
async fn reads_the_url_from_the_log_without_a_metrics_server() {
    let fake = FakeCloudflared::new().env("FAKE_CLOUDFLARED_NO_METRICS", "1");
    let mut tunnel = fake.provider().open(local()).await.expect("tunnel up");
    assert_eq!(fake.urls(), [tunnel.url()]);
    assert!(
        tunnel.healthy().await,
        "no way to tell, and the process lives"
    );
    tunnel.close().await;
}

/// The box of cloudflared before 2021.8.4 gives the URL too.
#[tokio::test]
async fn reads_the_url_from_the_old_box() {
    let fake = FakeCloudflared::new()
        .env("FAKE_CLOUDFLARED_NO_METRICS", "1")
        .env("FAKE_CLOUDFLARED_OLD_BOX", "1");
    let mut tunnel = fake.provider().open(local()).await.expect("tunnel up");
    assert!(
        fake.log()
            .contains("Your Quick Tunnel has been created! Visit it at:")
    );
    assert_eq!(fake.urls(), [tunnel.url()]);
    tunnel.close().await;
}

/// The 2026.5 pre-checks box, which names `api.trycloudflare.com`, is not
/// taken for the URL box.
#[tokio::test]
async fn the_prechecks_box_does_not_change_the_url() {
    let fake = FakeCloudflared::new()
        .env("FAKE_CLOUDFLARED_NO_METRICS", "1")
        .env("FAKE_CLOUDFLARED_PRECHECKS", "1");
    let mut tunnel = fake.provider().open(local()).await.expect("tunnel up");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(fake.log().contains("CONNECTIVITY PRE-CHECKS"));
    assert_eq!(fake.urls(), [tunnel.url()]);
    tunnel.close().await;
}

/// The 429 unmarshal lines are a rate limit, reported at once.
#[tokio::test]
async fn the_429_unmarshal_error_is_a_rate_limit() {
    let fake = FakeCloudflared::new().env("FAKE_CLOUDFLARED_MODE", "rate-limit");
    let started = Instant::now();
    let err = fake.provider().open(local()).await.unwrap_err();
    assert!(matches!(err, TunnelError::RateLimited), "{err:?}");
    assert!(started.elapsed() < FAST, "{:?}", started.elapsed());
    assert!(err.to_string().contains("rate limited"), "{err}");
    fake.assert_no_process_left();
}

/// A failed quick-tunnel request is "no network", with cloudflared's reason.
#[tokio::test]
async fn a_failed_quick_tunnel_request_is_no_network() {
    let fake = FakeCloudflared::new().env("FAKE_CLOUDFLARED_MODE", "no-network");
    let started = Instant::now();
    let err = fake.provider().open(local()).await.unwrap_err();
    let TunnelError::NoNetwork { detail } = &err else {
        panic!("no network, got {err:?}");
    };
    assert!(detail.ends_with("no such host"), "{detail}");
    assert!(started.elapsed() < FAST);
}

/// Any other early exit carries the exit code and the end of the log.
#[tokio::test]
async fn an_unexplained_exit_carries_its_code_and_log_tail() {
    let fake = FakeCloudflared::new().env("FAKE_CLOUDFLARED_MODE", "uuid");
    let started = Instant::now();
    let err = fake.provider().open(local()).await.unwrap_err();
    let TunnelError::ExitedEarly { code, log_tail } = &err else {
        panic!("exited early, got {err:?}");
    };
    assert_eq!(*code, Some(1));
    assert!(
        log_tail.ends_with("failed to parse quick Tunnel ID: invalid UUID length: 0"),
        "{log_tail}"
    );
    assert!(started.elapsed() < FAST);
}

/// A process that dies after printing its URL but before registering is
/// an early exit, not a tunnel.
#[tokio::test]
async fn dying_before_registering_is_an_early_exit() {
    let fake = FakeCloudflared::new()
        .env("FAKE_CLOUDFLARED_REGISTER_DELAY_MS", "5000")
        .env("FAKE_CLOUDFLARED_EXIT_AFTER_SECS", "0.4")
        .env("FAKE_CLOUDFLARED_EXIT_CODE", "3");
    let started = Instant::now();
    let err = fake.provider().open(local()).await.unwrap_err();
    assert!(
        matches!(err, TunnelError::ExitedEarly { code: Some(3), .. }),
        "{err:?}"
    );
    assert!(started.elapsed() < FAST);
}

/// A cloudflared stuck in its request gives no URL: an error at the
/// deadline with its log, and the process is ended.
#[tokio::test]
async fn a_hung_start_gives_no_url_at_the_deadline() {
    let fake = FakeCloudflared::new().env("FAKE_CLOUDFLARED_MODE", "hang");
    let provider = Cloudflared::new(CloudflaredConfig {
        start_timeout: Duration::from_millis(800),
        ..fake.config()
    });
    let started = Instant::now();
    let err = provider.open(local()).await.unwrap_err();
    let TunnelError::NoUrl { log_tail, .. } = &err else {
        panic!("no URL, got {err:?}");
    };
    assert!(
        log_tail.ends_with("Requesting new quick Tunnel on trycloudflare.com..."),
        "{log_tail}"
    );
    assert!(started.elapsed() < Duration::from_millis(800) + FAST);
    fake.assert_no_process_left();
}

/// A URL that never registers (UDP blocked) is not up: a distinct error
/// that names the URL.
#[tokio::test]
async fn a_url_without_a_connection_is_not_ready_at_the_deadline() {
    let fake = FakeCloudflared::new().env("FAKE_CLOUDFLARED_MODE", "quic-retry");
    let provider = Cloudflared::new(CloudflaredConfig {
        start_timeout: Duration::from_millis(800),
        ..fake.config()
    });
    let err = provider.open(local()).await.unwrap_err();
    let TunnelError::NotReady { url, log_tail, .. } = &err else {
        panic!("not ready, got {err:?}");
    };
    assert_eq!(fake.urls(), [url.as_str()]);
    assert!(
        log_tail.contains("Failed to dial a quic connection"),
        "{log_tail}"
    );
    fake.assert_no_process_left();
}

/// No binary anywhere: the error tells the user to run the installer.
#[tokio::test]
async fn a_missing_binary_says_to_run_the_installer() {
    let fake = FakeCloudflared::new();
    let provider = Cloudflared::new(CloudflaredConfig {
        binary: Some(fake.dir.path().join("nope")),
        home_binary: Some(fake.dir.path().join("bin/cloudflared")),
        ..fake.config()
    });
    let err = provider.open(local()).await.unwrap_err();
    assert!(matches!(err, TunnelError::NotFound));
    assert_eq!(err.to_string(), "cloudflared not found. Run ./install.sh");
}

/// `cloudflared` on the search path is found, and so is the home binary.
#[tokio::test]
async fn finds_cloudflared_on_the_path_then_in_the_home() {
    let fake = FakeCloudflared::new();
    let bin_dir = fake.dir.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    let link = bin_dir.join("cloudflared");
    symlink(fake_cloudflared_bin(), &link).unwrap();

    let on_path = CloudflaredConfig {
        binary: None,
        search_path: Some(std::env::join_paths([fake.dir.path().join("empty"), bin_dir]).unwrap()),
        ..fake.config()
    };
    assert_eq!(
        Cloudflared::new(on_path.clone()).find_binary().unwrap(),
        link
    );
    let mut tunnel = Cloudflared::new(on_path)
        .open(local())
        .await
        .expect("tunnel up");
    tunnel.close().await;

    let at_home = CloudflaredConfig {
        binary: None,
        home_binary: Some(link.clone()),
        ..fake.config()
    };
    assert_eq!(Cloudflared::new(at_home).find_binary().unwrap(), link);
}

/// A cloudflared that ignores SIGTERM is killed after the grace period,
/// and what it started goes with it.
#[tokio::test]
async fn close_kills_what_ignores_sigterm_and_what_it_started() {
    let fake = FakeCloudflared::new()
        .env("FAKE_CLOUDFLARED_IGNORE_TERM", "1")
        .env("FAKE_CLOUDFLARED_CHILD", "1");
    let provider = Cloudflared::new(CloudflaredConfig {
        stop_grace: Duration::from_millis(300),
        ..fake.config()
    });
    let mut tunnel = provider.open(local()).await.expect("tunnel up");
    assert_eq!(fake.pids().len(), 2, "the fake and its child");
    let started = Instant::now();
    tunnel.close().await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    for pid in fake.pids() {
        assert!(!alive(pid), "process {pid} survived close");
    }
}

/// Dropping a tunnel without closing it still ends its process group.
#[tokio::test]
async fn dropping_a_tunnel_ends_its_process_group() {
    let fake = FakeCloudflared::new().env("FAKE_CLOUDFLARED_CHILD", "1");
    let tunnel = fake.provider().open(local()).await.expect("tunnel up");
    drop(tunnel);
    fake.assert_no_process_left();
}

/// A live process whose edge connection is gone is not healthy.
#[tokio::test]
async fn a_lost_connection_is_unhealthy_while_the_process_lives() {
    let fake = FakeCloudflared::new().env("FAKE_CLOUDFLARED_UNREADY_AFTER_MS", "200");
    let mut tunnel = fake.provider().open(local()).await.expect("tunnel up");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(alive(tunnel.pid().unwrap()));
    assert!(!tunnel.healthy().await);
    tunnel.close().await;
}
