//! MCP 2026-07-28 ("modern"): no handshake and no session. Every request carries its
//! revision and the client's capabilities in `params._meta`, its transport headers repeat
//! the method (and the tool, prompt or resource it names), and every result says
//! `resultType`. This file checks a modern request and turns it into a call of the one
//! dispatcher (`mcp::handle`) on a session that lives for that request only, then dresses
//! the result the modern way (`resultType`, the server's identity in `_meta`, caching hints
//! on lists and reads). `server/discover` is answered here.
//!
//! A tool that asks its client something is answered with `input_required` (`mrtr.rs`).
//! `subscriptions/listen` is checked here and acknowledged in the client's terms
//! (`Listen`); the transport holds its stream on a registered session that only the
//! catalog's notifications reach (`Listening`).

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::identity::Caller;
use crate::mcp::call::LOG_LEVELS;
use crate::mcp::catalog::Catalog;
use crate::mcp::rpc::{self, RpcError};
use crate::mcp::session::Session;
use crate::mcp::{self, Answer, Context, Reply, Version, mrtr};

/// The revision this file serves.
pub const VERSION: &str = "2026-07-28";

/// `_meta` keys of a modern request and result.
pub const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub(crate) const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
const META_SUBSCRIPTION: &str = "io.modelcontextprotocol/subscriptionId";

/// A transport header does not match the body (or is missing).
pub const HEADER_MISMATCH: i64 = -32020;
/// The request needs a capability the client did not declare.
pub const MISSING_CAPABILITY: i64 = -32021;
/// The requested revision is not served.
pub const UNSUPPORTED_VERSION: i64 = -32022;

/// Methods a modern request may name (everything else, the removed `initialize`, `ping`,
/// `logging/setLevel` and `resources/(un)subscribe` included, is `-32601` with `404`).
const METHODS: &[&str] = &[
    "server/discover",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "completion/complete",
    "subscriptions/listen",
];

/// The transport headers of a modern request, as sent (the transport reads them).
#[derive(Default)]
pub struct Headers<'a> {
    /// `MCP-Protocol-Version`.
    pub version: Option<&'a str>,
    /// `Mcp-Method`.
    pub method: Option<&'a str>,
    /// `Mcp-Name`.
    pub name: Option<&'a str>,
    /// Any header by its lower-case name (for `Mcp-Param-*`).
    pub other: Option<&'a HeaderLookup<'a>>,
}

/// A request's header by its lower-case name.
pub type HeaderLookup<'a> = dyn Fn(&str) -> Option<&'a str> + 'a;

/// Whether a POST without `Mcp-Session-Id` is modern: its body's `params._meta` names a
/// revision, or its `MCP-Protocol-Version` header names one that is not of 2025 or before.
/// Everything else (an `initialize`, a 2025 client's request) keeps the 2025 rules.
pub fn is_modern(message: &RawValue, header_version: Option<&str>) -> bool {
    if let Some(v) = header_version.map(str::trim)
        && !v.is_empty()
        && Version::parse(v).is_none()
    {
        return true;
    }
    // Cheap first: most 2025 bodies never mention the key.
    message.get().contains(META_VERSION)
        && serde_json::from_str::<Value>(message.get())
            .ok()
            .and_then(|m| m.pointer("/params/_meta").cloned())
            .is_some_and(|meta| meta.get(META_VERSION).is_some())
}

/// Everything a modern request is served with besides its body.
pub struct Served<'a> {
    pub caller: Caller,
    /// Where the request's own session is registered while it is served, for the
    /// watchdog (`TOOL_TIMEOUT_SECS`) to see its call.
    pub sessions: &'a crate::mcp::session::Sessions,
    /// The request's `Authorization` header (see `Context::bearer`).
    pub bearer: Option<&'a str>,
    pub catalog: &'a Catalog,
    pub outlet: &'a dyn mcp::call::Outlet,
    pub client_gone: &'a dyn Fn() -> bool,
    pub tool_timeout: std::time::Duration,
    /// Whether results may be cached for everyone (`cacheScope: "public"`): only when no
    /// result depends on who asks, i.e. with authentication off.
    pub public: bool,
}

/// What a modern message comes to: a reply, or a subscription stream for the transport to
/// hold.
pub enum Outcome {
    /// The reply line (`None` for a notification) and the HTTP status to send it with.
    Reply(Option<String>, u16),
    /// A checked `subscriptions/listen`.
    Listen(Listen),
}

/// Serves one modern message.
pub fn serve(message: &RawValue, headers: &Headers<'_>, served: &Served<'_>) -> Outcome {
    let reply = |line: String, status: u16| Outcome::Reply(Some(line), status);
    let value: Value = match serde_json::from_str(message.get()) {
        Ok(v) => v,
        Err(e) => return reply(mcp::parse_error(&e).to_line(), 400),
    };
    let id = value
        .get("id")
        .filter(|id| id.is_string() || id.is_number())
        .cloned();
    let Some(method) = value.get("method").and_then(Value::as_str) else {
        let error = RpcError::new(rpc::INVALID_REQUEST, "a request needs a string \"method\"");
        return reply(error_line(id.as_ref(), &error), 400);
    };
    let Some(id) = id else {
        // A notification (`notifications/cancelled` of a request still streaming, …): there
        // is nothing to cancel across requests in a stateless revision; accepted.
        return Outcome::Reply(None, 202);
    };
    let no_params = Map::new();
    let params = match value.get("params") {
        None | Some(Value::Null) => &no_params,
        Some(Value::Object(p)) => p,
        Some(_) => {
            let error = RpcError::invalid_params("\"params\" must be an object");
            return reply(error_line(Some(&id), &error), 400);
        }
    };
    match check(method, params, headers)
        .and_then(|()| check_params(method, params, headers, served))
    {
        Ok(()) => {}
        Err((status, error)) => return reply(error_line(Some(&id), &error), status),
    }
    if !METHODS.contains(&method) {
        let error = RpcError::new(
            rpc::METHOD_NOT_FOUND,
            format!("method not found in {VERSION}: {method}"),
        );
        return reply(error_line(Some(&id), &error), 404);
    }
    if method == "subscriptions/listen" {
        return match Listen::read(id.clone(), params, served.catalog, &served.caller) {
            Ok(listen) => Outcome::Listen(listen),
            Err(error) => reply(error_line(Some(&id), &error), 200),
        };
    }
    // Behind the gate, discovery is the upstream's (through the dispatcher).
    let result = if method == "server/discover" && served.catalog.upstream.is_none() {
        Ok(Some(discover(served.catalog)))
    } else {
        dispatch(&id, method, params, served)
    };
    match result {
        Ok(None) => Outcome::Reply(None, 202),
        Ok(Some(mut result)) => {
            dress(&mut result, method, served);
            // Written straight from the result, not copied into one more tree first.
            let line = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#);
            reply(line, 200)
        }
        Err(error) => {
            let status = match error.code {
                rpc::METHOD_NOT_FOUND => 404,
                MISSING_CAPABILITY => 400,
                _ => 200,
            };
            reply(error_line(Some(&id), &error), status)
        }
    }
}

/// The checks every modern request passes before dispatch: its `_meta`, the revision, and
/// the headers that repeat the body. The error comes with its HTTP status (`400`).
fn check(
    method: &str,
    params: &Map<String, Value>,
    headers: &Headers<'_>,
) -> Result<(), (u16, RpcError)> {
    let bad = |code: i64, message: String| Err((400, RpcError::new(code, message)));
    let Some(Value::Object(meta)) = params.get("_meta") else {
        return bad(
            rpc::INVALID_PARAMS,
            format!(
                "a {VERSION} request carries params._meta with \"{META_VERSION}\" and \"{META_CAPABILITIES}\""
            ),
        );
    };
    let Some(Value::String(version)) = meta.get(META_VERSION) else {
        return bad(
            rpc::INVALID_PARAMS,
            format!("params._meta[\"{META_VERSION}\"] (a string) is missing"),
        );
    };
    if !matches!(meta.get(META_CAPABILITIES), Some(Value::Object(_))) {
        return bad(
            rpc::INVALID_PARAMS,
            format!("params._meta[\"{META_CAPABILITIES}\"] (an object) is missing"),
        );
    }
    match headers.version.map(str::trim) {
        Some(v) if v == version => {}
        Some(v) => {
            return bad(
                HEADER_MISMATCH,
                format!(
                    "the MCP-Protocol-Version header says {v:?}, params._meta says {version:?}"
                ),
            );
        }
        None => {
            return bad(
                HEADER_MISMATCH,
                "the MCP-Protocol-Version header is missing".into(),
            );
        }
    }
    if version != VERSION {
        let error = RpcError::new(
            UNSUPPORTED_VERSION,
            format!(
                "protocol version {version:?} is not served here; use one of the supported versions"
            ),
        )
        .with_data(json!({ "supported": supported_versions(), "requested": version }));
        return Err((400, error));
    }
    match headers.method.map(str::trim) {
        Some(m) if m == method => {}
        Some(m) => {
            return bad(
                HEADER_MISMATCH,
                format!("the Mcp-Method header says {m:?}, the body says {method:?}"),
            );
        }
        None => return bad(HEADER_MISMATCH, "the Mcp-Method header is missing".into()),
    }
    let named = match method {
        "tools/call" | "prompts/get" => params.get("name").and_then(Value::as_str),
        "resources/read" => params.get("uri").and_then(Value::as_str),
        _ => return Ok(()),
    };
    let Some(named) = named else {
        return Ok(()); // the method's own check names the missing parameter
    };
    match headers.name.map(|n| decode_header(n.trim())) {
        Some(Some(n)) if n == named => Ok(()),
        Some(Some(n)) => bad(
            HEADER_MISMATCH,
            format!("the Mcp-Name header says {n:?}, the body names {named:?}"),
        ),
        Some(None) => bad(
            HEADER_MISMATCH,
            "the Mcp-Name header is not valid (=?base64?…?= that does not decode to UTF-8)".into(),
        ),
        None => bad(
            HEADER_MISMATCH,
            format!("the Mcp-Name header is missing; {method} needs it"),
        ),
    }
}

/// The `Mcp-Param-{Name}` headers of a `tools/call` whose tool designates them (SEP-2243:
/// a property of its `inputSchema` with `"x-mcp-header": "Name"`): each argument given
/// (not null) must be repeated in its header, `=?base64?…?=` decoded first, strings as
/// they are and other values as their JSON text; missing, different or undecodable →
/// `400`, `-32020`. A tool the caller may not use is left to the unknown-name answer.
fn check_params(
    method: &str,
    params: &Map<String, Value>,
    headers: &Headers<'_>,
    served: &Served<'_>,
) -> Result<(), (u16, RpcError)> {
    let (Some(other), "tools/call") = (headers.other, method) else {
        return Ok(());
    };
    let Some(name) = params.get("name").and_then(Value::as_str) else {
        return Ok(());
    };
    let catalog = served.catalog;
    let Some(tool) = catalog
        .tool(name)
        .filter(|_| catalog.policy().allows_tool(&served.caller, name))
    else {
        return Ok(());
    };
    let Some(Value::Object(properties)) = tool.input_schema().get("properties") else {
        return Ok(());
    };
    let arguments = params.get("arguments").and_then(Value::as_object);
    let bad = |message: String| Err((400, RpcError::new(HEADER_MISMATCH, message)));
    for (property, spec) in properties {
        let Some(Value::String(header)) = spec.get("x-mcp-header") else {
            continue;
        };
        let value = match arguments.and_then(|a| a.get(property)) {
            None | Some(Value::Null) => continue,
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
        };
        let Some(raw) = other(&format!("mcp-param-{}", header.to_ascii_lowercase())) else {
            return bad(format!(
                "the Mcp-Param-{header} header is missing; arguments.{property} is in the body"
            ));
        };
        match decode_header(raw.trim()) {
            None => {
                return bad(format!(
                    "the Mcp-Param-{header} header is not valid =?base64?…?= text"
                ));
            }
            Some(sent) if sent != value => {
                return bad(format!(
                    "the Mcp-Param-{header} header does not match arguments.{property}"
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// A header value as meant: `=?base64?…?=` decoded, anything else as it is.
fn decode_header(value: &str) -> Option<String> {
    use base64::Engine;
    match value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok()),
        None => Some(value.to_string()),
    }
}

/// Every revision served, both eras, newest first.
pub(crate) fn supported_versions() -> Vec<&'static str> {
    std::iter::once(VERSION)
        .chain(Version::SUPPORTED.iter().map(|v| v.as_str()))
        .collect()
}

/// `server/discover`. The lists may change while the server runs (`Handle::update`) and
/// resources may be watched: both through `subscriptions/listen`.
fn discover(catalog: &Catalog) -> Value {
    let mut result = json!({
        "supportedVersions": supported_versions(),
        "capabilities": {
            "tools": { "listChanged": true },
            "prompts": { "listChanged": true },
            "resources": { "listChanged": true, "subscribe": true },
            "completions": {},
            "logging": {},
        },
    });
    if let Some(instructions) = &catalog.info.instructions {
        result["instructions"] = json!(instructions);
    }
    result
}

/// Runs the request through the one dispatcher, on a session that lives for this request
/// only: initialized, with the client's capabilities and log level from `_meta`.
/// `id`, `method` and `params` are what `serve` read of the request (it is not parsed again).
fn dispatch(
    id: &Value,
    method: &str,
    params: &Map<String, Value>,
    served: &Served<'_>,
) -> Result<Option<Value>, RpcError> {
    let session = served.sessions.passing(served.caller.clone());
    let meta = params.get("_meta").and_then(Value::as_object);
    let binding = mrtr::Binding {
        subject: served.caller.subject(),
        method,
        name: params
            .get("name")
            .or_else(|| params.get("uri"))
            .and_then(Value::as_str)
            .unwrap_or_default(),
        arguments: params.get("arguments").unwrap_or(&Value::Null),
    };
    // Behind the gate, a requestState and inputResponses are the upstream's business: they
    // travel in the params as they are.
    let ours = served.catalog.upstream.is_none();
    let mut answers = match params.get("requestState").filter(|_| ours) {
        None | Some(Value::Null) => Map::new(),
        Some(Value::String(state)) => mrtr::open(state, &binding)
            .map_err(|why| RpcError::invalid_params(format!("requestState refused: {why}")))?,
        Some(_) => return Err(RpcError::invalid_params("requestState must be a string")),
    };
    match params.get("inputResponses").filter(|_| ours) {
        None | Some(Value::Null) => {}
        Some(Value::Object(responses)) => {
            // Each answer is the client's result for one question: an object.
            if let Some((key, _)) = responses.iter().find(|(_, v)| !v.is_object()) {
                return Err(RpcError::invalid_params(format!(
                    "inputResponses[{key:?}] must be an object: the client's result for that request"
                )));
            }
            answers.extend(responses.clone());
        }
        Some(_) => return Err(RpcError::invalid_params("inputResponses must be an object")),
    }
    let resumed = ours && matches!(params.get("requestState"), Some(Value::String(_)));
    {
        let mut state = session.state();
        state.rounds.answers = answers;
        state.rounds.resumed = resumed;
        state.version = Some(Version::LATEST);
        state.initialized = true;
        state.stateless = true;
        if let Some(Value::Object(caps)) = meta.and_then(|m| m.get(META_CAPABILITIES)) {
            state.client_capabilities = caps.clone();
        }
        state.log_level = meta
            .and_then(|m| m.get(META_LOG_LEVEL))
            .and_then(Value::as_str)
            .and_then(|level| LOG_LEVELS.iter().copied().find(|l| *l == level));
    }
    let cx = Context {
        bearer: served.bearer,
        session: &session,
        catalog: served.catalog,
        outlet: served.outlet,
        client_gone: served.client_gone,
        tool_timeout: served.tool_timeout,
        versions: &Version::STREAMABLE,
        adopt_uninitialized: false,
    };
    // The request as `serve` read it: not parsed again.
    let id = serde_json::value::to_raw_value(id)
        .map_err(|e| RpcError::new(rpc::INTERNAL_ERROR, e.to_string()))?;
    let reply = mcp::answer(&id, method, params, &cx).map(Reply::One);
    let rounds = std::mem::take(&mut session.state().rounds);
    if let Some(capability) = rounds.missing {
        return Err(RpcError::new(
            MISSING_CAPABILITY,
            format!("this request needs the client capability \"{capability}\", which the request's clientCapabilities do not declare"),
        )
        .with_data(json!({ "requiredCapabilities": { capability: {} } })));
    }
    if !rounds.asked.is_empty() {
        // The tool's own answer (an error from the question it could not ask yet) is not
        // sent: the client is asked instead, and retries.
        let mut known = rounds.answers;
        known.retain(|key, _| !rounds.asked.contains_key(key));
        return Ok(Some(json!({
            "resultType": "input_required",
            "inputRequests": rounds.asked,
            "requestState": mrtr::seal(&known, &binding),
        })));
    }
    let Some(Reply::One(outcome)) = reply else {
        return Ok(None);
    };
    match outcome.result {
        Ok(Answer::Json(value)) => Ok(Some(value)),
        Ok(Answer::Tool(result)) => serde_json::to_value(result)
            .map(Some)
            .map_err(|e| RpcError::new(rpc::INTERNAL_ERROR, e.to_string())),
        // A missing resource is invalid params in this revision (its URI in `data`).
        Err(e) if e.code == rpc::RESOURCE_NOT_FOUND => Err(RpcError {
            code: rpc::INVALID_PARAMS,
            ..e
        }),
        Err(e) => Err(e),
    }
}

/// The modern dress of a complete result: `resultType`, the server's identity, and caching
/// hints where the revision requires them.
fn dress(result: &mut Value, method: &str, served: &Served<'_>) {
    let Value::Object(fields) = result else {
        return;
    };
    let complete = !fields.contains_key("resultType");
    if complete {
        fields.insert("resultType".into(), json!("complete"));
    }
    let info = &served.catalog.info;
    let meta = fields
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        // An upstream's discovery names the upstream (behind the gate).
        meta.entry(META_SERVER_INFO)
            .or_insert_with(|| json!({ "name": info.name, "version": info.version }));
    }
    let cacheable = matches!(
        method,
        "server/discover"
            | "tools/list"
            | "prompts/list"
            | "resources/list"
            | "resources/templates/list"
            | "resources/read"
    );
    if cacheable && complete {
        // The catalog can change while the server runs, and a reader may answer each
        // caller differently: nothing is promised to stay fresh, and nothing that may
        // depend on the caller is shared.
        // With per-tool rules, each caller's lists are its own.
        let public = served.public
            && method != "resources/read"
            && (method == "server/discover" || served.catalog.policy().is_empty());
        fields.insert("ttlMs".into(), json!(0));
        fields.insert(
            "cacheScope".into(),
            json!(if public { "public" } else { "private" }),
        );
    }
}

/// A checked `subscriptions/listen`: the subscription's id (the request's) and what the
/// server agreed to send on it.
pub struct Listen {
    pub listening: Listening,
    /// The resources whose `notifications/resources/updated` it carries.
    pub uris: std::collections::HashSet<String>,
}

/// What a listening session (a `subscriptions/listen` stream's) is sent: the list changes
/// it opted into, each notification tagged with its subscription's id.
#[derive(Debug, Clone)]
pub struct Listening {
    id: Value,
    tools: bool,
    prompts: bool,
    resources: bool,
}

impl Listening {
    /// Whether it opted into `notifications/{list}/list_changed`.
    pub fn wants(&self, list: &str) -> bool {
        match list {
            "tools" => self.tools,
            "prompts" => self.prompts,
            "resources" => self.resources,
            _ => false,
        }
    }

    /// `line` (a notification) with `params._meta` naming this subscription.
    pub fn tag(&self, line: &str) -> String {
        let Ok(mut message) = serde_json::from_str::<Value>(line) else {
            return line.to_string();
        };
        if !message.get("params").is_some_and(Value::is_object) {
            message["params"] = json!({});
        }
        let params = &mut message["params"];
        if !params.get("_meta").is_some_and(Value::is_object) {
            params["_meta"] = json!({});
        }
        params["_meta"][META_SUBSCRIPTION] = self.id.clone();
        message.to_string()
    }

    /// The answer that ends the subscription from the server's side (shutdown, the
    /// token's expiry): an empty result naming it.
    pub fn ended(&self, catalog: &Catalog) -> String {
        let info = &catalog.info;
        json!({ "jsonrpc": "2.0", "id": self.id, "result": {
            "resultType": "complete",
            "_meta": {
                META_SUBSCRIPTION: self.id,
                META_SERVER_INFO: { "name": info.name, "version": info.version },
            },
        }})
        .to_string()
    }
}

impl Listen {
    /// Reads `params.notifications`; the server honours every list kind and the resource
    /// URIs the catalog has (others are left out of the acknowledgement).
    fn read(
        id: Value,
        params: &Map<String, Value>,
        catalog: &Catalog,
        caller: &Caller,
    ) -> Result<Listen, RpcError> {
        let Some(Value::Object(asked)) = params.get("notifications") else {
            return Err(RpcError::invalid_params(
                "subscriptions/listen needs params.notifications: an object saying which notifications to send",
            ));
        };
        let flag = |name: &str| match asked.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(RpcError::invalid_params(format!(
                "notifications.{name} must be a boolean"
            ))),
        };
        let listening = Listening {
            id,
            tools: flag("toolsListChanged")?,
            prompts: flag("promptsListChanged")?,
            resources: flag("resourcesListChanged")?,
        };
        let uris = match asked.get("resourceSubscriptions") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(uris)) => uris
                .iter()
                .map(|u| u.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    RpcError::invalid_params(
                        "notifications.resourceSubscriptions must be an array of resource URIs",
                    )
                })?,
            Some(_) => {
                return Err(RpcError::invalid_params(
                    "notifications.resourceSubscriptions must be an array of resource URIs",
                ));
            }
        };
        // A resource the caller may not read is left out as one the catalog lacks.
        let uris = uris
            .into_iter()
            .filter(|u| catalog.policy().allows_resource(caller, u) && catalog.knows(u))
            .collect();
        Ok(Listen { listening, uris })
    }

    /// `notifications/subscriptions/acknowledged`: the first message of the stream, with
    /// what the server agreed to send.
    pub fn acknowledgement(&self) -> String {
        let l = &self.listening;
        let mut honoured = Map::new();
        for (name, on) in [
            ("toolsListChanged", l.tools),
            ("promptsListChanged", l.prompts),
            ("resourcesListChanged", l.resources),
        ] {
            if on {
                honoured.insert(name.into(), json!(true));
            }
        }
        if !self.uris.is_empty() {
            let mut uris: Vec<&String> = self.uris.iter().collect();
            uris.sort();
            honoured.insert("resourceSubscriptions".into(), json!(uris));
        }
        let line = json!({
            "jsonrpc": "2.0",
            "method": "notifications/subscriptions/acknowledged",
            "params": { "notifications": honoured },
        })
        .to_string();
        l.tag(&line)
    }

    /// Makes `session` (new, registered, for this subscription only) a listening one.
    pub fn register(self, session: &Session) -> Listening {
        let mut state = session.state();
        state.version = Some(Version::LATEST);
        state.initialized = true;
        state.stateless = true;
        state.subscriptions = self.uris;
        state.listening = Some(self.listening.clone());
        self.listening
    }
}

fn error_line(id: Option<&Value>, error: &RpcError) -> String {
    json!({ "jsonrpc": "2.0", "id": id, "error": error }).to_string()
}
