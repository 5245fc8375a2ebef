//! The fixtures of the official MCP conformance suite (`@modelcontextprotocol/conformance`,
//! `scripts/conformance`), written on mcp-warden's library API: the reference for tool
//! authors, one feature per item. Run it like the binary (same environment settings):
//!
//! ```text
//! PORT=3000 cargo run --example conformance
//! ```
//!
//! It offers, besides what the suite asks for, `touch_watched_resource`: a tool that tells
//! the clients subscribed to `test://watched-resource` that it changed (how a handler
//! reaches the server's `Handle`).
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use mcp_warden::{
    Call, Completing, Content, HandlerError, NoArgs, Prompt, PromptMessage, Resource,
    ResourceContents, ResourceTemplate, Server, Tool, ToolResult,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// A 1×1 red PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
    0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0x00,
    0x00, 0x03, 0x01, 0x01, 0x00, 0xc9, 0xfe, 0x92, 0xef, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
    0x44, 0xae, 0x42, 0x60, 0x82,
];

/// One millisecond of 8 kHz 8-bit mono silence, as WAV.
const WAV: &[u8] = &[
    0x52, 0x49, 0x46, 0x46, 0x2c, 0x00, 0x00, 0x00, 0x57, 0x41, 0x56, 0x45, 0x66, 0x6d, 0x74, 0x20,
    0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x40, 0x1f, 0x00, 0x00, 0x40, 0x1f, 0x00, 0x00,
    0x01, 0x00, 0x08, 0x00, 0x64, 0x61, 0x74, 0x61, 0x08, 0x00, 0x00, 0x00, 0x80, 0x80, 0x80, 0x80,
    0x80, 0x80, 0x80, 0x80,
];

/// The schema of a tool without arguments.
fn no_arguments() -> Value {
    json!({ "type": "object", "properties": {} })
}

/// A tool without arguments that returns `result`.
fn fixed(name: &str, description: &str, result: fn() -> ToolResult) -> Tool {
    Tool::new(name, description, no_arguments(), move |_: NoArgs, _| {
        Ok(result())
    })
}

fn main() -> ExitCode {
    let mut builder = Server::builder().name("mcp-warden-conformance", env!("CARGO_PKG_VERSION"));
    let handle = builder.handle();
    let (tools_handle, prompts_handle) = (handle.clone(), handle.clone());
    builder
        // Content of every type.
        .tool(fixed("test_simple_text", "Returns one text block.", || {
            ToolResult::text("This is a simple text response for testing.")
        }))
        .tool(fixed("test_image_content", "Returns a PNG image.", || {
            Content::image(PNG, "image/png").into()
        }))
        .tool(fixed("test_audio_content", "Returns a WAV clip.", || {
            Content::audio(WAV, "audio/wav").into()
        }))
        .tool(fixed("test_embedded_resource", "Returns an embedded resource.", || {
            Content::resource(ResourceContents::text(
                "test://embedded-resource",
                "text/plain",
                "This is an embedded resource content.",
            ))
            .into()
        }))
        .tool(fixed(
            "test_multiple_content_types",
            "Returns text, an image and an embedded resource.",
            || {
                ToolResult::text("Multiple content types test:")
                    .with(Content::image(PNG, "image/png"))
                    .with(Content::resource(ResourceContents::text(
                        "test://mixed-content-resource",
                        "application/json",
                        r#"{"test":"data","value":123}"#,
                    )))
            },
        ))
        .tool(Tool::new(
            "test_error_handling",
            "Always fails (a result with isError).",
            no_arguments(),
            |_: NoArgs, _| -> Result<String, HandlerError> {
                Err("This tool intentionally returns an error for testing".into())
            },
        ))
        // Messages while running: log messages and progress.
        .tool(Tool::new(
            "test_tool_with_logging",
            "Sends three log messages while it runs.",
            no_arguments(),
            |_: NoArgs, call| {
                call.log("info", json!("Tool execution started"));
                thread::sleep(Duration::from_millis(50));
                call.log("info", json!("Tool processing data"));
                thread::sleep(Duration::from_millis(50));
                call.log("info", json!("Tool execution completed"));
                Ok("Logging test completed")
            },
        ))
        .tool(Tool::new(
            "test_tool_with_progress",
            "Reports progress 0, 50 and 100 of 100.",
            no_arguments(),
            |_: NoArgs, call| {
                for step in [0.0, 50.0, 100.0] {
                    if step > 0.0 {
                        thread::sleep(Duration::from_millis(50));
                    }
                    if call.is_cancelled() {
                        return Err("cancelled".into());
                    }
                    call.progress(step, Some(100.0), None);
                }
                Ok("Progress test completed")
            },
        ))
        // Asking the client: sampling and elicitation.
        .tool(sampling())
        .tool(elicitation())
        .tool(elicitation_with_defaults())
        .tool(elicitation_with_enums())
        .tool(reconnection())
        // Multi-round-trip fixtures of the suite's 2026-07-28 scenarios (their own keys).
        .tool(mrtr_elicitation())
        .tool(mrtr_tool("test_input_required_result_sampling", |call| {
            let answer = call.ask_as("capital_question", "sampling/createMessage", capital(), call.time_left())?;
            Ok(format!("The model says: {}", answer["content"]["text"].as_str().unwrap_or_default()))
        }))
        .tool(mrtr_tool("test_input_required_result_list_roots", |call| {
            let roots = call.ask_as("client_roots", "roots/list", json!({}), call.time_left())?;
            Ok(format!("roots: {}", roots["roots"]))
        }))
        .tool(mrtr_tool("test_input_required_result_request_state", |call| {
            let form = json!({ "type": "object", "properties": { "ok": { "type": "boolean" } }, "required": ["ok"] });
            let answer = call.ask_as("confirm", "elicitation/create",
                json!({ "message": "Please confirm", "requestedSchema": form }), call.time_left())?;
            let state = if call.resumed() { "state-ok" } else { "no state" };
            Ok(format!("{state}: confirmed={}", answer["content"]["ok"]))
        }))
        .tool(mrtr_tool("test_input_required_result_multiple_inputs", |call| {
            // All three asked before any answer is needed: one round carries them all.
            let name = call.ask_as("user_name", "elicitation/create", name_form("What is your name?"), call.time_left());
            let greeting = call.ask_as("greeting", "sampling/createMessage", json!({
                "messages": [{ "role": "user", "content": { "type": "text", "text": "Generate a greeting" } }],
                "maxTokens": 50
            }), call.time_left());
            let roots = call.ask_as("client_roots", "roots/list", json!({}), call.time_left());
            let (name, greeting, roots) = (name?, greeting?, roots?);
            Ok(format!("{} {} (roots: {})", greeting["content"]["text"], name["content"]["name"], roots["roots"]))
        }))
        .tool(mrtr_tool("test_input_required_result_multi_round", |call| {
            let name = call.ask_as("step1", "elicitation/create", name_form("Step 1: What is your name?"), call.time_left())?;
            let color_form = json!({ "type": "object", "properties": { "color": { "type": "string" } }, "required": ["color"] });
            let color = call.ask_as("step2", "elicitation/create",
                json!({ "message": "Step 2: What is your favorite color?", "requestedSchema": color_form }), call.time_left())?;
            Ok(format!("{} likes {}", name["content"]["name"], color["content"]["color"]))
        }))
        .tool(mrtr_tool("test_input_required_result_tampered_state", |call| {
            let form = json!({ "type": "object", "properties": { "ok": { "type": "boolean" } }, "required": ["ok"] });
            let answer = call.ask_as("confirm", "elicitation/create",
                json!({ "message": "Please confirm", "requestedSchema": form }), call.time_left())?;
            Ok(format!("confirmed={}", answer["content"]["ok"]))
        }))
        .tool(mrtr_tool("test_input_required_result_capabilities", |call| {
            // Asks only what the client declared it can answer: sampling and/or elicitation.
            let mut asked = Vec::new();
            if call.client_supports("sampling") {
                asked.push(call.ask_as("greeting", "sampling/createMessage", json!({
                    "messages": [{ "role": "user", "content": { "type": "text", "text": "Generate a greeting" } }],
                    "maxTokens": 50
                }), call.time_left()));
            }
            if call.client_supports("elicitation") {
                asked.push(call.ask_as("user_name", "elicitation/create", name_form("What is your name?"), call.time_left()));
            }
            let answers = asked.into_iter().collect::<Result<Vec<_>, _>>()?;
            Ok(format!("{} answer(s): {}", answers.len(), json!(answers)))
        }))
        // SEP-2243: its arguments are repeated in Mcp-Param-* headers, which the server
        // checks against the body (http-custom-header-server-validation).
        .tool(Tool::with_handler(
            "test_custom_headers",
            "Echoes its region; the region travels in the Mcp-Param-Region header too.",
            json!({
                "type": "object",
                "properties": {
                    "region": { "type": "string", "description": "Where", "x-mcp-header": "Region" },
                    "priority": { "type": "integer", "description": "How urgent", "x-mcp-header": "Priority" }
                },
                "required": ["region"]
            }),
            |args: &serde_json::Map<String, Value>, _: &Call<'_>| {
                Ok(ToolResult::text(format!("region {}", args.get("region").and_then(Value::as_str).unwrap_or_default())))
            },
        ))
        // Diagnostic tools of the suite's 2026-07-28 scenarios (server-stateless).
        .tool(Tool::new(
            "test_missing_capability",
            "Needs sampling: a client that did not declare it gets -32021.",
            no_arguments(),
            |_: NoArgs, call| {
                let answer = call.create_message(json!({
                    "messages": [{ "role": "user", "content": { "type": "text", "text": "hi" } }],
                    "maxTokens": 10
                }))?;
                Ok(answer.to_string())
            },
        ))
        .tool(Tool::new(
            "test_logging_tool",
            "Sends a log message (only to a request that asked for its level).",
            no_arguments(),
            |_: NoArgs, call| {
                call.log("info", json!("a log message"));
                Ok("logged")
            },
        ))
        .tool(Tool::new(
            "test_streaming_elicitation",
            "Reports progress, then asks the user (an input_required result in 2026-07-28).",
            no_arguments(),
            |_: NoArgs, call| {
                call.progress(1.0, Some(2.0), None);
                let answer = call.elicit(
                    "Your name?",
                    json!({ "type": "object", "properties": { "name": { "type": "string" } } }),
                )?;
                Ok(format!("hello {}", answer["content"]["name"]))
            },
        ))
        // A schema that must reach clients untouched.
        .tool(Tool::with_handler(
            "json_schema_2020_12_tool",
            "Tool with JSON Schema 2020-12 features",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {
                    "address": {
                        "$anchor": "addressDef",
                        "type": "object",
                        "properties": { "street": { "type": "string" }, "city": { "type": "string" } }
                    }
                },
                "properties": {
                    "name": { "type": "string" },
                    "address": { "$ref": "#/$defs/address" },
                    "contactMethod": { "type": "string", "enum": ["phone", "email"] },
                    "phone": { "type": "string" },
                    "email": { "type": "string" }
                },
                "allOf": [{ "anyOf": [{ "required": ["phone"] }, { "required": ["email"] }] }],
                "if": { "properties": { "contactMethod": { "const": "phone" } }, "required": ["contactMethod"] },
                "then": { "required": ["phone"] },
                "else": { "required": ["email"] },
                "additionalProperties": false
            }),
            |args: &serde_json::Map<String, Value>, _: &Call<'_>| {
                Ok(ToolResult::text(format!("received {}", Value::Object(args.clone()))))
            },
        ))
        // Diagnostic hooks of the suite's subscription checks: each toggles an entry of
        // its list, so every subscriber to that list hears of a change.
        .tool(Tool::new(
            "test_trigger_tool_change",
            "Adds or removes the tool test_dynamic_tool (tools/list changes).",
            no_arguments(),
            move |_: NoArgs, _| {
                tools_handle.update(|catalog| {
                    let before = catalog.tools.len();
                    catalog.tools.retain(|t| t.name() != "test_dynamic_tool");
                    if catalog.tools.len() == before {
                        catalog.tools.push(fixed("test_dynamic_tool", "Comes and goes.", || {
                            ToolResult::text("dynamic")
                        }));
                    }
                })?;
                Ok("the tool list changed")
            },
        ))
        .tool(Tool::new(
            "test_trigger_prompt_change",
            "Adds or removes the prompt test_dynamic_prompt (prompts/list changes).",
            no_arguments(),
            move |_: NoArgs, _| {
                prompts_handle.update(|catalog| {
                    let before = catalog.prompts.len();
                    catalog.prompts.retain(|p| p.name() != "test_dynamic_prompt");
                    if catalog.prompts.len() == before {
                        catalog.prompts.push(Prompt::new("test_dynamic_prompt", "Comes and goes.", |_, _| {
                            Ok(vec![PromptMessage::user(Content::text("dynamic"))])
                        }));
                    }
                })?;
                Ok("the prompt list changed")
            },
        ))
        .tool(Tool::new(
            "touch_watched_resource",
            "Tells the clients subscribed to test://watched-resource that it changed.",
            no_arguments(),
            move |_: NoArgs, _| {
                handle.resource_updated("test://watched-resource");
                Ok("notified")
            },
        ))
        // Resources: text, binary, one to watch, and a template.
        .resource(
            Resource::new("test://static-text", "static-text", |_| {
                Ok(vec![ResourceContents::text(
                    "test://static-text",
                    "text/plain",
                    "This is the content of the static text resource.",
                )])
            })
            .description("A static text resource")
            .mime_type("text/plain"),
        )
        .resource(
            Resource::new("test://static-binary", "static-binary", |_| {
                Ok(vec![ResourceContents::blob("test://static-binary", "image/png", PNG)])
            })
            .description("A static binary resource (a PNG)")
            .mime_type("image/png"),
        )
        .resource(
            Resource::new("test://watched-resource", "watched-resource", |_| {
                Ok(vec![ResourceContents::text(
                    "test://watched-resource",
                    "text/plain",
                    "A resource to subscribe to.",
                )])
            })
            .description("A resource clients may subscribe to")
            .mime_type("text/plain"),
        )
        .template(
            ResourceTemplate::new("test://template/{id}/data", "template-data", |uri, vars, _| {
                let id = &vars["id"];
                let body = json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") });
                Ok(vec![ResourceContents::text(uri, "application/json", body.to_string())])
            })
            .description("Data for an id")
            .mime_type("application/json")
            .completion(|c: &Completing<'_>| starting_with(&["1", "123", "42"], c.value)),
        )
        // Prompts.
        .prompt(
            Prompt::new(
                "test_input_required_result_prompt",
                "A prompt that asks the user for its context first (2026-07-28: input_required)",
                |_, call| {
                    let form = json!({ "type": "object", "properties": { "context": { "type": "string" } }, "required": ["context"] });
                    let answer = call.ask_as("user_context", "elicitation/create",
                        json!({ "message": "What context should the prompt use?", "requestedSchema": form }), call.time_left())?;
                    let text = format!("Use this context: {}", answer["content"]["context"].as_str().unwrap_or_default());
                    Ok(vec![PromptMessage::user(Content::text(text))])
                },
            ),
        )
        .prompt(Prompt::new(
            "test_simple_prompt",
            "A prompt without arguments",
            |_, _| {
                let text = Content::text("This is a simple prompt for testing.");
                Ok(vec![PromptMessage::user(text)])
            },
        ))
        .prompt(
            Prompt::new("test_prompt_with_arguments", "A prompt with two arguments", |args, _| {
                let text = format!(
                    "Prompt with arguments: arg1='{}', arg2='{}'",
                    args.str("arg1"),
                    args.str("arg2")
                );
                Ok(vec![PromptMessage::user(Content::text(text))])
            })
            .argument("arg1", "First test argument", true)
            .argument("arg2", "Second test argument", true)
            .completion(|c: &Completing<'_>| match c.argument {
                "arg1" => starting_with(&["paris", "park", "party", "test", "testing"], c.value),
                _ => Vec::new(),
            }),
        )
        .prompt(
            Prompt::new(
                "test_prompt_with_embedded_resource",
                "A prompt that embeds a resource",
                |args, _| {
                    let resource = ResourceContents::text(
                        args.str("resourceUri"),
                        "text/plain",
                        "Embedded resource content for testing.",
                    );
                    Ok(vec![
                        PromptMessage::user(Content::resource(resource)),
                        PromptMessage::user(Content::text("Please process the embedded resource above.")),
                    ])
                },
            )
            .argument("resourceUri", "URI of the resource to embed", true),
        )
        .prompt(Prompt::new(
            "test_prompt_with_image",
            "A prompt with an image",
            |_, _| {
                Ok(vec![
                    PromptMessage::user(Content::image(PNG, "image/png")),
                    PromptMessage::user(Content::text("Please analyze the image above.")),
                ])
            },
        ))
        .serve()
}

/// An elicitation form asking for a name.
fn name_form(message: &str) -> Value {
    json!({
        "message": message,
        "requestedSchema": { "type": "object", "properties": { "name": { "type": "string" } }, "required": ["name"] }
    })
}

/// The sampling question of the suite's fixture.
fn capital() -> Value {
    json!({
        "messages": [{ "role": "user", "content": { "type": "text", "text": "What is the capital of France?" } }],
        "maxTokens": 100
    })
}

/// A tool without arguments for the multi-round-trip scenarios.
fn mrtr_tool(
    name: &str,
    run: impl Fn(&Call<'_>) -> Result<String, HandlerError> + Send + Sync + 'static,
) -> Tool {
    Tool::new(
        name,
        "A multi-round-trip fixture of the conformance suite.",
        no_arguments(),
        move |_: NoArgs, call| run(call),
    )
}

/// Asks the user's name (key `user_name`) and greets them.
fn mrtr_elicitation() -> Tool {
    mrtr_tool("test_input_required_result_elicitation", |call| {
        let answer = call.ask_as(
            "user_name",
            "elicitation/create",
            name_form("What is your name?"),
            call.time_left(),
        )?;
        Ok(format!(
            "Hello, {}!",
            answer["content"]["name"].as_str().unwrap_or_default()
        ))
    })
}

/// The candidates that start with what was typed.
fn starting_with(candidates: &[&str], typed: &str) -> Vec<String> {
    candidates
        .iter()
        .filter(|c| c.starts_with(typed))
        .map(|c| c.to_string())
        .collect()
}

#[derive(Deserialize)]
struct SamplingArgs {
    prompt: String,
}

/// Asks the client's model (`sampling/createMessage`) and returns its answer.
fn sampling() -> Tool {
    let schema = json!({
        "type": "object",
        "properties": { "prompt": { "type": "string", "description": "The prompt to send to the LLM" } },
        "required": ["prompt"]
    });
    Tool::new(
        "test_sampling",
        "Asks the client's model to answer a prompt.",
        schema,
        |args: SamplingArgs, call| {
            let answer = call.create_message(json!({
                "messages": [{ "role": "user", "content": { "type": "text", "text": args.prompt } }],
                "maxTokens": 100
            }))?;
            let text = answer["content"]["text"].as_str().unwrap_or_default();
            Ok(format!("LLM response: {text}"))
        },
    )
}

#[derive(Deserialize)]
struct ElicitationArgs {
    message: String,
}

/// Asks the user for a username and an email (`elicitation/create`).
fn elicitation() -> Tool {
    let schema = json!({
        "type": "object",
        "properties": { "message": { "type": "string", "description": "The message to show the user" } },
        "required": ["message"]
    });
    Tool::new(
        "test_elicitation",
        "Asks the user for a username and an email.",
        schema,
        |args: ElicitationArgs, call| {
            let answer = call.elicit(
                &args.message,
                json!({
                    "type": "object",
                    "properties": {
                        "username": { "type": "string", "description": "User's response" },
                        "email": { "type": "string", "description": "User's email address" }
                    },
                    "required": ["username", "email"]
                }),
            )?;
            Ok(format!(
                "User response: action={}, content={}",
                answer["action"], answer["content"]
            ))
        },
    )
}

/// Elicitation whose fields all have defaults (SEP-1034).
fn elicitation_with_defaults() -> Tool {
    Tool::new(
        "test_elicitation_sep1034_defaults",
        "Asks the user for fields that all have default values.",
        no_arguments(),
        |_: NoArgs, call| {
            let answer = call.elicit(
                "Please review the defaults",
                json!({
                    "type": "object",
                    "properties": {
                        "name": { "type": "string", "description": "User name", "default": "John Doe" },
                        "age": { "type": "integer", "description": "User age", "default": 30 },
                        "score": { "type": "number", "description": "User score", "default": 95.5 },
                        "status": {
                            "type": "string", "description": "User status",
                            "enum": ["active", "inactive", "pending"], "default": "active"
                        },
                        "verified": { "type": "boolean", "description": "Verified", "default": true }
                    }
                }),
            )?;
            Ok(completed(&answer))
        },
    )
}

/// Elicitation with the five kinds of enum (SEP-1330).
fn elicitation_with_enums() -> Tool {
    Tool::new(
        "test_elicitation_sep1330_enums",
        "Asks the user to choose in every kind of enum field.",
        no_arguments(),
        |_: NoArgs, call| {
            let answer = call.elicit(
                "Please choose",
                json!({
                    "type": "object",
                    "properties": {
                        "untitledSingle": { "type": "string", "enum": ["option1", "option2", "option3"] },
                        "titledSingle": {
                            "type": "string",
                            "oneOf": [
                                { "const": "value1", "title": "First Option" },
                                { "const": "value2", "title": "Second Option" },
                                { "const": "value3", "title": "Third Option" }
                            ]
                        },
                        "legacyEnum": {
                            "type": "string",
                            "enum": ["opt1", "opt2", "opt3"],
                            "enumNames": ["Option One", "Option Two", "Option Three"]
                        },
                        "untitledMulti": {
                            "type": "array",
                            "items": { "type": "string", "enum": ["option1", "option2", "option3"] }
                        },
                        "titledMulti": {
                            "type": "array",
                            "items": {
                                "anyOf": [
                                    { "const": "value1", "title": "First Choice" },
                                    { "const": "value2", "title": "Second Choice" },
                                    { "const": "value3", "title": "Third Choice" }
                                ]
                            }
                        }
                    }
                }),
            )?;
            Ok(completed(&answer))
        },
    )
}

fn completed(answer: &Value) -> String {
    format!(
        "Elicitation completed: action={}, content={}",
        answer["action"].as_str().unwrap_or_default(),
        answer["content"]
    )
}

/// Closes its response stream mid-call (SEP-1699); the client gets the result on its
/// `GET` stream after reconnecting.
fn reconnection() -> Tool {
    Tool::new(
        "test_reconnection",
        "Closes its event stream mid-call; the result arrives after the client reconnects.",
        no_arguments(),
        |_: NoArgs, call| {
            call.close_stream();
            thread::sleep(Duration::from_millis(100));
            Ok("Reconnection test completed successfully")
        },
    )
}
