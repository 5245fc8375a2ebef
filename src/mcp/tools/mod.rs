//! The tools this server offers. Each tool is one file holding a `Tool`; registering it is
//! one line in `TOOLS`.

use serde_json::{Map, Value};

use crate::mcp::call::Call;

mod echo;
mod whoami;

/// Every tool, in the order `tools/list` shows them. Add yours here.
pub static TOOLS: &[Tool] = &[echo::TOOL, whoami::TOOL];

/// A tool: its description for `tools/list`, and the function `tools/call` runs.
#[derive(Clone, Copy)]
pub struct Tool {
    /// Unique name, as clients call it.
    pub name: &'static str,
    /// One sentence for the model deciding whether to call it.
    pub description: &'static str,
    /// JSON Schema of `arguments`.
    pub input_schema: fn() -> Value,
    /// Runs the tool with its arguments. `call` says who is calling and is the way back
    /// to the client meanwhile (progress, log messages, cancellation: see `mcp::call`).
    /// `Ok` is the text result; `Err` is a failure the caller sees as a result with
    /// `isError: true` (so a model can read it and try again).
    pub call: fn(&Map<String, Value>, &Call<'_>) -> Result<String, String>,
}

/// Argument `name` as a string, or a message saying what is missing.
pub fn str_arg<'a>(args: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    match args.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("argument \"{name}\" must be a string, not {other}")),
        None => Err(format!("missing required argument \"{name}\" (a string)")),
    }
}
