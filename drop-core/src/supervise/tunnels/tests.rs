//! The tunnel keeper against scripted tunnels and a real drop home in a
//! temp dir, on tokio's paused clock.

use std::time::Duration;

use drop_registry::TunnelPhase;
use drop_tunnel::TunnelError;
use tokio::time::Instant;

use super::*;
use crate::supervise::fakes::{
    APP, BOUND, Outside, PORT, TestHome, Tunnels, eventually, fake_pid, no_network,
};
use crate::supervise::verify::{self, DNS_SETTLE, LinkError, Origin};

const HOUR: Duration = Duration::from_secs(3600);
const SERVER_PORT: u16 = 8080;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The server's tunnel as `tunnel.json` says it now.
fn server_state(t: &TestHome) -> Option<TunnelState> {
    t.home.load_tunnel_state().expect("tunnel.json reads")
}

/// An app tunnel that comes up is answered `Up` with its URL, and the
/// app's record says so.
#[tokio::test(start_paused = true)]
async fn an_app_tunnel_that_comes_up_is_recorded_up_with_its_url() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let tunnels = Tunnels::new();
    let keeper = t.keeper(tunnels.always_up());

    let outcome = keeper.open_app(APP, app_local(PORT)).await;

    let url = Tunnels::url(1);
    assert_eq!(outcome, TunnelOutcome::Up { url: url.clone() });
    let record = t.record(APP);
    assert_eq!(record.tunnel_url, Some(url));
    assert_eq!(record.tunnel_pid, Some(fake_pid(1)));
    assert_eq!(record.tunnel_start_time, None, "no such process to read");
    assert_eq!(record.tunnel_state, Some(TunnelPhase::Up));
    assert_eq!(record.tunnel_error, None);
}

/// The server's tunnel goes to `tunnel.json`: `starting` at once, then
/// `up` with its URL and pid.
#[tokio::test(start_paused = true)]
async fn the_server_tunnel_is_written_to_tunnel_json() {
    let t = TestHome::new();
    let tunnels = Tunnels::new();
    let keeper = t.keeper(tunnels.always_up());

    keeper.open_server(SERVER_PORT).await;
    assert_eq!(
        server_state(&t).map(|s| s.state),
        Some(TunnelPhase::Starting)
    );
    eventually("the tunnel is up", DNS_SETTLE + secs(1), || {
        server_state(&t).is_some_and(|s| s.is_up())
    })
    .await;

    let state = server_state(&t).unwrap();
    assert_eq!(state.url, Tunnels::url(1));
    assert_eq!(state.pid, Some(fake_pid(1)));
    assert_eq!(state.error, None);
}

/// Without network the first outcome is `down`, and the tunnel is tried
/// again after 1, 2 then 4 s (each up to 10 % longer: jitter).
#[tokio::test(start_paused = true)]
async fn a_tunnel_without_network_is_down_and_retried_with_backoff() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let tunnels = Tunnels::new();
    let keeper = t.keeper(tunnels.provider(|_| Err(no_network())));

    let outcome = keeper.open_app(APP, app_local(PORT)).await;

    assert_eq!(
        outcome,
        TunnelOutcome::Down {
            phase: TunnelPhase::Down,
            error: no_network().to_string(),
        }
    );
    let record = t.record(APP);
    assert_eq!(record.tunnel_state, Some(TunnelPhase::Down));
    assert_eq!(record.tunnel_url, None);
    let error = record.tunnel_error.unwrap();
    assert!(
        error.starts_with("no network: ") && error.ends_with("; retrying in 1 s"),
        "{error}"
    );
    tokio::time::sleep(secs(10)).await;
    assert_eq!(tunnels.opens(), 4, "at 0, 1, 3 and 7 s");
    for (gap, base) in tunnels.gaps().into_iter().zip([1000, 2000, 4000]) {
        assert!(
            gap >= ms(base) && gap <= ms(base + base / 10 + 5),
            "{gap:?} after a {base} ms backoff"
        );
    }
}

/// A rate limit is recorded as such, and the next opening waits at least
/// a minute.
#[tokio::test(start_paused = true)]
async fn a_rate_limited_tunnel_waits_a_minute_before_the_next_opening() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let tunnels = Tunnels::new();
    let keeper = t.keeper(tunnels.provider(|_| Err(TunnelError::RateLimited)));

    let outcome = keeper.open_app(APP, app_local(PORT)).await;

    assert!(
        matches!(
            outcome,
            TunnelOutcome::Down {
                phase: TunnelPhase::RateLimited,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(t.record(APP).tunnel_state, Some(TunnelPhase::RateLimited));
    tokio::time::sleep(secs(59)).await;
    assert_eq!(tunnels.opens(), 1, "nothing within the minute");
    tokio::time::sleep(secs(11)).await;
    assert_eq!(tunnels.opens(), 2);
    let gap = tunnels.gaps()[0];
    assert!(gap >= secs(60) && gap <= secs(66) + ms(5), "{gap:?}");
}

/// A missing cloudflared fails the tunnel for good: no retry.
#[tokio::test(start_paused = true)]
async fn a_missing_cloudflared_fails_the_tunnel_without_retrying() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let tunnels = Tunnels::new();
    let not_found = || TunnelError::NotFound {
        searched: Vec::new(),
        hint: Some("Run ./install.sh".into()),
    };
    let keeper = t.keeper(tunnels.provider(move |_| Err(not_found())));

    let outcome = keeper.open_app(APP, app_local(PORT)).await;

    assert_eq!(
        outcome,
        TunnelOutcome::Down {
            phase: TunnelPhase::Failed,
            error: not_found().to_string(),
        }
    );
    let record = t.record(APP);
    assert_eq!(record.tunnel_state, Some(TunnelPhase::Failed));
    assert_eq!(
        record.tunnel_error.as_deref(),
        Some("cloudflared not found. Run ./install.sh (looked on PATH)")
    );
    tokio::time::sleep(HOUR).await;
    assert_eq!(tunnels.opens(), 1);
}

/// A tunnel whose process dies is recorded down, closed, and replaced by a
/// new one whose URL is recorded.
#[tokio::test(start_paused = true)]
async fn a_tunnel_that_dies_is_replaced_and_the_new_url_recorded() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let tunnels = Tunnels::new();
    let keeper = t.keeper(tunnels.provider(|n| Ok((n == 1).then_some(secs(30)))));
    let opened = Instant::now();

    let outcome = keeper.open_app(APP, app_local(PORT)).await;
    assert_eq!(
        outcome,
        TunnelOutcome::Up {
            url: Tunnels::url(1)
        }
    );

    tokio::time::sleep_until(opened + ms(30_500)).await;
    let record = t.record(APP);
    assert_eq!(record.tunnel_state, Some(TunnelPhase::Down));
    assert_eq!(record.tunnel_url, None);
    let error = record.tunnel_error.unwrap();
    assert!(error.starts_with("the tunnel process ended"), "{error}");
    assert_eq!(tunnels.closes(), 1, "the dead one is closed");

    eventually(
        "the new tunnel is recorded up",
        DNS_SETTLE + secs(2),
        || t.record(APP).tunnel_state == Some(TunnelPhase::Up),
    )
    .await;
    let record = t.record(APP);
    assert_eq!(record.tunnel_url, Some(Tunnels::url(2)));
    assert_eq!(record.tunnel_pid, Some(fake_pid(2)));
    assert_eq!(record.tunnel_error, None);
    assert_eq!(tunnels.opens(), 2);
}

/// Closing an app's tunnel while it waits to retry stops it for good and
/// forgets it in the record.
#[tokio::test(start_paused = true)]
async fn closing_an_app_tunnel_during_its_backoff_opens_nothing_more() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let tunnels = Tunnels::new();
    let keeper = t.keeper(tunnels.provider(|_| Err(no_network())));
    keeper.open_app(APP, app_local(PORT)).await;

    keeper.close_app(APP).await;
    tokio::time::sleep(HOUR).await;

    assert_eq!(tunnels.opens(), 1);
    let record = t.record(APP);
    assert_eq!(record.tunnel_state, None);
    assert_eq!(record.tunnel_error, None);
}

/// Closing every tunnel closes their processes, removes `tunnel.json` and
/// clears the apps' records.
#[tokio::test(start_paused = true)]
async fn closing_all_tunnels_clears_tunnel_json_and_the_records() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    t.add_app("app2", PORT + 1);
    let tunnels = Tunnels::new();
    let keeper = t.keeper(tunnels.always_up());
    keeper.open_server(SERVER_PORT).await;
    keeper.open_app(APP, app_local(PORT)).await;
    keeper.open_app("app2", app_local(PORT + 1)).await;
    assert!(server_state(&t).unwrap().is_up());
    assert!(t.record("app2").tunnel_url.is_some());

    keeper.close_all().await;

    assert_eq!(server_state(&t), None);
    for id in [APP, "app2"] {
        let record = t.record(id);
        assert_eq!(record.tunnel_url, None, "{id}");
        assert_eq!(record.tunnel_pid, None, "{id}");
        assert_eq!(record.tunnel_state, None, "{id}");
    }
    assert_eq!(tunnels.closes(), 3);
    tokio::time::sleep(HOUR).await;
    assert_eq!(tunnels.opens(), 3, "nothing reopens");
}

/// Openings are at least a second apart across every tunnel of the
/// daemon, even when several fail and retry together.
#[tokio::test(start_paused = true)]
async fn openings_across_tunnels_are_a_second_apart() {
    let t = TestHome::new();
    let ids = ["a1", "a2", "a3"];
    for (i, id) in (0u16..).zip(ids) {
        t.add_app(id, PORT + i);
    }
    let tunnels = Tunnels::new();
    let keeper = t.keeper(tunnels.provider(|_| Err(no_network())));

    keeper.open_server(SERVER_PORT).await;
    let outcomes =
        futures_util::future::join_all(ids.iter().map(|id| keeper.open_app(id, app_local(PORT))))
            .await;
    tokio::time::sleep(secs(60)).await;

    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, TunnelOutcome::Down { .. }))
    );
    let gaps = tunnels.gaps();
    assert!(gaps.len() >= 12, "four tunnels retrying: {gaps:?}");
    assert!(gaps.iter().all(|gap| *gap >= secs(1)), "{gaps:?}");
}

/// Leftovers: with no process carrying the marker, nothing is ended, and
/// every recorded tunnel is forgotten.
#[tokio::test]
async fn ending_leftovers_forgets_every_recorded_tunnel() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    t.change(APP, |r| {
        r.tunnel_url = Some(Tunnels::url(1));
        r.tunnel_pid = Some(fake_pid(1));
        r.tunnel_state = Some(TunnelPhase::Up);
    });
    t.home
        .save_tunnel_state(&TunnelState {
            url: Tunnels::url(2),
            pid: Some(fake_pid(2)),
            state: TunnelPhase::Up,
            ..TunnelState::default()
        })
        .unwrap();

    assert!(end_leftovers(&t.home, &t.tunnel_config_dir()).is_empty());

    assert_eq!(server_state(&t), None);
    let record = t.record(APP);
    assert_eq!(record.tunnel_url, None);
    assert_eq!(record.tunnel_state, None);
}

fn not_published(n: usize) -> LinkError {
    LinkError::NotPublished {
        host: verify::host_of(&Tunnels::url(n)).to_owned(),
    }
}

/// A URL public DNS does not know yet is recorded `verifying` and not
/// handed out; public DNS is first asked only once the edge reaches the
/// origin and the tunnel has settled (an earlier question would cache "no
/// such name" for everyone), then about once a second; when DNS knows the
/// name, it is `up`, with when it was seen to work, and only then is the
/// start answered.
#[tokio::test(start_paused = true)]
async fn a_url_is_handed_out_only_once_it_works_from_outside() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let tunnels = Tunnels::new();
    let outside = Outside::new();
    outside.fail_with(Some(not_published(1)));
    let keeper = t.keeper_seen_by(tunnels.always_up(), &outside);

    let opening = tokio::spawn({
        let keeper = keeper.clone();
        async move { keeper.open_app(APP, app_local(PORT)).await }
    });
    eventually("the tunnel is verifying", secs(2), || {
        t.record(APP).tunnel_state == Some(TunnelPhase::Verifying)
    })
    .await;
    let up = Instant::now();
    tokio::time::sleep(DNS_SETTLE - secs(1)).await;
    assert_eq!(outside.checks().len(), 1, "the edge asked at once");
    assert!(outside.dns_questions().is_empty(), "DNS not asked yet");
    tokio::time::sleep(secs(4)).await;
    let record = t.record(APP);
    assert_eq!(record.tunnel_state, Some(TunnelPhase::Verifying));
    assert_eq!(record.current_tunnel_url(), None, "not handed out");
    assert!(!opening.is_finished(), "the start still waits");
    let questions = outside.dns_questions();
    assert!(
        (3..=5).contains(&questions.len()),
        "about one a second: {questions:?}"
    );
    assert!(
        questions
            .iter()
            .all(|(_, at)| *at >= up + DNS_SETTLE - ms(20))
    );

    outside.fail_with(None);
    let outcome = opening.await.unwrap();

    assert_eq!(
        outcome,
        TunnelOutcome::Up {
            url: Tunnels::url(1)
        }
    );
    assert!(Instant::now() - up < secs(10), "answered at the next check");
    let record = t.record(APP);
    assert_eq!(record.tunnel_state, Some(TunnelPhase::Up));
    assert_eq!(record.current_tunnel_url(), Some(Tunnels::url(1).as_str()));
    assert!(record.tunnel_verified_at.is_some());
    assert_eq!(record.tunnel_error, None);
}

/// An edge that answers "tunnel not connected" (530) keeps the tunnel
/// `verifying` until the bound; then the URL is handed out as
/// `unconfirmed` with what the check found, and the checks go on: once it
/// works, it is `up`.
#[tokio::test(start_paused = true)]
async fn past_the_bound_a_url_is_handed_out_unconfirmed_and_still_checked() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let tunnels = Tunnels::new();
    let outside = Outside::new();
    let host = verify::host_of(&Tunnels::url(1)).to_owned();
    outside.fail_with(Some(LinkError::EdgeNotConnected { host, status: 530 }));
    let keeper = t.keeper_seen_by(tunnels.always_up(), &outside);
    let opened = Instant::now();

    let opening = tokio::spawn({
        let keeper = keeper.clone();
        async move { keeper.open_app(APP, app_local(PORT)).await }
    });
    tokio::time::sleep(BOUND - secs(2)).await;
    assert_eq!(t.record(APP).tunnel_state, Some(TunnelPhase::Verifying));

    let outcome = opening.await.unwrap();
    let TunnelOutcome::Unconfirmed { url, error } = outcome else {
        panic!("not unconfirmed: {outcome:?}");
    };
    assert_eq!(url, Tunnels::url(1));
    assert!(error.contains("530"), "{error}");
    let waited = Instant::now() - opened;
    assert!(waited >= BOUND && waited < BOUND + secs(3), "{waited:?}");
    let record = t.record(APP);
    assert_eq!(record.tunnel_state, Some(TunnelPhase::Unconfirmed));
    assert_eq!(
        record.current_tunnel_url(),
        Some(url.as_str()),
        "handed out"
    );
    let error = record.tunnel_error.unwrap();
    assert!(error.contains("530"), "what the check found: {error}");
    assert_eq!(record.tunnel_verified_at, None);

    outside.fail_with(None);
    tokio::time::sleep(secs(11)).await;
    let record = t.record(APP);
    assert_eq!(record.tunnel_state, Some(TunnelPhase::Up));
    assert!(record.tunnel_verified_at.is_some());
}

/// The server's tunnel is checked with a probe only this daemon answers:
/// a nonce its page server accepts, a fresh one each check.
#[tokio::test(start_paused = true)]
async fn the_server_tunnel_is_probed_with_nonces_the_daemon_issued() {
    let t = TestHome::new();
    let tunnels = Tunnels::new();
    let outside = Outside::new();
    let keeper = t.keeper_seen_by(tunnels.always_up(), &outside);

    keeper.open_server(SERVER_PORT).await;
    eventually("the tunnel is up", DNS_SETTLE + secs(1), || {
        server_state(&t).is_some_and(|s| s.is_up())
    })
    .await;
    assert!(server_state(&t).unwrap().verified_at.is_some());
    // Rechecked every five minutes, each time with a new nonce.
    tokio::time::sleep(secs(5 * 60 + 1)).await;

    let nonces: Vec<String> = outside
        .checks()
        .into_iter()
        .map(|(url, origin, _)| {
            assert_eq!(url, Tunnels::url(1));
            match origin {
                Origin::Daemon { nonce } => nonce,
                Origin::App { .. } => panic!("the server's tunnel checked as an app's"),
            }
        })
        .collect();
    assert_eq!(nonces.len(), 2, "{nonces:?}");
    assert_ne!(nonces[0], nonces[1]);
    assert!(nonces.iter().all(|n| outside.probes().accepts(n)));
}

/// A tunnel that was replaced (its process died) does not hand out the new
/// URL before it is checked in turn; an old check's verdict never
/// confirms the new URL.
#[tokio::test(start_paused = true)]
async fn a_replaced_tunnel_is_verified_again() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let tunnels = Tunnels::new();
    let outside = Outside::new();
    let keeper = t.keeper_seen_by(
        tunnels.provider(|n| Ok((n == 1).then_some(secs(30)))),
        &outside,
    );
    let opened = Instant::now();
    assert!(matches!(
        keeper.open_app(APP, app_local(PORT)).await,
        TunnelOutcome::Up { .. }
    ));

    outside.fail_with(Some(not_published(2)));
    tokio::time::sleep_until(opened + secs(31)).await;
    eventually("the new tunnel is recorded", secs(3), || {
        t.record(APP).tunnel_url == Some(Tunnels::url(2))
    })
    .await;
    let record = t.record(APP);
    assert_eq!(record.tunnel_state, Some(TunnelPhase::Verifying));
    assert_eq!(record.current_tunnel_url(), None);
    assert_eq!(
        record.tunnel_verified_at, None,
        "the old URL's check is gone"
    );

    outside.fail_with(None);
    eventually("the new URL is confirmed", DNS_SETTLE + secs(2), || {
        t.record(APP).tunnel_state == Some(TunnelPhase::Up)
    })
    .await;
    let checked: Vec<String> = outside.checks().into_iter().map(|(url, ..)| url).collect();
    assert_eq!(checked.last(), Some(&Tunnels::url(2)));
}

/// A URL that worked and then fails a recheck is still handed out, as
/// `unconfirmed` with what failed.
#[tokio::test(start_paused = true)]
async fn a_url_that_stops_working_is_marked_unconfirmed() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let tunnels = Tunnels::new();
    let outside = Outside::new();
    let keeper = t.keeper_seen_by(tunnels.always_up(), &outside);
    assert!(matches!(
        keeper.open_app(APP, app_local(PORT)).await,
        TunnelOutcome::Up { .. }
    ));

    outside.fail_with(Some(not_published(1)));
    tokio::time::sleep(secs(5 * 60 + 1)).await;

    let record = t.record(APP);
    assert_eq!(record.tunnel_state, Some(TunnelPhase::Unconfirmed));
    assert_eq!(record.current_tunnel_url(), Some(Tunnels::url(1).as_str()));
    let error = record.tunnel_error.unwrap();
    assert!(error.contains("later check failed"), "{error}");
    assert!(record.tunnel_verified_at.is_some(), "when it last worked");
}

/// Where an app listening on loopback at `port` is reached (sent
/// `localhost:PORT` as `Host`).
fn app_local(port: u16) -> AppTarget {
    AppTarget {
        local: SocketAddr::from(([127, 0, 0, 1], port)),
        keep_host: false,
    }
}

/// cloudflared loses the edge for 15 s and registers again with the same
/// URL: the URL that worked is never withdrawn (`reconnecting` while the
/// edge is gone, then `up` again at once, with no new verification), and
/// it is checked again from outside in the background.
#[tokio::test(start_paused = true)]
async fn a_url_that_worked_stays_handed_out_across_a_reconnection() {
    let t = TestHome::new();
    let tunnels = Tunnels::new();
    let outside = Outside::new();
    let keeper = t.keeper_seen_by(tunnels.always_up(), &outside);
    keeper.open_server(SERVER_PORT).await;
    eventually("the tunnel is up", DNS_SETTLE + secs(2), || {
        server_state(&t).is_some_and(|s| s.is_up())
    })
    .await;
    let url = Tunnels::url(1);
    let verified_at = server_state(&t).unwrap().verified_at;

    // The edge goes away: checks through it fail meanwhile.
    let host = verify::host_of(&url).to_owned();
    outside.fail_with(Some(LinkError::EdgeNotConnected { host, status: 530 }));
    tunnels.lose_edge(true);
    let lost = Instant::now();
    let mut phases = Vec::new();
    while Instant::now() < lost + secs(15) {
        let state = server_state(&t).unwrap();
        assert_eq!(
            state.current_url(),
            Some(url.as_str()),
            "withdrawn: {state:?}"
        );
        phases.push(state.state);
        tokio::time::sleep(ms(100)).await;
    }
    assert!(phases.contains(&TunnelPhase::Reconnecting), "{phases:?}");
    let checks_before = outside.checks().len();

    outside.fail_with(None);
    tunnels.lose_edge(false);
    let back = Instant::now();
    while Instant::now() < back + secs(30) {
        let state = server_state(&t).unwrap();
        assert_eq!(
            state.current_url(),
            Some(url.as_str()),
            "withdrawn: {state:?}"
        );
        assert_ne!(
            state.state,
            TunnelPhase::Verifying,
            "verified again from scratch"
        );
        tokio::time::sleep(ms(100)).await;
    }
    let state = server_state(&t).unwrap();
    assert_eq!(state.state, TunnelPhase::Up);
    assert_eq!(tunnels.opens(), 1, "the same tunnel, not a new one");
    assert!(
        outside.checks().len() > checks_before,
        "rechecked from outside after it came back"
    );
    assert!(state.verified_at >= verified_at);
}

/// A start whose first tunnel failed was told so; the tunnel that comes up
/// a minute later is verified with a bound of its own, not handed out at
/// once because the start's bound has passed (public DNS would then be
/// asked too early, or not at all).
#[tokio::test(start_paused = true)]
async fn a_url_after_a_failed_first_attempt_gets_a_bound_of_its_own() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let tunnels = Tunnels::new();
    let outside = Outside::new();
    let script = |n: usize| match n {
        1 => Err(TunnelError::RateLimited),
        _ => Ok(None),
    };
    let keeper = t.keeper_seen_by(tunnels.provider(script), &outside);
    let outcome = keeper.open_app(APP, app_local(PORT)).await;
    assert!(matches!(outcome, TunnelOutcome::Down { .. }), "{outcome:?}");
    let host = verify::host_of(&Tunnels::url(2)).to_owned();
    outside.fail_with(Some(LinkError::NotPublished { host }));
    eventually("the second tunnel up", secs(70), || {
        t.record(APP).tunnel_url.as_deref() == Some(Tunnels::url(2).as_str())
    })
    .await;
    tokio::time::sleep(DNS_SETTLE + secs(2)).await;
    assert_eq!(
        t.record(APP).tunnel_state,
        Some(TunnelPhase::Verifying),
        "not handed out before public DNS knows it"
    );
}
