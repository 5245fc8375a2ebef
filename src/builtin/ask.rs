//! `ask`: puts a question to the person behind the client (elicitation) and returns the
//! answer. It shows a tool that needs the client's help working in both eras with one
//! handler: over a 2025 session the server sends `elicitation/create` and waits; over
//! 2026-07-28 the call answers `input_required` and runs again on the client's retry.

use serde::Deserialize;
use serde_json::json;

use crate::{Tool, ToolResult};

#[derive(Deserialize)]
struct Args {
    question: String,
}

pub fn tool() -> Tool {
    let schema = json!({
        "type": "object",
        "properties": {
            "question": { "type": "string", "description": "What to ask the user" }
        },
        "required": ["question"]
    });
    Tool::new(
        "ask",
        "Asks the user a question through the client (elicitation) and returns the answer.",
        schema,
        |args: Args, call| {
            let fields = json!({
                "type": "object",
                "properties": { "answer": { "type": "string", "title": "Answer" } },
                "required": ["answer"]
            });
            let reply = call.elicit(&args.question, fields)?;
            let text = match reply["action"].as_str() {
                Some("accept") => match reply["content"]["answer"].as_str() {
                    Some(answer) => format!("The user answered: {answer}"),
                    None => "The user accepted without an answer.".to_owned(),
                },
                Some("decline") => "The user declined to answer.".to_owned(),
                _ => "The user cancelled the question.".to_owned(),
            };
            Ok(ToolResult::text(text))
        },
    )
}
