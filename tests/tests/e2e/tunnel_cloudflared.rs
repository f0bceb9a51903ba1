//! The cloudflared provider against the fake: how it runs cloudflared, when
//! it calls a tunnel up, each typed failure, the fallback to HTTP/2, and
//! that closing leaves nothing.

use std::os::unix::fs::symlink;
use std::time::{Duration, Instant};

use drop_tests::tunnel::{FakeCloudflared, alive, fake_cloudflared_bin, gone_within, local};
use drop_tests::wait_for;
use drop_tunnel::{Cloudflared, OriginHost, Protocol, TunnelError};

/// A failure must be reported long before the start deadline.
const FAST: Duration = Duration::from_secs(2);

fn is_quick_tunnel_url(url: &str) -> bool {
    url.strip_prefix("https://")
        .and_then(|rest| rest.strip_suffix(".trycloudflare.com"))
        .is_some_and(|label| label.split('-').count() == 4)
}

/// The tunnel comes up with the fake's URL, cloudflared ran with the flags
/// drop means (a fake that refuses unknown flags took them all), a config
/// of our own that parses, a metrics port of its choosing, and `close` ends
/// it gracefully, twice without harm.
#[tokio::test]
async fn opens_with_the_recommended_flags_and_closes_gracefully() {
    let fake = FakeCloudflared::new();
    let provider = fake.provider();
    let mut tunnel = provider.open(local()).await.expect("tunnel up");

    assert!(is_quick_tunnel_url(tunnel.url()), "{}", tunnel.url());
    assert_eq!(fake.urls(), [tunnel.url()]);
    assert_eq!(tunnel.protocol(), Some(Protocol::Quic));
    let pid = tunnel.pid().expect("a pid");
    assert!(alive(pid));

    let args = &fake.starts()[0];
    let config = provider.config_file();
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
        &args[6..10],
        ["--metrics", "127.0.0.1:0", "--loglevel", "info"]
    );
    assert_eq!(
        &args[10..],
        ["--grace-period", "1000ms"],
        "2 s to stop, less 1 s"
    );
    let log = fake.log();
    assert!(!log.contains("was empty"), "the config parses: {log}");
    assert!(!log.contains("Cannot determine default configuration path"));
    assert!(
        log.contains("Settings: map[config:") && log.contains("protocol:quic"),
        "{log}"
    );
    assert!(
        log.contains("Registered tunnel connection"),
        "up means registered"
    );
    assert!(
        tunnel.healthy().await,
        "health from the metrics port it logged"
    );

    tunnel.close().await;
    assert!(!alive(pid), "closed means gone");
    assert!(
        fake.log()
            .contains("Initiating graceful shutdown due to signal terminated")
    );
    assert!(fake.log().contains("Metrics server stopped"));
    tunnel.close().await;
}

/// Asked to, cloudflared gives the local server `localhost:PORT` as its
/// Host (`--http-host-header`, a flag the fake knows as the real one does:
/// an unknown one would be refused).
#[tokio::test]
async fn the_local_server_gets_the_host_asked_for() {
    let fake = FakeCloudflared::new();
    let mut config = fake.config();
    config.origin_host = OriginHost::Localhost;
    let mut tunnel = Cloudflared::new(config)
        .open(local())
        .await
        .expect("tunnel up");
    let pid = tunnel.pid().unwrap();
    let host_header = fake
        .records()
        .into_iter()
        .find(|r| r["pid"] == pid && r.get("origin").is_some())
        .map(|r| r["host_header"].clone());
    assert_eq!(host_header, Some("localhost:8080".into()));
    assert!(fake.log().contains("http-host-header:localhost:8080"));
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

/// The connectivity pre-checks box of 2026.5+ is not taken for the URL box.
#[tokio::test]
async fn the_prechecks_box_does_not_change_the_url() {
    let fake = FakeCloudflared::new()
        .env("FAKE_CLOUDFLARED_NO_METRICS", "1")
        .env("FAKE_CLOUDFLARED_PRECHECKS_MS", "100");
    let mut tunnel = fake.provider().open(local()).await.expect("tunnel up");
    // Its last line comes after the box.
    wait_for("the pre-checks", Duration::from_secs(10), || {
        fake.log().contains("precheck complete").then_some(())
    });
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
    let mut config = fake.config();
    config.start_timeout = Duration::from_millis(800);
    let provider = Cloudflared::new(config);
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

/// The quick-tunnel request gives up after its own timeout, as the real
/// one does after 15 s: no network, reported at once.
#[tokio::test]
async fn a_request_that_times_out_is_no_network() {
    let fake = FakeCloudflared::new()
        .env("FAKE_CLOUDFLARED_MODE", "hang")
        .env("FAKE_CLOUDFLARED_REQUEST_TIMEOUT_MS", "300");
    let started = Instant::now();
    let err = fake.provider().open(local()).await.unwrap_err();
    let TunnelError::NoNetwork { detail } = &err else {
        panic!("no network, got {err:?}");
    };
    assert!(
        detail.contains("timeout awaiting response headers"),
        "{detail}"
    );
    assert!(started.elapsed() < FAST);
}

/// "No network" as the real cloudflared also words it: no route off the
/// machine (`connect: network is unreachable`, at once) and a resolver
/// that never answers (`i/o timeout`, after its 10 s, shortened here).
#[tokio::test]
async fn an_unreachable_network_and_a_silent_resolver_are_no_network() {
    let endings = [
        ("unreachable", "connect: network is unreachable"),
        ("dns-timeout", "i/o timeout"),
    ];
    for (mode, ending) in endings {
        let fake = FakeCloudflared::new()
            .env("FAKE_CLOUDFLARED_MODE", mode)
            .env("FAKE_CLOUDFLARED_DNS_TIMEOUT_MS", "300");
        let started = Instant::now();
        let err = fake.provider().open(local()).await.unwrap_err();
        let TunnelError::NoNetwork { detail } = &err else {
            panic!("{mode}: no network, got {err:?}");
        };
        assert!(detail.ends_with(ending), "{mode}: {detail}");
        assert!(started.elapsed() < FAST, "{mode}: {:?}", started.elapsed());
    }
}

/// The edge's SRV lookup failing after the URL box (cloudflared then exits
/// 1 by itself) is a network problem, the edge unreachable through DNS,
/// not an unexplained early exit.
#[tokio::test]
async fn a_failed_edge_srv_lookup_is_a_network_problem_not_an_early_exit() {
    let fake = FakeCloudflared::new().env("FAKE_CLOUDFLARED_MODE", "no-srv");
    let err = fake.provider().open(local()).await.unwrap_err();
    assert!(
        !matches!(err, TunnelError::ExitedEarly { .. }),
        "the edge unreachable through DNS, got {err:?}"
    );
    assert!(err.to_string().to_lowercase().contains("dns"), "{err}");
    assert!(!err.is_permanent(), "the network may come back: {err:?}");
    fake.assert_no_process_left();
}

/// With cloudflared's real timings (a QUIC dial fails after 5 s, the
/// pre-checks come at +10 s), blocked UDP is still found and the tunnel
/// comes up over HTTP/2.
#[tokio::test]
async fn with_real_timings_blocked_udp_still_falls_back_to_http2() {
    let fake = FakeCloudflared::new()
        .env("FAKE_CLOUDFLARED_UDP", "blocked")
        .env("FAKE_CLOUDFLARED_TIMING", "real");
    let mut config = fake.config();
    config.start_timeout = Duration::from_secs(30);
    let mut tunnel = Cloudflared::new(config)
        .open(local())
        .await
        .expect("tunnel up over HTTP/2");
    assert_eq!(tunnel.protocol(), Some(Protocol::Http2));
    assert!(fake.log().contains("protocol=http2"));
    tunnel.close().await;
}

/// A URL whose process reaches the edge by no protocol is not up: a
/// distinct error that names the URL.
#[tokio::test]
async fn a_url_without_a_connection_is_not_ready_at_the_deadline() {
    let fake = FakeCloudflared::new().env("FAKE_CLOUDFLARED_MODE", "no-edge");
    let mut config = fake.config();
    config.start_timeout = Duration::from_millis(800);
    config.protocol = Some(Protocol::Http2);
    let err = Cloudflared::new(config).open(local()).await.unwrap_err();
    let TunnelError::NotReady { url, log_tail, .. } = &err else {
        panic!("not ready, got {err:?}");
    };
    assert_eq!(fake.urls(), [url.as_str()]);
    assert!(log_tail.contains("Tunnel server stopped"), "{log_tail}");
    assert!(
        fake.log()
            .contains("Unable to establish connection with Cloudflare edge")
    );
    fake.assert_no_process_left();
}

/// Where UDP is blocked, QUIC never connects: the open falls back to
/// `--protocol http2` at once (not after the start deadline), and later
/// opens of the same provider start there.
#[tokio::test]
async fn blocked_udp_falls_back_to_http2_and_stays_there() {
    let fake = FakeCloudflared::new().env("FAKE_CLOUDFLARED_UDP", "blocked");
    let provider = fake.provider();
    let started = Instant::now();
    let mut tunnel = provider.open(local()).await.expect("tunnel up over HTTP/2");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(tunnel.protocol(), Some(Protocol::Http2));
    let starts = fake.starts();
    assert_eq!(starts.len(), 2, "one QUIC try, one HTTP/2");
    assert!(!starts[0].contains(&"--protocol".to_owned()));
    assert!(starts[1].ends_with(&["--protocol".to_owned(), "http2".to_owned()]));
    assert_eq!(
        fake.urls()[1],
        tunnel.url(),
        "the URL of the process that came up"
    );
    tunnel.close().await;

    assert_eq!(provider.protocol_now(), Protocol::Http2);
    let mut again = provider.open(local()).await.expect("up");
    assert_eq!(fake.starts().len(), 3, "straight to HTTP/2");
    assert_eq!(again.protocol(), Some(Protocol::Http2));
    again.close().await;
    fake.assert_no_process_left();
}

/// One bound covers the whole start: when QUIC shows blocked late, the
/// HTTP/2 retry gets what is left of `start_timeout`, not a fresh one.
#[tokio::test]
async fn the_fallback_to_http2_stays_within_the_one_start_timeout() {
    let fake = FakeCloudflared::new()
        .env("FAKE_CLOUDFLARED_UDP", "blocked")
        // QUIC shows blocked (its second failed dial) about 1.5 s in...
        .env("FAKE_CLOUDFLARED_REQUEST_MS", "1000")
        .env("FAKE_CLOUDFLARED_PRECHECKS_MS", "60000")
        // ...and HTTP/2 would register long after the bound.
        .env("FAKE_CLOUDFLARED_REGISTER_DELAY_MS", "60000");
    let mut config = fake.config();
    let bound = Duration::from_secs(4);
    config.start_timeout = bound;
    let provider = Cloudflared::new(config);
    let started = Instant::now();
    let err = provider.open(local()).await.unwrap_err();
    let took = started.elapsed();
    let (TunnelError::NotReady { timeout, .. } | TunnelError::NoUrl { timeout, .. }) = &err else {
        panic!("not up over HTTP/2 in time, got {err:?}");
    };
    assert_eq!(*timeout, bound, "the error names the one bound");
    assert_eq!(fake.starts().len(), 2, "QUIC, then HTTP/2");
    assert!(took >= bound, "{took:?}");
    assert!(
        took < bound + Duration::from_secs(1),
        "the HTTP/2 retry got a fresh timeout: {took:?}"
    );
    assert_eq!(provider.protocol_now(), Protocol::Http2);
    fake.assert_no_process_left();
}

/// Asked for QUIC only, a blocked UDP port is an error that says so.
#[tokio::test]
async fn quic_only_reports_blocked_udp() {
    let fake = FakeCloudflared::new().env("FAKE_CLOUDFLARED_UDP", "blocked");
    let mut config = fake.config();
    config.protocol = Some(Protocol::Quic);
    config.start_timeout = Duration::from_millis(1500);
    let err = Cloudflared::new(config).open(local()).await.unwrap_err();
    assert!(matches!(err, TunnelError::UdpBlocked { .. }), "{err:?}");
    assert!(err.to_string().contains("UDP port 7844"), "{err}");
    assert_eq!(fake.starts().len(), 1);
    fake.assert_no_process_left();
}

/// A flag cloudflared does not know (a misspelling, or a version too old)
/// is refused the way urfave/cli does, on stdout with exit 0: a permanent
/// error, reported at once, not a tunnel that never comes.
#[tokio::test]
async fn a_flag_cloudflared_does_not_know_is_refused_for_good() {
    let fake = FakeCloudflared::new();
    let mut config = fake.config();
    config.extra_args = vec!["--no-autoupdates".into()];
    let started = Instant::now();
    let err = Cloudflared::new(config).open(local()).await.unwrap_err();
    let TunnelError::Usage { detail } = &err else {
        panic!("usage, got {err:?}");
    };
    assert_eq!(detail, "flag provided but not defined: -no-autoupdates");
    assert!(err.is_permanent());
    assert!(started.elapsed() < FAST);
}

/// Two tunnels to the same port each report their own process's URL.
#[tokio::test]
async fn two_tunnels_to_one_port_each_know_their_own_url() {
    let fake = FakeCloudflared::new();
    let provider = fake.provider();
    for _ in 0..3 {
        let (a, b) = tokio::join!(provider.open(local()), provider.open(local()));
        let (mut a, mut b) = (a.expect("first up"), b.expect("second up"));
        assert_ne!(a.url(), b.url());
        for tunnel in [&a, &b] {
            assert_eq!(
                fake.url_of(tunnel.pid().unwrap()).as_deref(),
                Some(tunnel.url()),
                "a tunnel reports the URL its own process printed"
            );
        }
        a.close().await;
        b.close().await;
    }
    fake.assert_no_process_left();
}

/// cloudflared drains for its grace period after SIGTERM; it is told to
/// finish a second before the SIGKILL backstop, so `close` ends it
/// gracefully and never waits cloudflared's default 30 s.
#[tokio::test]
async fn close_lets_cloudflared_drain_within_our_grace_period() {
    let fake = FakeCloudflared::new();
    let mut tunnel = fake.provider().open(local()).await.expect("tunnel up");
    let pid = tunnel.pid().unwrap();
    let started = Instant::now();
    tunnel.close().await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "it drained: {took:?}");
    assert!(
        took < Duration::from_millis(1900),
        "before SIGKILL: {took:?}"
    );
    assert_eq!(fake.exit_of(pid), Some(0), "a graceful exit, not a kill");
    let log = fake.log();
    assert!(log.contains("Unregistered tunnel connection"), "{log}");
    assert!(log.contains("Tunnel server stopped"), "{log}");
}

/// With `die_with_parent`, a tunnel whose owner vanished without closing it
/// (here: the thread that opened it ended, and the handle was forgotten)
/// ends too; without it, the process lives on.
#[test]
fn die_with_parent_ends_a_tunnel_whose_opener_is_gone() {
    let fake = FakeCloudflared::new();
    let open_and_forget = |die_with_parent: bool| {
        let mut config = fake.config();
        config.die_with_parent = die_with_parent;
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let tunnel = Cloudflared::new(config).open(local()).await.unwrap();
                let pid = tunnel.pid().unwrap();
                std::mem::forget(tunnel);
                pid
            })
        })
        .join()
        .unwrap()
    };
    let orphan = open_and_forget(false);
    let tied = open_and_forget(true);
    assert!(
        gone_within(tied, Duration::from_secs(2)),
        "it went with its opener"
    );
    assert!(alive(orphan), "without the option it outlives its opener");
    drop_tests::kill(orphan);
    assert!(gone_within(orphan, Duration::from_secs(2)));
}

/// No binary anywhere: the error says where drop-tunnel looked and what
/// the caller says to do.
#[tokio::test]
async fn a_missing_binary_says_where_it_looked_and_what_to_do() {
    let fake = FakeCloudflared::new();
    let mut config = fake.config();
    config.binary = Some(fake.dir.path().join("nope"));
    config.fallback_paths = vec![fake.dir.path().join("bin/cloudflared")];
    config.not_found_hint = Some("Run ./install.sh".into());
    let err = Cloudflared::new(config).open(local()).await.unwrap_err();
    assert!(matches!(err, TunnelError::NotFound { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "cloudflared not found. Run ./install.sh (looked on PATH, then at {})",
            fake.dir.path().join("bin/cloudflared").display()
        )
    );
}

/// `cloudflared` on the search path is found, and so is a fallback binary.
#[tokio::test]
async fn finds_cloudflared_on_the_path_then_in_the_fallbacks() {
    let fake = FakeCloudflared::new();
    let bin_dir = fake.dir.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    let link = bin_dir.join("cloudflared");
    symlink(fake_cloudflared_bin(), &link).unwrap();

    let mut on_path = fake.config();
    on_path.binary = None;
    on_path.search_path =
        Some(std::env::join_paths([fake.dir.path().join("empty"), bin_dir]).unwrap());
    assert_eq!(
        Cloudflared::new(on_path.clone()).find_binary().unwrap(),
        link
    );
    let mut tunnel = Cloudflared::new(on_path)
        .open(local())
        .await
        .expect("tunnel up");
    tunnel.close().await;

    let mut at_home = fake.config();
    at_home.binary = None;
    at_home.fallback_paths = vec![link.clone()];
    assert_eq!(Cloudflared::new(at_home).find_binary().unwrap(), link);
}

/// A cloudflared that ignores SIGTERM is killed after the grace period,
/// and what it started goes with it.
#[tokio::test]
async fn close_kills_what_ignores_sigterm_and_what_it_started() {
    let fake = FakeCloudflared::new()
        .env("FAKE_CLOUDFLARED_IGNORE_TERM", "1")
        .env("FAKE_CLOUDFLARED_CHILD", "1");
    let mut config = fake.config();
    config.stop_grace = Duration::from_millis(300);
    let provider = Cloudflared::new(config);
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
    // The fake logs its retries once `/ready` answers 503.
    wait_for("the connection lost", Duration::from_secs(10), || {
        fake.log()
            .contains("Failed to dial a quic connection")
            .then_some(())
    });
    assert!(alive(tunnel.pid().unwrap()));
    assert!(!tunnel.healthy().await);
    tunnel.close().await;
}
