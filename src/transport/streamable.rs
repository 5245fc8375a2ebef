//! Streamable HTTP on `/mcp` (MCP 2025-03-26, 2025-06-18, 2025-11-25):
//! - `POST`: one JSON-RPC message (a batch only in a 2025-03-26 session). A request is
//!   answered in the response (`application/json`); a notification or a client's answer
//!   gets `202`. `initialize` opens a session and names it in `Mcp-Session-Id`; every
//!   later request carries that header.
//! - `GET` (`Accept: text/event-stream`): the session's stream for messages the server
//!   sends of its own accord; one at a time.
//! - `DELETE`: ends the session.
//!
//! Sessions, dispatch and the catalog are the same as the legacy transport's (`mcp/`).

use std::net::TcpStream;

use super::{App, Request, announces_body, read_body, refused_session, respond, send, sse};
use crate::http::{Conn, Head, Next, Response, peek_now};
use crate::identity::Caller;
use crate::mcp::call::{Nowhere, Outlet};
use crate::mcp::rpc::{self, Body};
use crate::mcp::session::{Session, Transport};
use crate::mcp::{self, Context, Reply, Version};

/// The header naming a session.
const SESSION_HEADER: &str = "mcp-session-id";
/// The header naming the negotiated revision on requests after `initialize`.
const VERSION_HEADER: &str = "mcp-protocol-version";

impl App {
    /// `POST /mcp`.
    pub(super) fn post_mcp(&self, conn: &mut Conn, request: &Request<'_>) -> Next {
        let head = request.head;
        if !accepts(head, "application/json") || !accepts(head, "text/event-stream") {
            let message = "POST /mcp answers with application/json or text/event-stream: the Accept header must allow both";
            return respond(conn, head, Response::error(406, "not_acceptable", message));
        }
        if !is_json(head) {
            let message =
                "POST /mcp takes a JSON-RPC message: Content-Type must be application/json";
            return respond(
                conn,
                head,
                Response::error(415, "unsupported_media_type", message),
            );
        }
        let body = match read_body(conn, head) {
            Ok(body) => body,
            Err(next) => return next,
        };
        let message = match rpc::parse(&body) {
            Ok(message) => message,
            Err(e) => return send(conn, reply_response(400, mcp::parse_error(&e).to_line())),
        };
        let session_id = head.header(SESSION_HEADER);
        if is_initialize(&message) {
            if session_id.is_some() {
                let message = "initialize opens a new session: send it without Mcp-Session-Id";
                return send(
                    conn,
                    Response::error(400, "session_id_on_initialize", message),
                );
            }
            return self.initialize(conn, message, request.caller());
        }
        let session = match self.request_session(request, session_id) {
            Ok(session) => session,
            Err(response) => return send(conn, response),
        };
        session.touch();
        let extra_headers = conn.extra_headers().to_owned();
        let stream: &TcpStream = conn.stream();
        // What the handler sends before its result turns the response into an event
        // stream; otherwise the answer is plain JSON.
        let events = sse::ResponseStream::new(stream, &extra_headers);
        let outlet = EventOutlet(&events);
        let gone = || client_left(stream);
        let cx = Context {
            session: &session,
            catalog: &self.catalog.current(),
            outlet: &outlet,
            client_gone: &gone,
            tool_timeout: self.config.tool_timeout,
            versions: &Version::STREAMABLE,
            adopt_uninitialized: false,
        };
        let reply = mcp::handle(message, &cx);
        if events.started() {
            if let Some(reply) = reply {
                let _ = events.message(&reply.to_line());
            }
            conn.note_status(200);
            return Next::Close;
        }
        match reply {
            None => send(conn, Response::new(202)),
            Some(reply) => send(conn, reply_response(status_of(&reply), reply.to_line())),
        }
    }

    /// `initialize`: a new session, named in the response if the handshake succeeds.
    fn initialize(&self, conn: &mut Conn, message: Body<'_>, caller: Caller) -> Next {
        let session = match self.sessions.open(caller, Transport::Streamable) {
            Ok(session) => session,
            Err(e) => return send(conn, refused_session(&e)),
        };
        let cx = Context {
            session: &session,
            catalog: &self.catalog.current(),
            // initialize emits nothing before its answer.
            outlet: &Nowhere,
            client_gone: &|| false,
            tool_timeout: self.config.tool_timeout,
            versions: &Version::STREAMABLE,
            adopt_uninitialized: false,
        };
        let Some(reply) = mcp::handle(message, &cx) else {
            self.sessions.close(&session.id);
            return send(conn, Response::new(202));
        };
        let line = reply.to_line();
        if !matches!(&reply, Reply::One(outcome) if outcome.result.is_ok()) {
            self.sessions.close(&session.id);
            return send(conn, reply_response(status_of(&reply), line));
        }
        log::info!(
            "session opened peer={} sub={} transport=streamable",
            conn.peer(),
            session.caller.subject()
        );
        let response =
            reply_response(200, line).header("Mcp-Session-Id", session.id.as_str().to_string());
        send(conn, response)
    }

    /// `GET /mcp`: holds the session's stream for messages the server sends of its own
    /// accord, until the client goes, the session ends, or the token expires.
    pub(super) fn get_mcp(&self, conn: &mut Conn, request: &Request<'_>) -> Next {
        let head = request.head;
        if !accepts(head, "text/event-stream") {
            let message =
                "GET /mcp opens an event stream: the Accept header must allow text/event-stream";
            return respond(conn, head, Response::error(406, "not_acceptable", message));
        }
        if announces_body(head) {
            let message = "GET /mcp takes no body";
            return respond(conn, head, Response::error(400, "unexpected_body", message));
        }
        let session = match self.request_session(request, head.header(SESSION_HEADER)) {
            Ok(session) => session,
            Err(response) => return respond(conn, head, response),
        };
        let Some(attached) = self.attach(conn, &session) else {
            let message = "this session already has its GET stream open; one at a time";
            return respond(conn, head, Response::error(409, "stream_open", message));
        };
        let end = self.hold_stream(conn, request, session, attached, None);
        log::debug!("stream ended peer={} ({end:?})", conn.peer());
        Next::Close
    }

    /// `DELETE /mcp`: ends the session.
    pub(super) fn delete_mcp(&self, conn: &mut Conn, request: &Request<'_>) -> Next {
        let head = request.head;
        let session = match self.request_session(request, head.header(SESSION_HEADER)) {
            Ok(session) => session,
            Err(response) => return respond(conn, head, response),
        };
        self.sessions.close(&session.id);
        log::info!(
            "session closed peer={} sub={} (DELETE)",
            conn.peer(),
            session.caller.subject()
        );
        respond(conn, head, Response::new(204))
    }

    /// The session a request after `initialize` names, or the refusal: `400` without
    /// `Mcp-Session-Id` or with an unsupported `MCP-Protocol-Version`, `404` for an
    /// unknown, ended or expired session, or another caller's.
    fn request_session(
        &self,
        request: &Request<'_>,
        id: Option<&str>,
    ) -> Result<std::sync::Arc<Session>, Response> {
        let Some(id) = id.map(str::trim).filter(|id| !id.is_empty()) else {
            let message = "missing Mcp-Session-Id header: send the id the initialize response gave, or initialize first";
            return Err(Response::error(400, "missing_session_id", message));
        };
        if let Some(version) = request.head.header(VERSION_HEADER) {
            // Absent means 2025-03-26 (the revision before the header existed).
            let served = Version::parse(version.trim()).filter(|v| Version::STREAMABLE.contains(v));
            if served.is_none() {
                let message = format!(
                    "MCP-Protocol-Version {:?} is not supported on /mcp; it speaks {}",
                    version.trim(),
                    Version::list(&Version::STREAMABLE)
                );
                return Err(Response::error(
                    400,
                    "unsupported_protocol_version",
                    &message,
                ));
            }
        }
        self.owned_session(request, id)
            .filter(|s| s.transport == Transport::Streamable)
            .ok_or_else(|| {
                let message = "unknown Mcp-Session-Id: the session has ended, expired or never existed; initialize a new one";
                Response::error(404, "unknown_session", message)
            })
    }
}

/// Messages a request emits before its result, as events of its response.
struct EventOutlet<'a>(&'a sse::ResponseStream<'a>);

impl Outlet for EventOutlet<'_> {
    fn send(&self, line: String) {
        if let Err(e) = self.0.message(&line) {
            log::debug!("an event for a client that has gone: {e}");
        }
    }
}

/// Whether the client closed the POST's connection (end of file, or an error). Bytes
/// waiting are not a departure: a client may send its next request early.
fn client_left(stream: &TcpStream) -> bool {
    matches!(peek_now(stream), Ok(Some(0)) | Err(_))
}

/// A JSON-RPC reply as the response body.
fn reply_response(status: u16, line: String) -> Response {
    Response::new(status)
        .header("Content-Type", "application/json")
        .body(line.into_bytes())
}

/// `400` when the whole body was refused (not a usable message or batch: the one outcome
/// has no id), else `200`: a request's error is still its answer.
fn status_of(reply: &Reply<'_>) -> u16 {
    match reply {
        Reply::One(outcome) if outcome.id.is_none() && outcome.result.is_err() => 400,
        _ => 200,
    }
}

/// Whether the body is one `initialize` request (from its envelope alone: every POST asks,
/// and dispatch reads the message in full afterwards).
fn is_initialize(body: &Body<'_>) -> bool {
    match body {
        Body::One(raw) => rpc::request_method(raw).is_some_and(|m| m == "initialize"),
        Body::Batch(_) => false,
    }
}

/// Whether the `Accept` header allows `media` (exactly, or by `type/*` or `*/*`).
fn accepts(head: &Head, media: &str) -> bool {
    let kind = media.split('/').next().unwrap_or(media);
    head.all("accept")
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .map(|range| range.split(';').next().unwrap_or("").trim())
        .any(|range| {
            range.eq_ignore_ascii_case(media)
                || range == "*/*"
                || range
                    .strip_suffix("/*")
                    .is_some_and(|k| k.eq_ignore_ascii_case(kind))
        })
}

/// Whether `Content-Type` is `application/json` (parameters such as `charset` allowed).
fn is_json(head: &Head) -> bool {
    head.header("content-type").is_some_and(|v| {
        v.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    })
}
