//! MCP methods over JSON-RPC: the initialize handshake and version negotiation, and the
//! tools, resources, prompts and logging methods. Transport-free: a parsed body in, the
//! reply line (if any) out. Envelopes, parsing and error codes are in `rpc.rs`; the catalog
//! in `tools/`, `prompts.rs` and `resources.rs`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::identity::Caller;
use crate::rpc::{self, Body, Message, RpcError};
use crate::tools::Tool;
use crate::{prompts, resources};

/// Protocol revisions this server speaks, newest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The revision a session is served at when its client sends a request before any
/// `initialize` (see `Context::adopt_uninitialized`).
pub const ADOPTED_VERSION: &str = "2024-11-05";

/// The only revision whose clients may send JSON-RPC batches (it added them; 2025-06-18
/// removed them again).
const BATCH_VERSION: &str = "2025-03-26";

/// Log levels of `logging/setLevel` (RFC 5424 names), least severe first.
const LOG_LEVELS: &[&str] = &[
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// What one MCP session has agreed with its client.
#[derive(Debug, Default)]
pub struct SessionState {
    /// The negotiated revision, once `initialize` has been answered.
    pub version: Option<&'static str>,
    /// Whether `notifications/initialized` has arrived.
    pub initialized: bool,
    /// The level the client asked for with `logging/setLevel`.
    pub log_level: Option<&'static str>,
}

/// A session's state and the caller it belongs to: what every method sees.
pub struct Context<'a> {
    pub state: &'a Mutex<SessionState>,
    pub caller: &'a Caller,
    /// The tool catalog (`tools::TOOLS` unless the server was started with another).
    pub tools: &'a [Tool],
    /// Whether a request before `initialize` is served, as a `ADOPTED_VERSION` session
    /// with empty client capabilities, instead of refused. The legacy HTTP+SSE transport
    /// sets it: the official SDK's `SSEClientTransport` reopens its stream after a server
    /// restart and gets a new session, but never initializes it again.
    pub adopt_uninitialized: bool,
}

impl Context<'_> {
    fn state(&self) -> MutexGuard<'_, SessionState> {
        // State is only ever assigned whole fields under the lock, so a panic elsewhere
        // cannot leave it half-written: a poisoned lock is still sound to use.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The reply to a body that is not JSON, as one line.
pub fn parse_error(err: &serde_json::Error) -> String {
    rpc::error_reply(
        None,
        RpcError::new(
            rpc::PARSE_ERROR,
            format!("the body is not valid JSON: {err}"),
        ),
    )
}

/// Handles one parsed body: a message or a batch. Returns the reply to send (one line of
/// JSON), if any.
pub fn handle(body: Body<'_>, cx: &Context<'_>) -> Option<String> {
    let items = match body {
        Body::One(message) => return handle_one(message, cx),
        Body::Batch(items) => items,
    };
    if cx.state().version != Some(BATCH_VERSION) {
        return Some(rpc::error_reply(
            None,
            RpcError::new(
                rpc::INVALID_REQUEST,
                format!(
                    "JSON-RPC batches are only accepted in protocol version {BATCH_VERSION} sessions"
                ),
            ),
        ));
    }
    if items.is_empty() {
        return Some(rpc::error_reply(
            None,
            RpcError::new(
                rpc::INVALID_REQUEST,
                "an empty batch is not a valid request",
            ),
        ));
    }
    let replies: Vec<String> = items
        .into_iter()
        .filter_map(|item| handle_one(item, cx))
        .collect();
    (!replies.is_empty()).then(|| rpc::batch_line(&replies))
}

/// What a method answers with: any JSON value, or a tool's result, which is written
/// straight from its fields (the hot path: no `Value` is built for it).
#[derive(Serialize)]
#[serde(untagged)]
enum Answer {
    Json(Value),
    Tool(ToolResult),
}

/// `tools/call`'s result: one text block.
#[derive(Serialize)]
struct ToolResult {
    content: [TextContent; 1],
    #[serde(rename = "isError")]
    is_error: bool,
}

#[derive(Serialize)]
struct TextContent {
    #[serde(rename = "type")]
    kind: &'static str,
    text: String,
}

fn handle_one(message: &RawValue, cx: &Context<'_>) -> Option<String> {
    match rpc::classify(message) {
        Err((id, error)) => Some(rpc::error_reply(id, error)),
        Ok(Message::Response) => None,
        Ok(Message::Notification { method, params }) => {
            notify(&method, &params, cx);
            None
        }
        Ok(Message::Request { id, method, params }) => {
            log::debug!("{} {method}", cx.caller.subject());
            // A bug in one method (or one tool) answers this request with an internal error
            // and leaves the session, and every other one, running.
            let outcome = catch_unwind(AssertUnwindSafe(|| request(&method, &params, cx)))
                .unwrap_or_else(|_| {
                    log::error!("{method} panicked; answered with an internal error");
                    Err(RpcError::new(
                        rpc::INTERNAL_ERROR,
                        format!("internal error while handling {method}"),
                    ))
                });
            Some(rpc::reply(Some(id), outcome))
        }
    }
}

fn notify(method: &str, _params: &Map<String, Value>, cx: &Context<'_>) {
    match method {
        "notifications/initialized" => cx.state().initialized = true,
        // Every request is answered synchronously on its own thread, so there is nothing
        // left to cancel by the time this arrives.
        "notifications/cancelled" => {}
        other => log::debug!("ignoring notification {other}"),
    }
}

fn request(
    method: &str,
    params: &Map<String, Value>,
    cx: &Context<'_>,
) -> Result<Answer, RpcError> {
    match method {
        "initialize" => return initialize(params, cx).map(Answer::Json),
        "ping" => return Ok(Answer::Json(json!({}))),
        _ => {}
    }
    if cx.state().version.is_none() && !adopt(cx) {
        return Err(RpcError::new(
            rpc::INVALID_REQUEST,
            format!("session is not initialized: send \"initialize\" before \"{method}\""),
        ));
    }
    let result = match method {
        "tools/list" => Ok(json!({ "tools": cx.tools.iter().map(|t| json!({
            "name": t.name,
            "description": t.description,
            "inputSchema": (t.input_schema)(),
        })).collect::<Vec<_>>() })),
        "tools/call" => return call_tool(params, cx).map(Answer::Tool),
        "resources/list" => Ok(json!({ "resources": [] })),
        "resources/templates/list" => Ok(json!({
            "resourceTemplates": resources::TEMPLATES.iter().map(|t| t.listing()).collect::<Vec<_>>()
        })),
        "resources/read" => {
            let uri = str_param(params, "uri")?;
            match resources::read(uri) {
                Some(contents) => Ok(json!({ "contents": contents })),
                None => Err(RpcError::new(
                    rpc::RESOURCE_NOT_FOUND,
                    format!("resource not found: {uri}"),
                )
                .with_data(json!({ "uri": uri }))),
            }
        }
        "prompts/list" => Ok(json!({
            "prompts": prompts::PROMPTS.iter().map(|p| p.listing()).collect::<Vec<_>>()
        })),
        "prompts/get" => {
            let name = str_param(params, "name")?;
            let prompt = prompts::find(name)
                .ok_or_else(|| RpcError::invalid_params(format!("unknown prompt: {name}")))?;
            let messages = prompt
                .get(object_param(params, "arguments")?)
                .map_err(RpcError::invalid_params)?;
            Ok(json!({ "description": prompt.description, "messages": messages }))
        }
        "logging/setLevel" => {
            let level = str_param(params, "level")?;
            let level = LOG_LEVELS.iter().find(|l| **l == level).ok_or_else(|| {
                RpcError::invalid_params(format!(
                    "unknown log level {level:?}; use one of {}",
                    LOG_LEVELS.join(", ")
                ))
            })?;
            cx.state().log_level = Some(level);
            Ok(json!({}))
        }
        other => Err(RpcError::new(
            rpc::METHOD_NOT_FOUND,
            format!("method not found: {other}"),
        )),
    };
    result.map(Answer::Json)
}

/// Serves an uninitialized session as an `ADOPTED_VERSION` one, when the transport allows
/// it. Returns whether the session is now initialized.
fn adopt(cx: &Context<'_>) -> bool {
    if !cx.adopt_uninitialized {
        return false;
    }
    let mut state = cx.state();
    if state.version.is_none() {
        state.version = Some(ADOPTED_VERSION);
        state.initialized = true;
        drop(state);
        log::info!(
            "session used without initialize: served as {ADOPTED_VERSION} sub={}",
            cx.caller.subject()
        );
    }
    true
}

fn initialize(params: &Map<String, Value>, cx: &Context<'_>) -> Result<Value, RpcError> {
    let asked = str_param(params, "protocolVersion")?;
    let version = SUPPORTED_VERSIONS
        .iter()
        .copied()
        .find(|v| *v == asked)
        .unwrap_or(SUPPORTED_VERSIONS[0]);
    {
        let mut state = cx.state();
        if state.version.is_some() {
            return Err(RpcError::new(
                rpc::INVALID_REQUEST,
                "session is already initialized",
            ));
        }
        state.version = Some(version);
    }
    Ok(json!({
        "protocolVersion": version,
        "capabilities": {
            "tools": { "listChanged": false },
            "resources": { "subscribe": false, "listChanged": false },
            "prompts": { "listChanged": false },
            "logging": {},
        },
        "serverInfo": { "name": "mcp-warden", "version": env!("CARGO_PKG_VERSION") },
    }))
}

fn call_tool(params: &Map<String, Value>, cx: &Context<'_>) -> Result<ToolResult, RpcError> {
    let name = str_param(params, "name")?;
    let tool = cx
        .tools
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| RpcError::invalid_params(format!("unknown tool: {name}")))?;
    let (text, is_error) = match (tool.call)(object_param(params, "arguments")?, cx.caller) {
        Ok(text) => (text, false),
        Err(text) => (text, true),
    };
    Ok(ToolResult {
        content: [TextContent { kind: "text", text }],
        is_error,
    })
}

fn str_param<'a>(params: &'a Map<String, Value>, name: &str) -> Result<&'a str, RpcError> {
    match params.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(RpcError::invalid_params(format!(
            "\"{name}\" must be a string"
        ))),
        None => Err(RpcError::invalid_params(format!(
            "missing parameter \"{name}\""
        ))),
    }
}

/// An optional object parameter; absent or `null` is an empty object.
fn object_param<'a>(
    params: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a Map<String, Value>, RpcError> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    match params.get(name) {
        None | Some(Value::Null) => Ok(EMPTY.get_or_init(Map::new)),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(RpcError::invalid_params(format!(
            "\"{name}\" must be an object"
        ))),
    }
}
