//! `drop mcp`: drop's commands as tools of a Model Context Protocol server
//! on stdin/stdout, for coding agents that speak MCP.
//!
//! Each tool runs the command the CLI runs, with its output captured rather
//! than printed ([`crate::output::Output::captured`]): a tool's structured
//! result is the command's `--json` document, and a failure is a tool
//! error carrying the `--json` error object with its stable `code`.
//! Commands are synchronous and some wait for long (a tunnel, a human), so
//! each runs on a thread of its own and the session keeps answering.
//! stdout carries the protocol and nothing else.

mod args;
mod commands;
mod outcome;
mod schemas;
#[cfg(test)]
mod tests;
mod tools;

use rmcp::ServiceExt;

use crate::context::Context;
use crate::error::CliError;

pub use tools::DropTools;

/// Serves the tools over stdin/stdout until the client closes the session.
/// Nothing is started before a tool needs it.
pub fn serve(ctx: &Context) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::io("start the async runtime"))?;
    let session = runtime.block_on(async {
        let running = DropTools::new(ctx.clone())
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|source| CliError::Mcp {
                what: "opening the session",
                source: source.into(),
            })?;
        running.waiting().await.map_err(|source| CliError::Mcp {
            what: "serving the session",
            source: source.into(),
        })
    });
    // A command still running for a call the client gave up on (a wait, a
    // tunnel that is slow to open) must not keep the process alive, nor
    // must tokio's stdin reader, which cannot be cancelled.
    runtime.shutdown_background();
    session.map(|_| ())
}
