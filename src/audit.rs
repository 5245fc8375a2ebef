//! The audit line of every tool call, on log target `audit` at info level:
//! `tool call sub=alice tool=echo outcome=ok ms=0 in=16 out=68`. Never the arguments
//! (unless `AUDIT_ARGUMENTS=true`) and never the result. Who may call what is
//! `policy.rs`'s; the dispatcher (`mcp/mod.rs`) opens a `ToolCall` for each `tools/call`.
//!
//! Cheap when nobody reads it: with the target filtered out (`RUST_LOG=info,audit=off`,
//! or any level above info) nothing is timed or counted. Otherwise the sizes are counted
//! by serializing into a byte counter (no buffer), not by keeping the reply's text.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::identity::Caller;
use crate::mcp::Answer;
use crate::mcp::rpc::RpcError;

/// The log target of audit lines (`RUST_LOG=info,audit=off` silences them,
/// `RUST_LOG=audit=info` keeps only them).
pub const TARGET: &str = "audit";

/// Most characters of a name or subject written into a log line; longer ones are cut
/// (a client may name an unknown tool with a megabyte of text).
const MAX_FIELD_CHARS: usize = 256;

/// Room for a typical audit line without arguments.
const LINE_CAPACITY: usize = 128;

/// How tool calls are audited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// `AUDIT_ARGUMENTS`: add `arguments=<json>` to each line. Defaults to off.
    pub arguments: bool,
}

/// How a tool call ended, as its audit line says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A result without `isError`.
    Ok,
    /// A result with `isError: true`, or a JSON-RPC error (an unknown tool, bad
    /// parameters, a panic, a call cancelled or answered by the watchdog).
    Error,
    /// The policy refused it (the client got the unknown-tool answer).
    Denied,
    /// A 2026-07-28 round that asked the client a question (`input_required`); the call
    /// comes back with the answers.
    InputRequired,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Denied => "denied",
            Outcome::InputRequired => "input_required",
        }
    }
}

/// One tool call being audited; its line is written when it is dropped, so a call that
/// panics is still written (`outcome=error`).
pub(crate) struct ToolCall<'a> {
    caller: &'a Caller,
    params: &'a Map<String, Value>,
    settings: Settings,
    /// `None` when the audit target is filtered out: then nothing is measured.
    started: Option<Instant>,
    outcome: Cell<Outcome>,
    out_bytes: Cell<u64>,
}

impl<'a> ToolCall<'a> {
    /// Starts the clock for a `tools/call` with these `params`.
    pub(crate) fn start(
        caller: &'a Caller,
        params: &'a Map<String, Value>,
        settings: Settings,
    ) -> ToolCall<'a> {
        let on = log::log_enabled!(target: TARGET, log::Level::Info);
        ToolCall {
            caller,
            params,
            settings,
            started: on.then(Instant::now),
            outcome: Cell::new(Outcome::Error),
            out_bytes: Cell::new(0),
        }
    }

    /// The policy refused the call.
    pub(crate) fn deny(&self) {
        self.outcome.set(Outcome::Denied);
    }

    /// The call's answer; `asked` says whether it asked its client something instead
    /// (looked at only when the line is written).
    pub(crate) fn finish(&self, result: &Result<Answer, RpcError>, asked: impl FnOnce() -> bool) {
        if self.started.is_none() {
            return;
        }
        // A refusal is an error to the client (the unknown-tool answer), sized as such.
        let denied = self.outcome.get() == Outcome::Denied;
        let (outcome, bytes) = match result {
            Err(error) if denied => (Outcome::Denied, json_len(error)),
            Err(error) => (Outcome::Error, json_len(error)),
            Ok(answer) if asked() => (Outcome::InputRequired, json_len(answer)),
            Ok(answer) if is_error(answer) => (Outcome::Error, json_len(answer)),
            Ok(answer) => (Outcome::Ok, json_len(answer)),
        };
        self.outcome.set(outcome);
        self.out_bytes.set(bytes);
    }
}

impl Drop for ToolCall<'_> {
    fn drop(&mut self) {
        let Some(started) = self.started else {
            return;
        };
        let arguments = self.params.get("arguments");
        let line = Line {
            subject: self.caller.subject(),
            tool: self
                .params
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            outcome: self.outcome.get(),
            ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            in_bytes: arguments.map_or(0, json_len),
            out_bytes: self.out_bytes.get(),
            arguments: self
                .settings
                .arguments
                .then_some(arguments.unwrap_or(&Value::Null)),
        };
        // Written out here first, then handed to the logger as one piece: the logger's
        // writer costs more per piece than a `String` does.
        let mut text = String::with_capacity(LINE_CAPACITY);
        line.write_to(&mut text);
        log::info!(target: TARGET, "{text}");
    }
}

/// An audit line's fields, written by `Display`.
pub struct Line<'a> {
    pub subject: &'a str,
    pub tool: &'a str,
    pub outcome: Outcome,
    pub ms: u64,
    /// Bytes of the arguments as compact JSON (`0` when there are none).
    pub in_bytes: u64,
    /// Bytes of the result (or JSON-RPC error) as compact JSON.
    pub out_bytes: u64,
    /// The arguments, when `AUDIT_ARGUMENTS` is on (`null`: none were sent).
    pub arguments: Option<&'a Value>,
}

impl Line<'_> {
    /// Appends the line to `out`: piece by piece, without a formatting machinery call per
    /// field (this runs for every tool call).
    pub fn write_to(&self, out: &mut String) {
        out.push_str("tool call sub=");
        Field(self.subject).write_to(out);
        out.push_str(" tool=");
        Field(self.tool).write_to(out);
        out.push_str(" outcome=");
        out.push_str(self.outcome.as_str());
        for (key, number) in [
            (" ms=", self.ms),
            (" in=", self.in_bytes),
            (" out=", self.out_bytes),
        ] {
            out.push_str(key);
            push_number(out, number);
        }
        if let Some(arguments) = self.arguments {
            // Compact JSON escapes every control character: the line stays one line.
            let _ = fmt::Write::write_fmt(out, format_args!(" arguments={arguments}"));
        }
    }
}

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::with_capacity(LINE_CAPACITY);
        self.write_to(&mut text);
        f.write_str(&text)
    }
}

/// Appends `n` in decimal.
fn push_number(out: &mut String, n: u64) {
    let mut digits = [b'0'; 20]; // u64::MAX has 20 digits
    let mut rest = n;
    let mut start = digits.len();
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        start -= 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(digits.get(start..).unwrap_or_default()).unwrap_or("0"));
}

/// A name or subject in a `key=value` log line: as it is when it is plain text, quoted and
/// escaped otherwise (spaces, quotes, control characters, an empty value), and cut after
/// `MAX_FIELD_CHARS`; a client cannot forge a line or a field with the name it sends.
pub(crate) struct Field<'a>(pub &'a str);

impl Field<'_> {
    fn is_plain(&self) -> bool {
        let plain = |c: char| !c.is_whitespace() && !c.is_control() && !matches!(c, '"' | '\\');
        !self.0.is_empty() && self.0.len() <= MAX_FIELD_CHARS && self.0.chars().all(plain)
    }

    fn write_to(&self, out: &mut String) {
        if self.is_plain() {
            out.push_str(self.0);
        } else {
            let _ = fmt::Write::write_fmt(out, format_args!("{self}"));
        }
    }
}

impl fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        if self.is_plain() {
            return f.write_str(text);
        }
        if text.chars().nth(MAX_FIELD_CHARS).is_some() {
            let mut cut: String = text.chars().take(MAX_FIELD_CHARS).collect();
            cut.push('…');
            write!(f, "{cut:?}")
        } else {
            write!(f, "{text:?}")
        }
    }
}

/// Whether a tool's answer reports a failure (`isError: true`): its own, or an upstream
/// server's (behind the gate).
fn is_error(answer: &Answer) -> bool {
    match answer {
        Answer::Tool(result) => result.is_error(),
        Answer::Json(value) => value.get("isError") == Some(&Value::Bool(true)),
    }
}

/// The length of `value` as compact JSON, counted without keeping the text.
fn json_len(value: &(impl Serialize + ?Sized)) -> u64 {
    let mut counter = Counter(0);
    // Writing to a counter cannot fail; a value that cannot be serialized counts as 0.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// Counts the bytes written to it.
struct Counter(u64);

impl io::Write for Counter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0 += bytes.len() as u64;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::content::ToolResult;
    use serde_json::json;

    fn line(arguments: Option<&Value>) -> String {
        Line {
            subject: "alice",
            tool: "write_file",
            outcome: Outcome::Ok,
            ms: 12,
            in_bytes: 27,
            out_bytes: 64,
            arguments,
        }
        .to_string()
    }

    #[test]
    fn the_line_names_subject_tool_outcome_duration_and_sizes_but_no_arguments() {
        assert_eq!(
            line(None),
            "tool call sub=alice tool=write_file outcome=ok ms=12 in=27 out=64"
        );
    }

    #[test]
    fn arguments_are_added_only_when_asked_for_and_stay_on_one_line() {
        let arguments = json!({"path": "/etc/x", "text": "a\nb \"c\""});
        assert_eq!(
            line(Some(&arguments)),
            r#"tool call sub=alice tool=write_file outcome=ok ms=12 in=27 out=64 arguments={"path":"/etc/x","text":"a\nb \"c\""}"#
        );
        assert!(!line(Some(&arguments)).contains('\n'));
    }

    #[test]
    fn fields_that_are_not_plain_text_are_quoted_and_cut() {
        assert_eq!(Field("echo").to_string(), "echo");
        assert_eq!(Field("a=b:c/d").to_string(), "a=b:c/d");
        assert_eq!(Field("").to_string(), r#""""#);
        assert_eq!(Field("two words").to_string(), r#""two words""#);
        assert_eq!(
            Field("x\noutcome=ok").to_string(),
            r#""x\noutcome=ok""#,
            "a newline cannot start a forged line"
        );
        assert_eq!(Field("q\"").to_string(), r#""q\"""#);
        let long = "n".repeat(10_000);
        let cut = Field(&long).to_string();
        assert_eq!(cut.chars().count(), MAX_FIELD_CHARS + 3, "{cut}");
        assert!(cut.ends_with("n…\""));
    }

    #[test]
    fn failures_are_read_from_either_kind_of_answer() {
        assert!(!is_error(&Answer::Tool(ToolResult::text("x"))));
        assert!(is_error(&Answer::Tool(ToolResult::error("x"))));
        assert!(is_error(&Answer::Json(
            json!({"content": [], "isError": true})
        )));
        assert!(!is_error(&Answer::Json(json!({"content": []}))));
    }

    #[test]
    fn sizes_are_those_of_compact_json() {
        let arguments = json!({"message": "hi"});
        let len = |text: String| text.len() as u64;
        assert_eq!(json_len(&arguments), len(arguments.to_string()));
        let result = ToolResult::text("Tool echo: hi");
        assert_eq!(
            json_len(&result),
            len(serde_json::to_string(&result).unwrap())
        );
        let error = RpcError::invalid_params("unknown tool: x");
        assert_eq!(
            json_len(&error),
            len(serde_json::to_string(&error).unwrap())
        );
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0, 7, 10, 68, 1_000_000, u64::MAX] {
            let mut out = String::new();
            push_number(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }

    #[test]
    fn each_outcome_has_its_word() {
        let words: Vec<&str> = [
            Outcome::Ok,
            Outcome::Error,
            Outcome::Denied,
            Outcome::InputRequired,
        ]
        .iter()
        .map(|o| o.as_str())
        .collect();
        assert_eq!(words, ["ok", "error", "denied", "input_required"]);
    }
}
