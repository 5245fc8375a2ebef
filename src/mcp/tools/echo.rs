//! `echo`: says back what it is given. Parity with Plural's Echo MCP Server example.

use serde_json::json;

use super::{Tool, str_arg};

pub const TOOL: Tool = Tool {
    name: "echo",
    description: "Echoes back the given message.",
    input_schema: || {
        json!({
            "type": "object",
            "properties": { "message": { "type": "string", "description": "The text to echo" } },
            "required": ["message"]
        })
    },
    call: |args, _call| Ok(format!("Tool echo: {}", str_arg(args, "message")?)),
};
