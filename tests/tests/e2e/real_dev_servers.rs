//! Real dev servers behind drop's tunnels: a Vite, a Django and a Flask
//! project (`drop_tests::dev_servers`), each run by its framework's
//! ordinary dev command with no setting changed, open for the human with
//! the framework's own page through a quick tunnel (the fake cloudflared,
//! and the real one where its rig is) and through a named tunnel, and
//! `doctor` says the link works. Added with `--keep-host`, Vite and Django
//! refuse the public hostname for real, and drop says so with the
//! framework's fix, never that the link works.
//!
//! The apps of a test start side by side. The figures printed
//! (`figure: …`) are measured, never asserted.

use std::time::{Duration, Instant};

use crate::common::{NAT_ADDRESS, Phase3, wait_for};
use drop_tests::DropEnv;
use drop_tests::dev_servers::{DevServerProcess, Framework};
use drop_tests::free_port;
use drop_tests::rig::Rig;

/// How long a page may take to open through a tunnel drop called up.
const OPEN_LIMIT: Duration = Duration::from_secs(20);

/// An app drop was asked to start, and what `drop start NAME` said.
struct Started {
    framework: Framework,
    name: String,
    out: String,
    took: Duration,
}

impl Started {
    /// The URL of its `App started: URL` line.
    fn url(&self) -> String {
        (self.out.lines())
            .find_map(|line| line.strip_prefix("App started: "))
            .map(|rest| rest.split(' ').next().unwrap_or(rest))
            .unwrap_or_else(|| panic!("{}: no URL: {}", self.name, self.out))
            .trim_end_matches('/')
            .to_owned()
    }

    /// The hostname of its URL.
    fn host(&self) -> String {
        let url = self.url();
        url.strip_prefix("https://")
            .unwrap_or_else(|| panic!("{}: not a tunnel URL: {url}", self.name))
            .to_owned()
    }
}

/// Makes a project of `framework` in the home's work folder and adds it as
/// the app `name`, with `flags`.
fn add_app(env: &DropEnv, framework: Framework, name: &str, flags: &[&str]) {
    let dir = env.work.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let run = framework.project(&dir, port);
    let port = port.to_string();
    let mut add = vec![
        "add",
        dir.to_str().unwrap(),
        "--run",
        &run,
        "--port",
        &port,
        "--name",
        name,
    ];
    add.extend_from_slice(flags);
    env.ok(&add);
}

/// `drop start NAME` for each app, all at once; what each said, and how
/// long it took.
fn start_side_by_side(env: &DropEnv, apps: &[(Framework, &str)]) -> Vec<Started> {
    std::thread::scope(|scope| {
        let starts: Vec<_> = (apps.iter())
            .map(|&(framework, name)| {
                scope.spawn(move || {
                    let began = Instant::now();
                    let out = env.ok(&["start", name]);
                    Started {
                        framework,
                        name: name.to_owned(),
                        out,
                        took: began.elapsed(),
                    }
                })
            })
            .collect();
        starts.into_iter().map(|s| s.join().unwrap()).collect()
    })
}

/// Each framework's app, named after it.
fn every_framework() -> Vec<(Framework, &'static str)> {
    Framework::ALL.iter().map(|&f| (f, f.name())).collect()
}

/// Prints how long each start took.
fn report_starts(through: &str, started: &[Started]) {
    for app in started {
        eprintln!(
            "figure: drop start {} ({:?} dev server, {through}): {:.1} s",
            app.name,
            app.framework,
            app.took.as_secs_f64()
        );
    }
}

/// `drop doctor NAME`: whether it passed, and all it printed.
fn doctor(env: &DropEnv, name: &str) -> (bool, String) {
    let out = env.run(&["doctor", name]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// The app was handed out as working, its page opens for the human (by
/// `open`: status and body of a path at the app's hostname), and `doctor`
/// agrees.
fn assert_opens(env: &DropEnv, app: &Started, open: impl Fn(&str, &str) -> (u16, String)) {
    let name = &app.name;
    assert!(!app.out.contains("not confirmed"), "{name}: {}", app.out);
    let host = app.host();
    let (status, body) = wait_for(&format!("{name}'s page"), OPEN_LIMIT, || {
        let (status, body) = open(&host, "/");
        (status == 200).then_some((status, body))
    });
    assert_eq!(status, 200);
    assert!(app.framework.is_its_page(&body), "{name}: {body}");
    if app.framework == Framework::Vite {
        // The page is nothing without the scripts it loads, which Vite
        // checks the Host of too.
        let (status, script) = open(&host, "/@vite/client");
        assert_eq!(status, 200, "{name}: Vite's client script: {script}");
    }
    let (passed, said) = doctor(env, name);
    assert!(passed, "{name}: {said}");
    assert!(said.contains("The link works."), "{name}: {said}");
    assert!(said.contains("edge reaches the app"), "{name}: {said}");
}

/// The app refuses the public hostname as its framework does; `start`
/// printed the URL as not confirmed, naming the refusal; `doctor` fails
/// with the framework's fix; nothing says the link works.
fn assert_refused(env: &DropEnv, app: &Started, open: impl Fn(&str, &str) -> (u16, String)) {
    let name = &app.name;
    let (status, words, setting) = app.framework.refusal().expect("a host check");
    let (seen, body) = open(&app.host(), "/");
    assert_eq!(seen, status, "{name}: the human is refused: {body}");
    assert!(body.contains(words), "{name}: {body}");
    assert!(
        app.out.contains("not confirmed to work") && app.out.contains(words),
        "{name}: {}",
        app.out
    );
    let (passed, said) = doctor(env, name);
    assert!(!passed, "{name}: {said}");
    assert!(said.contains(setting), "{name}: the fix: {said}");
    let status = env.ok(&["status"]);
    for told in [&app.out, &said, &status] {
        assert!(!told.contains("works"), "{name}: {told}");
    }
}

/// The human's view in a world of the fake cloudflared: through the edge.
fn through_fake_edge(p: &Phase3) -> impl Fn(&str, &str) -> (u16, String) + '_ {
    |host, path| {
        let page = p.open(&format!("https://{host}{path}"));
        (page.status, page.text())
    }
}

/// Each project, run by hand on this machine, serves its framework's page
/// at `/` to a browser here: what the tests through tunnels expect the
/// human to get.
#[test]
fn each_dev_server_serves_its_page_at_home() {
    let folder = tempfile::tempdir().unwrap();
    std::thread::scope(|scope| {
        for framework in Framework::ALL {
            let dir = folder.path().join(framework.name());
            scope.spawn(move || {
                std::fs::create_dir_all(&dir).unwrap();
                let server = DevServerProcess::start(framework, &dir);
                let (page, took) = server.first_page();
                eprintln!(
                    "figure: {framework:?} dev server to its first page: {:.1} s",
                    took.as_secs_f64()
                );
                assert_eq!(page.status, 200, "{framework:?}: {}", page.text());
                assert!(framework.is_its_page(&page.text()), "{}", page.text());
            });
        }
    });
}

/// Through quick tunnels of the fake cloudflared, each app gets its own
/// URL and its framework's page opens for the human there.
#[test]
fn vite_django_and_flask_open_through_a_quick_tunnel() {
    let p = Phase3::behind_nat();
    p.start(&[]);
    let apps = every_framework();
    for &(framework, name) in &apps {
        add_app(&p.env, framework, name, &[]);
    }
    let started = start_side_by_side(&p.env, &apps);
    report_starts("quick tunnel, fake cloudflared", &started);
    for app in &started {
        assert_opens(&p.env, app, through_fake_edge(&p));
    }
}

/// Through the user's named tunnel, each app opens at its own hostname; a
/// Django app added with `--keep-host` is refused there and is never
/// called working.
#[test]
fn vite_django_and_flask_open_through_a_named_tunnel() {
    let p = Phase3::logged_in("example.com", &[]);
    p.env
        .ok(&["tunnel", "setup", "--hostname", "drop.example.com"]);
    p.start(&[]);
    let mut apps = every_framework();
    for &(framework, name) in &apps {
        add_app(&p.env, framework, name, &[]);
    }
    add_app(&p.env, Framework::Django, "django-kept", &["--keep-host"]);
    apps.push((Framework::Django, "django-kept"));
    let started = start_side_by_side(&p.env, &apps);
    report_starts("named tunnel, fake cloudflared", &started);
    for app in &started {
        assert_eq!(app.host(), format!("{}-drop.example.com", app.name));
        match app.name.as_str() {
            "django-kept" => assert_refused(&p.env, app, through_fake_edge(&p)),
            _ => assert_opens(&p.env, app, through_fake_edge(&p)),
        }
    }
}

/// How many requests the Django app `name` refused, by its log.
fn django_refusals(env: &DropEnv, name: &str) -> usize {
    let log = env.ok(&["logs", name]);
    log.lines()
        .filter(|line| line.contains("\"GET / HTTP/1.1\" 400"))
        .count()
}

/// With `--keep-host` Vite and Django get the public hostname, refuse it,
/// and drop never calls their links working. While `start` waits out its
/// bound, drop does not ask the refusing app every second: Django writes a
/// traceback to its log for each refusal.
#[test]
fn vite_and_django_refusing_the_public_hostname_are_never_called_working() {
    let bound = [("DROP_TUNNEL_VERIFY_TIMEOUT_MS", "10000")];
    let p = Phase3::new(NAT_ADDRESS, true, &bound);
    p.start(&[]);
    let apps = [(Framework::Vite, "vite"), (Framework::Django, "django")];
    for &(framework, name) in &apps {
        add_app(&p.env, framework, name, &["--keep-host"]);
    }
    let started = start_side_by_side(&p.env, &apps);
    let refusals = django_refusals(&p.env, "django");
    eprintln!("figure: refusals in Django's log after a 10 s bound: {refusals}");
    assert!(refusals <= 2, "asked {refusals} times");
    for app in &started {
        assert_refused(&p.env, app, through_fake_edge(&p));
    }
}

/// Through the real cloudflared (its rig, offline), each app opens for the
/// human through the edge's front; a Vite app added with `--keep-host` is
/// refused and is never called working.
#[test]
fn vite_django_and_flask_open_through_the_real_cloudflared() {
    let Some(rig) = Rig::up_or_skip("real dev servers through the real cloudflared") else {
        return;
    };
    let env = rig.drop_env();
    env.ok(&["start", "--tunnel", "--port", "0"]);
    let mut apps = every_framework();
    for &(framework, name) in &apps {
        add_app(&env, framework, name, &[]);
    }
    add_app(&env, Framework::Vite, "vite-kept", &["--keep-host"]);
    apps.push((Framework::Vite, "vite-kept"));
    let started = start_side_by_side(&env, &apps);
    report_starts("quick tunnel, real cloudflared", &started);
    let through_front = |host: &str, path: &str| {
        let visit = rig.open(host, path);
        (visit.status, visit.body)
    };
    for app in &started {
        match app.name.as_str() {
            "vite-kept" => assert_refused(&env, app, through_front),
            _ => assert_opens(&env, app, through_front),
        }
    }
}
