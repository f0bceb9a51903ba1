//! The tools as a model sees them: names, descriptions, schemas, and the
//! line of text each result starts with.

use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation,
    ProgressNotificationParam, ProgressToken, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde_json::Value;

use crate::context::Context;
use crate::pages::RemoveWhat;
use crate::plural::count;

use super::args::{AddAppArgs, AppArgs, DoctorArgs, LogsArgs, PublishArgs, RemoveArgs, WaitArgs};
use super::outcome::{Ran, run, usage_error};
use super::{commands, schemas};

/// What a client is told about drop when the session opens.
const INSTRUCTIONS: &str = "drop turns a local file, a folder or a web app into a URL a human \
can open on their own machine (through a tunnel when this one is behind NAT), and tells when \
the human opened it. Publish with `publish`, give the human the `url` (and the `password` when \
one was generated), then call `wait` to learn when they opened it. When a link does not open, \
`doctor` says which step fails and how to fix it. Errors carry a stable `code` in their \
structured content (`no_such_path`, `not_opened`, `not_found`, …).";

/// How often `wait` tells the client it is still waiting.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// drop's MCP server: one per session, running every command in the
/// session's [`Context`] with its output kept.
#[derive(Debug, Clone)]
pub struct DropTools {
    ctx: Context,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl DropTools {
    /// The tools, for commands run in `ctx` (its output is replaced by a
    /// kept one for each call).
    pub fn new(ctx: Context) -> Self {
        DropTools {
            ctx,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "Publish a local file, or a folder with a `.drop-publish` manifest, at a URL the human can open from their own machine. Starts drop's server first when it is not running (behind NAT with a tunnel, which can take some seconds). Publishing the same path again returns the same page and URL, updating what is given. Returns the page: `url` to give the human, `id`, `reach` (who can open the URL), `password` when one was set or generated (given only this once), `expires_at`, `once`. The human sees the file itself, or the folder's index.html; a protected page first asks for the password.",
        output_schema = schemas::added(),
        annotations(open_world_hint = true)
    )]
    async fn publish(
        &self,
        Parameters(args): Parameters<PublishArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let ran = run(&self.ctx, move |ctx| commands::publish(ctx, args)).await?;
        Ok(ran.into_tool_result(|page| {
            let mut line = format!("Published: {}", text(page, "url"));
            if let Some(password) = page["password"].as_str() {
                line.push_str(&format!(" (password: {password})"));
            }
            line
        }))
    }

    #[tool(
        description = "Wait until the human opens a published page (a link preview does not count), for at most `timeout_s` seconds: keep it short (60) and call `wait` again while it fails with `not_opened`. Returns the page with its receipt (`views`, `visitors`, `last_opened_at`) once it is opened. Fails with code `not_opened` when the time passes first (the link still works: wait again, or ask the human), `page_gone` when it was removed or expired, `nobody_can_open` when the server stopped or a one-time link was used. Sends progress notifications while it waits, and stops when the call is cancelled. With `since_publish`, an opening before this call counts too.",
        output_schema = schemas::opened(),
        annotations(read_only_hint = true)
    )]
    async fn wait(
        &self,
        Parameters(args): Parameters<WaitArgs>,
        request: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let ran = wait_reporting_progress(&self.ctx, args, &request).await?;
        Ok(ran.into_tool_result(|page| {
            format!("Opened: {} — {}", text(page, "url"), text(page, "receipt"))
        }))
    }

    #[tool(
        description = "Show drop's server (running or not, its URL, its tunnel) and every published page and app with its URL, whether and when it was opened, and an app's state. Reads drop's records only: starts nothing.",
        output_schema = schemas::status(),
        annotations(read_only_hint = true)
    )]
    async fn status(&self) -> Result<CallToolResult, ErrorData> {
        let ran = run(&self.ctx, crate::pages::status).await?;
        Ok(ran.into_tool_result(|doc| {
            let server = &doc["server"];
            let state = match server["running"].as_bool() {
                Some(true) => "running",
                _ => "not running",
            };
            let rows = doc["pages"].as_array().map_or(&[][..], Vec::as_slice);
            let app = drop_registry::PageKind::App;
            let apps = rows
                .iter()
                .filter(|row| row["type"] == app.as_str())
                .count();
            format!(
                "Server: {} ({state}); {}, {}",
                text(server, "url"),
                count(rows.len() - apps, "page", "pages"),
                // The kind's name is the noun.
                count(apps, app.as_str(), "apps"),
            )
        }))
    }

    #[tool(
        description = "Check everything between the human and a page, an app, or (without `page`) the server: the server, the page and its source, the app's process and addresses, the tunnel, and the URL as seen from outside. Returns `works` and each check with its verdict and the fix. When the link does not work the result is an error with code `link_broken` whose structured content also holds the checks. Use it when the human says a link does not open.",
        output_schema = schemas::doctor(),
        annotations(read_only_hint = true)
    )]
    async fn doctor(
        &self,
        Parameters(args): Parameters<DoctorArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let ran = run(&self.ctx, move |ctx| {
            crate::doctor::doctor(ctx, args.page.as_deref())
        })
        .await?;
        Ok(ran.into_tool_result(|report| format!("The link works: {}", text(report, "url"))))
    }

    #[tool(
        description = "Unpublish pages and apps (an app that runs is stopped first). Their URLs then answer 404. Every name is looked up before anything is removed, so one that is not found (`not_found`) removes nothing. Returns what was removed.",
        output_schema = schemas::removed(),
        annotations(destructive_hint = true, idempotent_hint = true)
    )]
    async fn remove(
        &self,
        Parameters(args): Parameters<RemoveArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let ran = run(&self.ctx, move |ctx| {
            crate::pages::remove(ctx, RemoveWhat::Pages(&args.pages))
        })
        .await?;
        Ok(ran.into_tool_result(|doc| {
            let ids: Vec<&str> = doc["removed"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|page| page["id"].as_str())
                .collect();
            match ids.is_empty() {
                true => "Nothing removed".to_owned(),
                false => format!("Removed: {}", ids.join(", ")),
            }
        }))
    }

    #[tool(
        description = "Register a web app: drop runs `run` (a shell command) in the folder `path` and expects it to listen on `port`. It is registered stopped; `start_app` runs it and returns its URL. Registering the same folder again updates its command and port (refused while it runs with another). Returns the app as `status` shows it.",
        output_schema = schemas::added()
    )]
    async fn add_app(
        &self,
        Parameters(args): Parameters<AddAppArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let ran = run(&self.ctx, move |ctx| commands::add_app(ctx, args)).await?;
        Ok(ran.into_tool_result(|app| {
            format!(
                "App registered: {} (start it with start_app {})",
                text(app, "url"),
                text(app, "id")
            )
        }))
    }

    #[tool(
        description = "Start a registered app (and drop's server first if needed) and wait until it listens on its port; behind NAT it gets a tunnel of its own. Returns the app with its `url` for the human. Fails with the app's exit code and the end of its log when it exits or does not listen in time (`app_exited`, `app_not_listening`).",
        output_schema = schemas::app_started(),
        annotations(open_world_hint = true)
    )]
    async fn start_app(
        &self,
        Parameters(args): Parameters<AppArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let ran = run(&self.ctx, move |ctx| crate::apps::start(ctx, &args.app)).await?;
        Ok(ran.into_tool_result(|app| {
            let verb = match app["was_running"].as_bool() {
                Some(true) => "already running",
                _ => "started",
            };
            format!("App {verb}: {}", text(app, "url"))
        }))
    }

    #[tool(
        description = "Stop a running app and its tunnel (its whole process group). Returns whether it was running.",
        output_schema = schemas::app_stopped(),
        annotations(destructive_hint = false, idempotent_hint = true)
    )]
    async fn stop_app(
        &self,
        Parameters(args): Parameters<AppArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let ran = run(&self.ctx, move |ctx| crate::apps::stop(ctx, &args.app)).await?;
        Ok(ran.into_tool_result(|app| {
            let label = app["name"]
                .as_str()
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| text(app, "id"));
            match app["was_running"].as_bool() {
                Some(true) => format!("App stopped: {label}"),
                _ => format!("App {label} was not running"),
            }
        }))
    }

    #[tool(
        description = "The last `lines` lines (50 unless given) of an app's output (its stdout and stderr), oldest first. Use it when an app fails to start or misbehaves.",
        output_schema = schemas::logs(),
        annotations(read_only_hint = true)
    )]
    async fn logs(
        &self,
        Parameters(args): Parameters<LogsArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let ran = run(&self.ctx, move |ctx| {
            crate::apps::logs(ctx, &args.app, args.lines, false)
        })
        .await?;
        Ok(ran.lines_as_document().into_tool_result(|doc| {
            let lines: Vec<&str> = doc["lines"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|line| line["line"].as_str())
                .collect();
            match lines.is_empty() {
                true => "No output".to_owned(),
                false => lines.join("\n"),
            }
        }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for DropTools {
    /// The router's call, with arguments that do not fit a tool's schema
    /// answered as drop's `usage` error, as under `--json`.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let call = ToolCallContext::new(self, request, context);
        let mut response = self.tool_router.call(call).await?;
        if let CallToolResponse::Complete(result) = &mut response {
            usage_error(result);
        }
        Ok(response)
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("drop", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}

/// Runs `wait`, sending the client a progress notification about every
/// [`PROGRESS_EVERY`] while it waits (when it asked for progress), and
/// ending the wait when the call is cancelled or the session ends.
async fn wait_reporting_progress(
    ctx: &Context,
    args: WaitArgs,
    request: &RequestContext<RoleServer>,
) -> Result<Ran, ErrorData> {
    let (progress, mut waited) = tokio::sync::mpsc::unbounded_channel();
    let cancelled = request.ct.clone();
    let timeout = args.timeout_s;
    let mut reported = Duration::ZERO;
    let command = move |ctx: &Context| {
        commands::wait(ctx, &args, |so_far| {
            if so_far >= reported + PROGRESS_EVERY {
                reported = so_far;
                let _ = progress.send(so_far);
            }
            !cancelled.is_cancelled()
        })
    };
    let job = run(ctx, command);
    tokio::pin!(job);
    let token = request.meta.get_progress_token();
    loop {
        tokio::select! {
            ran = &mut job => return ran,
            Some(so_far) = waited.recv() => {
                // Sent from this task: the notification then belongs to
                // this request, as the protocol wants.
                if let Some(token) = &token {
                    let note = progress_note(token.clone(), so_far, timeout);
                    let _ = request.peer.notify_progress(note).await;
                }
            }
        }
    }
}

/// How long `wait` has waited, of `timeout_s`.
fn progress_note(
    token: ProgressToken,
    so_far: Duration,
    timeout_s: u64,
) -> ProgressNotificationParam {
    let message = format!(
        "waiting for a human to open the page ({} s of {timeout_s} s)",
        so_far.as_secs()
    );
    ProgressNotificationParam::new(token, so_far.as_secs_f64())
        .with_total(timeout_s as f64)
        .with_message(message)
}

/// A string field of a document, or `?`.
fn text<'a>(doc: &'a Value, key: &str) -> &'a str {
    doc[key].as_str().unwrap_or("?")
}
