//! Named tunnels against the fake cloudflared logged in to a fake account:
//! creating (again), routing hostnames, running with ingress rules,
//! replacing them, and each failure a user meets as its typed error.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drop_tests::tunnel::{
    FakeCloudflared, alive, fake_cloudflared_bin, gone_within, local, lost_for_good, next_event,
};
use drop_tunnel::{
    CertificateSearch, DnsRoute, DownReason, NamedCloudflared, NamedRoute, NamedTunnel,
    NamedTunnels, OriginHost, Protocol, TunnelError, TunnelEvent, Watchdog, WatchdogConfig,
};

const ZONE: &str = "example.com";
const HOSTNAME: &str = "drop.example.com";

/// A tunnel created in the fake account, and the management that made it.
async fn created(fake: &FakeCloudflared) -> (NamedTunnels, NamedTunnel) {
    let tunnels = fake.named_tunnels();
    let tunnel = tunnels.create("drop").await.expect("created");
    (tunnels, tunnel)
}

fn route(hostname: &str, port: u16) -> NamedRoute {
    NamedRoute::new(hostname, &format!("http://127.0.0.1:{port}")).expect("a valid route")
}

fn pairs(rules: &[(&str, &str)]) -> Vec<(String, String)> {
    rules
        .iter()
        .map(|(h, s)| (h.to_string(), s.to_string()))
        .collect()
}

/// `create` makes the tunnel with `--output json`, its credentials
/// written beside the certificate (owner-read-only, as cloudflared writes
/// them), and every command got the certificate and a config of ours
/// before the subcommand.
#[tokio::test]
async fn creates_a_tunnel_with_its_credentials_beside_the_certificate() {
    let fake = FakeCloudflared::logged_in(ZONE);
    let (tunnels, tunnel) = created(&fake).await;
    assert_eq!(tunnel.name(), "drop");
    let expected = fake
        .home()
        .join(format!(".cloudflared/{}.json", tunnel.id()));
    assert_eq!(tunnel.credentials_file(), expected);
    let mode = std::fs::metadata(&expected).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o400);
    let credentials: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&expected).unwrap()).unwrap();
    assert_eq!(credentials["TunnelID"], tunnel.id());
    assert_eq!(tunnels.list().await.unwrap(), std::slice::from_ref(&tunnel));

    let starts = fake.starts();
    let certificate = fake.certificate();
    for args in &starts {
        assert_eq!(args[0], "tunnel");
        assert_eq!(args[1], "--config");
        assert!(args[2].ends_with("cloudflared-manage.yml"), "{args:?}");
        assert_eq!(&args[3..5], ["--origincert", certificate.to_str().unwrap()]);
    }
    let create = starts
        .iter()
        .find(|a| a.contains(&"create".to_owned()))
        .unwrap();
    assert!(create.ends_with(&["create", "--output", "json", "drop"].map(String::from)));
}

/// Creating again finds the same tunnel and creates nothing.
#[tokio::test]
async fn creating_again_finds_the_same_tunnel() {
    let fake = FakeCloudflared::logged_in(ZONE);
    let (tunnels, first) = created(&fake).await;
    let again = tunnels.create("drop").await.unwrap();
    assert_eq!(again, first);
    assert_eq!(fake.account()["tunnels"].as_array().unwrap().len(), 1);
    let creates = fake
        .subcommands()
        .iter()
        .flatten()
        .filter(|s| *s == "create")
        .count();
    assert_eq!(creates, 1);
    assert_eq!(
        tunnels.find("drop").await.unwrap().as_ref(),
        Some(&first),
        "found by name"
    );
    assert_eq!(tunnels.find("other").await.unwrap(), None);
}

/// A tunnel whose credentials are not on this machine (made elsewhere, or
/// the file lost) gets them back from `cloudflared tunnel token`.
#[tokio::test]
async fn a_tunnel_without_its_credentials_here_gets_them_fetched() {
    let fake = FakeCloudflared::logged_in(ZONE);
    let (tunnels, tunnel) = created(&fake).await;
    let before = std::fs::read_to_string(tunnel.credentials_file()).unwrap();
    std::fs::remove_file(tunnel.credentials_file()).unwrap();
    let again = tunnels.create("drop").await.unwrap();
    assert_eq!(again, tunnel);
    let after = std::fs::read_to_string(tunnel.credentials_file()).unwrap();
    assert_eq!(after, before, "the same secret");
    assert!(fake.subcommands().iter().flatten().any(|s| s == "token"));
}

/// Without `cert.pem` the error says where cloudflared would look and to
/// run `cloudflared tunnel login`; nothing runs cloudflared.
#[tokio::test]
async fn without_a_login_the_error_says_to_run_cloudflared_tunnel_login() {
    let fake = FakeCloudflared::logged_in(ZONE);
    std::fs::remove_file(fake.certificate()).unwrap();
    let tunnels = fake.named_tunnels();
    let err = tunnels.create("drop").await.unwrap_err();
    let TunnelError::NotLoggedIn { searched } = &err else {
        panic!("not logged in, got {err:?}");
    };
    assert_eq!(searched[0], fake.certificate());
    assert_eq!(searched.len(), 5, "cloudflared's five places");
    assert!(
        err.to_string()
            .contains("run `cloudflared tunnel login`, which opens a browser once"),
        "{err}"
    );
    assert!(err.is_permanent());
    assert!(matches!(
        tunnels.login_certificate(),
        Err(TunnelError::NotLoggedIn { .. })
    ));
    assert!(fake.starts().is_empty());
}

/// A certificate cloudflared cannot decode, and one whose token the API
/// no longer accepts, are rejected with cloudflared's reason.
#[tokio::test]
async fn a_certificate_cloudflared_cannot_use_is_rejected() {
    let fake = FakeCloudflared::logged_in(ZONE);
    fake.write_certificate(
        "-----BEGIN ARGO TUNNEL TOKEN-----\nbm90IGpzb24=\n-----END ARGO TUNNEL TOKEN-----\n",
    );
    let err = fake.named_tunnels().list().await.unwrap_err();
    let TunnelError::CertificateRejected { path, detail } = &err else {
        panic!("rejected, got {err:?}");
    };
    assert_eq!(path, &fake.certificate());
    assert_eq!(
        detail,
        "Error decoding origin cert: missing token in the certificate"
    );
    assert!(
        err.to_string()
            .contains("run `cloudflared tunnel login` again"),
        "{err}"
    );

    let revoked = FakeCloudflared::logged_in(ZONE);
    revoked.edit_account(|account| account["api_token"] = "rotated".into());
    let err = revoked.named_tunnels().create("drop").await.unwrap_err();
    let TunnelError::CertificateRejected { detail, .. } = &err else {
        panic!("rejected, got {err:?}");
    };
    assert!(
        detail.ends_with("code: 10000, reason: Authentication error"),
        "{detail}"
    );
}

/// Offline, each command that asks Cloudflare's API fails the way the real
/// cloudflared words it then (`REST request failed: …`, the prefix doubled
/// for `list`): the API unreachable, with the network's own reason, and
/// worth trying again later.
#[tokio::test]
async fn offline_every_command_that_asks_the_api_finds_it_unreachable() {
    let fake = FakeCloudflared::logged_in(ZONE);
    let (_, tunnel) = created(&fake).await;
    let fake = fake.env("FAKE_CLOUDFLARED_API", "offline");
    let tunnels = fake.named_tunnels();
    let failures = [
        ("list", tunnels.list().await.map(|_| ())),
        ("create", tunnels.create("other").await.map(|_| ())),
        (
            "route dns",
            tunnels.route_dns(&tunnel, HOSTNAME).await.map(|_| ()),
        ),
        ("delete", tunnels.delete(&tunnel).await),
    ];
    for (command, outcome) in failures {
        let err = outcome.expect_err(command);
        let TunnelError::ApiUnreachable { detail } = &err else {
            panic!("{command}: the API unreachable, got {err:?}");
        };
        assert_eq!(
            detail, "dial tcp: lookup api.cloudflare.com on 127.0.0.53:53: no such host",
            "{command}"
        );
        assert!(!err.is_permanent(), "{command}");
    }
    assert!(tunnel.has_credentials(), "nothing deleted");
}

/// A hostname is routed with a CNAME to the tunnel; routing it again says
/// so and changes nothing.
#[tokio::test]
async fn routes_a_hostname_and_routing_it_again_changes_nothing() {
    let fake = FakeCloudflared::logged_in(ZONE);
    let (tunnels, tunnel) = created(&fake).await;
    assert_eq!(
        tunnels.route_dns(&tunnel, HOSTNAME).await.unwrap(),
        DnsRoute::Added
    );
    let cname = format!("{}.cfargotunnel.com", tunnel.id());
    assert_eq!(
        fake.dns_records(),
        [(HOSTNAME.into(), "CNAME".into(), cname.clone())]
    );
    assert_eq!(
        tunnels
            .route_dns(&tunnel, "Drop.Example.com")
            .await
            .unwrap(),
        DnsRoute::AlreadyRouted
    );
    assert_eq!(fake.dns_records().len(), 1);
    let route = fake
        .starts()
        .into_iter()
        .find(|a| a.contains(&"route".to_owned()))
        .unwrap();
    assert!(route.ends_with(&["route", "dns", tunnel.id(), HOSTNAME].map(String::from)));
}

/// Outside the certificate's zone cloudflared adds `<hostname>.<zone>`
/// and says so; that is an error naming the record and the zone.
#[tokio::test]
async fn a_hostname_outside_the_zone_is_refused_naming_the_record_cloudflared_added() {
    let fake = FakeCloudflared::logged_in(ZONE);
    let (tunnels, tunnel) = created(&fake).await;
    let err = tunnels
        .route_dns(&tunnel, "drop.other.org")
        .await
        .unwrap_err();
    let TunnelError::OutsideZone {
        hostname,
        added,
        zone,
    } = &err
    else {
        panic!("outside the zone, got {err:?}");
    };
    assert_eq!(
        (hostname.as_str(), added.as_str(), zone.as_str()),
        (
            "drop.other.org",
            "drop.other.org.example.com",
            "example.com"
        )
    );
    assert_eq!(
        fake.dns_records()[0].0,
        "drop.other.org.example.com",
        "what cloudflared did"
    );
    let message = err.to_string();
    assert!(
        message.contains("delete it in the Cloudflare dashboard"),
        "{message}"
    );
    assert!(
        message.contains("use a hostname ending in .example.com"),
        "{message}"
    );
}

/// A hostname whose record points elsewhere (another tunnel) is refused
/// with the API's code 1003; `replace_dns` takes it over.
#[tokio::test]
async fn a_hostname_routed_elsewhere_is_refused_then_replaced_on_request() {
    let fake = FakeCloudflared::logged_in(ZONE);
    let tunnels = fake.named_tunnels();
    let other = tunnels.create("other").await.unwrap();
    tunnels.route_dns(&other, HOSTNAME).await.unwrap();
    let tunnel = tunnels.create("drop").await.unwrap();
    let err = tunnels.route_dns(&tunnel, HOSTNAME).await.unwrap_err();
    let TunnelError::DnsRecordExists { hostname, detail } = &err else {
        panic!("record exists, got {err:?}");
    };
    assert_eq!(hostname, HOSTNAME);
    assert!(detail.contains("code: 1003"), "{detail}");
    assert!(err.is_permanent());
    assert!(err.to_string().contains("points elsewhere"), "{err}");

    assert_eq!(
        tunnels.replace_dns(&tunnel, HOSTNAME).await.unwrap(),
        DnsRoute::Added
    );
    let cname = format!("{}.cfargotunnel.com", tunnel.id());
    assert_eq!(
        fake.dns_records(),
        [(HOSTNAME.into(), "CNAME".into(), cname)]
    );

    fake.add_dns_record("www.example.com", "A", "203.0.113.7");
    let err = tunnels
        .route_dns(&tunnel, "www.example.com")
        .await
        .unwrap_err();
    assert!(
        matches!(err, TunnelError::DnsRecordExists { .. }),
        "a server's record too"
    );
}

/// A hostname cloudflared would refuse is refused before it runs.
#[tokio::test]
async fn an_invalid_hostname_is_refused_before_cloudflared_runs() {
    let fake = FakeCloudflared::logged_in(ZONE);
    let (tunnels, tunnel) = created(&fake).await;
    let starts = fake.starts().len();
    for bad in ["drop.example.com:443", "a.*.example.com", "drop"] {
        let err = tunnels.route_dns(&tunnel, bad).await.unwrap_err();
        assert!(
            matches!(err, TunnelError::InvalidRoute { .. }),
            "{bad}: {err:?}"
        );
    }
    assert!(matches!(
        tunnels.provider(tunnel, "x:1"),
        Err(TunnelError::InvalidRoute { .. })
    ));
    assert_eq!(fake.starts().len(), starts);
}

/// Deleting removes the tunnel from the account and its credentials from
/// this machine.
#[tokio::test]
async fn deleting_a_tunnel_removes_it_and_its_credentials() {
    let fake = FakeCloudflared::logged_in(ZONE);
    let (tunnels, tunnel) = created(&fake).await;
    tunnels.delete(&tunnel).await.unwrap();
    assert!(tunnels.list().await.unwrap().is_empty());
    assert!(!tunnel.credentials_file().exists());
    let err = tunnels.delete(&tunnel).await.unwrap_err();
    let TunnelError::CommandFailed {
        command, detail, ..
    } = &err
    else {
        panic!("failed, got {err:?}");
    };
    assert_eq!(command, "delete");
    assert_eq!(
        detail,
        &format!("Tunnel {} has already been deleted", tunnel.id())
    );
}

/// The tunnel runs by id with its flags before `run`, is up at its
/// hostname once registered, and its ingress sends each hostname to its
/// service and everything else to a 404; closing ends it gracefully.
#[tokio::test]
async fn runs_up_at_the_hostname_with_each_route_to_its_service() {
    let fake = FakeCloudflared::logged_in(ZONE);
    let (tunnels, tunnel) = created(&fake).await;
    let provider = tunnels.provider(tunnel.clone(), HOSTNAME).unwrap();
    provider
        .set_routes(vec![route("api.drop.example.com", 5000)])
        .unwrap();
    let mut up = provider.open(local()).await.expect("tunnel up");
    assert_eq!(up.url(), "https://drop.example.com");
    assert_eq!(up.protocol(), Some(Protocol::Quic));
    let pid = up.pid().unwrap();
    assert!(alive(pid));
    assert_eq!(
        fake.ingress_of(pid),
        pairs(&[
            (HOSTNAME, "http://127.0.0.1:8080"),
            ("api.drop.example.com", "http://127.0.0.1:5000"),
            ("", "http_status:404"),
        ])
    );
    let args = fake.starts().pop().unwrap();
    assert_eq!(
        args[args.len() - 2..],
        ["run".to_owned(), tunnel.id().to_owned()]
    );
    assert!(args.contains(&provider.config_file().to_str().unwrap().to_owned()));
    assert!(args.contains(&"127.0.0.1:0".to_owned()), "{args:?}");
    assert!(fake.log().contains("Registered tunnel connection"));
    assert!(up.healthy().await);
    up.close().await;
    assert!(!alive(pid));
    assert_eq!(fake.exit_of(pid), Some(0), "a graceful exit");
}

/// Each rule may give its service a Host of its own (`originRequest:
/// httpHostHeader`), which the config carries to cloudflared: the main
/// hostname's from the provider's config, a route's from the route.
#[tokio::test]
async fn each_rule_gives_its_service_the_host_asked_for() {
    let fake = FakeCloudflared::logged_in(ZONE);
    let (_, tunnel) = created(&fake).await;
    let mut config = fake.config();
    config.origin_host = OriginHost::Localhost;
    let provider = NamedCloudflared::new(config, tunnel, HOSTNAME).unwrap();
    let vite = route("vite.drop.example.com", 5173)
        .with_origin_host(OriginHost::Localhost)
        .unwrap();
    provider
        .set_routes(vec![vite, route("api.drop.example.com", 5000)])
        .unwrap();
    let mut up = provider.open(local()).await.expect("tunnel up");
    let pid = up.pid().unwrap();
    let records = fake.records();
    let rules = records
        .iter()
        .find(|r| r["pid"] == pid && r.get("ingress").is_some())
        .map(|r| r["ingress"].as_array().unwrap().clone())
        .unwrap();
    let hosts: Vec<Option<&str>> = rules.iter().map(|r| r["httpHostHeader"].as_str()).collect();
    assert_eq!(
        hosts,
        [Some("localhost:8080"), Some("localhost:5173"), None, None]
    );
    up.close().await;
}

/// Run by its id and credentials, the tunnel needs no login certificate.
#[tokio::test]
async fn running_needs_only_the_credentials_not_the_login() {
    let fake = FakeCloudflared::logged_in(ZONE);
    let (tunnels, tunnel) = created(&fake).await;
    std::fs::remove_file(fake.certificate()).unwrap();
    let mut up = tunnels
        .provider(tunnel, HOSTNAME)
        .unwrap()
        .open(local())
        .await
        .expect("up");
    up.close().await;
}

/// Under the watchdog, new routes and a reopen restart cloudflared with
/// the new ingress: the new process is up before the old one goes, and
/// every hostname keeps its URL.
#[tokio::test]
async fn replacing_the_routes_restarts_cloudflared_and_keeps_every_hostname() {
    let fake = FakeCloudflared::logged_in(ZONE);
    let (tunnels, tunnel) = created(&fake).await;
    let provider = Arc::new(tunnels.provider(tunnel, HOSTNAME).unwrap());
    provider
        .set_routes(vec![route("a.drop.example.com", 5001)])
        .unwrap();
    let (watchdog, mut events) =
        Watchdog::spawn(provider.clone(), local(), WatchdogConfig::default());
    let TunnelEvent::Up {
        url,
        pid: Some(first),
        ..
    } = next_event(&mut events).await
    else {
        panic!("up");
    };
    assert_eq!(url, "https://drop.example.com");

    provider
        .set_routes(vec![
            route("a.drop.example.com", 5001),
            route("b.drop.example.com", 5002),
        ])
        .unwrap();
    watchdog.reopen();
    let TunnelEvent::Up {
        url: again,
        pid: Some(second),
        ..
    } = next_event(&mut events).await
    else {
        panic!("up again");
    };
    assert_eq!(again, url, "the same URL");
    assert_ne!(second, first);
    assert!(
        gone_within(first, Duration::from_secs(3)),
        "the old one ended"
    );
    assert_eq!(
        fake.ingress_of(second),
        pairs(&[
            (HOSTNAME, "http://127.0.0.1:8080"),
            ("a.drop.example.com", "http://127.0.0.1:5001"),
            ("b.drop.example.com", "http://127.0.0.1:5002"),
            ("", "http_status:404"),
        ])
    );
    let first_exit = fake.exit_of(first);
    assert_eq!(first_exit, Some(0), "ended gracefully");

    provider
        .set_routes(vec![route("b.drop.example.com", 5002)])
        .unwrap();
    watchdog.reopen();
    let TunnelEvent::Up {
        pid: Some(third), ..
    } = next_event(&mut events).await
    else {
        panic!("up a third time");
    };
    let hostnames: Vec<String> = fake.ingress_of(third).into_iter().map(|(h, _)| h).collect();
    assert_eq!(hostnames, [HOSTNAME, "b.drop.example.com", ""]);
    assert_eq!(watchdog.current_url().as_deref(), Some(url.as_str()));
    watchdog.stop().await;
    fake.assert_no_process_left();
}

/// A tunnel deleted in the dashboard is refused by the edge, which
/// cloudflared retries forever: the open stops after a few refusals with
/// the typed error, and ends the process.
#[tokio::test]
async fn a_tunnel_deleted_in_the_dashboard_is_a_typed_error() {
    let fake = FakeCloudflared::logged_in(ZONE);
    let (tunnels, tunnel) = created(&fake).await;
    fake.delete_in_dashboard(tunnel.id());
    let started = Instant::now();
    let err = tunnels
        .provider(tunnel.clone(), HOSTNAME)
        .unwrap()
        .open(local())
        .await
        .unwrap_err();
    let TunnelError::TunnelDeleted {
        id,
        detail,
        log_tail,
    } = &err
    else {
        panic!("deleted, got {err:?}");
    };
    assert_eq!(id, tunnel.id());
    assert_eq!(detail, "Unauthorized: Failed to get tunnel");
    assert!(
        log_tail.contains("Register tunnel error from server side"),
        "{log_tail}"
    );
    assert!(err.is_permanent());
    assert!(err.to_string().contains("set the tunnel up again"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    fake.assert_no_process_left();
}

/// Deleted while it runs: the watchdog sees the connection lost, replaces
/// the tunnel after `replace_after`, and gives up on the refusal.
#[tokio::test]
async fn a_tunnel_deleted_while_running_makes_the_watchdog_give_up() {
    let fake = FakeCloudflared::logged_in(ZONE);
    let (tunnels, tunnel) = created(&fake).await;
    let provider = tunnels.provider(tunnel.clone(), HOSTNAME).unwrap();
    let mut config = WatchdogConfig::default();
    config.health_interval = Duration::from_millis(200);
    config.replace_after = Duration::from_millis(600);
    let (watchdog, mut events) = Watchdog::spawn(provider, local(), config);
    assert!(matches!(
        next_event(&mut events).await,
        TunnelEvent::Up { .. }
    ));
    fake.delete_in_dashboard(tunnel.id());
    lost_for_good(&mut events).await;
    let TunnelEvent::GaveUp { reason } = next_event(&mut events).await else {
        panic!("gave up");
    };
    assert!(
        matches!(
            reason,
            DownReason::OpenFailed(TunnelError::TunnelDeleted { .. })
        ),
        "{reason:?}"
    );
    watchdog.stop().await;
    fake.assert_no_process_left();
}

/// Missing credentials are caught before cloudflared runs; invalid ones
/// too.
#[tokio::test]
async fn missing_or_invalid_credentials_are_typed_errors() {
    let fake = FakeCloudflared::logged_in(ZONE);
    let (tunnels, tunnel) = created(&fake).await;
    let provider = tunnels.provider(tunnel.clone(), HOSTNAME).unwrap();
    std::fs::remove_file(tunnel.credentials_file()).unwrap();
    let err = provider.open(local()).await.unwrap_err();
    let TunnelError::CredentialsMissing { id, path } = &err else {
        panic!("missing, got {err:?}");
    };
    assert_eq!(
        (id.as_str(), path.as_path()),
        (tunnel.id(), tunnel.credentials_file())
    );
    assert!(
        err.to_string()
            .contains("set the tunnel up again on this machine"),
        "{err}"
    );
    assert!(!fake.subcommands().iter().flatten().any(|s| s == "run"));

    std::fs::copy(fake.certificate(), tunnel.credentials_file()).unwrap();
    let err = provider.open(local()).await.unwrap_err();
    assert!(
        matches!(err, TunnelError::CredentialsInvalid { .. }),
        "{err:?}"
    );
}

/// The fake fails as cloudflared does when run without its credentials,
/// which is what drop-tunnel reads should the file go between its check
/// and cloudflared's.
#[test]
fn cloudflared_reports_missing_credentials_and_exits_1() {
    let fake = FakeCloudflared::logged_in(ZONE);
    let config = fake.dir.path().join("run.yml");
    let missing = fake.dir.path().join("missing.json");
    let id = "6ff42ae2-765d-4adf-8112-31c55c1551ef";
    std::fs::write(
        &config,
        format!("tunnel: {id}\ncredentials-file: {}\n", missing.display()),
    )
    .unwrap();
    let out = Command::new(fake_cloudflared_bin())
        .args(["tunnel", "--config", config.to_str().unwrap(), "run", id])
        .env("HOME", fake.home())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "Tunnel credentials file '{}' doesn't exist or is not a file",
            missing.display()
        )
    );
}

/// The fake finds the login certificate where cloudflared does: the flag
/// or its variable, the config file's `origincert`, else `~/.cloudflared`;
/// nowhere, it fails as cloudflared does.
#[test]
fn the_fake_finds_the_certificate_where_cloudflared_does() {
    let fake = FakeCloudflared::logged_in(ZONE);
    let elsewhere = fake.dir.path().join("elsewhere.pem");
    let config = fake.dir.path().join("config.yml");
    std::fs::write(&config, format!("origincert: {}\n", elsewhere.display())).unwrap();
    let list = |extra: &[&str], env: &[(&str, &std::path::Path)]| {
        let mut command = Command::new(fake_cloudflared_bin());
        command
            .arg("tunnel")
            .args(extra)
            .args(["list", "--output", "json"])
            .env("HOME", fake.home())
            .env("FAKE_CLOUDFLARED_ACCOUNT", fake.dir.path().join("account"));
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().unwrap()
    };
    let found = list(&[], &[]);
    assert_eq!(found.status.code(), Some(0), "in ~/.cloudflared");
    assert_eq!(
        String::from_utf8_lossy(&found.stdout),
        "null\n",
        "no tunnel yet"
    );

    std::fs::rename(fake.certificate(), &elsewhere).unwrap();
    let nowhere = list(&[], &[]);
    assert_eq!(nowhere.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&nowhere.stderr);
    assert!(
        stderr.contains("ERR Cannot determine default origin certificate path"),
        "{stderr}"
    );
    assert!(
        stderr
            .trim_end()
            .ends_with("Error locating origin cert: client didn't specify origincert path"),
        "{stderr}"
    );
    let config_arg = config.to_str().unwrap();
    assert_eq!(
        list(&["--config", config_arg], &[]).status.code(),
        Some(0),
        "the config's"
    );
    let by_variable = list(&[], &[("TUNNEL_ORIGIN_CERT", &elsewhere)]);
    assert_eq!(by_variable.status.code(), Some(0), "the variable's");
    let by_flag = list(&["--origincert", elsewhere.to_str().unwrap()], &[]);
    assert_eq!(by_flag.status.code(), Some(0), "the flag's");
}

/// Where UDP is blocked a named tunnel falls back to HTTP/2 by itself: one
/// process, up over HTTP/2.
#[tokio::test]
async fn blocked_udp_falls_back_to_http2_within_one_process() {
    let fake = FakeCloudflared::logged_in(ZONE).env("FAKE_CLOUDFLARED_UDP", "blocked");
    let (tunnels, tunnel) = created(&fake).await;
    let mut up = tunnels
        .provider(tunnel, HOSTNAME)
        .unwrap()
        .open(local())
        .await
        .expect("up");
    assert_eq!(up.protocol(), Some(Protocol::Http2));
    assert!(fake.log().contains("Switching to fallback protocol http2"));
    let runs = fake
        .subcommands()
        .iter()
        .flatten()
        .filter(|s| *s == "run")
        .count();
    assert_eq!(runs, 1);
    up.close().await;
}

/// Marks the child run of the test below.
const CHILD: &str = "DROP_NAMED_ENV_PROBE_CHILD";

/// `TUNNEL_*` variables of the caller's (another certificate, another
/// credentials file, a token, another protocol) never reach cloudflared:
/// this test runs itself again with them set, and there everything works
/// and no process of the fake saw one.
#[test]
fn the_callers_tunnel_variables_never_reach_cloudflared() {
    if std::env::var_os(CHILD).is_some() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        return runtime.block_on(set_up_and_run_with_a_hostile_environment());
    }
    // Its name as the harness knows it: the module path below the crate.
    let (_, module) = module_path!().split_once("::").unwrap();
    let name = format!("{module}::the_callers_tunnel_variables_never_reach_cloudflared");
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &name])
        .env(CHILD, "1")
        .env("TUNNEL_ORIGIN_CERT", "/nonexistent/cert.pem")
        .env("TUNNEL_CRED_FILE", "/nonexistent/credentials.json")
        .env("TUNNEL_TOKEN", "not-a-token")
        .env("TUNNEL_TRANSPORT_PROTOCOL", "h2mux")
        .env("TUNNEL_FORCE_PROVISIONING_DNS", "true")
        .env("NO_AUTOUPDATE", "false")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran the test: {stdout}"
    );
}

async fn set_up_and_run_with_a_hostile_environment() {
    assert!(
        std::env::var_os("TUNNEL_TOKEN").is_some(),
        "the child has them"
    );
    let fake = FakeCloudflared::logged_in(ZONE);
    let (tunnels, tunnel) = created(&fake).await;
    assert!(tunnel.has_credentials(), "written beside the certificate");
    tunnels.route_dns(&tunnel, HOSTNAME).await.unwrap();
    let mut up = tunnels
        .provider(tunnel, HOSTNAME)
        .unwrap()
        .open(local())
        .await
        .expect("up");
    up.close().await;
    let records = fake.records();
    let seen: Vec<&serde_json::Value> =
        records.iter().filter(|r| r.get("args").is_some()).collect();
    assert!(seen.len() >= 4, "list, create, route, run");
    for record in seen {
        assert_eq!(record["tunnel_env"], serde_json::json!([]), "{record}");
    }
}

/// The certificate search can be pointed at one file, as `--origincert`.
#[tokio::test]
async fn a_certificate_given_explicitly_is_the_one_used() {
    let fake = FakeCloudflared::logged_in(ZONE);
    let elsewhere = fake.dir.path().join("elsewhere.pem");
    std::fs::rename(fake.certificate(), &elsewhere).unwrap();
    let tunnels = NamedTunnels::new(fake.config(), CertificateSearch::at(&elsewhere));
    let tunnel = tunnels.create("drop").await.unwrap();
    assert_eq!(
        tunnel.credentials_file(),
        fake.dir.path().join(format!("{}.json", tunnel.id())),
        "beside the certificate used"
    );
}

/// A provider can be made from a tunnel recorded earlier, without asking
/// the account.
#[tokio::test]
async fn a_recorded_tunnel_runs_without_asking_the_account() {
    let fake = FakeCloudflared::logged_in(ZONE);
    let (_, created) = created(&fake).await;
    let recorded = NamedTunnel::new(created.id(), created.name(), created.credentials_file());
    let starts = fake.starts().len();
    let provider = NamedCloudflared::new(fake.config(), recorded, HOSTNAME).unwrap();
    let mut up = provider.open(local()).await.expect("up");
    assert_eq!(fake.starts().len(), starts + 1, "only `run`");
    up.close().await;
}
