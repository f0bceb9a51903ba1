//! Detection against local IP-echo servers on loopback: nothing leaves this machine.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::{config, echo, echo_after, refusing, silent};
use drop_nat::{
    EchoRace, ExternalIpSource, HttpEchoSource, LocalAddrs, NatError, Reachability,
    could_be_public, detect, detect_with,
};

/// How much wall-clock time beyond a deadline a slow CI machine may take.
const MARGIN: Duration = Duration::from_secs(1);

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// What `detect` says of `urls` with `deadline`, and how long it took.
async fn detect_timed(urls: &[&str], deadline: Duration) -> (Reachability, Duration) {
    let start = Instant::now();
    let verdict = detect(&config(urls, deadline)).await;
    (verdict, start.elapsed())
}

/// The reason of a verdict that must be `Unknown`.
fn unknown_reason(verdict: Reachability) -> String {
    let Reachability::Unknown { reason } = verdict else {
        panic!("not unknown: {verdict}")
    };
    reason
}

/// An echo that returns an address this machine holds makes it public.
/// A machine holding only private addresses has none to use; it says so
/// and proves the same path with a stand-in below.
#[tokio::test]
async fn echo_of_one_of_this_machines_addresses_is_public() {
    let local = LocalAddrs::of_this_machine().unwrap();
    let Some(own) = local.all().iter().copied().find(|ip| could_be_public(*ip)) else {
        eprintln!("no address that could be public on this machine: {local:?}");
        return;
    };
    let url = echo(200, &format!("{own}\n")).await;
    let verdict = detect(&config(&[&url], Duration::from_secs(2))).await;
    assert_eq!(verdict, Reachability::Public { ip: own });
}

/// A public address on a second interface, not the outward one, still counts.
#[tokio::test]
async fn echo_of_an_address_on_a_second_interface_is_public() {
    let url = echo(200, "198.51.100.9").await;
    let race = EchoRace::from_config(&config(&[&url], Duration::from_secs(2))).unwrap();
    let vps = LocalAddrs::new(Some(ip("10.0.0.4")), [ip("127.0.0.1"), ip("198.51.100.9")]);
    let verdict = detect_with(&race, &vps).await;
    assert_eq!(
        verdict,
        Reachability::Public {
            ip: ip("198.51.100.9")
        }
    );
}

/// An echo of an address this machine does not hold means NAT.
#[tokio::test]
async fn echo_of_a_foreign_address_is_behind_nat() {
    let url = echo(200, "203.0.113.7\n").await;
    let verdict = detect(&config(&[&url], Duration::from_secs(2))).await;
    let local = LocalAddrs::of_this_machine().unwrap().primary();
    assert_eq!(
        verdict,
        Reachability::BehindNat {
            external: ip("203.0.113.7"),
            local
        }
    );
}

/// IPv6 answers travel over HTTP and are judged like IPv4 ones.
#[tokio::test]
async fn ipv6_echo_is_understood() {
    let url = echo(200, "2001:db8::7\r\n").await;
    let verdict = detect(&config(&[&url], Duration::from_secs(2))).await;
    assert!(
        matches!(verdict, Reachability::BehindNat { external, .. } if external == ip("2001:db8::7"))
    );
}

/// A service that never answers costs no more than the deadline.
#[tokio::test]
async fn silent_service_costs_no_more_than_the_deadline() {
    let deadline = Duration::from_millis(400);
    let url = silent().await;
    let (verdict, took) = detect_timed(&[&url], deadline).await;
    assert!(took < deadline + MARGIN, "took {took:?}");
    let reason = unknown_reason(verdict);
    assert!(reason.contains("400 ms"), "{reason}");
}

/// The fast answer wins; a silent service beside it does not hold it back.
#[tokio::test]
async fn fast_service_wins_over_a_silent_one() {
    let deadline = Duration::from_secs(30);
    let (quiet, fast) = (silent().await, echo(200, "203.0.113.7").await);
    let (verdict, took) = detect_timed(&[&quiet, &fast], deadline).await;
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(verdict.needs_tunnel(), "{verdict}");
}

/// Every service refusing connections is unknown, well within the deadline.
#[tokio::test]
async fn all_services_refusing_is_unknown_within_the_deadline() {
    let deadline = Duration::from_millis(800);
    let (verdict, took) = detect_timed(&[&refusing(), &refusing(), &refusing()], deadline).await;
    assert!(took < deadline + MARGIN, "took {took:?}");
    let reason = unknown_reason(verdict);
    assert!(reason.contains("all 3 ip-echo services failed"), "{reason}");
}

/// HTML, rate-limit texts, error statuses, redirects and long bodies are
/// skipped; the one valid answer, though it comes last, wins.
#[tokio::test]
async fn garbage_and_error_pages_are_skipped() {
    let long = format!("{}203.0.113.7", " ".repeat(200));
    let mut urls = vec![
        echo(200, "<!DOCTYPE html><html><body>203.0.113.7</body></html>").await,
        echo(200, "error code: 1015").await,
        echo(200, "").await,
        echo(200, &long).await,
        echo(429, "203.0.113.8").await,
        echo(500, "203.0.113.8").await,
        echo(302, "203.0.113.8").await,
    ];
    urls.push(echo_after(Duration::from_millis(300), 200, "198.51.100.4").await);
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let race = EchoRace::from_config(&config(&urls, Duration::from_secs(5))).unwrap();
    assert_eq!(race.external_ip().await.unwrap(), ip("198.51.100.4"));
}

/// Nothing but garbage is unknown, naming what went wrong.
#[tokio::test]
async fn only_garbage_is_unknown() {
    let url = echo(200, "<html>rate limited</html>").await;
    let verdict = detect(&config(&[&url], Duration::from_secs(2))).await;
    let reason = unknown_reason(verdict);
    assert!(reason.contains("not an ip address"), "{reason}");
}

/// One source on its own reports the status it got.
#[tokio::test]
async fn single_source_reports_an_error_status() {
    let url = echo(503, "busy").await;
    let source = HttpEchoSource::new(&url, Duration::from_secs(2)).unwrap();
    let error = source.external_ip().await.unwrap_err();
    assert!(
        matches!(error, NatError::Status { status: 503, .. }),
        "{error}"
    );
}

/// The services are asked over IPv4, so a global IPv6 address cannot make
/// a machine behind NAT44 look public: one reachable only over IPv6 is
/// not reached.
#[tokio::test]
async fn services_are_asked_over_ipv4() {
    let Ok(listener) = tokio::net::TcpListener::bind("[::1]:0").await else {
        return; // no IPv6 loopback on this machine: nothing to tell apart
    };
    let v6_only = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            use tokio::io::AsyncWriteExt;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\nconnection: close\r\n\r\n203.0.113.7")
                .await;
        }
    });
    let verdict = detect(&config(&[&v6_only], Duration::from_millis(500))).await;
    assert!(
        matches!(verdict, Reachability::Unknown { .. }),
        "{verdict:?}"
    );
}
