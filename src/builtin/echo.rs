//! `echo`: says back what it is given, as a tool, a prompt and a resource template. Parity
//! with Plural's Echo MCP Server example.

use serde_json::json;

use crate::{Content, Prompt, PromptMessage, ResourceContents, ResourceTemplate, Tool, ToolResult};

pub fn tool() -> Tool {
    let schema = json!({
        "type": "object",
        "properties": { "message": { "type": "string", "description": "The text to echo" } },
        "required": ["message"]
    });
    // The raw arguments, not a typed struct: the message is borrowed from the request
    // rather than copied (echo is what the benchmarks call). The schema check has made
    // sure it is a string.
    Tool::with_handler(
        "echo",
        "Echoes back the given message.",
        schema,
        |args: &serde_json::Map<String, serde_json::Value>, _: &crate::Call<'_>| {
            let message = args
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or_default();
            Ok(ToolResult::text(format!("Tool echo: {message}")))
        },
    )
}

pub fn prompt() -> Prompt {
    Prompt::new(
        "echo",
        "Asks the model to process a message.",
        |args, _caller| {
            let text = format!("Please process this message: {}", args.str("message"));
            Ok(vec![PromptMessage::user(Content::text(text))])
        },
    )
    .argument("message", "The message to process", true)
}

pub fn template() -> ResourceTemplate {
    ResourceTemplate::new("echo://{message}", "echo", |uri, vars, _caller| {
        let text = format!("Resource echo: {}", vars["message"]);
        Ok(vec![ResourceContents::text(uri, "text/plain", text)])
    })
    .description("Echoes back the message in the URI.")
    .mime_type("text/plain")
}
