//! The output schema of each tool: the `--json` document of its command,
//! as README.md describes it. Only fields every such document has are
//! required; a value that may be missing is `null`, never absent.

use std::sync::Arc;

use rmcp::model::JsonObject;
use serde_json::{Value, json};

/// A string, or `null` when there is none.
fn nullable(kind: &str) -> Value {
    json!({ "type": [kind, "null"] })
}

/// A page or app as `list --json` shows it (README.md, "Commands").
fn page() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": { "type": "string", "description": "The page's id; the other tools take it (or the name)." },
            "url": { "type": "string", "description": "The link to give the human." },
            "reach": {
                "type": "string",
                "description": "Who can open the URL: `public`, `tunnel` (anyone, through a tunnel), `local-network` (machines on this network only) or `this-machine`.",
            },
            "type": { "type": "string", "description": "`static` for a file or folder, `app` for an app." },
            "name": { "type": "string" },
            "description": { "type": "string" },
            "source": { "type": "string", "description": "The file or folder it was published from." },
            "is_dir": { "type": "boolean" },
            "protected": { "type": "boolean", "description": "It asks for a password." },
            "source_exists": { "type": "boolean" },
            "created_at": { "type": "string" },
            "receipt": { "type": ["string", "null"], "description": "Whether and when the human opened it, in words (null for an app)." },
            "views": { "type": "integer" },
            "visitors": { "type": "integer" },
            "bot_views": { "type": "integer", "description": "Link previews (not the human)." },
            "first_opened_at": nullable("string"),
            "last_opened_at": nullable("string"),
            "expires_at": nullable("string"),
            "once": { "type": "boolean" },
            "used_at": nullable("string"),
            "status": { "type": ["string", "null"], "description": "An app's state: `running`, `stopped`, `crashed`… (null for a page)" },
            "port": nullable("integer"),
            "pid": nullable("integer"),
            "exit_code": nullable("integer"),
            "tunnel": nullable("object"),
        },
        "required": ["id", "url", "reach", "type", "name", "source", "protected"],
    })
}

/// A page or app with more fields beside it.
fn page_with(more: Value) -> Value {
    let mut schema = page();
    if let (Some(properties), Value::Object(more)) = (schema["properties"].as_object_mut(), more) {
        properties.extend(more);
    }
    schema
}

fn into_object(schema: Value) -> Arc<JsonObject> {
    match schema {
        Value::Object(object) => Arc::new(object),
        _ => unreachable!("every schema here is an object"),
    }
}

/// `publish` and `add_app`: the page as `drop add --json` gives it.
pub fn added() -> Arc<JsonObject> {
    into_object(page_with(json!({
        "already_published": { "type": "boolean", "description": "The same source was published before: the same page and URL." },
        "server_running": { "type": "boolean" },
        "password": { "type": "string", "description": "The password this call set or generated, given once." },
        "password_kept": { "type": "boolean", "description": "`password: true` on a page that has a password: it keeps the one it has." },
        "folder": { "type": "object", "description": "For a folder: what its manifest serves, and local links in its HTML that would answer 404." },
    })))
}

/// `wait`: the page once opened, as `list --json` shows it.
pub fn opened() -> Arc<JsonObject> {
    into_object(page())
}

/// `start_app`: the app as `list --json` shows it.
pub fn app_started() -> Arc<JsonObject> {
    into_object(page_with(json!({
        "was_running": { "type": "boolean" },
    })))
}

/// `status`: the server and every page and app.
pub fn status() -> Arc<JsonObject> {
    into_object(json!({
        "type": "object",
        "properties": {
            "server": {
                "type": "object",
                "properties": {
                    "running": { "type": "boolean" },
                    "status": { "type": "string", "description": "`running`, `stopped`, or `crashed` (killed or died: `doctor` shows why)." },
                    "url": { "type": "string" },
                    "reach": { "type": "string" },
                    "local_url": { "type": "string" },
                    "tunneled": { "type": "boolean" },
                    "pid": nullable("integer"),
                    "port": nullable("integer"),
                    "tunnel": nullable("object"),
                },
                "required": ["running", "url", "reach"],
            },
            "pages": { "type": "array", "items": page() },
        },
        "required": ["server", "pages"],
    }))
}

/// `doctor`: one verdict per check, in order.
pub fn doctor() -> Arc<JsonObject> {
    into_object(json!({
        "type": "object",
        "properties": {
            "url": { "type": "string" },
            "works": { "type": "boolean", "description": "The link works (no check failed)." },
            "checks": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "check": { "type": "string" },
                        "verdict": { "enum": ["ok", "fail", "skipped"] },
                        "detail": { "type": "string" },
                        "fix": nullable("string"),
                    },
                    "required": ["check", "verdict", "detail"],
                },
            },
        },
        "required": ["url", "works", "checks"],
    }))
}

/// `remove`: what was removed.
pub fn removed() -> Arc<JsonObject> {
    into_object(json!({
        "type": "object",
        "properties": {
            "removed": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": { "type": "string" },
                        "name": { "type": "string" },
                        "type": { "type": "string" },
                        "source": { "type": "string" },
                        "app_stopped": { "type": "boolean" },
                    },
                    "required": ["id", "source"],
                },
            },
        },
        "required": ["removed"],
    }))
}

/// `stop_app`: which app, and whether it ran.
pub fn app_stopped() -> Arc<JsonObject> {
    into_object(json!({
        "type": "object",
        "properties": {
            "id": { "type": "string" },
            "name": { "type": "string" },
            "was_running": { "type": "boolean" },
        },
        "required": ["id", "was_running"],
    }))
}

/// `logs`: the objects `logs --json` prints one a line, gathered.
pub fn logs() -> Arc<JsonObject> {
    into_object(json!({
        "type": "object",
        "properties": {
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": { "type": "string" },
                        "line": { "type": "string" },
                    },
                    "required": ["id", "line"],
                },
            },
        },
        "required": ["lines"],
    }))
}
