//! What the `mcp-warden` binary offers, written on the library API like any embedder's
//! tools: `echo` (tool, prompt and the `echo://{message}` resource template, parity with
//! Plural's Echo MCP Server example), `whoami`, and `ask` (a
//! question for the user, through elicitation). Each file holds one feature; adding one
//! is a file and a line in `add`.

mod ask;
mod echo;
mod whoami;

use crate::Builder;

/// `builder` with the built-in tools, prompt and resource template.
pub fn add(builder: Builder) -> Builder {
    builder
        .tool(echo::tool())
        .tool(whoami::tool())
        .tool(ask::tool())
        .prompt(echo::prompt())
        .template(echo::template())
}
