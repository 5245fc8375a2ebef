//! The gate in front of another MCP server: instead of a catalog of its own, the server
//! relays each 2025 session to an upstream MCP server, run over stdio (one child process
//! per session, `child.rs`, or one shared) or reached over Streamable HTTP (`http.rs`),
//! after the same authentication as ever, and under the same per-tool rules (`guarded`).
//!
//! The relay sits in the one dispatcher (`mcp::request` and friends hand every message of
//! a session to `Gateway`), so every transport (HTTP+SSE, Streamable HTTP) serves it the
//! same way:
//! - the client's `initialize` starts the session's child (lazily: a session that never
//!   initializes starts none) and is forwarded as it is; the child's answer is the
//!   client's, and the session records the version and capabilities as usual. A legacy
//!   session used without `initialize` is initialized with the child by the gateway;
//! - each request is written to the child with the client's own id (one client per child:
//!   ids cannot meet) and its thread waits for the child's response, passing on what the
//!   child sends meanwhile (progress, log messages, and its own requests such as
//!   `elicitation/create`) through the request's outlet, as a built-in tool's `Call`
//!   would: on the POST's event stream on `/mcp`, on the session's stream on `/sse`. What
//!   the child sends outside any request goes to the session's stream;
//! - the client's notifications and its answers to the child's requests are written to
//!   the child as they are; a `notifications/cancelled` also stops the wait for that
//!   request (no answer is sent, as for a built-in tool);
//! - a request the child does not answer within `TOOL_TIMEOUT_SECS` is cancelled at the
//!   child and answered with an error (a `tools/call`: with an error result);
//! - a request waiting for the child is registered among its session's running requests:
//!   the session's end (its SSE stream closing, `DELETE`, expiry) cancels it at the child
//!   and ends the wait, so that the child ends with its session, not when the request
//!   would have timed out; on the legacy transport the connection the request came on is
//!   freed once it has waited `LONG_CALL`, so that the client's next messages on it (a
//!   `notifications/cancelled`) are not held up behind the child's answer;
//! - the child ends with its session (SIGTERM, then SIGKILL after `SHUTDOWN_GRACE_SECS`),
//!   and a child that exits ends its session, its waiting requests answered with an
//!   error naming its exit status.
//!
//! The child's environment is only the allow-listed variables of this process
//! (`Upstream::env`) and the verified caller (`MCP_USER_SUB`, `MCP_USER_EMAIL`,
//! `MCP_USER_NAME`, `MCP_USER_GROUPS` comma-joined; none while authentication is off).
//!
//! Shared mode (`Upstream::shared`, `UPSTREAM_SHARED`): one child for every session,
//! started at first use (again after it exits) and initialized by the gateway itself;
//! each client's `initialize` is answered with the child's answer. Requests go to it under
//! ids and progress tokens of the gateway's (two clients' id `1` never meet), the client's
//! own put back on the way out. The child's own requests are refused (no client can be
//! told apart to answer them), its list changes reach every session. It serves stateless
//! 2026-07-28 requests too; without it `/mcp` answers those as a 2025-only server does, so
//! dual-era clients fall back to `initialize`.
//!
//! Over HTTP (`Upstream::url`, `UPSTREAM_URL`): each client session is a session of its
//! own at the upstream (`http.rs`); each request is sent from a thread of its own while
//! the client's thread relays what arrives and watches for a cancellation or the
//! session's end, as for a child (`http_call`). Stateless 2026-07-28 requests are
//! forwarded as they are.

pub mod child;
pub mod http;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::identity::Caller;
use crate::mcp::rpc::{self, RpcError};
use crate::mcp::session::{LONG_CALL, RunningCall, Sessions};
use crate::mcp::{Answer, CANCELLED, Context, Version};
use crate::policy::Kind;
use child::{Child, Incoming, Spawn};

/// How often a waiting request looks at its deadline and its client.
const CHECK: Duration = Duration::from_millis(100);

/// An MCP server to put behind the gate, run over stdio.
#[derive(Clone, Debug)]
pub struct Upstream {
    argv: Vec<String>,
    env: Vec<String>,
    grace: Duration,
    shared: bool,
    /// Over Streamable HTTP instead (`argv` is then empty).
    url: Option<String>,
    identity_headers: bool,
    forward_token: bool,
}

impl Upstream {
    /// The command and its arguments (run directly, never through a shell).
    pub fn command<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Upstream {
        Upstream {
            argv: argv.into_iter().map(Into::into).collect(),
            env: vec!["PATH".into(), "HOME".into()],
            grace: Duration::from_secs(5),
            shared: false,
            url: None,
            identity_headers: false,
            forward_token: false,
        }
    }

    /// An upstream MCP server over Streamable HTTP at `url` (`http(s)://host/mcp`): each
    /// 2025 session is a session of its own there, and stateless 2026-07-28 requests are
    /// forwarded as they are.
    pub fn url(url: impl Into<String>) -> Upstream {
        Upstream {
            url: Some(url.into()),
            ..Upstream::command(Vec::<String>::new())
        }
    }

    /// Over HTTP: send the verified caller as `X-MCP-User-Sub`, `X-MCP-User-Email` and
    /// `X-MCP-User-Groups` (`UPSTREAM_IDENTITY_HEADERS`).
    pub fn identity_headers(mut self, yes: bool) -> Upstream {
        self.identity_headers = yes;
        self
    }

    /// Over HTTP: pass the client's own `Authorization` header on to the upstream
    /// (`UPSTREAM_FORWARD_TOKEN`), for an upstream that checks the same tokens itself.
    pub fn forward_token(mut self, yes: bool) -> Upstream {
        self.forward_token = yes;
        self
    }

    /// One child for every session instead of one each (`UPSTREAM_SHARED`), for servers
    /// that are expensive to start; it also serves stateless 2026-07-28 requests. The
    /// child gets no caller in its environment, and no requests of its own (sampling,
    /// elicitation, roots) are relayed: with everyone's calls going to one process, a
    /// question could not be told apart from another user's.
    pub fn shared(mut self, shared: bool) -> Upstream {
        self.shared = shared;
        self
    }

    /// The names of this process's environment variables the child gets (default `PATH`
    /// and `HOME`); nothing else is passed on.
    pub fn env<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Upstream {
        self.env = names.into_iter().map(Into::into).collect();
        self
    }

    /// How long a child has between SIGTERM and SIGKILL.
    pub fn grace(mut self, grace: Duration) -> Upstream {
        self.grace = grace;
        self
    }

    pub fn argv(&self) -> &[String] {
        &self.argv
    }
}

/// The relay as the dispatcher reaches it (from the catalog).
pub struct Gateway {
    upstream: Upstream,
    sessions: OnceLock<Weak<Sessions>>,
    /// Children not yet waited for.
    live: Arc<child::Live>,
    /// In shared mode, the one child (started at first use, again after it exits) and its
    /// answer to the gateway's own `initialize`.
    shared: Mutex<Option<Arc<SharedChild>>>,
    /// In shared mode, the ids (and progress tokens) the gateway gives requests.
    next_id: AtomicU64,
    /// Over HTTP: the client to the upstream (made at first use, with `TOOL_TIMEOUT_SECS`).
    http: OnceLock<Arc<http::HttpUpstream>>,
    /// Whether the per-tool rules were checked against the upstream's first full list of
    /// tools, and of prompts (the upstream starts lazily: not at the server's start).
    checked: [std::sync::atomic::AtomicBool; 2],
}

/// The child every session shares.
struct SharedChild {
    child: Arc<Child>,
    /// Its `initialize` result: what each client's `initialize` is answered with.
    hello: Value,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("upstream", &self.upstream.argv)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    pub fn new(upstream: Upstream) -> Gateway {
        Gateway {
            upstream,
            sessions: OnceLock::new(),
            live: Arc::default(),
            shared: Mutex::new(None),
            next_id: AtomicU64::new(1),
            http: OnceLock::new(),
            checked: Default::default(),
        }
    }

    /// Whether stateless 2026-07-28 requests are served (shared mode only: a child per
    /// request would be started and ended for each).
    pub fn serves_stateless(&self) -> bool {
        self.upstream.shared || self.upstream.url.is_some()
    }

    /// Ends the shared child, if any (at shutdown; the sessions' own end with them).
    pub fn stop(&self) {
        lock(&self.shared).take();
    }

    /// Why the gateway cannot serve, if it cannot.
    pub(crate) fn check(&self) -> Result<(), String> {
        match &self.upstream.url {
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                Err(format!("the upstream URL {url:?} is not an http(s) URL"))
            }
            Some(_) => Ok(()),
            None if self.upstream.argv.first().is_none_or(String::is_empty) => {
                Err("the upstream command is empty".into())
            }
            None => Ok(()),
        }
    }

    /// Ties the gateway to the sessions its children serve (once, at start).
    pub(crate) fn serve(&self, sessions: &Arc<Sessions>) {
        let _ = self.sessions.set(Arc::downgrade(sessions));
        if self.upstream.url.is_none() {
            child::reap_orphans_as_init(Arc::clone(&self.live));
        }
    }

    /// Children started and not yet ended and waited for.
    pub fn live_children(&self) -> usize {
        self.live.count()
    }

    /// Waits until every child has been ended and waited for, or `deadline`.
    pub fn wait_children(&self, deadline: Instant) -> bool {
        while self.live_children() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// One request of a session's client.
    pub(crate) fn request(
        &self,
        id: &RawValue,
        method: &str,
        params: &Map<String, Value>,
        cx: &Context<'_>,
    ) -> Result<Answer, RpcError> {
        if self.upstream.url.is_some() {
            return self.http_request(id, method, params, cx);
        }
        if self.upstream.shared {
            return self.shared_request(id, method, params, cx);
        }
        if method == "initialize" {
            first_initialize(cx)?;
            let child = self.child(cx)?;
            let result = self.exchange(&child, id.get(), method, params, cx)?;
            let mut state = cx.state();
            state.version = result
                .get("protocolVersion")
                .and_then(Value::as_str)
                .and_then(Version::parse)
                .or(Some(Version::LATEST));
            if let Some(Value::Object(capabilities)) = params.get("capabilities") {
                state.client_capabilities = capabilities.clone();
            }
            return Ok(Answer::Json(result));
        }
        if cx.state().version.is_none() {
            if !crate::mcp::adopt(cx) {
                return Err(not_initialized(method));
            }
            let child = self.child(cx)?;
            let hello = adopted_hello();
            self.exchange(&child, "\"mcp-warden-adopted\"", "initialize", &hello, cx)?;
            let _ = child.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.into());
        }
        let child = self.child(cx)?;
        self.exchange(&child, id.get(), method, params, cx)
            .map(Answer::Json)
            .or_else(|e| timed_out_as_result(method, e))
    }

    /// A notification of the client's: to the child, as it is. A cancellation also ends
    /// the wait for that request.
    pub(crate) fn notify(&self, method: &str, params: &Map<String, Value>, cx: &Context<'_>) {
        if self.upstream.url.is_some() {
            if method == "notifications/initialized" {
                cx.state().initialized = true;
            }
            // The request's wait here ends too (`http_call`): no answer is sent.
            if method == "notifications/cancelled"
                && let Some(id) = params.get("requestId")
            {
                cx.session.cancel(&id.to_string());
            }
            let line = json!({ "jsonrpc": "2.0", "method": method, "params": params });
            return self.http_send(&line.to_string(), cx);
        }
        if self.upstream.shared {
            return self.shared_notify(method, params, cx);
        }
        let Some(child) = cx.state().upstream.clone() else {
            return; // nothing started yet: nothing to tell
        };
        if method == "notifications/initialized" {
            cx.state().initialized = true;
        }
        if method == "notifications/cancelled"
            && let Some(id) = params.get("requestId")
        {
            child.forget(&id.to_string());
        }
        let line = json!({ "jsonrpc": "2.0", "method": method, "params": params }).to_string();
        if let Err(e) = child.send(line) {
            log::debug!("a notification for the upstream was not sent: {e}");
        }
    }

    /// The client's answer to one of the child's requests: to the child, as it is.
    pub(crate) fn answer(&self, message: &RawValue, cx: &Context<'_>) {
        if self.upstream.url.is_some() {
            return self.http_send(message.get(), cx);
        }
        if self.upstream.shared {
            // Nothing of the shared child's is relayed to a client: nothing to answer.
            log::debug!("an answer from a client of a shared upstream (ignored)");
            return;
        }
        let Some(child) = cx.state().upstream.clone() else {
            return;
        };
        if let Err(e) = child.send(message.get().to_string()) {
            log::debug!("an answer for the upstream was not sent: {e}");
        }
    }

    /// The session's child, started now if it has none.
    fn child(&self, cx: &Context<'_>) -> Result<Arc<Child>, RpcError> {
        if let Some(child) = cx.state().upstream.clone() {
            return Ok(child);
        }
        let session_id = cx.session.id.clone();
        let sessions = self.sessions.get().cloned().unwrap_or_default();
        let unclaimed = {
            let sessions = sessions.clone();
            let id = session_id.clone();
            move |line: String| {
                if let Some(session) = sessions.upgrade().and_then(|s| s.get(id.as_str())) {
                    let _ = session.deliver(line);
                }
            }
        };
        let on_exit = move || {
            if let Some(sessions) = sessions.upgrade() {
                sessions.close(&session_id);
            }
        };
        let child = self.start(
            &cx.session.caller,
            Box::new(unclaimed),
            Box::new(on_exit),
            true,
        )?;
        cx.state().upstream = Some(Arc::clone(&child));
        Ok(child)
    }

    /// Starts a child for `caller` (in its environment; `Anonymous` puts nobody there).
    fn start(
        &self,
        caller: &Caller,
        unclaimed: Box<dyn Fn(String) + Send + Sync>,
        on_exit: Box<dyn FnOnce() + Send>,
        to_latest: bool,
    ) -> Result<Arc<Child>, RpcError> {
        let spawned = Child::spawn(Spawn {
            argv: &self.upstream.argv,
            env: environment(&self.upstream.env, caller),
            subject: match caller {
                Caller::Anonymous if !to_latest => "(shared)".into(),
                _ => caller.subject().to_string(),
            },
            grace: self.upstream.grace,
            unclaimed,
            on_exit,
            live: Arc::clone(&self.live),
            to_latest,
        });
        spawned.map(Arc::new).map_err(|e| {
            log::error!(
                "the upstream server {:?} could not be started: {e}",
                self.upstream.argv
            );
            RpcError::new(
                rpc::INTERNAL_ERROR,
                format!("the upstream server could not be started: {e}"),
            )
        })
    }

    /// Sends one request to the child and waits for its response, passing on what the
    /// child sends meanwhile.
    fn exchange(
        &self,
        child: &Child,
        id: &str,
        method: &str,
        params: &Map<String, Value>,
        cx: &Context<'_>,
    ) -> Result<Value, RpcError> {
        self.exchange_as(child, id, method, params, cx, None)
    }

    /// `exchange`, with the client's own progress token put back into the progress
    /// notifications (when the gateway gave the request one of its own).
    fn exchange_as(
        &self,
        child: &Child,
        id: &str,
        method: &str,
        params: &Map<String, Value>,
        cx: &Context<'_>,
        token_back: Option<&Value>,
    ) -> Result<Value, RpcError> {
        let progress = params
            .get("_meta")
            .and_then(|m| m.get("progressToken"))
            .map(Value::to_string);
        let replies = child.wait_for(id.to_string(), progress);
        if let Err(e) = child.send(http::request_body(id, method, params)) {
            child.forget(id);
            return Err(RpcError::new(rpc::INTERNAL_ERROR, e.to_string()));
        }
        let started = Instant::now();
        let deadline = started + cx.tool_timeout;
        // Registered among the session's running requests, as a built-in tool's call is, so
        // that the session's end (the SSE stream closing, DELETE, expiry) cancels the wait:
        // nobody will read the answer, and the child, whose handle this thread holds, must
        // end with its session. Its deadline is past ours (`TOOL_TIMEOUT_SECS` is enforced
        // below, and the entry is gone by then), so the watchdog never acts on it.
        let running = waiting(id, method, cx);
        let mut freed = false;
        loop {
            match replies.recv_timeout(CHECK) {
                Ok(Incoming::Reply(message)) => return result_of(message),
                Ok(Incoming::Message(line)) => {
                    let line = match token_back {
                        Some(token) => restore_token(&line, token),
                        None => line,
                    };
                    if line.contains("\"id\"") {
                        // A request of the child's: the client may answer it on the very
                        // connection this request came on.
                        cx.outlet.free_connection();
                    }
                    cx.outlet.send(line);
                }
                Ok(Incoming::Ended(why)) => return Err(RpcError::new(rpc::INTERNAL_ERROR, why)),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if !freed && started.elapsed() >= LONG_CALL {
                        // On the legacy transport this thread holds the POST's keep-alive
                        // connection: the client's next messages on it (a
                        // `notifications/cancelled`, its next request) must not wait for
                        // the child's answer.
                        freed = true;
                        cx.outlet.free_connection();
                    }
                    let timed_out = Instant::now() >= deadline;
                    let stop = if timed_out {
                        Some("TOOL_TIMEOUT_SECS")
                    } else if running.call.cancelled.reason().is_some() {
                        Some("the session ended")
                    } else if (cx.client_gone)() {
                        Some("the client left")
                    } else {
                        None
                    };
                    let Some(reason) = stop else {
                        continue;
                    };
                    child.forget(id);
                    let cancel = json!({ "jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": { "requestId": serde_json::from_str::<Value>(id).unwrap_or(Value::Null), "reason": reason } });
                    let _ = child.send(cancel.to_string());
                    if !timed_out {
                        return Err(RpcError::new(CANCELLED, reason));
                    }
                    return Err(RpcError::new(
                        TIMED_OUT,
                        format!(
                            "the upstream server did not answer {method} within {} s (TOOL_TIMEOUT_SECS)",
                            cx.tool_timeout.as_secs()
                        ),
                    ));
                }
                // Forgotten: the client cancelled it.
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(RpcError::new(
                        CANCELLED,
                        "the client cancelled this request",
                    ));
                }
            }
        }
    }
}

impl Gateway {
    /// `request`, under the per-tool rules (`policy.rs`): a tool or prompt the caller may
    /// not use, or one the upstream does not have, gets the gate's unknown-name answer (the
    /// same as for a built-in catalog), so that hidden and absent cannot be told apart; a
    /// hidden resource gets the gate's `-32002`, and so does one the upstream does not have
    /// (its own `-32002` is replaced); lists show only what the caller may use. `deny` is
    /// told of a refusal by the rules (for the audit line).
    pub(crate) fn guarded(
        &self,
        id: &RawValue,
        method: &str,
        params: &Map<String, Value>,
        cx: &Context<'_>,
        deny: &dyn Fn(),
    ) -> Result<Answer, RpcError> {
        let policy = cx.catalog.policy();
        if policy.is_empty() {
            return self.request(id, method, params, cx);
        }
        let caller = &cx.session.caller;
        let named = |field: &str| params.get(field).and_then(Value::as_str);
        match (method, named("name"), named("uri")) {
            ("tools/call", Some(name), _) | ("prompts/get", Some(name), _) => {
                let (kind, list, what) = match method {
                    "tools/call" => (Kind::Tool, "tools", "tool"),
                    _ => (Kind::Prompt, "prompts", "prompt"),
                };
                if !policy.admits(caller, kind, name) {
                    deny();
                    return Err(RpcError::invalid_params(format!("unknown {what}: {name}")));
                }
                if !self.offers(list, name, cx)? {
                    return Err(RpcError::invalid_params(format!("unknown {what}: {name}")));
                }
            }
            ("resources/read" | "resources/subscribe", _, Some(uri))
                if !policy.admits(caller, Kind::Resource, uri) =>
            {
                return Err(crate::mcp::not_found(uri));
            }
            ("completion/complete", _, _) => {
                if let Some(Value::Object(reference)) = params.get("ref")
                    && !policy.admits_reference(caller, reference)
                {
                    return Err(RpcError::invalid_params(format!(
                        "completion/complete: no prompt or resource template matches the reference {}",
                        Value::Object(reference.clone())
                    )));
                }
            }
            _ => {}
        }
        let mut answer = match (self.request(id, method, params, cx), named("uri")) {
            // The upstream's own "not found" is said as the gate says it for a hidden
            // resource, so that the two cannot be told apart.
            (Err(e), Some(uri)) if e.code == rpc::RESOURCE_NOT_FOUND => {
                return Err(crate::mcp::not_found(uri));
            }
            (answer, _) => answer?,
        };
        if let Answer::Json(list) = &mut answer {
            match method {
                "tools/list" => {
                    remember(cx, "tools", list, "tools", "name");
                    self.check_rules(0, list, params, cx);
                    policy.filter_tools(list, caller);
                }
                "prompts/list" => {
                    remember(cx, "prompts", list, "prompts", "name");
                    self.check_rules(1, list, params, cx);
                    policy.filter_prompts(list, caller);
                }
                "resources/list" => policy.filter_resources(list, caller),
                "resources/templates/list" => policy.filter_templates(list, caller),
                _ => {}
            }
        }
        Ok(answer)
    }

    /// Once, at the first whole list of tools (`which` 0) or prompts (1) the upstream gives:
    /// one warning for each rule of that kind that matches nothing in it.
    fn check_rules(
        &self,
        which: usize,
        list: &Value,
        params: &Map<String, Value>,
        cx: &Context<'_>,
    ) {
        let whole = params.get("cursor").is_none() && list.get("nextCursor").is_none();
        if !whole || self.checked[which].swap(true, Ordering::AcqRel) {
            return;
        }
        let (field, section) = [("tools", "tools."), ("prompts", "prompts.")][which];
        let mut names = std::collections::HashSet::new();
        add_names(&mut names, list, field, "name");
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let (tools, prompts) = if which == 0 {
            (&names[..], &[][..])
        } else {
            (&[][..], &names[..])
        };
        for rule in cx.catalog.policy().unmatched(tools, prompts, &[]) {
            if rule.starts_with(section) {
                log::warn!(
                    "policy rule {rule} matches nothing the upstream server offers (a typo, or something no longer offered?); it has no effect until something it covers is offered"
                );
            }
        }
    }

    /// Whether the upstream offers `name` in `list` (`tools` or `prompts`): as last listed
    /// for this session, else (or when not there) listed again now.
    fn offers(&self, list: &'static str, name: &str, cx: &Context<'_>) -> Result<bool, RpcError> {
        let known = |cx: &Context<'_>| {
            cx.state()
                .upstream_names
                .get(list)
                .map(|names| names.contains(name))
        };
        if known(cx) == Some(true) {
            return Ok(true);
        }
        // Every page, up to a bound.
        let mut names = std::collections::HashSet::new();
        let mut cursor: Option<Value> = None;
        for page in 0..MAX_LIST_PAGES {
            let mut params = Map::new();
            if let Some(cursor) = cursor.take() {
                params.insert("cursor".into(), cursor);
            }
            let id = RawValue::from_string(format!("\"mcp-warden-{list}-{page}\""))
                .map_err(|e| RpcError::new(rpc::INTERNAL_ERROR, e.to_string()))?;
            let Answer::Json(result) = self.request(&id, &format!("{list}/list"), &params, cx)?
            else {
                break;
            };
            add_names(&mut names, &result, list, "name");
            match result.get("nextCursor") {
                Some(next @ Value::String(_)) => cursor = Some(next.clone()),
                _ => break,
            }
        }
        let offered = names.contains(name);
        cx.state().upstream_names.insert(list, names);
        Ok(offered)
    }
}

/// Pages of `tools/list` or `prompts/list` read at most to learn an upstream's names.
const MAX_LIST_PAGES: usize = 100;

/// Adds the names of a list result's entries to the session's memory of the upstream's.
fn remember(cx: &Context<'_>, list: &'static str, result: &Value, field: &str, key: &str) {
    let mut state = cx.state();
    let names = state.upstream_names.entry(list).or_default();
    add_names(names, result, field, key);
}

fn add_names(
    names: &mut std::collections::HashSet<String>,
    result: &Value,
    field: &str,
    key: &str,
) {
    if let Some(Value::Array(entries)) = result.get(field) {
        names.extend(
            entries
                .iter()
                .filter_map(|e| e.get(key).and_then(Value::as_str))
                .map(str::to_string),
        );
    }
}

impl Gateway {
    /// One request of a client, to the shared child: under an id and progress token of
    /// the gateway's, so that two clients' id `1` never meet.
    fn shared_request(
        &self,
        id: &RawValue,
        method: &str,
        params: &Map<String, Value>,
        cx: &Context<'_>,
    ) -> Result<Answer, RpcError> {
        if method == "initialize" {
            first_initialize(cx)?;
            let shared = self.shared_child(cx)?;
            let version = params
                .get("protocolVersion")
                .and_then(Value::as_str)
                .and_then(Version::parse)
                .filter(|v| cx.versions.contains(v))
                .unwrap_or(Version::LATEST);
            let mut result = shared.hello.clone();
            result["protocolVersion"] = json!(version.as_str());
            let mut state = cx.state();
            state.version = Some(version);
            if let Some(Value::Object(capabilities)) = params.get("capabilities") {
                state.client_capabilities = capabilities.clone();
            }
            return Ok(Answer::Json(result));
        }
        if cx.state().version.is_none() && !crate::mcp::adopt(cx) {
            return Err(not_initialized(method));
        }
        let shared = self.shared_child(cx)?;
        if method == "server/discover" {
            // A 2026-07-28 client's discovery: what the child said at initialize.
            let hello = &shared.hello;
            let mut result = json!({
                "supportedVersions": crate::mcp::modern::supported_versions(),
                "capabilities": hello.get("capabilities").cloned().unwrap_or_else(|| json!({})),
            });
            if let Some(instructions) = hello.get("instructions") {
                result["instructions"] = instructions.clone();
            }
            if let Some(info) = hello.get("serverInfo") {
                result["_meta"] = json!({ "io.modelcontextprotocol/serverInfo": info });
            }
            return Ok(Answer::Json(result));
        }
        let ours = format!("\"g{}\"", self.next_id.fetch_add(1, Ordering::Relaxed));
        let mut params = params.clone();
        let token = match params.get_mut("_meta") {
            Some(Value::Object(meta)) => meta
                .get_mut("progressToken")
                .map(|t| std::mem::replace(t, serde_json::from_str(&ours).unwrap_or(Value::Null))),
            _ => None,
        };
        cx.state()
            .relayed
            .insert(id.get().to_string(), ours.clone());
        let result = self.exchange_as(&shared.child, &ours, method, &params, cx, token.as_ref());
        cx.state().relayed.remove(id.get());
        result
            .map(Answer::Json)
            .or_else(|e| timed_out_as_result(method, e))
    }

    /// A client's notification, for the shared child: only a cancellation concerns it
    /// (under the gateway's id for that request).
    fn shared_notify(&self, method: &str, params: &Map<String, Value>, cx: &Context<'_>) {
        match method {
            "notifications/initialized" => cx.state().initialized = true,
            "notifications/cancelled" => {
                let Some(ours) = params
                    .get("requestId")
                    .and_then(|id| cx.state().relayed.get(&id.to_string()).cloned())
                else {
                    return;
                };
                let Some(shared) = lock(&self.shared).clone() else {
                    return;
                };
                shared.child.forget(&ours);
                let cancel = json!({ "jsonrpc": "2.0", "method": "notifications/cancelled",
                    "params": { "requestId": serde_json::from_str::<Value>(&ours).unwrap_or(Value::Null) } });
                let _ = shared.child.send(cancel.to_string());
            }
            other => log::debug!("{other} from a client of a shared upstream (not relayed)"),
        }
    }

    /// The shared child, started (and initialized by the gateway) if there is none or the
    /// last one has exited.
    fn shared_child(&self, cx: &Context<'_>) -> Result<Arc<SharedChild>, RpcError> {
        let mut slot = lock(&self.shared);
        if let Some(shared) = slot.as_ref()
            && !shared.child.ended()
        {
            return Ok(Arc::clone(shared));
        }
        let me: Arc<OnceLock<Weak<Child>>> = Arc::new(OnceLock::new());
        let unclaimed = {
            let me = Arc::clone(&me);
            let sessions = self.sessions.get().cloned().unwrap_or_default();
            move |line: String| shared_unclaimed(&line, &me, &sessions)
        };
        let child = self.start(
            &Caller::Anonymous,
            Box::new(unclaimed),
            Box::new(|| {}),
            false,
        )?;
        let _ = me.set(Arc::downgrade(&child));
        let hello = json!({
            "protocolVersion": Version::LATEST.as_str(),
            "capabilities": {},
            "clientInfo": { "name": "mcp-warden (shared upstream)", "version": env!("CARGO_PKG_VERSION") },
        });
        let Value::Object(hello) = hello else {
            unreachable!("a JSON object literal");
        };
        let id = format!("\"g{}\"", self.next_id.fetch_add(1, Ordering::Relaxed));
        let hello = self.exchange(&child, &id, "initialize", &hello, cx)?;
        let _ = child.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.into());
        let shared = Arc::new(SharedChild { child, hello });
        *slot = Some(Arc::clone(&shared));
        Ok(shared)
    }
}

/// What the shared child sends outside any request: a list change reaches every
/// initialized session; a request of its own is refused (no client can be told apart to
/// answer it); anything else is dropped.
fn shared_unclaimed(line: &str, me: &OnceLock<Weak<Child>>, sessions: &Weak<Sessions>) {
    let Ok(message) = serde_json::from_str::<Value>(line) else {
        return;
    };
    let method = message
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(id) = message.get("id") {
        if let Some(child) = me.get().and_then(Weak::upgrade) {
            let refusal = json!({ "jsonrpc": "2.0", "id": id, "error": {
                "code": rpc::METHOD_NOT_FOUND,
                "message": format!("{method} is not relayed: this upstream is shared by every client (UPSTREAM_SHARED)"),
            }});
            let _ = child.send(refusal.to_string());
        }
        return;
    }
    if method.ends_with("/list_changed")
        && let Some(sessions) = sessions.upgrade()
    {
        for session in sessions.all() {
            if session.state().version.is_some() {
                let _ = session.deliver(line.to_string());
            }
        }
        return;
    }
    log::debug!("{method} from the shared upstream outside any request (dropped)");
}

/// `initialize` comes once per session.
fn first_initialize(cx: &Context<'_>) -> Result<(), RpcError> {
    match cx.state().version {
        Some(_) => Err(RpcError::new(
            rpc::INVALID_REQUEST,
            "session is already initialized",
        )),
        None => Ok(()),
    }
}

/// A progress notification of the shared child's with the client's own token back.
fn restore_token(line: &str, token: &Value) -> String {
    let Ok(mut message) = serde_json::from_str::<Value>(line) else {
        return line.to_string();
    };
    match message.pointer_mut("/params/progressToken") {
        Some(t) => *t = token.clone(),
        None => return line.to_string(),
    }
    message.to_string()
}

/// A `tools/call` the upstream did not answer in time is an error result, as a built-in
/// tool's would be; any other request's timeout is an internal error.
fn timed_out_as_result(method: &str, e: RpcError) -> Result<Answer, RpcError> {
    match (method, e.code) {
        ("tools/call", TIMED_OUT) => Ok(Answer::Json(json!({
            "content": [{ "type": "text", "text": e.message }],
            "isError": true,
        }))),
        (_, TIMED_OUT) => Err(RpcError {
            code: rpc::INTERNAL_ERROR,
            ..e
        }),
        _ => Err(e),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Gateway {
    fn http(&self, cx: &Context<'_>) -> Arc<http::HttpUpstream> {
        Arc::clone(self.http.get_or_init(|| {
            Arc::new(http::HttpUpstream::new(
                self.upstream.url.clone().unwrap_or_default(),
                self.upstream.identity_headers,
                self.upstream.forward_token,
                cx.tool_timeout,
            ))
        }))
    }

    /// One request of a client, to the upstream over HTTP: in the client session's own
    /// session there, or (a stateless 2026-07-28 request) as it is.
    fn http_request(
        &self,
        id: &RawValue,
        method: &str,
        params: &Map<String, Value>,
        cx: &Context<'_>,
    ) -> Result<Answer, RpcError> {
        let upstream = self.http(cx);
        let body = http::request_body(id.get(), method, params);
        if cx.state().stateless {
            let version = params
                .get("_meta")
                .and_then(|m| m.get(crate::mcp::modern::META_VERSION))
                .and_then(Value::as_str)
                .unwrap_or(crate::mcp::modern::VERSION);
            let mut headers = vec![
                ("MCP-Protocol-Version", version.to_string()),
                ("Mcp-Method", method.to_string()),
            ];
            if let Some(name) = params
                .get("name")
                .or_else(|| params.get("uri"))
                .and_then(Value::as_str)
            {
                headers.push(("Mcp-Name", header_value(name)));
            }
            return match self.http_call(&upstream, None, headers, body, id.get(), method, cx)? {
                http::Posted::Response(message, _) => result_of(message).map(Answer::Json),
                http::Posted::Accepted => Err(no_response()),
            };
        }
        if method == "initialize" {
            first_initialize(cx)?;
            return self
                .open_http(&upstream, &body, id.get(), params, cx)
                .map(Answer::Json);
        }
        if cx.state().version.is_none() {
            if !crate::mcp::adopt(cx) {
                return Err(not_initialized(method));
            }
            cx.state().version = None;
            let hello = adopted_hello();
            let hello_body = http::request_body("\"mcp-warden-adopted\"", "initialize", &hello);
            self.open_http(&upstream, &hello_body, "\"mcp-warden-adopted\"", &hello, cx)?;
            cx.state().version = Some(Version::ADOPTED);
            self.http_send(
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                cx,
            );
        }
        let session = cx.state().upstream_http.clone();
        match self.http_call(&upstream, session, Vec::new(), body, id.get(), method, cx) {
            Ok(http::Posted::Response(message, _)) => result_of(message).map(Answer::Json),
            Ok(http::Posted::Accepted) => Err(no_response()),
            Err(e) => timed_out_as_result(method, e),
        }
    }

    /// One request to the upstream over HTTP, sent from a thread of its own while this one
    /// passes on what arrives before the response, and watches as `exchange_as` does: it
    /// frees the legacy POST's connection after `LONG_CALL`, and stops waiting (telling
    /// the upstream `notifications/cancelled`) when the client cancels, leaves, or its
    /// session ends. The upstream's own timeout (`TOOL_TIMEOUT_SECS`) bounds the rest.
    #[allow(clippy::too_many_arguments)]
    fn http_call(
        &self,
        upstream: &Arc<http::HttpUpstream>,
        session: Option<Arc<http::HttpSession>>,
        headers: Vec<(&'static str, String)>,
        body: String,
        id: &str,
        method: &str,
        cx: &Context<'_>,
    ) -> Result<http::Posted, RpcError> {
        enum Arrived {
            Message(String),
            Done(Result<http::Posted, RpcError>),
        }
        let (tx, rx) = std::sync::mpsc::channel::<Arrived>();
        let who = http::Who::of(cx);
        let sent = {
            let (upstream, session, who, id) = (
                Arc::clone(upstream),
                session.clone(),
                who.clone(),
                id.to_string(),
            );
            std::thread::Builder::new()
                .name("upstream-http".into())
                .stack_size(256 << 10)
                .spawn(move || {
                    let messages = tx.clone();
                    let mut relay = |line: String| {
                        let _ = messages.send(Arrived::Message(line));
                    };
                    let done = upstream.post(
                        session.as_deref(),
                        &headers,
                        &who,
                        &body,
                        Some(&id),
                        &mut relay,
                    );
                    let _ = tx.send(Arrived::Done(done));
                })
        };
        if let Err(e) = sent {
            return Err(RpcError::new(
                rpc::INTERNAL_ERROR,
                format!("no thread for the upstream request: {e}"),
            ));
        }
        let started = Instant::now();
        let running = waiting(id, method, cx);
        let mut freed = false;
        loop {
            match rx.recv_timeout(CHECK) {
                Ok(Arrived::Message(line)) => relay_message(cx, line),
                // A cancelled request gets no answer, whatever came (the upstream may end
                // its stream without one).
                Ok(Arrived::Done(_)) if running.call.cancelled.reason().is_some() => {
                    return Err(RpcError::new(CANCELLED, "the client cancelled it"));
                }
                Ok(Arrived::Done(done)) => return done,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Err(no_response()),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if !freed && started.elapsed() >= LONG_CALL {
                        freed = true;
                        cx.outlet.free_connection();
                    }
                    let stop = if running.call.cancelled.reason().is_some() {
                        "the client cancelled it, or its session ended"
                    } else if (cx.client_gone)() {
                        "the client left"
                    } else {
                        continue;
                    };
                    let cancel = json!({ "jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": { "requestId": serde_json::from_str::<Value>(id).unwrap_or(Value::Null), "reason": stop } });
                    let (upstream, body) = (Arc::clone(upstream), cancel.to_string());
                    let _ = std::thread::Builder::new()
                        .name("upstream-cancel".into())
                        .stack_size(256 << 10)
                        .spawn(move || {
                            let _ = upstream.post(
                                session.as_deref(),
                                &[],
                                &who,
                                &body,
                                None,
                                &mut |_| {},
                            );
                        });
                    return Err(RpcError::new(CANCELLED, stop));
                }
            }
        }
    }

    /// `initialize` at the upstream: a session there for this client session.
    fn open_http(
        &self,
        upstream: &Arc<http::HttpUpstream>,
        body: &str,
        id: &str,
        params: &Map<String, Value>,
        cx: &Context<'_>,
    ) -> Result<Value, RpcError> {
        let session = Arc::new(http::HttpSession::default());
        let who = http::Who::of(cx);
        let mut relay = |line: String| relay_message(cx, line);
        let (message, sid) =
            match upstream.post(Some(&session), &[], &who, body, Some(id), &mut relay)? {
                http::Posted::Response(message, sid) => (message, sid),
                http::Posted::Accepted => return Err(no_response()),
            };
        let result = result_of(message)?;
        let version = result.get("protocolVersion").and_then(Value::as_str);
        upstream.adopt(&session, sid, version.map(str::to_string));
        let mut state = cx.state();
        state.version = version.and_then(Version::parse).or(Some(Version::LATEST));
        if let Some(Value::Object(capabilities)) = params.get("capabilities") {
            state.client_capabilities = capabilities.clone();
        }
        state.upstream_http = Some(session);
        Ok(result)
    }

    /// A notification or an answer of the client's, to its session at the upstream.
    fn http_send(&self, body: &str, cx: &Context<'_>) {
        let Some(session) = cx.state().upstream_http.clone() else {
            return;
        };
        let who = http::Who::of(cx);
        if let Err(e) = self
            .http(cx)
            .post(Some(&session), &[], &who, body, None, &mut |_| {})
        {
            log::debug!(
                "a message for the upstream was not delivered: {}",
                e.message
            );
        }
    }
}

/// A header value as sent: as it is when it is visible ASCII without surrounding spaces,
/// else `=?base64?…?=` (the 2026-07-28 header encoding).
fn header_value(value: &str) -> String {
    use base64::Engine;
    let plain = value
        .bytes()
        .all(|b| (0x21..0x7f).contains(&b) || b == b' ')
        && !value.starts_with(' ')
        && !value.ends_with(' ');
    if plain {
        value.to_string()
    } else {
        format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(value)
        )
    }
}

fn no_response() -> RpcError {
    RpcError::new(
        rpc::INTERNAL_ERROR,
        "the upstream server accepted the request but sent no response",
    )
}

fn not_initialized(method: &str) -> RpcError {
    RpcError::new(
        rpc::INVALID_REQUEST,
        format!("session is not initialized: send \"initialize\" before \"{method}\""),
    )
}

/// The gateway's own `initialize` for a legacy client that never sent one.
fn adopted_hello() -> Map<String, Value> {
    let hello = json!({
        "protocolVersion": Version::ADOPTED.as_str(),
        "capabilities": {},
        "clientInfo": { "name": "mcp-warden (a client that did not initialize)", "version": env!("CARGO_PKG_VERSION") },
    });
    match hello {
        Value::Object(hello) => hello,
        _ => Map::new(),
    }
}

/// A response message's result, or its error.
fn result_of(mut message: Value) -> Result<Value, RpcError> {
    match message.get_mut("error") {
        Some(error) => Err(serde_json::from_value(error.take()).unwrap_or_else(|_| {
            RpcError::new(
                rpc::INTERNAL_ERROR,
                "the upstream server answered with a malformed error",
            )
        })),
        None => Ok(message
            .get_mut("result")
            .map(Value::take)
            .unwrap_or(Value::Null)),
    }
}

/// The error of a request the upstream did not answer in time (never sent as such: a
/// `tools/call` becomes an error result, anything else an internal error).
const TIMED_OUT: i64 = -32099;

/// Registers a request waiting for the upstream among its session's running requests, as
/// a built-in tool's call is, so that the session's end (the SSE stream closing, DELETE,
/// expiry) and the client's cancellation reach the wait. Its deadline is past the wait's
/// own (`TOOL_TIMEOUT_SECS`), so the watchdog never acts on it.
fn waiting<'s>(id: &str, method: &str, cx: &Context<'s>) -> crate::mcp::session::Running<'s> {
    cx.session.begin(
        &normalized(id),
        RunningCall::new(
            cx.tool_timeout + Duration::from_secs(1),
            Arc::from(method),
            None,
        ),
    )
}

/// Passes one message the upstream sent before its response on to the client: on the
/// request's stream; a request of the upstream's frees the legacy POST's connection
/// first, since the client may answer on it.
fn relay_message(cx: &Context<'_>, line: String) {
    let is_request = serde_json::from_str::<Value>(&line)
        .is_ok_and(|m| m.get("method").is_some() && m.get("id").is_some());
    if is_request {
        cx.outlet.free_connection();
    }
    cx.outlet.send(line);
}

/// A request id (JSON text) as the session's table of running requests keys it: normalized
/// JSON (an integer or a plain string already is).
fn normalized(id: &str) -> String {
    if id.contains(['\\', ' ', '\t', '\n', '\r']) {
        serde_json::from_str::<Value>(id).map_or_else(|_| id.to_string(), |v| v.to_string())
    } else {
        id.to_string()
    }
}

/// The child's whole environment: the allow-listed variables of this process, and who
/// calls.
fn environment(allowed: &[String], caller: &Caller) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = allowed
        .iter()
        .filter_map(|name| Some((name.clone(), std::env::var(name).ok()?)))
        .collect();
    if let Caller::User(user) = caller {
        env.push(("MCP_USER_SUB".into(), user.subject.clone()));
        if let Some(email) = &user.email {
            env.push(("MCP_USER_EMAIL".into(), email.clone()));
        }
        if let Some(name) = &user.name {
            env.push(("MCP_USER_NAME".into(), name.clone()));
        }
        env.push(("MCP_USER_GROUPS".into(), user.groups.join(",")));
    }
    env
}
