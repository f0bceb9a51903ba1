//! The tool layer in-process: [`DropTools`] over an in-memory pipe, spoken
//! to in raw JSON-RPC, on a home whose daemon is faked.

use std::time::Duration;

use rmcp::ServiceExt;
use serde_json::{Value, json};
use tokio::io::{
    AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf,
};

use super::DropTools;
use crate::output::Output;
use crate::test_home::{PAGE, TestHome};

/// How long any message may take to arrive.
const WITHIN: Duration = Duration::from_secs(10);

/// The client's end of a session.
struct Wire {
    to_server: WriteHalf<DuplexStream>,
    from_server: Lines<BufReader<ReadHalf<DuplexStream>>>,
    /// Every message read so far.
    seen: Vec<Value>,
}

impl Wire {
    /// Opens a session with the tools on `test`'s home.
    async fn open(test: &TestHome) -> Wire {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let tools = DropTools::new(test.context(Output::text()));
        tokio::spawn(async move {
            let running = tools.serve(server).await.expect("the session opens");
            let _ = running.waiting().await;
        });
        let (read, write) = tokio::io::split(client);
        let mut wire = Wire {
            to_server: write,
            from_server: BufReader::new(read).lines(),
            seen: Vec::new(),
        };
        let hello = json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": { "name": "test", "version": "1" },
        });
        wire.send(json!({ "id": 1, "method": "initialize", "params": hello }))
            .await;
        wire.response(1).await;
        wire.send(json!({ "method": "notifications/initialized" }))
            .await;
        wire
    }

    async fn send(&mut self, mut message: Value) {
        message["jsonrpc"] = json!("2.0");
        let line = format!("{message}\n");
        self.to_server.write_all(line.as_bytes()).await.unwrap();
    }

    /// Calls `tool` as request `id`, asking for progress as `id`.
    async fn call(&mut self, id: u64, tool: &str, arguments: Value) {
        let params =
            json!({ "name": tool, "arguments": arguments, "_meta": { "progressToken": id } });
        self.send(json!({ "id": id, "method": "tools/call", "params": params }))
            .await;
    }

    /// The next message `wanted` picks, within [`WITHIN`] (the others are
    /// kept in `seen`).
    async fn read(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        let found = async {
            loop {
                let line = self.from_server.next_line().await.unwrap();
                let message: Value =
                    serde_json::from_str(&line.expect("the session is open")).unwrap();
                self.seen.push(message.clone());
                if wanted(&message) {
                    return message;
                }
            }
        };
        tokio::time::timeout(WITHIN, found)
            .await
            .expect("the message in time")
    }

    async fn response(&mut self, id: u64) -> Value {
        let message = self.read(|m| m["id"] == id).await;
        message["result"].clone()
    }
}

/// A runtime whose blocking pool has one thread: a command that does not
/// end holds it, and the next call cannot run.
fn one_blocking_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// `wait` tells the client it waits (progress against `timeout_s`), and a
/// cancelled wait ends: the one blocking thread is free for the next call,
/// and the cancelled call gets no answer.
#[test]
fn a_wait_reports_progress_and_ends_when_cancelled() {
    let test = TestHome::new();
    one_blocking_thread().block_on(async {
        let mut wire = Wire::open(&test).await;
        // Longer than a message may take, not endless: a wait that ignores
        // the cancel holds the thread that long, and the test then fails.
        wire.call(2, "wait", json!({ "page": PAGE, "timeout_s": 30 }))
            .await;
        let progress = wire.read(|m| m["method"] == "notifications/progress").await;
        assert_eq!(progress["params"]["progressToken"], 2);
        assert_eq!(progress["params"]["total"], 30.0);
        let cancel = json!({ "requestId": 2, "reason": "the user moved on" });
        wire.send(json!({ "method": "notifications/cancelled", "params": cancel }))
            .await;
        wire.call(3, "status", json!({})).await;
        let status = wire.response(3).await;
        assert_eq!(status["isError"], false, "{status}");
        assert!(
            !wire.seen.iter().any(|m| m["id"] == 2),
            "the cancelled wait answered"
        );
    });
}

/// A view counted while `wait` waits ends it with the page: the same
/// document as `wait --json`, and a line of text.
#[test]
fn a_wait_returns_the_page_once_it_is_opened() {
    let test = TestHome::new();
    one_blocking_thread().block_on(async {
        let mut wire = Wire::open(&test).await;
        let args = json!({ "page": PAGE, "timeout_s": 600, "since_publish": true });
        wire.call(2, "wait", args).await;
        test.count_a_view();
        let result = wire.response(2).await;
        assert_eq!(result["isError"], false, "{result}");
        assert_eq!(result["structuredContent"]["id"], PAGE);
        assert_eq!(result["structuredContent"]["views"], 1);
        let line = result["content"][0]["text"].as_str().unwrap();
        assert!(line.starts_with("Opened: http://127.0.0.1:9/p/"), "{line}");
    });
}

/// A tool's structured content is the `--json` document of its command,
/// as that command gives it.
#[test]
fn status_gives_the_document_of_status_json() {
    let test = TestHome::new();
    let (out, kept) = Output::captured();
    crate::pages::status(&test.context(out)).unwrap();
    let document = kept.lock().unwrap().documents.pop().unwrap();
    one_blocking_thread().block_on(async {
        let mut wire = Wire::open(&test).await;
        wire.call(2, "status", json!({})).await;
        let result = wire.response(2).await;
        assert_eq!(result["structuredContent"], document);
        assert_eq!(result["structuredContent"]["pages"][0]["id"], PAGE);
    });
}

/// Calls `tool` with `arguments` and returns the code of the error it
/// answers with.
async fn error_code(wire: &mut Wire, id: u64, tool: &str, arguments: Value) -> Value {
    wire.call(id, tool, arguments).await;
    let result = wire.response(id).await;
    assert_eq!(result["isError"], true, "{tool}: {result}");
    result["structuredContent"]["error"]["code"].clone()
}

/// What the schema says and a model may still send is refused with the
/// code the command line gives: an empty `remove`, an empty password
/// (never taken for "generate one"), an app command past its cap.
#[test]
fn arguments_past_what_the_schema_says_are_refused() {
    let test = TestHome::new();
    one_blocking_thread().block_on(async {
        let mut wire = Wire::open(&test).await;
        let empty = json!({ "pages": [] });
        assert_eq!(error_code(&mut wire, 2, "remove", empty).await, "usage");
        let path = test.home().root().parent().unwrap().join("report.html");
        let publish = json!({ "path": path, "password": "" });
        let code = error_code(&mut wire, 3, "publish", publish).await;
        assert_eq!(code, "bad_password");
        let app = json!({ "path": ".", "run": "x".repeat(200 * 1024), "port": 5000 });
        let code = error_code(&mut wire, 4, "add_app", app).await;
        assert_eq!(code, "command_too_long");
    });
    let pages = test.home().registry().load().unwrap();
    assert_eq!(pages.iter().count(), 1, "nothing added");
    assert!(pages.get(PAGE).unwrap().password_hash.is_empty());
}

/// A line that is not JSON gets no answer (rmcp ignores unparsable input
/// on purpose, as the other official MCP SDKs do: an answer to garbage
/// can start an error storm with a peer that echoes it), and the session
/// goes on.
#[test]
fn a_line_that_is_not_json_leaves_the_session_working() {
    let test = TestHome::new();
    one_blocking_thread().block_on(async {
        let mut wire = Wire::open(&test).await;
        wire.to_server.write_all(b"{not json\n").await.unwrap();
        wire.call(2, "status", json!({})).await;
        assert_eq!(wire.response(2).await["isError"], false);
    });
}
