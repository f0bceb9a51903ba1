//! `drop doctor [page] [--json]`: everything between the human and a page
//! or app, checked in order (the server, the page and its source, the
//! app's process and the addresses it listens on, the tunnel, and the URL
//! from outside), one line each with a verdict and the fix. Exit 0 only
//! when the link works.

use std::fmt::Write as _;

use drop_core::daemon::{ControlReply, ControlRequest};
use drop_core::page::Manifest;
use drop_core::supervise::verify::{FailureKind, LinkReport, StepResult};
use drop_core::supervise::{AppStatus, ProcessId, app_log_path, log_tail, sockets};
use drop_registry::{Home, Record, ServerState, TunnelPhase, TunnelState};
use serde_json::json;

use crate::context::Context;
use crate::control;
use crate::error::CliError;
use crate::output::{label, say, shell_word};
use crate::running::{ServerCondition, answers_http};
use crate::urls::{Reach, Urls};

/// How many lines of a log a failed check shows.
const LOG_LINES: usize = 5;
/// How long the daemon may take to check a URL from outside (two requests
/// of at most 5 s each, and some slack).
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// One check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    Fail,
    /// Not checked (nothing to check, or an earlier failure decides).
    Skipped,
}

/// One line of the report.
#[derive(Debug)]
struct Check {
    name: &'static str,
    verdict: Verdict,
    detail: String,
    fix: Option<String>,
    /// The cause in the words of the HTTP client or resolver (`--json`
    /// only: the line for people says it plainly).
    cause: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Check {
            name,
            verdict: Verdict::Ok,
            detail: detail.into(),
            fix: None,
            cause: None,
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            name,
            verdict: Verdict::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
            cause: None,
        }
    }

    fn skipped(name: &'static str, detail: impl Into<String>) -> Self {
        Check {
            name,
            verdict: Verdict::Skipped,
            detail: detail.into(),
            fix: None,
            cause: None,
        }
    }
}

/// `drop doctor [page] [--json]`: the report on stdout; an `Error:` naming
/// the first failure when the link does not work.
pub fn doctor(ctx: &Context, query: Option<&str>) -> Result<(), CliError> {
    let (home, out) = (&ctx.home, &ctx.out);
    let state = home.load_server_state()?;
    let pages = home.registry().load()?;
    let found = match query {
        Some(query) => {
            let found = crate::names::find_one(&pages, query)?;
            Some((found.id.to_owned(), found.record.clone()))
        }
        None => None,
    };
    let urls = Urls::load(home)?;
    let mut checks = Vec::new();
    let server_up = check_server(home, state.as_ref(), &mut checks);
    if let Some((id, record)) = &found {
        check_page(id, record, &mut checks);
        if record.is_app() {
            check_app(home, id, record, &urls, &mut checks);
        }
    }
    let tunneled = state.as_ref().is_some_and(|s| s.tunnel);
    let app = found.as_ref().filter(|(_, r)| r.is_app());
    // A stopped app has no tunnel to check: its fix is above.
    let app_stopped =
        app.is_some_and(|(_, r)| !matches!(AppStatus::of(r), AppStatus::Running { .. }));
    match (server_up, tunneled) {
        (false, _) => checks.push(Check::skipped(
            "link",
            "not checked: the server does not run",
        )),
        (true, true) if app_stopped => checks.push(Check::skipped(
            "tunnel",
            "not checked: the app does not run",
        )),
        (true, false) => {
            if let Some(state) = &state {
                check_server_listens(state, &urls, &mut checks);
            }
            checks.push(direct_reach(&urls, found.as_ref()));
        }
        (true, true) => check_tunnel(home, app, &mut checks)?,
    }
    let url = found
        .as_ref()
        .map_or_else(|| urls.base().to_owned(), |(id, r)| urls.of(id, r));
    let works = checks.iter().all(|c| c.verdict != Verdict::Fail);
    match out.is_json() {
        true => out.document(json!({
            "url": url,
            "works": works,
            "checks": checks.iter().map(|c| json!({
                "check": c.name,
                "verdict": match c.verdict {
                    Verdict::Ok => "ok",
                    Verdict::Fail => "fail",
                    Verdict::Skipped => "skipped",
                },
                "detail": c.detail,
                "fix": c.fix,
                "cause": c.cause,
            })).collect::<Vec<_>>(),
        })),
        false => say!(out, "{}", render(&url, &checks, works).trim_end()),
    }
    match checks.iter().find(|c| c.verdict == Verdict::Fail) {
        Some(failed) => Err(CliError::LinkBroken {
            check: format!(
                "{}: {}",
                failed.name,
                failed.detail.lines().next().unwrap_or_default()
            ),
            fix: failed.fix.clone().unwrap_or_default(),
        }),
        None => Ok(()),
    }
}

fn render(url: &str, checks: &[Check], works: bool) -> String {
    let mut out = format!("Checking {url}\n");
    for check in checks {
        let mark = match check.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Fail => "FAIL",
            Verdict::Skipped => "--  ",
        };
        let _ = writeln!(out, "  {mark}  {}: {}", check.name, check.detail);
        if let Some(fix) = &check.fix {
            let _ = writeln!(out, "        fix: {fix}");
        }
    }
    let _ = match works {
        true => writeln!(out, "The link works."),
        false => writeln!(out, "The link does not work yet: fix the first FAIL above."),
    };
    out
}

/// The server: running, crashed (its pid recorded but gone: a clean stop
/// forgets it), or stopped; and whether it answers HTTP.
fn check_server(home: &Home, state: Option<&ServerState>, checks: &mut Vec<Check>) -> bool {
    let log = home.logs_dir().join("server.log");
    let down = match ServerCondition::of(state) {
        ServerCondition::Running => None,
        ServerCondition::NeverStarted => Some(Check::fail(
            "server",
            "not running (never started in this drop home)",
            "run 'drop start'",
        )),
        ServerCondition::Crashed { pid } => Some(Check::fail(
            "server",
            format!(
                "crashed: pid {pid} is recorded but gone (a stopped server forgets its pid)\n        its log `{}` ends with:\n{}",
                log.display(),
                indent(&log_tail(&log, LOG_LINES))
            ),
            "run 'drop start' (and read the log above for why it died)",
        )),
        ServerCondition::Stopped => Some(Check::fail(
            "server",
            "not running (stopped)",
            "run 'drop start'",
        )),
    };
    let state = match (down, state) {
        (None, Some(state)) => state,
        (down, _) => {
            checks.extend(down);
            return false;
        }
    };
    let pid = state.pid.unwrap_or_default();
    checks.push(Check::ok(
        "server",
        format!("running (pid {pid}, port {})", state.port),
    ));
    match answers_http(state) {
        true => checks.push(Check::ok(
            "server answers",
            format!("HTTP on port {}", state.port),
        )),
        false => checks.push(Check::fail(
            "server answers",
            format!("nothing answers HTTP on port {}", state.port),
            format!(
                "see its log `{}`; 'drop stop' then 'drop start' restarts it",
                log.display()
            ),
        )),
    }
    true
}

/// Without a tunnel, whether other machines can reach the page server at
/// all: not when it listens on loopback alone (`DROP_BIND=127.0.0.1`) and
/// its URLs name another address.
fn check_server_listens(state: &ServerState, urls: &Urls, checks: &mut Vec<Check>) {
    let listeners = sockets::listeners(state.port);
    if urls.reach() != Reach::ThisMachine && sockets::loopback_only(&listeners) {
        checks.push(Check::fail(
            "server listens",
            format!(
                "port {} on loopback alone, but its URLs ({}) are for other machines",
                state.port,
                urls.local_base()
            ),
            "unset DROP_BIND (or set it to 0.0.0.0), then 'drop stop' and 'drop start'",
        ));
    }
}

/// The page's record and its source.
fn check_page(id: &str, record: &Record, checks: &mut Vec<Check>) {
    let label = label(id, record);
    if record.expired(std::time::SystemTime::now()) {
        checks.push(Check::fail(
            "link",
            "the page expired: it answers 404 and the server removes it",
            format!(
                "'drop add {} --expires SPAN' publishes it again",
                shell_word(&record.source)
            ),
        ));
        return;
    }
    if record.once && record.used_at.is_some() {
        checks.push(Check::fail(
            "link",
            "the one-time link was used: it answers 404 now",
            format!(
                "'drop add {} --once' gives a fresh one-time link ({label})",
                shell_word(&record.source)
            ),
        ));
        return;
    }
    let source = record.source.display();
    if !record.source.exists() {
        checks.push(Check::fail(
            "source",
            format!("`{source}` is gone"),
            format!("put it back, or 'drop remove {}'", label),
        ));
        return;
    }
    if record.is_dir
        && !record.is_app()
        && let Err(e) = Manifest::load(&record.source)
    {
        checks.push(Check::fail(
            "source",
            format!("the folder `{source}` has no usable .drop-publish: {e}"),
            "list the files to serve in .drop-publish, one pattern a line",
        ));
        return;
    }
    checks.push(Check::ok("source", format!("`{source}` is there")));
}

/// The app's process, and the addresses it listens on.
fn check_app(home: &Home, id: &str, record: &Record, urls: &Urls, checks: &mut Vec<Check>) {
    let name = label(id, record);
    let log = app_log_path(home, id);
    let port = record.port.unwrap_or_default();
    match AppStatus::of(record) {
        AppStatus::Running { pid } => {
            checks.push(Check::ok("app process", format!("running (pid {pid})")));
        }
        AppStatus::Crashed { exit_code } => {
            let code = exit_code.map_or("an unknown code".into(), |c| format!("exit code {c}"));
            checks.push(Check::fail(
                "app process",
                format!(
                    "crashed with {code}\n        its log `{}` ends with:\n{}",
                    log.display(),
                    indent(&log_tail(&log, LOG_LINES))
                ),
                format!("fix what the log says, then 'drop start {name}'"),
            ));
            return;
        }
        AppStatus::Unverified { pid } => {
            checks.push(Check::fail(
                "app process",
                format!("pid {pid} lives but cannot be shown to be this app"),
                format!("end it ('kill {pid}'), then 'drop start {name}'"),
            ));
            return;
        }
        _ => {
            checks.push(Check::fail(
                "app process",
                "not running",
                format!("run 'drop start {name}'"),
            ));
            return;
        }
    }
    let listeners = sockets::listeners(port);
    if listeners.is_empty() {
        checks.push(Check::fail(
            "app listens",
            format!("nothing listens on port {port}"),
            format!(
                "make its command listen on port {port}, or re-add it with the port it uses and --restart"
            ),
        ));
        return;
    }
    let addresses: Vec<String> = listeners.iter().map(|a| a.ip().to_string()).collect();
    let on = format!("port {port} on {}", addresses.join(", "));
    let direct =
        record.current_tunnel_url().is_none() && urls.reach_of(record) != Reach::ThisMachine;
    let loopback_only = sockets::loopback_only(&listeners);
    let tunneled_app = record.tunnel_state.is_some();
    match (direct && !tunneled_app && loopback_only, loopback_only) {
        (true, _) => checks.push(Check::fail(
            "app listens",
            format!("{on}: this machine alone, but its URL {} is for other machines", urls.app(record)),
            format!(
                "make its command listen on every address (e.g. `--host 0.0.0.0`), then 'drop add … --restart'; or 'drop stop', 'drop start --tunnel', 'drop start {name}'"
            ),
        )),
        (false, true) if tunneled_app || record.current_tunnel_url().is_some() => {
            checks.push(Check::ok("app listens", format!("{on} (reached through its tunnel)")))
        }
        (false, true) => checks.push(Check::ok(
            "app listens",
            format!("{on} (this machine alone, like its URL)"),
        )),
        (false, false) => checks.push(Check::ok("app listens", on)),
    }
}

/// Without a tunnel: who can open the URL (drop cannot look from outside).
fn direct_reach(urls: &Urls, found: Option<&(String, Record)>) -> Check {
    let reach = found.map_or_else(|| urls.reach(), |(_, r)| urls.reach_of(r));
    match reach {
        Reach::LocalNetwork => Check::ok(
            "reach",
            "no tunnel: the URL opens only on this machine's local network",
        ),
        Reach::ThisMachine => Check::ok("reach", "no tunnel: the URL opens only on this machine"),
        _ => Check::ok(
            "reach",
            "no tunnel: the URL is this machine's public address (a firewall in between is not checked)",
        ),
    }
}

/// The tunnel of the server (or of `app`): its process, its phase, and
/// the URL checked from outside now, by the daemon.
fn check_tunnel(
    home: &Home,
    app: Option<&(String, Record)>,
    checks: &mut Vec<Check>,
) -> Result<(), CliError> {
    let tunnel = match app {
        None => home.load_tunnel_state()?,
        Some((_, record)) => record.tunnel(),
    };
    let whose = match app {
        None => "the server's tunnel".to_owned(),
        Some((id, record)) => format!("the tunnel of {}", label(id, record)),
    };
    let Some(tunnel) = tunnel else {
        let fix = match app {
            None => "run 'drop stop' then 'drop start'".to_owned(),
            Some((id, record)) => {
                let name = label(id, record);
                format!("run 'drop stop {name}' then 'drop start {name}', which opens it again")
            }
        };
        checks.push(Check::fail("tunnel", format!("{whose} is not open"), fix));
        return Ok(());
    };
    // The recorded process, when its start time is known also that it is
    // still the same process.
    let alive = tunnel
        .pid
        .and_then(ProcessId::of)
        .is_some_and(|p| tunnel.start_time.is_none_or(|t| t == p.start_time));
    checks.push(tunnel_phase_check(&whose, &tunnel, alive));
    if !tunnel.state.holds_url() && tunnel.state != TunnelPhase::Verifying {
        return Ok(());
    }
    let request = ControlRequest::CheckLink {
        id: app.map(|(id, _)| id.clone()),
    };
    match control::send_within(home, &request, CHECK_TIMEOUT) {
        Ok(ControlReply::LinkChecked { report }) => {
            let named = home.load_named_tunnel()?.map(|setup| setup.hostname);
            push_link_checks(&report, named.as_deref(), app.is_some(), checks)
        }
        Ok(ControlReply::Failed { error, .. }) => checks.push(Check::fail(
            "outside",
            error,
            "run 'drop status' to see the tunnel's state",
        )),
        Ok(other) => return Err(crate::apps::failure(other)),
        Err(e) => checks.push(Check::fail(
            "outside",
            format!("the server did not answer on its control socket ({e})"),
            "see its log, logs/server.log in the drop home; 'drop stop' then 'drop start' restarts it",
        )),
    }
    Ok(())
}

fn tunnel_phase_check(whose: &str, tunnel: &TunnelState, alive: bool) -> Check {
    let error = tunnel.error.clone().unwrap_or_default();
    let pid = tunnel.pid.map_or(String::new(), |p| format!(", pid {p}"));
    match &tunnel.state {
        TunnelPhase::Up | TunnelPhase::Unconfirmed | TunnelPhase::Verifying if !alive => {
            Check::fail(
                "tunnel",
                format!("{whose}: its cloudflared process{pid} is gone"),
                "drop replaces it within seconds; if not, 'drop stop' then 'drop start'",
            )
        }
        TunnelPhase::Up => Check::ok("tunnel", format!("{whose} is up at {}{pid}", tunnel.url)),
        TunnelPhase::Unconfirmed => Check::ok(
            "tunnel",
            format!(
                "{whose} is up at {}{pid}, not confirmed from outside yet: {error}",
                tunnel.url
            ),
        ),
        TunnelPhase::Verifying => Check::ok(
            "tunnel",
            format!(
                "{whose} is up at {}{pid}, being checked from outside",
                tunnel.url
            ),
        ),
        TunnelPhase::Reconnecting => Check::fail(
            "tunnel",
            format!(
                "{whose}: cloudflared lost its edge connection and is reconnecting (the URL stays)"
            ),
            "wait a minute; drop replaces the tunnel if it does not reconnect within two",
        ),
        TunnelPhase::RateLimited => Check::fail(
            "tunnel",
            format!("{whose} is not open yet: {error}"),
            "wait: drop retries with a growing pause (from a minute up to 30 minutes); starting and stopping tunnels often makes it last longer",
        ),
        TunnelPhase::Failed => Check::fail(
            "tunnel",
            format!("{whose} failed: {error}"),
            "fix what it says, then 'drop stop' and 'drop start'",
        ),
        phase => Check::fail(
            "tunnel",
            format!(
                "{whose} is {}{}",
                phase.words(),
                if error.is_empty() {
                    String::new()
                } else {
                    format!(": {error}")
                }
            ),
            "drop keeps retrying; 'drop status' shows the URL once it is up",
        ),
    }
}

/// The fix when no public DNS resolver can be reached from this machine:
/// the link may well work, drop just cannot tell from here.
const RESOLVERS_FIX: &str = "this machine cannot reach the public DNS-over-HTTPS resolvers drop asks (cloudflare-dns.com, dns.google), so it cannot tell whether the link opens elsewhere: check this machine's network, firewall or proxy, or point DROP_DOH_URLS at a resolver it can reach";

/// The checks from outside (of the server's tunnel, or of an app's), with
/// fixes for the kind of tunnel: a quick tunnel is replaced by a new one at
/// the next start; a named tunnel keeps its hostname, whose DNS record may
/// point elsewhere.
fn push_link_checks(
    report: &LinkReport,
    named: Option<&str>,
    for_app: bool,
    checks: &mut Vec<Check>,
) {
    let step = |name: &'static str, ok: &str, result: &StepResult, fix: &str| match result {
        StepResult::Passed => Check::ok(name, ok.to_owned()),
        StepResult::Failed {
            error,
            fix: given,
            kind,
            detail,
        } => {
            let fix = match (given, kind) {
                (Some(given), _) => given.as_str(),
                (None, FailureKind::ResolversUnreachable) => RESOLVERS_FIX,
                (None, _) => fix,
            };
            Check {
                cause: detail.clone(),
                ..Check::fail(name, error.clone(), fix.to_owned())
            }
        }
        StepResult::NotAsked { why } => Check::skipped(name, format!("not asked: {why}")),
    };
    let reached = match for_app {
        true => "a request through Cloudflare's edge reaches the app, which answers it",
        false => "a request through Cloudflare's edge reaches drop",
    };
    checks.push(step(
        "edge",
        reached,
        &report.edge,
        match named {
            None => "the tunnel is not connected at the edge yet: wait a few seconds; if it lasts, 'drop stop' then 'drop start' gives a new tunnel",
            Some(_) => "the named tunnel is not connected at the edge yet: wait a few seconds; if it lasts, see 'drop tunnel status', then 'drop stop' and 'drop start' to connect it again",
        },
    ));
    let dns_fix = named.map(|hostname| {
        format!(
            "the hostname's DNS record is missing or points elsewhere: 'drop tunnel setup --hostname {hostname} --replace-dns' routes it to this tunnel"
        )
    });
    checks.push(step(
        "public DNS",
        "the hostname resolves at public DNS",
        &report.dns,
        dns_fix.as_deref().unwrap_or(
            "Cloudflare publishes a new tunnel's name within seconds; if it lasts minutes, 'drop stop' then 'drop start' gives a new tunnel",
        ),
    ));
}

fn indent(text: &str) -> String {
    let lines: Vec<String> = text.lines().map(|l| format!("          {l}")).collect();
    match lines.is_empty() {
        true => "          (empty)".into(),
        false => lines.join("\n"),
    }
}
