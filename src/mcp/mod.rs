//! MCP methods over JSON-RPC: the initialize handshake and version negotiation, and the
//! tools, resources, prompts and logging methods. Transport-free: a parsed body and the
//! session in, a typed reply (the ids and each result or `RpcError`) out; each transport
//! serializes it and picks its HTTP status. Envelopes, parsing and error codes are in
//! `rpc.rs`; sessions in `session.rs`; the catalog in `tools/`, `prompts.rs` and
//! `resources.rs`.

pub mod call;
pub mod catalog;
pub mod content;
pub mod modern;
pub mod mrtr;
pub mod outbox;
pub mod resume;
pub mod rpc;
pub mod schema;
pub mod session;
pub mod watchdog;

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::MutexGuard;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::audit;
use crate::identity::Caller;
use crate::policy::Kind;
use call::{Call, LOG_LEVELS, Outlet};
use catalog::{Catalog, Completing};
use content::{ErrorKind, HandlerError, ToolResult};
use rpc::{Body, Id, Message, RpcError};
use session::Session;

/// A protocol revision this server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    V2024_11_05,
    V2025_03_26,
    V2025_06_18,
    V2025_11_25,
}

impl Version {
    /// Every revision served, newest first.
    pub const SUPPORTED: [Version; 4] = [
        Version::V2025_11_25,
        Version::V2025_06_18,
        Version::V2025_03_26,
        Version::V2024_11_05,
    ];
    /// Offered to a client asking for a revision this server does not speak.
    pub const LATEST: Version = Version::V2025_11_25;
    /// A session used before any `initialize` (see `Context::adopt_uninitialized`).
    pub const ADOPTED: Version = Version::V2024_11_05;

    pub fn as_str(self) -> &'static str {
        match self {
            Version::V2024_11_05 => "2024-11-05",
            Version::V2025_03_26 => "2025-03-26",
            Version::V2025_06_18 => "2025-06-18",
            Version::V2025_11_25 => "2025-11-25",
        }
    }

    /// The revision named exactly `text`, if served.
    pub fn parse(text: &str) -> Option<Version> {
        Version::SUPPORTED.into_iter().find(|v| v.as_str() == text)
    }

    /// Only 2025-03-26 let clients send JSON-RPC batches (2025-06-18 removed them again).
    pub fn allows_batches(self) -> bool {
        self == Version::V2025_03_26
    }

    /// The revisions Streamable HTTP serves: it first appeared in 2025-03-26.
    pub const STREAMABLE: [Version; 3] = [
        Version::V2025_11_25,
        Version::V2025_06_18,
        Version::V2025_03_26,
    ];

    /// `versions`, comma-separated (for error messages).
    pub fn list(versions: &[Version]) -> String {
        versions
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one MCP session has agreed with its client.
#[derive(Debug, Default)]
pub struct SessionState {
    /// The negotiated revision, once `initialize` has been answered.
    pub version: Option<Version>,
    /// Whether `notifications/initialized` has arrived.
    pub initialized: bool,
    /// The level the client asked for with `logging/setLevel`.
    pub log_level: Option<&'static str>,
    /// The `capabilities` the client declared in `initialize` (empty when adopted).
    pub client_capabilities: Map<String, Value>,
    /// The resource URIs the client subscribed to (`resources/subscribe`).
    pub subscriptions: std::collections::HashSet<String>,
    /// A 2026-07-28 request's session, for that request only (`modern.rs`): no request to
    /// the client may go out on any stream.
    pub stateless: bool,
    /// Its questions and answers (`mrtr.rs`).
    pub rounds: mrtr::Rounds,
    /// A `subscriptions/listen` stream's session (`modern.rs`): only what it opted into
    /// reaches it, tagged with its subscription's id.
    pub listening: Option<modern::Listening>,
    /// The session's upstream server, behind the gate (`gateway/`), once started.
    pub upstream: Option<std::sync::Arc<crate::gateway::child::Child>>,
    /// Behind a shared upstream: the client's ids of its requests in flight (as JSON
    /// text) and the ids the gateway gave them there.
    pub relayed: std::collections::HashMap<String, String>,
    /// Behind an upstream over HTTP: this session's session there.
    pub upstream_http: Option<std::sync::Arc<crate::gateway::http::HttpSession>>,
    /// Behind an upstream with per-tool rules: the names of its tools and prompts as last
    /// listed (`tools` / `prompts`), so that an unknown name and a hidden one get the same
    /// answer, the gate's.
    pub upstream_names: std::collections::HashMap<&'static str, std::collections::HashSet<String>>,
}

/// What every method sees: the session (its caller and state) and the catalog.
pub struct Context<'a> {
    pub session: &'a Session,
    /// What the server offers.
    pub catalog: &'a Catalog,
    /// Where messages a request emits before its result go (progress, log messages).
    pub outlet: &'a dyn Outlet,
    /// Whether the client has gone (the transport looks when a tool asks): running tools
    /// then see a cancellation.
    pub client_gone: &'a dyn Fn() -> bool,
    /// `TOOL_TIMEOUT_SECS`: how long a tool call may run.
    pub tool_timeout: std::time::Duration,
    /// The revisions this transport serves (`Version::SUPPORTED` or `Version::STREAMABLE`);
    /// a client asking for another is offered `Version::LATEST`.
    pub versions: &'a [Version],
    /// Whether a request before `initialize` is served, as a `Version::ADOPTED` session
    /// with empty client capabilities, instead of refused. The legacy HTTP+SSE transport
    /// sets it: the official SDK's `SSEClientTransport` reopens its stream after a server
    /// restart and gets a new session, but never initializes it again.
    pub adopt_uninitialized: bool,
    /// The request's own `Authorization` header, for a gateway that forwards it to its
    /// upstream (`UPSTREAM_FORWARD_TOKEN`); nothing else reads it, and it is never logged.
    pub bearer: Option<&'a str>,
}

impl Context<'_> {
    pub(crate) fn state(&self) -> MutexGuard<'_, SessionState> {
        self.session.state()
    }

    fn caller(&self) -> &Caller {
        &self.session.caller
    }
}

/// The answer to one request: its id (`None` is `null`, for a message whose own id is
/// unusable) and its result or error.
pub struct Outcome<'a> {
    pub id: Id<'a>,
    pub result: Result<Answer, RpcError>,
}

/// What a body gets back: one outcome, or one per request of a batch.
pub enum Reply<'a> {
    One(Outcome<'a>),
    Batch(Vec<Outcome<'a>>),
}

impl Reply<'_> {
    /// The reply as one line of JSON.
    pub fn to_line(&self) -> String {
        match self {
            Reply::One(outcome) => outcome.to_line(),
            Reply::Batch(outcomes) => {
                let lines: Vec<String> = outcomes.iter().map(Outcome::to_line).collect();
                rpc::batch_line(&lines)
            }
        }
    }
}

impl Outcome<'_> {
    pub fn to_line(&self) -> String {
        rpc::reply(self.id, self.result.as_ref())
    }
}

/// The reply to a body that is not JSON.
pub fn parse_error(err: &serde_json::Error) -> Outcome<'static> {
    Outcome {
        id: None,
        result: Err(RpcError::new(
            rpc::PARSE_ERROR,
            format!("the body is not valid JSON: {err}"),
        )),
    }
}

/// Handles one parsed body: a message or a batch. Returns the reply, if any (notifications
/// and responses get none).
pub fn handle<'a>(body: Body<'a>, cx: &Context<'_>) -> Option<Reply<'a>> {
    let items = match body {
        Body::One(message) => return handle_one(message, cx).map(Reply::One),
        Body::Batch(items) => items,
    };
    if !cx.state().version.is_some_and(Version::allows_batches) {
        return Some(Reply::One(Outcome {
            id: None,
            result: Err(RpcError::new(
                rpc::INVALID_REQUEST,
                "JSON-RPC batches are only accepted in protocol version 2025-03-26 sessions",
            )),
        }));
    }
    if items.is_empty() {
        return Some(Reply::One(Outcome {
            id: None,
            result: Err(RpcError::new(
                rpc::INVALID_REQUEST,
                "an empty batch is not a valid request",
            )),
        }));
    }
    let outcomes: Vec<Outcome<'a>> = items
        .into_iter()
        .filter_map(|item| handle_one(item, cx))
        .collect();
    (!outcomes.is_empty()).then_some(Reply::Batch(outcomes))
}

/// What a method answers with: any JSON value, or a tool's result, which is written
/// straight from its fields (the hot path: no `Value` is built for it).
#[derive(Serialize)]
#[serde(untagged)]
pub enum Answer {
    Json(Value),
    Tool(ToolResult),
}

fn handle_one<'a>(message: &'a RawValue, cx: &Context<'_>) -> Option<Outcome<'a>> {
    match rpc::classify(message) {
        Err((id, error)) => Some(Outcome {
            id,
            result: Err(error),
        }),
        Ok(Message::Response { id, result }) => {
            // The client's answer to the upstream server's request (behind the gate).
            if let Some(gateway) = &cx.catalog.upstream {
                gateway.answer(message, cx);
                return None;
            }
            // An answer to a request of ours: to the handler waiting for it, if any.
            if let Some(id) = id {
                let reply = result.map_err(|error| {
                    serde_json::from_str::<RpcError>(error.get()).unwrap_or_else(|_| {
                        RpcError::new(rpc::INVALID_REQUEST, "the client's error is malformed")
                    })
                });
                let reply = reply.and_then(|raw| {
                    serde_json::from_str(raw.get()).map_err(|_| {
                        RpcError::new(rpc::INVALID_REQUEST, "the client's result is malformed")
                    })
                });
                if !cx.session.route_reply(id.get(), reply) {
                    log::debug!("an answer nobody waits for (ignored)");
                }
            }
            None
        }
        Ok(Message::Notification { method, params }) => {
            match &cx.catalog.upstream {
                Some(gateway) => gateway.notify(&method, &params, cx),
                None => notify(&method, &params, cx),
            }
            None
        }
        Ok(Message::Request { id, method, params }) => answer(id, &method, &params, cx),
    }
}

/// Answers one request already read (its id, method and params), as `handle` does: a
/// method that panics is an internal error, a cancelled request gets no answer.
pub(crate) fn answer<'a>(
    id: &'a RawValue,
    method: &str,
    params: &Map<String, Value>,
    cx: &Context<'_>,
) -> Option<Outcome<'a>> {
    log::debug!("{} {method}", cx.caller().subject());
    // A bug in one method (or one tool) answers this request with an internal error
    // and leaves the session, and every other one, running.
    let result =
        catch_unwind(AssertUnwindSafe(|| request(id, method, params, cx))).unwrap_or_else(|_| {
            log::error!("{method} panicked; answered with an internal error");
            Err(RpcError::new(
                rpc::INTERNAL_ERROR,
                format!("internal error while handling {method}"),
            ))
        });
    if matches!(&result, Err(e) if e.code == CANCELLED) {
        log::debug!("{method} cancelled by the client: no answer sent");
        return None;
    }
    Some(Outcome {
        id: Some(id),
        result,
    })
}

/// The error of a request the client cancelled; never sent (the client asked not to hear).
pub(crate) const CANCELLED: i64 = -32800;

fn notify(method: &str, params: &Map<String, Value>, cx: &Context<'_>) {
    match method {
        "notifications/initialized" => cx.state().initialized = true,
        // A tool still running for that request sees it (`Call::is_cancelled`), and its
        // answer is not sent.
        "notifications/cancelled" => {
            if let Some(id) = params.get("requestId") {
                cx.session.cancel(&id.to_string());
            }
        }
        other => log::debug!("ignoring notification {other}"),
    }
}

fn request(
    id: &RawValue,
    method: &str,
    params: &Map<String, Value>,
    cx: &Context<'_>,
) -> Result<Answer, RpcError> {
    if let Some(gateway) = &cx.catalog.upstream {
        if method != "tools/call" {
            return gateway.guarded(id, method, params, cx, &|| {});
        }
        // Calls through the gate are audited as local ones are.
        let audit = audit::ToolCall::start(cx.caller(), params, cx.catalog.audit);
        let result = gateway.guarded(id, method, params, cx, &|| audit.deny());
        audit.finish(&result, || false);
        return result;
    }
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
    let catalog = cx.catalog;
    let result = match method {
        "tools/list" => Ok(catalog.list_tools_for(cx.caller())),
        "tools/call" => {
            // One audit line per call (`audit.rs`), written when `audit` is dropped.
            let audit = audit::ToolCall::start(cx.caller(), params, catalog.audit);
            let result = call_tool(id, params, cx, &audit).map(Answer::Tool);
            audit.finish(&result, || !cx.state().rounds.asked.is_empty());
            return result;
        }
        "resources/list" => Ok(catalog.list_resources_for(cx.caller())),
        "resources/templates/list" => Ok(catalog.list_templates_for(cx.caller())),
        "resources/read" => {
            let uri = str_param(params, "uri")?;
            // Refused exactly as a URI nothing here has (existence is not leaked).
            if !catalog.policy().admits(cx.caller(), Kind::Resource, uri) {
                return Err(not_found(uri));
            }
            let running = begin(id, uri.into(), None, cx);
            let read = catalog.read(uri, &call_for(&running, params, cx));
            match read {
                Some(Ok(contents)) => Ok(json!({ "contents": contents })),
                Some(Err(e)) => Err(handler_error(e, uri, method, cx)),
                None => Err(not_found(uri)),
            }
        }
        "resources/subscribe" | "resources/unsubscribe" => {
            let uri = str_param(params, "uri")?;
            let mut state = cx.state();
            if method == "resources/unsubscribe" {
                state.subscriptions.remove(uri);
            } else if catalog.policy().allows_resource(cx.caller(), uri) && catalog.knows(uri) {
                state.subscriptions.insert(uri.to_string());
            } else {
                return Err(not_found(uri));
            }
            Ok(json!({}))
        }
        "prompts/list" => Ok(catalog.list_prompts_for(cx.caller())),
        "prompts/get" => {
            let name = str_param(params, "name")?;
            let prompt = Some(name)
                .filter(|name| catalog.policy().admits(cx.caller(), Kind::Prompt, name))
                .and_then(|name| catalog.prompt(name))
                .ok_or_else(|| RpcError::invalid_params(format!("unknown prompt: {name}")))?;
            let arguments = object_param(params, "arguments")?;
            let running = begin(id, name.into(), None, cx);
            let got = prompt.get(arguments, &call_for(&running, params, cx));
            got.map_err(|e| handler_error(e, name, method, cx))
        }
        "completion/complete" => complete(params, catalog, cx.caller()),
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

/// `-32002` for a URI nothing here has, with the URI in `data`.
pub(crate) fn not_found(uri: &str) -> RpcError {
    RpcError::new(
        rpc::RESOURCE_NOT_FOUND,
        format!("resource not found: {uri}"),
    )
    .with_data(json!({ "uri": uri }))
}

/// A prompt's or a resource reader's failure as a JSON-RPC error. (In a 2026-07-28
/// request that asked its client, the failure is that the answer is not there yet: the
/// client is asked instead, and nothing is logged.)
fn handler_error(e: HandlerError, what: &str, method: &str, cx: &Context<'_>) -> RpcError {
    match e.kind() {
        ErrorKind::NotFound => not_found(what),
        ErrorKind::Invalid => RpcError::invalid_params(e.message().to_string()),
        ErrorKind::Failed if !cx.state().rounds.asked.is_empty() => {
            RpcError::new(rpc::INTERNAL_ERROR, e.message().to_string())
        }
        ErrorKind::Failed => {
            log::warn!("{method} {what} failed: {}", e.message());
            RpcError::new(rpc::INTERNAL_ERROR, e.message().to_string())
        }
    }
}

/// Most values a completion answers with (the schema's limit).
const MAX_COMPLETIONS: usize = 100;

/// `completion/complete`: values for a prompt's argument or a template's variable. A
/// reference with no completion handler gets no values; an unknown one is `-32602`.
fn complete(
    params: &Map<String, Value>,
    catalog: &Catalog,
    caller: &Caller,
) -> Result<Value, RpcError> {
    let reference = object_param(params, "ref")?;
    let argument = object_param(params, "argument")?;
    let name = str_param(argument, "name")?;
    let value = str_param(argument, "value")?;
    let context = match params.get("context") {
        Some(Value::Object(context)) => object_param(context, "arguments")?,
        _ => object_param(params, "context")?,
    };
    let completing = Completing {
        argument: name,
        value,
        context,
    };
    // A reference the policy hides is answered as one to nothing.
    let admitted = catalog.policy().admits_reference(caller, reference);
    let completed = admitted.then(|| catalog.complete(reference, &completing));
    let mut values = completed.flatten().ok_or_else(|| {
        RpcError::invalid_params(format!(
            "completion/complete: no prompt or resource template matches the reference {}",
            Value::Object(reference.clone())
        ))
    })?;
    let total = values.len();
    values.truncate(MAX_COMPLETIONS);
    Ok(json!({ "completion": {
        "values": values,
        "total": total,
        "hasMore": total > MAX_COMPLETIONS,
    }}))
}

/// Serves an uninitialized session as a `Version::ADOPTED` one, when the transport allows
/// it. Returns whether the session is now initialized.
pub(crate) fn adopt(cx: &Context<'_>) -> bool {
    if !cx.adopt_uninitialized {
        return false;
    }
    let mut state = cx.state();
    if state.version.is_none() {
        state.version = Some(Version::ADOPTED);
        state.initialized = true;
        drop(state);
        log::info!(
            "session used without initialize: served as {} sub={}",
            Version::ADOPTED,
            cx.caller().subject()
        );
    }
    true
}

fn initialize(params: &Map<String, Value>, cx: &Context<'_>) -> Result<Value, RpcError> {
    let asked = str_param(params, "protocolVersion")?;
    let version = Version::parse(asked)
        .filter(|v| cx.versions.contains(v))
        .unwrap_or(Version::LATEST);
    let capabilities = match params.get("capabilities") {
        Some(Value::Object(c)) => c.clone(),
        _ => Map::new(),
    };
    {
        let mut state = cx.state();
        if state.version.is_some() {
            return Err(RpcError::new(
                rpc::INVALID_REQUEST,
                "session is already initialized",
            ));
        }
        state.version = Some(version);
        state.client_capabilities = capabilities;
    }
    let info = &cx.catalog.info;
    let mut result = json!({
        "protocolVersion": version.as_str(),
        "capabilities": {
            "tools": { "listChanged": true },
            "resources": { "subscribe": true, "listChanged": true },
            "prompts": { "listChanged": true },
            "completions": {},
            "logging": {},
        },
        "serverInfo": { "name": info.name, "version": info.version },
    });
    if let Some(instructions) = &info.instructions {
        result["instructions"] = json!(instructions);
    }
    Ok(result)
}

fn call_tool(
    id: &RawValue,
    params: &Map<String, Value>,
    cx: &Context<'_>,
    audit: &audit::ToolCall<'_>,
) -> Result<ToolResult, RpcError> {
    let name = str_param(params, "name")?;
    let unknown = || RpcError::invalid_params(format!("unknown tool: {name}"));
    // A tool the caller may not use is answered exactly as an unknown one.
    if !cx.catalog.policy().admits(cx.caller(), Kind::Tool, name) {
        audit.deny();
        return Err(unknown());
    }
    let tool = cx.catalog.tool(name).ok_or_else(unknown)?;
    static NO_ARGUMENTS: std::sync::LazyLock<Value> =
        std::sync::LazyLock::new(|| Value::Object(Map::new()));
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => &*NO_ARGUMENTS,
        Some(object @ Value::Object(_)) => object,
        Some(_) => {
            return Err(RpcError::invalid_params("\"arguments\" must be an object"));
        }
    };
    // Registered with the way the watchdog answers in the tool's place past its deadline.
    let running = begin(id, tool.shared_name(), cx.outlet.answerer(), cx);
    let call = call_for(&running, params, cx);
    let outcome = tool.invoke(arguments, &call);
    let overran = std::time::Instant::now() >= running.call.deadline;
    // Whoever settles the answer first gives it: the watchdog may have answered already.
    let ours = running.call.answerer.as_ref().is_none_or(|a| a.settle());
    let cancelled = running.call.cancelled.reason();
    drop(running);
    if !ours {
        log::debug!("tool {name} returned after the watchdog answered for it: result dropped");
        return Err(RpcError::new(CANCELLED, "answered by the watchdog already"));
    }
    if cancelled == Some(call::Cancelled::ByClient) {
        return Err(RpcError::new(
            CANCELLED,
            "the client cancelled this request",
        ));
    }
    if overran || cancelled == Some(call::Cancelled::TimedOut) {
        log::warn!(
            "tool {name} ran past TOOL_TIMEOUT_SECS ({} s) sub={}; answered with an error",
            cx.tool_timeout.as_secs(),
            cx.caller().subject()
        );
        return Ok(ToolResult::error(watchdog::timed_out_text(
            name,
            cx.tool_timeout,
        )));
    }
    Ok(outcome)
}

/// Registers the request `id` as running `what` on its session, so that the client's
/// `notifications/cancelled` and the session's end reach its handler, and the watchdog
/// sees it (answering in its place through `answerer` past its deadline, if given).
fn begin<'s>(
    id: &RawValue,
    what: std::sync::Arc<str>,
    answerer: Option<std::sync::Arc<dyn call::Answerer>>,
    cx: &Context<'s>,
) -> session::Running<'s> {
    let mut entry = session::RunningCall::new(cx.tool_timeout, what, answerer);
    entry.stateless = cx.state().stateless;
    // The id as the client would name it in `notifications/cancelled`, as normalized
    // JSON; an integer or a string without escapes is already in that form.
    let raw = id.get();
    if raw.contains(['\\', ' ', '\t', '\n', '\r']) {
        let key =
            serde_json::from_str::<Value>(raw).map_or_else(|_| raw.to_string(), |v| v.to_string());
        cx.session.begin(&key, entry)
    } else {
        cx.session.begin(raw, entry)
    }
}

/// The `Call` a handler gets for the running request: its caller, its progress token (from
/// `params._meta`), the session's log level, its cancellation and deadline.
fn call_for<'c>(
    running: &'c session::Running<'_>,
    params: &'c Map<String, Value>,
    cx: &'c Context<'_>,
) -> Call<'c> {
    let progress_token = match params.get("_meta") {
        Some(Value::Object(meta)) => meta
            .get("progressToken")
            .filter(|t| t.is_string() || t.is_i64() || t.is_u64()),
        _ => None,
    };
    Call {
        session: cx.session,
        caller: cx.caller(),
        progress_token,
        outlet: cx.outlet,
        cancelled: &running.call.cancelled,
        client_gone: cx.client_gone,
        log_level: cx.state().log_level,
        deadline: running.call.deadline,
    }
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

    fn builtins() -> Catalog {
        crate::builtin::add(crate::Server::builder())
            .catalog()
            .clone()
    }

    fn panics() -> Catalog {
        let mut catalog = Catalog::new();
        catalog.tools.push(crate::Tool::new(
            "boom",
            "panics",
            json!({"type": "object"}),
            |_: crate::NoArgs, _| -> Result<String, HandlerError> { panic!("a tool bug") },
        ));
        catalog
    }

    struct Client {
        session: Session,
        catalog: Catalog,
        versions: &'static [Version],
        adopt: bool,
    }

    impl Client {
        fn new() -> Client {
            Client::as_caller(Caller::Anonymous)
        }

        fn as_caller(caller: Caller) -> Client {
            Client {
                session: Session::detached(caller),
                catalog: builtins(),
                versions: &Version::SUPPORTED,
                adopt: false,
            }
        }

        fn initialized(version: &str) -> Client {
            let c = Client::new();
            c.initialize(version);
            c
        }

        fn initialize(&self, version: &str) {
            let reply = self.call(
                "initialize",
                json!({"protocolVersion": version,
                "capabilities": {"roots": {}}, "clientInfo": {"name": "t", "version": "0"}}),
            );
            assert_eq!(reply["result"]["protocolVersion"], version);
            assert_eq!(
                self.reply_to(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})),
                None
            );
        }

        /// The reply to `body`, parsed; `None` when there is none.
        fn reply_to(&self, body: Value) -> Option<Value> {
            let text = body.to_string();
            let parsed = rpc::parse(text.as_bytes()).unwrap();
            let cx = Context {
                bearer: None,
                session: &self.session,
                catalog: &self.catalog,
                outlet: &call::Nowhere,
                client_gone: &|| false,
                tool_timeout: std::time::Duration::from_secs(60),
                versions: self.versions,
                adopt_uninitialized: self.adopt,
            };
            handle(parsed, &cx).map(|reply| serde_json::from_str(&reply.to_line()).unwrap())
        }

        fn version(&self) -> Option<Version> {
            self.session.state().version
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
        for version in Version::SUPPORTED {
            let reply =
                Client::new().call("initialize", json!({"protocolVersion": version.as_str()}));
            let result = &reply["result"];
            assert_eq!(result["protocolVersion"], version.as_str());
            assert_eq!(result["serverInfo"]["name"], "mcp-warden");
            for capability in ["tools", "resources", "prompts", "logging"] {
                assert!(result["capabilities"][capability].is_object(), "{result}");
            }
        }
        let reply = Client::new().call("initialize", json!({"protocolVersion": "2099-01-01"}));
        assert_eq!(reply["result"]["protocolVersion"], Version::LATEST.as_str());
        // A transport that does not serve a revision offers the latest instead.
        let mut streamable = Client::new();
        streamable.versions = &Version::STREAMABLE;
        let reply = streamable.call("initialize", json!({"protocolVersion": "2024-11-05"}));
        assert_eq!(reply["result"]["protocolVersion"], Version::LATEST.as_str());
    }

    #[test]
    fn initialize_needs_a_string_version_and_happens_once() {
        assert_eq!(
            code(&Client::new().call("initialize", json!({}))),
            rpc::INVALID_PARAMS
        );
        assert_eq!(
            code(&Client::new().call("initialize", json!({"protocolVersion": 2025}))),
            rpc::INVALID_PARAMS
        );
        let s = Client::initialized("2025-06-18");
        assert_eq!(
            code(&s.call("initialize", json!({"protocolVersion": "2025-06-18"}))),
            rpc::INVALID_REQUEST
        );
    }

    #[test]
    fn before_initialize_only_ping_is_served_unless_the_transport_adopts_the_session() {
        let s = Client::new();
        assert_eq!(s.call("ping", json!({}))["result"], json!({}));
        assert_eq!(code(&s.call("tools/list", json!({}))), rpc::INVALID_REQUEST);
        let mut adopted = Client::new();
        adopted.adopt = true;
        assert_eq!(adopted.call("ping", json!({}))["result"], json!({}));
        assert!(adopted.version().is_none(), "ping adopts nothing");
        let reply = adopted.call(
            "tools/call",
            json!({"name": ECHO, "arguments": {"message": "m"}}),
        );
        assert_eq!(reply["result"]["content"][0]["text"], "Tool echo: m");
        assert_eq!(adopted.version(), Some(Version::ADOPTED));
        assert!(adopted.session.state().client_capabilities.is_empty());
    }

    #[test]
    fn tools_are_listed_and_called_and_a_failing_tool_is_a_result() {
        let s = Client::initialized("2025-11-25");
        let tools = s.call("tools/list", json!({}))["result"]["tools"].clone();
        let names: Vec<&str> = tools
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["echo", "whoami", "ask"]);
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
        let s = Client::as_caller(Caller::User(Identity {
            issuer: Some("Joken".into()),
            subject: "alice".into(),
            email: Some("alice@example.com".into()),
            name: None,
            groups: vec!["sre".into()],
        }));
        s.initialize("2025-06-18");
        let who = s.call("tools/call", json!({"name": "whoami"}));
        let text = who["result"]["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("alice") && text.contains("sre"), "{text}");
    }

    #[test]
    fn a_panicking_tool_is_an_internal_error_and_the_session_carries_on() {
        let mut s = Client::initialized("2025-06-18");
        s.catalog = panics();
        assert_eq!(
            code(&s.call("tools/call", json!({"name": "boom"}))),
            rpc::INTERNAL_ERROR
        );
        assert_eq!(s.call("ping", json!({}))["result"], json!({}));
    }

    #[test]
    fn resources_and_prompts_answer_and_name_what_is_missing() {
        let s = Client::initialized("2025-06-18");
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
        let s = Client::initialized("2025-06-18");
        assert_eq!(
            s.call("logging/setLevel", json!({"level": "warning"}))["result"],
            json!({})
        );
        assert_eq!(s.session.state().log_level, Some("warning"));
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
    fn a_clients_answer_is_routed_to_the_request_waiting_for_it() {
        let c = Client::initialized("2025-06-18");
        let (id, rx) = c.session.expect_reply();
        let answer = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"roots":[]}}}}"#);
        assert_eq!(c.reply_to(serde_json::from_str(&answer).unwrap()), None);
        assert_eq!(rx.try_recv().unwrap(), Ok(json!({"roots": []})));
        let (id, rx) = c.session.expect_reply();
        let refusal = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32601,"message":"no sampling"}}}}"#
        );
        assert_eq!(c.reply_to(serde_json::from_str(&refusal).unwrap()), None);
        let error = rx.try_recv().unwrap().unwrap_err();
        assert_eq!(
            (error.code, error.message.as_str()),
            (-32601, "no sampling")
        );
    }

    #[test]
    fn notifications_and_responses_get_no_reply() {
        let s = Client::initialized("2025-06-18");
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
        let s = Client::new();
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
        let s = Client::initialized("2025-03-26");
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
            let other = Client::initialized(version);
            let reply = other.reply_to(json!([ping(1)])).unwrap();
            assert_eq!(code(&reply), rpc::INVALID_REQUEST, "{version}");
        }
    }
}
