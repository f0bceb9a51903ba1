//! A command run for a tool, and what the client gets back: the command's
//! `--json` document as structured content with a short line of text, or
//! its `--json` error as a tool error.

use std::sync::PoisonError;

use rmcp::ErrorData;
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Value, json};

use crate::context::Context;
use crate::error::CliError;
use crate::output::{Captured, Output};

/// What a command said, and how it ended.
#[derive(Debug)]
pub struct Ran {
    pub kept: Captured,
    pub result: Result<(), CliError>,
}

/// Runs `command` on a blocking thread with its output kept: commands
/// sleep, poll and build runtimes of their own, which must neither stall
/// the session nor nest in its runtime. A command that panicked is a
/// protocol error (a bug, not something the model can act on).
pub async fn run(
    ctx: &Context,
    command: impl FnOnce(&Context) -> Result<(), CliError> + Send + 'static,
) -> Result<Ran, ErrorData> {
    let (out, kept) = Output::captured();
    let ctx = ctx.with_output(out);
    let result = tokio::task::spawn_blocking(move || command(&ctx))
        .await
        .map_err(|failed| {
            ErrorData::internal_error(format!("the command failed: {failed}"), None)
        })?;
    let kept = std::mem::take(&mut *kept.lock().unwrap_or_else(PoisonError::into_inner));
    Ok(Ran { kept, result })
}

impl Ran {
    /// The command's document: the last one it gave (every command gives
    /// one, `logs` excepted).
    pub fn document(&self) -> Value {
        self.kept
            .documents
            .last()
            .cloned()
            .unwrap_or_else(|| json!({}))
    }

    /// `logs`, whose `--json` is one object a line: those objects, gathered
    /// as `{"lines": […]}`.
    pub fn lines_as_document(mut self) -> Self {
        let lines = std::mem::take(&mut self.kept.lines);
        self.kept.documents.push(json!({ "lines": lines }));
        self
    }

    /// The tool's result. Success: the document as structured content, and
    /// as text `say(document)`, the notes, and the document itself (for
    /// clients that pass only text to the model). Failure: a tool error
    /// whose structured content is the `--json` error object, with the
    /// document of a command that failed after giving one (`doctor`'s
    /// report) beside it.
    pub fn into_tool_result(self, say: impl FnOnce(&Value) -> String) -> CallToolResult {
        let document = self.document();
        let (mut result, line) = match &self.result {
            Ok(()) => (CallToolResult::structured(document.clone()), say(&document)),
            Err(error) => {
                let mut failure = error.to_json();
                if let (Some(said), Some(fields)) = (
                    self.kept.documents.last().and_then(Value::as_object),
                    failure.as_object_mut(),
                ) {
                    for (key, value) in said {
                        fields.entry(key.clone()).or_insert_with(|| value.clone());
                    }
                }
                let line = format!("Error ({}): {}", error.code(), error.message());
                (CallToolResult::structured_error(failure), line)
            }
        };
        let mut text = line;
        for note in &self.kept.notes {
            text.push('\n');
            text.push_str(note.trim());
        }
        let json = result
            .structured_content
            .as_ref()
            .map_or_else(String::new, Value::to_string);
        result.content = vec![ContentBlock::text(text), ContentBlock::text(json)];
        result
    }
}

/// The SDK's answer to arguments that do not fit a tool's input schema (a
/// tool error of text alone), given drop's `usage` error object as
/// structured content, as `--json` gives a command line clap refuses.
pub fn usage_error(result: &mut CallToolResult) {
    if result.is_error != Some(true) || result.structured_content.is_some() {
        return;
    }
    let said: Vec<&str> = result
        .content
        .iter()
        .filter_map(|c| Some(c.as_text()?.text.as_str()))
        .collect();
    let why = said.join(" ");
    let why = why.trim_start_matches("failed to deserialize parameters: ");
    let message = format!("the arguments do not fit the tool: {why}");
    let error = json!({ "error": { "code": "usage", "message": message, "causes": [] } });
    let line = format!("Error (usage): {message}");
    result.content = vec![
        ContentBlock::text(line),
        ContentBlock::text(error.to_string()),
    ];
    result.structured_content = Some(error);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(documents: Vec<Value>, notes: &[&str], result: Result<(), CliError>) -> Ran {
        Ran {
            kept: Captured {
                documents,
                lines: Vec::new(),
                notes: notes.iter().map(|n| n.to_string()).collect(),
            },
            result,
        }
    }

    fn texts(result: &CallToolResult) -> Vec<String> {
        result
            .content
            .iter()
            .map(|c| c.as_text().expect("text").text.clone())
            .collect()
    }

    /// Success: the document is the structured content, the line and the
    /// notes come first as text, then the document for text-only clients.
    #[test]
    fn a_document_becomes_structured_content_and_a_line() {
        let doc = json!({ "url": "http://h/p/x/", "id": "x" });
        let result = ran(vec![doc.clone()], &["  (local network only)"], Ok(()))
            .into_tool_result(|d| format!("Published: {}", d["url"].as_str().unwrap()));
        assert_eq!(result.is_error, Some(false));
        assert_eq!(result.structured_content, Some(doc.clone()));
        let texts = texts(&result);
        assert_eq!(texts[0], "Published: http://h/p/x/\n(local network only)");
        assert_eq!(serde_json::from_str::<Value>(&texts[1]).unwrap(), doc);
    }

    /// Failure: a tool error with the `--json` error object and its code.
    #[test]
    fn an_error_becomes_a_tool_error_with_its_code() {
        let error = CliError::NoSuchPath {
            path: "nope.html".into(),
        };
        let result = ran(Vec::new(), &[], Err(error)).into_tool_result(|_| unreachable!());
        assert_eq!(result.is_error, Some(true));
        let content = result.structured_content.unwrap();
        assert_eq!(content["error"]["code"], "no_such_path");
        assert!(
            content["error"]["message"]
                .as_str()
                .unwrap()
                .contains("nope.html")
        );
    }

    /// A command that gave its document and then failed (`doctor` on a
    /// broken link) keeps the document beside the error.
    #[test]
    fn a_report_given_before_the_error_stays_beside_it() {
        let report = json!({ "works": false, "checks": [] });
        let error = CliError::LinkBroken {
            check: "server: not running".into(),
            fix: "drop start".into(),
        };
        let result = ran(vec![report], &[], Err(error)).into_tool_result(|_| unreachable!());
        let content = result.structured_content.as_ref().unwrap();
        assert_eq!(content["error"]["code"], "link_broken");
        assert_eq!(content["works"], false);
        assert!(texts(&result)[0].starts_with("Error (link_broken): the link does not work"));
    }

    /// Arguments the SDK could not read become a `usage` error; drop's own
    /// errors are left as they are.
    #[test]
    fn arguments_that_do_not_fit_are_a_usage_error() {
        let mut refused = CallToolResult::error(vec![ContentBlock::text(
            "failed to deserialize parameters: missing field `timeout_s`",
        )]);
        usage_error(&mut refused);
        let error = &refused.structured_content.as_ref().unwrap()["error"];
        assert_eq!(error["code"], "usage");
        assert_eq!(
            error["message"],
            "the arguments do not fit the tool: missing field `timeout_s`"
        );
        let mut own = CallToolResult::structured_error(json!({ "error": { "code": "not_found" } }));
        usage_error(&mut own);
        assert_eq!(
            own.structured_content.unwrap()["error"]["code"],
            "not_found"
        );
    }

    /// `logs` streams objects; the tool gathers them into one document.
    #[test]
    fn streamed_lines_are_gathered_into_one_document() {
        let mut ran = ran(Vec::new(), &[], Ok(()));
        ran.kept.lines = vec![json!({ "id": "a", "line": "hi" })];
        let doc = ran.lines_as_document().document();
        assert_eq!(doc, json!({ "lines": [{ "id": "a", "line": "hi" }] }));
    }
}
