//! An upstream MCP server over Streamable HTTP (`UPSTREAM_URL`): each 2025 session of a
//! client is a session of its own at the upstream (its `Mcp-Session-Id` is kept here, with
//! the client's session, and never shown to anyone: a client only ever names its session
//! at mcp-warden, which is bound to its subject). Each message is one POST; an answer that
//! comes as an event stream is read event by event, what precedes the response (progress,
//! log messages, the upstream's own requests) passed on through the request's outlet. A
//! stateless 2026-07-28 request is forwarded as it is, with its headers. The session at the
//! upstream is ended (`DELETE`) when the client's ends.
//!
//! The client's own headers never reach the upstream: its `Authorization` neither, unless
//! `forward_token` (`UPSTREAM_FORWARD_TOKEN`) says so, and with `identity_headers` the
//! verified caller goes as
//! `X-MCP-User-Sub`, `X-MCP-User-Email`, `X-MCP-User-Groups`. Every request to the upstream
//! has `TOOL_TIMEOUT_SECS` from connection to last byte, and an answer larger than
//! `MAX_ANSWER_BYTES` is refused.

use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::identity::Caller;
use crate::mcp::Context;
use crate::mcp::rpc::{self, RpcError};

/// The largest answer read from an upstream: 16 MiB, as for a stdio upstream's line.
pub const MAX_ANSWER_BYTES: u64 = 16 << 20;

/// Where and how to reach the upstream.
pub struct HttpUpstream {
    url: String,
    identity_headers: bool,
    forward_token: bool,
    agent: ureq::Agent,
}

/// The client session's session at the upstream.
#[derive(Default)]
pub struct HttpSession {
    /// Its `Mcp-Session-Id`, if the upstream gave one.
    id: Mutex<Option<String>>,
    /// The revision negotiated, for `MCP-Protocol-Version`.
    version: Mutex<Option<String>>,
    /// Ends it at the upstream when the client's session ends.
    upstream: Mutex<Option<Arc<HttpUpstream>>>,
    /// With `forward_token`: the client's latest `Authorization`, for that `DELETE`.
    bearer: Mutex<Option<String>>,
}

impl std::fmt::Debug for HttpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpSession(..)")
    }
}

impl Drop for HttpSession {
    fn drop(&mut self) {
        let id = self.id.get_mut().map(Option::take).unwrap_or_default();
        let upstream = self
            .upstream
            .get_mut()
            .map(Option::take)
            .unwrap_or_default();
        let bearer = self.bearer.get_mut().map(Option::take).unwrap_or_default();
        if let (Some(id), Some(upstream)) = (id, upstream) {
            // On a thread of its own: whoever drops the session does not wait for it.
            let _ = std::thread::Builder::new()
                .name("upstream-delete".into())
                .stack_size(128 << 10)
                .spawn(move || {
                    let mut request = upstream
                        .agent
                        .delete(&upstream.url)
                        .header("Mcp-Session-Id", &id);
                    if let Some(bearer) = &bearer {
                        request = request.header("Authorization", bearer);
                    }
                    if let Err(e) = request.call() {
                        log::debug!("the upstream session was not ended: {e}");
                    }
                });
        }
    }
}

/// What one POST to the upstream came to.
pub enum Posted {
    /// The response to the request (its whole message), and the session id the upstream
    /// named, if any.
    Response(Value, Option<String>),
    /// Accepted, nothing to answer (a notification or an answer of the client's).
    Accepted,
}

impl HttpUpstream {
    pub fn new(
        url: String,
        identity_headers: bool,
        forward_token: bool,
        timeout: Duration,
    ) -> HttpUpstream {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("mcp-warden/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        HttpUpstream {
            url,
            identity_headers,
            forward_token,
            agent,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Binds `session` to this upstream, so that its end ends the upstream's.
    pub fn adopt(
        self: &Arc<Self>,
        session: &HttpSession,
        id: Option<String>,
        version: Option<String>,
    ) {
        *lock(&session.id) = id;
        *lock(&session.version) = version;
        *lock(&session.upstream) = Some(Arc::clone(self));
    }

    /// POSTs one message (`body`, whole) for `session` (none: a stateless request, sent
    /// with `headers` as given); waits for the response to `id` (JSON text), if it is a
    /// request, passing on through the outlet what comes before it.
    pub fn post(
        &self,
        session: Option<&HttpSession>,
        headers: &[(&str, String)],
        who: &Who,
        body: &str,
        id: Option<&str>,
        on_message: &mut dyn FnMut(String),
    ) -> Result<Posted, RpcError> {
        let mut request = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream");
        if let Some(session) = session {
            if let Some(sid) = lock(&session.id).as_deref() {
                request = request.header("Mcp-Session-Id", sid);
            }
            if let Some(version) = lock(&session.version).as_deref() {
                request = request.header("MCP-Protocol-Version", version);
            }
        }
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if self.forward_token
            && let Some(bearer) = who.bearer.as_deref()
        {
            request = request.header("Authorization", bearer);
            if let Some(session) = session {
                *lock(&session.bearer) = Some(bearer.to_string());
            }
        }
        if self.identity_headers
            && let Caller::User(user) = &who.caller
        {
            request = request
                .header("X-MCP-User-Sub", &user.subject)
                .header("X-MCP-User-Groups", user.groups.join(","));
            if let Some(email) = &user.email {
                request = request.header("X-MCP-User-Email", email);
            }
        }
        let mut response = request.send(body).map_err(|e| self.unreachable(&e))?;
        let status = response.status().as_u16();
        let session_id = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let event_stream = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/event-stream"));
        let reader = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .reader();
        match status {
            202 if id.is_none() => return Ok(Posted::Accepted),
            200 => {}
            404 if session.is_some_and(|s| lock(&s.id).is_some()) => {
                return Err(RpcError::new(
                    rpc::INTERNAL_ERROR,
                    "the upstream server ended this session (404): start a new session",
                ));
            }
            _ => {
                let mut excerpt = String::new();
                let _ = reader.take(300).read_to_string(&mut excerpt);
                return Err(RpcError::new(
                    rpc::INTERNAL_ERROR,
                    format!(
                        "the upstream server at {} answered HTTP {status}: {}",
                        self.url,
                        excerpt.trim()
                    ),
                ));
            }
        }
        let Some(id) = id else {
            return Ok(Posted::Accepted);
        };
        if !event_stream {
            let message: Value = serde_json::from_reader(reader).map_err(|e| self.garbage(&e))?;
            return Ok(Posted::Response(message, session_id));
        }
        // An event stream: each `data:` is one message; the response to `id` ends it.
        let mut lines = BufReader::new(reader);
        let mut data = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            match lines.read_line(&mut line) {
                Ok(0) => {
                    return Err(RpcError::new(
                        rpc::INTERNAL_ERROR,
                        "the upstream server's event stream ended before its response",
                    ));
                }
                Ok(_) => {}
                Err(e) => return Err(self.unreachable(&e)),
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if let Some(more) = line.strip_prefix("data:") {
                data.push_str(more.strip_prefix(' ').unwrap_or(more));
                continue;
            }
            if !line.is_empty() || data.is_empty() {
                continue; // other fields (event, id, retry) and comments
            }
            let text = std::mem::take(&mut data);
            let message: Value = serde_json::from_str(&text).map_err(|e| self.garbage(&e))?;
            let is_response = message.get("method").is_none();
            if is_response && message.get("id").map(Value::to_string).as_deref() == Some(id) {
                return Ok(Posted::Response(message, session_id));
            }
            on_message(text);
        }
    }

    fn unreachable(&self, e: &dyn std::fmt::Display) -> RpcError {
        log::warn!("upstream {} unreachable or too slow: {e}", self.url);
        RpcError::new(
            rpc::INTERNAL_ERROR,
            format!(
                "the upstream server at {} is unreachable or did not answer in time (TOOL_TIMEOUT_SECS): {e}",
                self.url
            ),
        )
    }

    fn garbage(&self, e: &dyn std::fmt::Display) -> RpcError {
        log::warn!(
            "upstream {} answered with something that is not JSON-RPC: {e}",
            self.url
        );
        RpcError::new(
            rpc::INTERNAL_ERROR,
            format!(
                "the upstream server at {} answered with something that is not JSON-RPC",
                self.url
            ),
        )
    }
}

/// Who a request to the upstream is for: the verified caller (for the identity headers)
/// and the request's own `Authorization` (forwarded only with `forward_token`). Owned, so
/// that a request can be sent from a thread of its own.
#[derive(Clone)]
pub struct Who {
    pub caller: Caller,
    pub bearer: Option<String>,
}

impl Who {
    pub fn of(cx: &Context<'_>) -> Who {
        Who {
            caller: cx.session.caller.clone(),
            bearer: cx.bearer.map(str::to_string),
        }
    }
}

/// One request as a whole message (`id` as JSON text), written straight from its parts.
pub fn request_body(id: &str, method: &str, params: &Map<String, Value>) -> String {
    // Neither a string nor a map of JSON values can fail to serialize.
    let method = serde_json::to_string(method).unwrap_or_default();
    let params = serde_json::to_string(params).unwrap_or_default();
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":{method},"params":{params}}}"#)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
