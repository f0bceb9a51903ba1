//! A real browser (Debian's headless Chromium, driven through chromedriver
//! on loopback) opens a protected page, types the password and sees the
//! page; on a phone's screen, a dead link's page fits.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use drop_tests::DropEnv;
use drop_tests::engine::PageServer;
use drop_tests::http::request_from;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver on a free loopback port, ended when dropped.
struct Driver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl Driver {
    fn start() -> Self {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(tool).exists(),
                "{tool} is missing: install Debian's chromium and chromium-driver (.ci/run does)"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver {
            child,
            port,
            profile: tempfile::tempdir().unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return driver;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("chromedriver did not listen on {port}");
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let headers = [("Content-Type", "application/json")];
        let res = request_from(
            [127, 0, 0, 1],
            self.port,
            method,
            path,
            &headers,
            body.as_bytes(),
        );
        let doc: Value = serde_json::from_slice(&res.body)
            .unwrap_or_else(|_| panic!("{method} {path}: {}", res.text()));
        assert!(res.status == 200, "{method} {path}: {} {doc}", res.status);
        doc["value"].clone()
    }

    fn new_session(&self) -> String {
        self.new_session_as(json!({}))
    }

    /// A session on a phone's screen: 390 × 844 CSS pixels, as an iPhone's.
    fn new_phone_session(&self) -> String {
        self.new_session_as(json!({"mobileEmulation": {
            "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 3.0, "mobile": true, "touch": true}
        }}))
    }

    /// A session with these chromeOptions besides drop's own.
    fn new_session_as(&self, mut options: Value) -> String {
        let profile = format!("--user-data-dir={}", self.profile.path().display());
        options["binary"] = json!(CHROMIUM);
        options["args"] = json!([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            profile
        ]);
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}});
        self.call("POST", "/session", Some(caps))["sessionId"]
            .as_str()
            .expect("session id")
            .to_owned()
    }

    fn find(&self, session: &str, css: &str) -> String {
        let found = self.call(
            "POST",
            &format!("/session/{session}/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element for {css}: {found}"))
            .to_owned()
    }

    /// What `script` returns in the page.
    fn eval(&self, session: &str, script: &str) -> Value {
        let script = json!({"script": script, "args": []});
        self.call(
            "POST",
            &format!("/session/{session}/execute/sync"),
            Some(script),
        )
    }

    fn text(&self, session: &str) -> String {
        self.eval(
            session,
            "return document.body ? document.body.innerText : ''",
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a person does: open the link, see the form, type the password,
/// submit, and read the page.
#[test]
fn a_browser_logs_in_to_a_protected_page() {
    let env = DropEnv::new();
    let port = env.start();
    let page = env.write(
        "report.html",
        "<!doctype html><title>Report</title><h1>Quarterly numbers</h1>",
    );
    let (_, path) = env.add(&page, &["--password", "open sesame"]);
    let url = format!("http://127.0.0.1:{port}{path}");

    let driver = Driver::start();
    let session = driver.new_session();
    driver.call(
        "POST",
        &format!("/session/{session}/url"),
        Some(json!({"url": url})),
    );
    assert!(
        driver.text(&session).contains("Password required"),
        "the form is shown first"
    );

    let input = driver.find(&session, "input[name=password]");
    let typed = json!({"text": "open sesame"});
    driver.call(
        "POST",
        &format!("/session/{session}/element/{input}/value"),
        Some(typed),
    );
    let button = driver.find(&session, "button[type=submit]");
    driver.call(
        "POST",
        &format!("/session/{session}/element/{button}/click"),
        Some(json!({})),
    );

    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = String::new();
    while Instant::now() < deadline {
        seen = driver.text(&session);
        if seen.contains("Quarterly numbers") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        seen.contains("Quarterly numbers"),
        "after login the page shows; saw: {seen}\nserver log:\n{}",
        env.server_log()
    );
    let current = driver.call("GET", &format!("/session/{session}/url"), None);
    assert_eq!(
        current.as_str(),
        Some(url.as_str()),
        "redirected back to the page itself"
    );
    driver.call("DELETE", &format!("/session/{session}"), None);
}

/// A dead link on a phone: the 404 page fits its screen (no sideways
/// scrolling, the card nearly as wide as the screen), has the login
/// page's look (its stylesheet loaded under the page's CSP) and says what
/// may have happened to the link.
#[test]
fn a_dead_link_shows_a_page_fit_for_a_phone() {
    let server = PageServer::start();
    let url = format!("http://127.0.0.1:{}/p/aaaaaaaaaaaaaaaaaaaa/", server.port());
    let driver = Driver::start();
    let session = driver.new_phone_session();
    driver.call(
        "POST",
        &format!("/session/{session}/url"),
        Some(json!({"url": url})),
    );
    let seen = driver.eval(
        &session,
        "const main = document.querySelector('main'); \
         return {screen: window.innerWidth, page: document.documentElement.scrollWidth, \
                 card: main ? main.getBoundingClientRect().width : 0, \
                 corners: main ? getComputedStyle(main).borderTopLeftRadius : ''};",
    );
    let width = |key: &str| {
        seen[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key}: {seen}"))
    };
    assert_eq!(
        width("screen"),
        390.0,
        "laid out for the phone's width: {seen}"
    );
    assert!(
        width("page") <= width("screen"),
        "no sideways scrolling: {seen}"
    );
    assert!(width("card") >= 0.85 * width("screen"), "{seen}");
    assert_eq!(seen["corners"], "12px", "the login page's style: {seen}");
    let text = driver.text(&session);
    for words in ["does not exist", "expired", "already used"] {
        assert!(text.contains(words), "{words} in {text}");
    }
    driver.call("DELETE", &format!("/session/{session}"), None);
}
