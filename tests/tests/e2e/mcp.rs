//! `drop mcp` driven by an MCP client nobody here wrote: the official MCP
//! Python SDK (`mcp` 2.x from PyPI, which `.ci/run` installs into
//! `target/mcp-venv`), through `tests/mcp_client.py`. The SDK starts
//! `drop mcp` over stdio in a temporary home, negotiates the protocol, and
//! calls the tools; the pages and apps they publish are opened over real
//! HTTP.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::common::{Phase3, TEST_APP, is_quick_tunnel, wait_for};
use drop_tests::http::{Response, get, request, request_from};
use drop_tests::{DropEnv, drop_bin, free_port};
use serde_json::{Value, json};

/// The tools the issue names, in the order `tools/list` gives them.
const TOOLS: [&str; 9] = [
    "add_app",
    "doctor",
    "logs",
    "publish",
    "remove",
    "start_app",
    "status",
    "stop_app",
    "wait",
];
/// How long any one answer may take (a start with a tunnel included).
const ANSWER_WITHIN: Duration = Duration::from_secs(60);
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// The venv's python with the SDK, or a failure saying how to get it.
fn sdk_python() -> PathBuf {
    let target = drop_bin()
        .parent()
        .and_then(Path::parent)
        .expect("the target folder")
        .to_path_buf();
    let python = target.join("mcp-venv/bin/python");
    let has_sdk = Command::new(&python)
        .args([
            "-c",
            "import mcp, importlib.metadata as m; assert m.version('mcp').startswith('2.')",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_sdk,
        "the MCP Python SDK (mcp 2.x) is not installed at {}: run .ci/run, which installs it there from PyPI",
        python.display()
    );
    python
}

/// One MCP session: the SDK's client, through the bridge, with `drop mcp`
/// as its server. Every line exchanged is printed (a test's transcript).
struct Session {
    bridge: Child,
    to_bridge: Option<ChildStdin>,
    from_bridge: Receiver<Value>,
    /// Messages read while waiting for another one.
    unread: Vec<Value>,
    next_id: u64,
    /// What the SDK negotiated: protocol version and server info.
    ready: Value,
}

impl Session {
    /// Starts `drop mcp` as `env` runs drop: its home, folder and settings.
    fn start(env: &DropEnv) -> Session {
        let server = env.command(&["mcp"]);
        let vars: serde_json::Map<String, Value> = server
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), json!(v?.to_str()?))))
            .collect();
        let spec = json!({
            "command": server.get_program().to_str().unwrap(),
            "args": server.get_args().map(|a| a.to_str().unwrap()).collect::<Vec<_>>(),
            "env": vars,
            "cwd": server.get_current_dir().unwrap().to_str().unwrap(),
        });
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("mcp_client.py");
        let mut bridge = Command::new(sdk_python())
            .arg(script)
            .arg(spec.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python runs");
        let stdout = bridge.stdout.take().unwrap();
        let (lines, from_bridge) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("<- {line}");
                let message = serde_json::from_str(&line).expect("the bridge speaks JSON");
                if lines.send(message).is_err() {
                    break;
                }
            }
        });
        let mut session = Session {
            to_bridge: bridge.stdin.take(),
            bridge,
            from_bridge,
            unread: Vec::new(),
            next_id: 0,
            ready: Value::Null,
        };
        session.ready =
            session.read(|m| m.get("ready").is_some(), "the session to open")["ready"].take();
        session
    }

    fn send(&mut self, mut request: Value) -> u64 {
        self.next_id += 1;
        request["id"] = json!(self.next_id);
        eprintln!("-> {request}");
        let stdin = self.to_bridge.as_mut().expect("the session is open");
        writeln!(stdin, "{request}").expect("the bridge reads");
        self.next_id
    }

    /// The next message `wanted` picks, keeping the others for later.
    fn read(&mut self, wanted: impl Fn(&Value) -> bool, what: &str) -> Value {
        if let Some(at) = self.unread.iter().position(&wanted) {
            return self.unread.remove(at);
        }
        let deadline = Instant::now() + ANSWER_WITHIN;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.from_bridge.recv_timeout(left) {
                Ok(message) if wanted(&message) => return message,
                Ok(message) => self.unread.push(message),
                Err(RecvTimeoutError::Timeout) => panic!("timed out waiting for {what}"),
                Err(RecvTimeoutError::Disconnected) => panic!("the bridge ended before {what}"),
            }
        }
    }

    /// Starts a call; its answer is read with [`Session::answer`].
    fn call_async(&mut self, tool: &str, args: Value) -> u64 {
        self.send(json!({ "op": "call", "tool": tool, "args": args }))
    }

    /// The `CallToolResult` of call `id` (the SDK checked it against the
    /// tool's output schema unless it is an error).
    fn answer(&mut self, id: u64) -> Value {
        let done = |m: &Value| {
            m["id"] == id && (m.get("result").is_some() || m.get("exception").is_some())
        };
        let message = self.read(done, &format!("the answer to call {id}"));
        assert!(
            message.get("exception").is_none(),
            "the SDK raised: {}",
            message["exception"]
        );
        message["result"].clone()
    }

    fn call(&mut self, tool: &str, args: Value) -> Value {
        let id = self.call_async(tool, args);
        self.answer(id)
    }

    /// A call that must succeed; its structured content.
    fn ok(&mut self, tool: &str, args: Value) -> Value {
        let result = self.call(tool, args);
        assert_eq!(result["isError"], false, "{tool} failed: {result}");
        result["structuredContent"].clone()
    }

    /// A call that must fail as a tool error; the error's `code`.
    fn error_code(&mut self, tool: &str, args: Value) -> String {
        let result = self.call(tool, args);
        assert_eq!(result["isError"], true, "{tool} did not fail: {result}");
        result["structuredContent"]["error"]["code"]
            .as_str()
            .expect("a code")
            .to_owned()
    }

    fn list_tools(&mut self) -> Vec<Value> {
        let id = self.send(json!({ "op": "list_tools" }));
        let listed = self.read(|m| m["id"] == id, "the tool list");
        listed["tools"].as_array().expect("tools").clone()
    }
}

impl Drop for Session {
    /// Ends the session as the SDK does (stdin closed, then signals), and
    /// the bridge with it.
    fn drop(&mut self) {
        drop(self.to_bridge.take());
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.bridge.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.bridge.kill();
        let _ = self.bridge.wait();
    }
}

/// The first line of a result's text, what a client shows.
fn first_text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A server of `env` on a free loopback port, then stopped: the port and
/// host a tool that starts the server uses again.
fn home_used_before(env: &DropEnv) {
    env.start();
    env.ok(&["stop"]);
}

fn path_of(url: &str) -> String {
    url.splitn(4, '/')
        .nth(3)
        .map(|p| format!("/{p}"))
        .expect("url path")
}

fn port_of(url: &str) -> u16 {
    let authority = url.split('/').nth(2).expect("authority");
    authority
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .expect("a port")
}

/// A browser opening a page of a server on this machine.
fn open(url: &str) -> Response {
    request(
        port_of(url),
        "GET",
        &path_of(url),
        &[("User-Agent", FIREFOX)],
    )
}

/// The session lists exactly the tools, each with a description
/// and both schemas; `wait` cannot be called without a timeout. Listing
/// and `status` start nothing.
#[test]
fn lists_every_tool_with_both_schemas_and_starts_nothing() {
    let env = DropEnv::new();
    let mut session = Session::start(&env);
    assert_eq!(session.ready["server"]["name"], "drop");
    let tools = session.list_tools();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, TOOLS);
    for tool in &tools {
        assert!(tool["description"].as_str().unwrap().len() > 40, "{tool}");
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
        assert_eq!(tool["outputSchema"]["type"], "object", "{tool}");
    }
    let wait = tools.iter().find(|t| t["name"] == "wait").unwrap();
    let required = wait["inputSchema"]["required"].as_array().unwrap();
    assert!(required.contains(&json!("timeout_s")), "{wait}");
    assert!(required.contains(&json!("page")), "{wait}");

    let status = session.ok("status", json!({}));
    assert_eq!(status["server"]["running"], false);
    assert_eq!(status["pages"], json!([]));
    assert_eq!(env.server_pid(), None, "a tool started the server");
}

/// A path that does not exist is a tool error with `no_such_path`, and
/// nothing is started for it, nor for a private key; a wait without its timeout is refused as a
/// `usage` error, not a wait that never ends.
#[test]
fn a_bad_path_is_a_tool_error_with_no_such_path() {
    let env = DropEnv::new();
    let mut session = Session::start(&env);
    let result = session.call("publish", json!({ "path": "missing.html" }));
    assert_eq!(result["isError"], true, "{result}");
    let error = &result["structuredContent"]["error"];
    assert_eq!(error["code"], "no_such_path");
    assert!(error["message"].as_str().unwrap().contains("missing.html"));
    assert!(first_text(&result).starts_with("Error (no_such_path): "));
    assert_eq!(env.server_pid(), None, "the server was started for nothing");

    // What looks like a secret is refused, with no way to insist here.
    let key = env.write(".ssh/id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\n");
    let secret = session.call("publish", json!({ "path": key }));
    assert_eq!(
        secret["structuredContent"]["error"]["code"], "looks_secret",
        "{secret}"
    );
    assert_eq!(
        env.server_pid(),
        None,
        "the server was started for a secret"
    );

    let refused = session.call("wait", json!({ "page": "x" }));
    let error = &refused["structuredContent"]["error"];
    assert_eq!(error["code"], "usage", "{refused}");
    assert!(error["message"].as_str().unwrap().contains("timeout_s"));
}

/// Behind NAT, `publish` starts the server as `drop start` would (NAT
/// detected, quick tunnel) and returns the tunnel URL, which opens through
/// the edge; `wait` reports progress until a browser opens it and returns
/// the receipt; `status` and `doctor` see the page; after `remove` its URL
/// answers 404.
#[test]
fn publish_behind_nat_tunnels_and_wait_sees_the_human_open_it() {
    let world = Phase3::behind_nat();
    world.start(&[]);
    world.env.ok(&["stop"]);
    world.env.write("report.html", "<h1>quarterly report</h1>");
    let mut session = Session::start(&world.env);

    let result = session.call("publish", json!({ "path": "report.html" }));
    assert_eq!(result["isError"], false, "{result}");
    assert!(
        first_text(&result).starts_with("Published: https://"),
        "{result}"
    );
    let page = &result["structuredContent"];
    let (id, url) = (page["id"].as_str().unwrap(), page["url"].as_str().unwrap());
    assert!(is_quick_tunnel(url.split("/p/").next().unwrap()), "{url}");
    assert_eq!(page["reach"], "tunnel");
    assert_eq!(page["server_running"], true);
    assert_eq!(world.open(url).status, 200);

    let waiting = session.call_async("wait", json!({ "page": id, "timeout_s": 60 }));
    let progress = session.read(
        |m| m["id"] == waiting && m.get("progress").is_some(),
        "a progress notification",
    );
    assert_eq!(progress["progress"]["total"], 60.0);
    let opened = world.open(url);
    assert_eq!(opened.status, 200);
    assert!(opened.text().contains("quarterly report"));
    let result = session.answer(waiting);
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(result["structuredContent"]["id"], id);
    assert!(result["structuredContent"]["views"].as_u64().unwrap() >= 1);
    assert!(first_text(&result).starts_with("Opened: "), "{result}");

    let status = session.ok("status", json!({}));
    assert_eq!(status["server"]["running"], true);
    assert_eq!(status["server"]["tunneled"], true);
    assert!(
        status["pages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == id)
    );
    let report = session.ok("doctor", json!({ "page": id }));
    assert_eq!(report["works"], true, "{report}");

    let removed = session.ok("remove", json!({ "pages": [id] }));
    assert_eq!(removed["removed"][0]["id"], id);
    assert_eq!(world.open(url).status, 404);
}

/// `wait` gives up with `not_opened` once its timeout passes; a cancelled
/// wait answers nothing and the session goes on.
#[test]
fn wait_times_out_with_not_opened_and_a_cancelled_wait_ends() {
    let env = DropEnv::new();
    env.start();
    let file = env.write("notes.html", "notes");
    let mut session = Session::start(&env);
    let page = session.ok("publish", json!({ "path": file }));
    let id = page["id"].as_str().unwrap();
    assert_eq!(
        session.error_code("wait", json!({ "page": id, "timeout_s": 1 })),
        "not_opened"
    );

    let waiting = session.call_async("wait", json!({ "page": id, "timeout_s": 60 }));
    session.read(
        |m| m["id"] == waiting && m.get("progress").is_some(),
        "a progress notification",
    );
    session.send(json!({ "op": "cancel", "call": waiting }));
    session.read(
        |m| m["id"] == waiting && m["cancelled"] == true,
        "the cancel",
    );
    assert_eq!(open(page["url"].as_str().unwrap()).status, 200);
    assert_eq!(session.ok("status", json!({}))["server"]["running"], true);
    assert!(
        !session
            .unread
            .iter()
            .any(|m| m["id"] == waiting && m.get("result").is_some()),
        "the cancelled wait answered"
    );
}

/// `publish` with `expires` and `once`: the page ends in two hours and
/// opens once, then answers 404 and `status` shows it used; a generated
/// password is returned once, kept on a second publish and made anew on
/// request; an end that does not parse is `bad_time`.
#[test]
fn publish_takes_expires_once_and_a_generated_password() {
    let env = DropEnv::new();
    home_used_before(&env);
    let file = env.write("once.html", "only once");
    let mut session = Session::start(&env);
    let page = session.ok(
        "publish",
        json!({ "path": file, "expires": "2h", "once": true }),
    );
    assert_eq!(page["once"], true);
    let expires = page["expires_at"].as_str().expect("an end");
    assert!(expires.starts_with("20"), "{expires}");
    assert!(page["receipt"].as_str().unwrap().contains("expires in"));
    let url = page["url"].as_str().unwrap();
    assert_eq!(open(url).status, 200);
    // Another visitor: the first one may reload it for a minute.
    let later = request_from(
        [127, 0, 0, 2],
        port_of(url),
        "GET",
        &path_of(url),
        &[("User-Agent", FIREFOX)],
        b"",
    );
    assert_eq!(later.status, 404);
    let id = page["id"].as_str().unwrap();
    let used = wait_for("status to show the link used", ANSWER_WITHIN, || {
        let status = session.ok("status", json!({}));
        let pages = status["pages"].as_array()?.clone();
        pages
            .into_iter()
            .find(|p| p["id"] == id && p["used_at"].is_string())
    });
    assert!(used["receipt"].as_str().unwrap().contains("used"), "{used}");

    let secret = env.write("secret.html", "secret");
    let result = session.call("publish", json!({ "path": secret, "password": true }));
    let password = result["structuredContent"]["password"].as_str().unwrap();
    assert!(first_text(&result).contains(password), "{result}");
    assert_eq!(result["structuredContent"]["protected"], true);
    // Again: the page keeps its password, unless a new one is asked for.
    let again = session.call("publish", json!({ "path": secret, "password": true }));
    assert_eq!(again["structuredContent"]["password_kept"], true, "{again}");
    let renewed = session.call(
        "publish",
        json!({ "path": secret, "password": true, "new_password": true }),
    );
    let new = renewed["structuredContent"]["password"].as_str().unwrap();
    assert_ne!(new, password, "{renewed}");
    assert_eq!(
        session.error_code("publish", json!({ "path": secret, "expires": "soonish" })),
        "bad_time"
    );
}

/// An app added, started (its URL answers), its output read, stopped (its
/// port closes) and removed.
#[test]
fn an_app_is_added_started_logged_stopped_and_removed() {
    let env = DropEnv::new().env("DROP_STOP_GRACE_MS", "1000");
    env.start();
    let dir = env.work.path().join("web");
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let mut session = Session::start(&env);
    let app = session.ok(
        "add_app",
        json!({ "path": dir, "run": format!("exec {TEST_APP} {port}"), "port": port, "name": "web" }),
    );
    assert_eq!(app["type"], "app");
    assert_eq!(app["status"], "stopped");

    let started = session.ok("start_app", json!({ "app": "web" }));
    assert_eq!(started["status"], "running");
    let url = started["url"].as_str().unwrap();
    let answer = get(port_of(url), "/");
    assert!(
        answer
            .text()
            .contains(&format!("hello from test-app on {port}"))
    );

    let logs = session.ok("logs", json!({ "app": "web", "lines": 10 }));
    let lines = logs["lines"].as_array().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l["line"] == format!("test-app: listening on {port}")),
        "{logs}"
    );

    let stopped = session.ok("stop_app", json!({ "app": "web" }));
    assert_eq!(stopped["was_running"], true);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert_eq!(
        session.error_code("start_app", json!({ "app": "nothing-of-that-name" })),
        "not_found"
    );
    let removed = session.ok("remove", json!({ "pages": ["web"] }));
    assert_eq!(removed["removed"][0]["type"], "app");
    assert_eq!(session.ok("status", json!({}))["pages"], json!([]));
}

/// Nothing but JSON-RPC reaches stdout, also while a tool starts the
/// server (whose notes go into the tool's text), and `drop mcp` ends when
/// the client closes stdin. Spoken to raw, so no SDK hides a stray line.
#[test]
fn stdout_carries_only_protocol_messages() {
    let env = DropEnv::new();
    home_used_before(&env);
    let file = env.write("raw.html", "raw");
    let mut server = env
        .command(&["mcp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("drop mcp runs");
    let hello = json!({
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": { "name": "raw", "version": "1" },
    });
    let requests = [
        json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello }),
        json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
        json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": { "name": "publish", "arguments": { "path": file } } }),
        json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/call",
                "params": { "name": "logs", "arguments": { "app": "raw.html" } } }),
    ];
    let mut stdin = server.stdin.take().unwrap();
    let lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let mut answered = Vec::new();
    let mut lines = lines.map_while(Result::ok);
    for request in requests {
        writeln!(stdin, "{request}").unwrap();
        if request.get("id").is_none() {
            continue;
        }
        let line = lines.next().expect("an answer");
        let message: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("not a protocol message on stdout: {line}"));
        assert_eq!(message["jsonrpc"], "2.0", "{line}");
        assert_eq!(message["id"], request["id"], "{line}");
        answered.push(message);
    }
    assert_eq!(answered[1]["result"]["isError"], false, "{}", answered[1]);
    assert_eq!(
        answered[2]["result"]["structuredContent"]["error"]["code"],
        "not_an_app"
    );
    drop(stdin);
    let rest: Vec<String> = lines.collect();
    assert!(rest.is_empty(), "more on stdout: {rest:?}");
    let ended = drop_tests::wait_for("drop mcp to end", ANSWER_WITHIN, || {
        server.try_wait().unwrap()
    });
    assert!(ended.success(), "{ended:?}");
}
