//! MCP methods over JSON-RPC: the initialize handshake and version negotiation, and the
//! tools, resources, prompts and logging methods. Transport-free: a parsed body in, the
//! reply line (if any) out. Envelopes, parsing and error codes are in `rpc.rs`; the catalog
//! in `tools/`, `prompts.rs` and `resources.rs`.

pub mod outbox;
pub mod prompts;
pub mod resources;
pub mod rpc;
pub mod session;
pub mod tools;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::identity::Caller;
use crate::mcp::tools::Tool;
use rpc::{Body, Message, RpcError};

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

/// Dispatch as a transport sees it: a body in, the reply out. Every case goes through
/// `reply_to`, the one place that knows how a body is handed over and a reply read back,
/// so moving dispatch elsewhere changes only that function.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    const ECHO: &str = "echo";

    static PANICS: &[Tool] = &[Tool {
        name: "boom",
        description: "panics",
        input_schema: || json!({"type": "object"}),
        call: |_, _| panic!("a tool bug"),
    }];

    struct Session {
        state: Mutex<SessionState>,
        caller: Caller,
        tools: &'static [Tool],
        adopt: bool,
    }

    impl Session {
        fn new() -> Session {
            Session {
                state: Mutex::new(SessionState::default()),
                caller: Caller::Anonymous,
                tools: crate::mcp::tools::TOOLS,
                adopt: false,
            }
        }

        fn initialized(version: &str) -> Session {
            let s = Session::new();
            let reply = s.call(
                "initialize",
                json!({"protocolVersion": version,
                "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}),
            );
            assert_eq!(reply["result"]["protocolVersion"], version);
            assert_eq!(
                s.reply_to(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})),
                None
            );
            s
        }

        /// The reply to `body`, parsed; `None` when there is none.
        fn reply_to(&self, body: Value) -> Option<Value> {
            let text = body.to_string();
            let parsed = rpc::parse(text.as_bytes()).unwrap();
            let cx = Context {
                state: &self.state,
                caller: &self.caller,
                tools: self.tools,
                adopt_uninitialized: self.adopt,
            };
            handle(parsed, &cx).map(|line| serde_json::from_str(&line).unwrap())
        }

        fn call(&self, method: &str, params: Value) -> Value {
            let reply = self
                .reply_to(json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}))
                .expect("a request gets a reply");
            assert_eq!(reply["id"], 7, "{reply}");
            assert_eq!(reply["jsonrpc"], "2.0", "{reply}");
            reply
        }
    }

    fn code(reply: &Value) -> i64 {
        reply["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("not an error: {reply}"))
    }

    #[test]
    fn initialize_negotiates_each_supported_version_and_offers_the_latest_otherwise() {
        for version in SUPPORTED_VERSIONS {
            let reply = Session::new().call("initialize", json!({"protocolVersion": version}));
            let result = &reply["result"];
            assert_eq!(result["protocolVersion"], *version);
            assert_eq!(result["serverInfo"]["name"], "mcp-warden");
            for capability in ["tools", "resources", "prompts", "logging"] {
                assert!(result["capabilities"][capability].is_object(), "{result}");
            }
        }
        let reply = Session::new().call("initialize", json!({"protocolVersion": "2099-01-01"}));
        assert_eq!(reply["result"]["protocolVersion"], SUPPORTED_VERSIONS[0]);
    }

    #[test]
    fn initialize_needs_a_string_version_and_happens_once() {
        assert_eq!(
            code(&Session::new().call("initialize", json!({}))),
            rpc::INVALID_PARAMS
        );
        assert_eq!(
            code(&Session::new().call("initialize", json!({"protocolVersion": 2025}))),
            rpc::INVALID_PARAMS
        );
        let s = Session::initialized("2025-06-18");
        assert_eq!(
            code(&s.call("initialize", json!({"protocolVersion": "2025-06-18"}))),
            rpc::INVALID_REQUEST
        );
    }

    #[test]
    fn before_initialize_only_ping_is_served_unless_the_transport_adopts_the_session() {
        let s = Session::new();
        assert_eq!(s.call("ping", json!({}))["result"], json!({}));
        assert_eq!(code(&s.call("tools/list", json!({}))), rpc::INVALID_REQUEST);
        let mut adopted = Session::new();
        adopted.adopt = true;
        assert_eq!(adopted.call("ping", json!({}))["result"], json!({}));
        assert!(
            adopted.state.lock().unwrap().version.is_none(),
            "ping adopts nothing"
        );
        let reply = adopted.call(
            "tools/call",
            json!({"name": ECHO, "arguments": {"message": "m"}}),
        );
        assert_eq!(reply["result"]["content"][0]["text"], "Tool echo: m");
        assert_eq!(adopted.state.lock().unwrap().version, Some(ADOPTED_VERSION));
    }

    #[test]
    fn tools_are_listed_and_called_and_a_failing_tool_is_a_result() {
        let s = Session::initialized("2025-11-25");
        let tools = s.call("tools/list", json!({}))["result"]["tools"].clone();
        let names: Vec<&str> = tools
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["echo", "whoami"]);
        assert_eq!(tools[0]["inputSchema"]["required"], json!(["message"]));
        let ok = s.call(
            "tools/call",
            json!({"name": ECHO, "arguments": {"message": "hi"}}),
        );
        assert_eq!(
            ok["result"],
            json!({"content": [{"type": "text", "text": "Tool echo: hi"}], "isError": false})
        );
        let failed = s.call(
            "tools/call",
            json!({"name": ECHO, "arguments": {"message": 3}}),
        );
        assert_eq!(failed["result"]["isError"], true);
        assert!(
            failed["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("message")
        );
        let who = s.call("tools/call", json!({"name": "whoami"}));
        assert!(
            who["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("anonymous"),
            "{who}"
        );
        for params in [
            json!({"name": "nope"}),
            json!({}),
            json!({"name": ECHO, "arguments": []}),
        ] {
            assert_eq!(
                code(&s.call("tools/call", params.clone())),
                rpc::INVALID_PARAMS,
                "{params}"
            );
        }
    }

    #[test]
    fn whoami_reports_the_callers_identity() {
        let mut s = Session::initialized("2025-06-18");
        s.caller = Caller::User(Identity {
            issuer: Some("Joken".into()),
            subject: "alice".into(),
            email: Some("alice@example.com".into()),
            name: None,
            groups: vec!["sre".into()],
        });
        let who = s.call("tools/call", json!({"name": "whoami"}));
        let text = who["result"]["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("alice") && text.contains("sre"), "{text}");
    }

    #[test]
    fn a_panicking_tool_is_an_internal_error_and_the_session_carries_on() {
        let mut s = Session::initialized("2025-06-18");
        s.tools = PANICS;
        assert_eq!(
            code(&s.call("tools/call", json!({"name": "boom"}))),
            rpc::INTERNAL_ERROR
        );
        assert_eq!(s.call("ping", json!({}))["result"], json!({}));
    }

    #[test]
    fn resources_and_prompts_answer_and_name_what_is_missing() {
        let s = Session::initialized("2025-06-18");
        assert_eq!(
            s.call("resources/list", json!({}))["result"],
            json!({"resources": []})
        );
        let templates = s.call("resources/templates/list", json!({}));
        assert_eq!(
            templates["result"]["resourceTemplates"][0]["uriTemplate"],
            "echo://{message}"
        );
        let read = s.call("resources/read", json!({"uri": "echo://hello"}));
        assert_eq!(
            read["result"]["contents"][0]["text"],
            "Resource echo: hello"
        );
        let missing = s.call("resources/read", json!({"uri": "nope://x"}));
        assert_eq!(code(&missing), rpc::RESOURCE_NOT_FOUND);
        assert_eq!(missing["error"]["data"]["uri"], "nope://x");
        assert_eq!(
            s.call("prompts/list", json!({}))["result"]["prompts"][0]["name"],
            "echo"
        );
        let prompt = s.call(
            "prompts/get",
            json!({"name": "echo", "arguments": {"message": "p"}}),
        );
        assert_eq!(
            prompt["result"]["messages"][0]["content"]["text"],
            "Please process this message: p"
        );
        assert_eq!(
            code(&s.call("prompts/get", json!({"name": "nope"}))),
            rpc::INVALID_PARAMS
        );
    }

    #[test]
    fn logging_levels_are_checked_and_unknown_methods_are_not_found() {
        let s = Session::initialized("2025-06-18");
        assert_eq!(
            s.call("logging/setLevel", json!({"level": "warning"}))["result"],
            json!({})
        );
        assert_eq!(s.state.lock().unwrap().log_level, Some("warning"));
        assert_eq!(
            code(&s.call("logging/setLevel", json!({"level": "loud"}))),
            rpc::INVALID_PARAMS
        );
        assert_eq!(
            code(&s.call("tools/destroy", json!({}))),
            rpc::METHOD_NOT_FOUND
        );
    }

    #[test]
    fn notifications_and_responses_get_no_reply() {
        let s = Session::initialized("2025-06-18");
        for body in [
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}),
            json!({"jsonrpc": "2.0", "method": "notifications/unknown"}),
            json!({"jsonrpc": "2.0", "id": 5, "result": {}}),
            json!({"jsonrpc": "2.0", "id": 5, "error": {"code": 1, "message": "x"}}),
        ] {
            assert_eq!(s.reply_to(body.clone()), None, "{body}");
        }
    }

    #[test]
    fn ids_come_back_as_sent_and_bad_envelopes_are_invalid_requests() {
        let s = Session::new();
        for id in [
            json!("abc"),
            json!(0),
            json!(-12),
            json!(9007199254740993_u64),
        ] {
            let reply = s
                .reply_to(json!({"jsonrpc": "2.0", "id": id, "method": "ping"}))
                .unwrap();
            assert_eq!(reply["id"], id);
        }
        for body in [
            json!({"jsonrpc": "1.0", "id": 1, "method": "ping"}),
            json!({"id": 1, "method": "ping"}),
            json!({"jsonrpc": "2.0", "id": {"x": 1}, "method": "ping"}),
            json!({"jsonrpc": "2.0", "id": 1, "method": 5}),
            json!("ping"),
        ] {
            let reply = s.reply_to(body.clone()).unwrap();
            assert_eq!(code(&reply), rpc::INVALID_REQUEST, "{body}");
        }
    }

    #[test]
    fn batches_are_answered_only_in_2025_03_26_sessions() {
        let ping = |id: i64| json!({"jsonrpc": "2.0", "id": id, "method": "ping"});
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let s = Session::initialized("2025-03-26");
        let replies = s.reply_to(json!([ping(1), note, ping(2)])).unwrap();
        let ids: Vec<&Value> = replies
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["id"])
            .collect();
        assert_eq!(ids, [&json!(1), &json!(2)]);
        assert_eq!(
            s.reply_to(json!([note])),
            None,
            "only notifications: no reply"
        );
        assert_eq!(code(&s.reply_to(json!([])).unwrap()), rpc::INVALID_REQUEST);
        for version in ["2024-11-05", "2025-06-18", "2025-11-25"] {
            let other = Session::initialized(version);
            let reply = other.reply_to(json!([ping(1)])).unwrap();
            assert_eq!(code(&reply), rpc::INVALID_REQUEST, "{version}");
        }
    }
}
