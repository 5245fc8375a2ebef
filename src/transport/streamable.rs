//! Streamable HTTP on `/mcp` (MCP 2025-03-26, 2025-06-18, 2025-11-25):
//! - `POST`: one JSON-RPC message (a batch only in a 2025-03-26 session). A request is
//!   answered in the response (`application/json`); a notification or a client's answer
//!   gets `202`. `initialize` opens a session and names it in `Mcp-Session-Id`; every
//!   later request carries that header.
//! - `GET` (`Accept: text/event-stream`): the session's stream for messages the server
//!   sends of its own accord; one at a time. With a `Last-Event-ID` naming a `POST`'s event
//!   stream that its call closed early, it resumes that stream instead (below).
//! - `DELETE`: ends the session.
//!
//! A `POST`'s answer (`PostAnswer`) is plain JSON unless its handler sends something before
//! its result: then it turns into an event stream (close-delimited) that opens with a
//! priming event (an id, `retry`, empty data; SEP-1699), carries ids on every event, and
//! ends with the result. A tool may end that stream early (`Call::close_stream`): what its
//! call sends afterwards, result included, waits in the session (`mcp/resume.rs`) for the
//! client's `GET` with `Last-Event-ID`, and goes out on that `GET`'s stream, which ends
//! after the call's last message. A `Last-Event-ID` with nothing to resume behind it is
//! ignored: the `GET` is the session's stream, as without one.
//!
//! A tool call past `TOOL_TIMEOUT_SECS` is answered by the watchdog through the same
//! `PostAnswer`: a whole JSON response with `Connection: close` if nothing was sent yet, or
//! the last event of the stream; then the connection's write side is shut (the handler's
//! thread is still busy with the tool, and nothing may follow). What the tool sends or
//! returns afterwards is dropped.
//!
//! Sessions, dispatch and the catalog are the same as the legacy transport's (`mcp/`).

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::{
    App, Attached, Request, announces_body, read_body, refused_session, respond, send, sse,
};
use crate::http::{Conn, Head, Next, Response, peek_now};
use crate::identity::Caller;
use crate::mcp::call::{Answerer, Nowhere, Outlet, Settled};
use crate::mcp::rpc::{self, Body};
use crate::mcp::session::{Session, Transport};
use crate::mcp::{self, Context, Reply, Version, modern};
use sse::EventId;

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
        // Behind the gate, each session has an upstream server of its own: a stateless
        // request is answered as a 2025-only server does (dual-era clients then initialize).
        if session_id.is_none()
            && self
                .catalog
                .current()
                .upstream
                .as_ref()
                .is_none_or(|g| g.serves_stateless())
            && let Body::One(raw) = &message
            && modern::is_modern(raw, head.header(VERSION_HEADER))
        {
            return self.post_modern(conn, request, raw);
        }
        if is_initialize(&message) {
            if session_id.is_some() {
                let message = "initialize opens a new session: send it without Mcp-Session-Id";
                return send(
                    conn,
                    Response::error(400, "session_id_on_initialize", message),
                );
            }
            return self.initialize(
                conn,
                message,
                request.caller(),
                request.head.header("authorization"),
            );
        }
        let session = match self.request_session(request, session_id) {
            Ok(session) => session,
            Err(response) => return send(conn, response),
        };
        session.touch();
        let answer = Shared(PostAnswer::new(
            conn,
            &session,
            matches!(message, Body::Batch(_)),
        ));
        // The client leaving a stream its call closed is expected, not a cancellation.
        let gone = || !answer.0.closed_early() && client_left(conn.stream());
        let cx = Context {
            bearer: request.head.header("authorization"),
            session: &session,
            catalog: &self.catalog.current(),
            outlet: &answer,
            client_gone: &gone,
            tool_timeout: self.config.tool_timeout,
            versions: &Version::STREAMABLE,
            adopt_uninitialized: false,
        };
        let reply = mcp::handle(message, &cx);
        let (line, status) = match &reply {
            Some(reply) => (Some(reply.to_line()), status_of(reply)),
            None => (None, 202),
        };
        answer.0.respond(conn, line, status)
    }

    /// A 2026-07-28 request (`mcp/modern.rs`): served on its own, no session; its answer
    /// is JSON, or an event stream when the tool reports progress first.
    fn post_modern(
        &self,
        conn: &mut Conn,
        request: &Request<'_>,
        raw: &serde_json::value::RawValue,
    ) -> Next {
        let head = request.head;
        let other = |name: &str| head.header(name);
        let headers = modern::Headers {
            version: head.header(VERSION_HEADER),
            method: head.header("mcp-method"),
            name: head.header("mcp-name"),
            other: Some(&other),
        };
        let answer = Shared(PostAnswer::stateless(conn));
        // Closing the response stream cancels the work.
        let gone = || client_left(conn.stream());
        let served = modern::Served {
            caller: request.caller(),
            sessions: &self.sessions,
            bearer: head.header("authorization"),
            catalog: &self.catalog.current(),
            outlet: &answer,
            client_gone: &gone,
            tool_timeout: self.config.tool_timeout,
            public: self.auth.is_none(),
        };
        match modern::serve(raw, &headers, &served) {
            modern::Outcome::Reply(line, status) => answer.0.respond(conn, line, status),
            modern::Outcome::Listen(listen) => self.listen(conn, request, listen),
        }
    }

    /// `subscriptions/listen` (2026-07-28): the response is an event stream held on this
    /// thread, on a session of its own that only the catalog's notifications reach (the
    /// kinds the client opted into, each tagged with the subscription's id), acknowledged
    /// first. It ends when the client closes it, at the token's expiry, or at shutdown
    /// (the last two with an empty result naming the subscription). It takes a
    /// `MAX_SESSIONS` slot while it lasts.
    fn listen(&self, conn: &mut Conn, request: &Request<'_>, listen: modern::Listen) -> Next {
        let session = match self.sessions.open(request.caller(), Transport::Listen) {
            Ok(session) => session,
            Err(e) => return send(conn, refused_session(&e)),
        };
        let acknowledgement = listen.acknowledgement();
        let listening = listen.register(&session);
        let Some(attached) = self.attach(conn, &session) else {
            // A session this thread opened a moment ago has no stream yet.
            self.sessions.close(&session.id);
            return send(
                conn,
                Response::error(
                    503,
                    "subscription_unavailable",
                    "the subscription could not start; retry",
                ),
            );
        };
        let _ = session.deliver(acknowledgement);
        let id = session.id.clone();
        let subject = session.caller.subject().to_string();
        log::info!("subscription opened peer={} sub={subject}", conn.peer());
        let end = self.hold_stream(conn, request, session, attached, None);
        if matches!(end, sse::End::Closed | sse::End::TokenExpired) {
            let mut out = Vec::new();
            sse::plain_message(&mut out, &listening.ended(&self.catalog.current()));
            let mut stream = conn.stream();
            let _ = std::io::Write::write_all(&mut stream, &out);
        }
        self.sessions.close(&id);
        log::info!(
            "subscription ended peer={} sub={subject} ({end:?})",
            conn.peer()
        );
        Next::Close
    }

    /// `initialize`: a new session, named in the response if the handshake succeeds.
    fn initialize(
        &self,
        conn: &mut Conn,
        message: Body<'_>,
        caller: Caller,
        bearer: Option<&str>,
    ) -> Next {
        let session = match self.sessions.open(caller, Transport::Streamable) {
            Ok(session) => session,
            Err(e) => return send(conn, refused_session(&e)),
        };
        let cx = Context {
            bearer,
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
        let resumed = head
            .header("last-event-id")
            .and_then(EventId::parse)
            .and_then(|id| {
                let (outbox, ticket) = session.resume(id.stream)?;
                Some(Attached {
                    outbox,
                    ticket,
                    resumes: Some(id.stream),
                })
            });
        if let Some(attached) = resumed {
            let end = self.hold_stream(conn, request, session, attached, None);
            log::debug!("resumed stream ended peer={} ({end:?})", conn.peer());
            return Next::Close;
        }
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

/// The answer to one `POST /mcp`, and the outlet of what its handler sends before it.
/// Plain JSON (written by `post_mcp`) unless the handler sends something first: then the
/// head and the priming event go out, and every message is an event with an id. When the
/// call closes the stream early, its messages go to the session for a resuming `GET`.
///
/// Shared with the watchdog, which may answer in the handler's place (`Answerer`): every
/// write happens under `state`'s lock, so the two never interleave, and `settled` says who
/// answers; whoever settles first wins.
struct PostAnswer {
    socket: Arc<TcpStream>,
    extra_headers: String,
    session: Weak<Session>,
    /// A batch gets one reply for all its requests: the watchdog cannot answer one of them.
    batch: bool,
    /// A 2025 session's answer: event ids and a priming event, so it can be resumed
    /// (SEP-1699). A 2026-07-28 answer has neither.
    resumable: bool,
    state: Mutex<PostState>,
}

struct PostState {
    phase: Phase,
    settled: Settled,
    /// The event stream's number in its session (from `Phase::Streaming` on).
    stream: u64,
    /// The next event's number within the stream.
    next_event: u64,
    /// The bytes being written (kept between events, given back past 4 KiB).
    out: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing sent yet: the answer will be plain JSON.
    Unsent,
    /// The head and the priming event have gone out: the answer is an event stream.
    Streaming,
    /// The call closed the stream early: what follows waits for a resuming `GET`.
    Closed,
}

impl PostAnswer {
    fn new(conn: &Conn, session: &Arc<Session>, batch: bool) -> Arc<PostAnswer> {
        PostAnswer::with(conn, Arc::downgrade(session), batch, true)
    }

    /// The answer to a 2026-07-28 request: no session, nothing to resume.
    fn stateless(conn: &Conn) -> Arc<PostAnswer> {
        PostAnswer::with(conn, Weak::new(), false, false)
    }

    fn with(conn: &Conn, session: Weak<Session>, batch: bool, resumable: bool) -> Arc<PostAnswer> {
        Arc::new(PostAnswer {
            socket: conn.shared_stream(),
            extra_headers: conn.extra_headers().to_owned(),
            session,
            batch,
            resumable,
            state: Mutex::new(PostState {
                phase: Phase::Unsent,
                settled: Settled::Open,
                stream: 0,
                next_event: 0,
                out: Vec::new(),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, PostState> {
        // Each critical section writes whole events and sets whole fields.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the call closed its stream early (`Call::close_stream`).
    fn closed_early(&self) -> bool {
        self.state().phase == Phase::Closed
    }

    /// Turns the answer into an event stream: the head and the priming event.
    fn start(&self, state: &mut PostState) {
        if !self.resumable {
            state.phase = Phase::Streaming;
            sse::plain_opening(&mut state.out, &self.extra_headers);
            self.flush(state);
            return;
        }
        state.stream = self
            .session
            .upgrade()
            .map_or(0, |s| s.number_event_stream());
        let priming = EventId {
            stream: state.stream,
            event: 0,
        };
        state.next_event = 1;
        state.phase = Phase::Streaming;
        sse::opening(&mut state.out, &self.extra_headers, priming);
        self.flush(state);
    }

    /// One message as an event of the stream, or, once closed, waiting for a `GET`.
    fn event(&self, state: &mut PostState, line: &str) {
        if !self.resumable {
            sse::plain_message(&mut state.out, line);
            self.flush(state);
            return;
        }
        let id = EventId {
            stream: state.stream,
            event: state.next_event,
        };
        state.next_event += 1;
        if state.phase == Phase::Closed {
            if let Some(session) = self.session.upgrade() {
                session.park(state.stream, sse::message_text(id, line));
            }
            return;
        }
        sse::message(&mut state.out, id, line);
        self.flush(state);
    }

    fn flush(&self, state: &mut PostState) {
        let mut socket = &*self.socket;
        if let Err(e) = socket.write_all(&state.out).and_then(|()| socket.flush()) {
            log::debug!("an event for a client that has gone: {e}");
        }
        state.out.clear();
        state.out.shrink_to(4096);
    }

    /// The last message (`None`: none) of an event stream, or of a closed one.
    fn last(&self, state: &mut PostState, line: Option<&str>) {
        if let Some(line) = line {
            self.event(state, line);
        }
        if state.phase == Phase::Closed
            && let Some(session) = self.session.upgrade()
        {
            session.finish_event_stream(state.stream);
        }
    }

    /// Sends the handler's reply (`None`: a `202`) with `status`, unless it went out on the
    /// event stream already (or the watchdog answered): then the connection closes.
    fn respond(&self, conn: &mut Conn, line: Option<String>, status: u16) -> Next {
        let Some(line) = self.finish(line) else {
            conn.note_status(200);
            return Next::Close;
        };
        match line {
            None => send(conn, Response::new(202)),
            Some(line) => send(conn, reply_response(status, line)),
        }
    }

    /// The handler is done: its reply (`None`: none) goes out as the last event, or waits
    /// for a resuming `GET`, or is dropped if the watchdog has answered. Returns the reply
    /// back when nothing has been sent yet: then it is plain JSON (or a `202`), for
    /// `post_mcp` to send (the watchdog no longer can).
    #[must_use]
    fn finish(&self, line: Option<String>) -> Option<Option<String>> {
        let mut state = self.state();
        if state.settled == Settled::Watchdog {
            return None;
        }
        state.settled = Settled::Handler;
        if state.phase == Phase::Unsent {
            return Some(line);
        }
        self.last(&mut state, line.as_deref());
        None
    }
}

/// The outlet a `POST`'s handler sees: the shared answer.
struct Shared(Arc<PostAnswer>);

impl Outlet for Shared {
    fn send(&self, line: String) {
        self.0.send(line);
    }

    fn close_stream(&self) {
        self.0.close_stream();
    }

    fn answerer(&self) -> Option<Arc<dyn Answerer>> {
        (!self.0.batch).then(|| Arc::clone(&self.0) as Arc<dyn Answerer>)
    }
}

impl Outlet for PostAnswer {
    fn send(&self, line: String) {
        let mut state = self.state();
        if state.settled == Settled::Watchdog {
            return; // answered: what a timed-out tool still sends is dropped
        }
        if state.phase == Phase::Unsent {
            self.start(&mut state);
        }
        self.event(&mut state, &line);
    }

    fn close_stream(&self) {
        if !self.resumable {
            return; // 2026-07-28 resumes nothing: the answer stays on this stream
        }
        let mut state = self.state();
        match (state.settled, state.phase) {
            (Settled::Watchdog, _) | (_, Phase::Closed) => return,
            (_, Phase::Unsent) => self.start(&mut state),
            (_, Phase::Streaming) => {}
        }
        // Known to the session before the client can see the end and come back.
        if let Some(session) = self.session.upgrade() {
            session.close_event_stream(state.stream);
        }
        state.phase = Phase::Closed;
        // The body is close-delimited: this ends it. The connection itself closes once the
        // handler returns.
        let _ = self.socket.shutdown(Shutdown::Write);
    }
}

impl Answerer for PostAnswer {
    fn settle(&self) -> bool {
        let mut state = self.state();
        if state.settled == Settled::Watchdog {
            return false;
        }
        state.settled = Settled::Handler;
        true
    }

    fn answer_instead(&self, line: String) -> bool {
        let mut state = self.state();
        if state.settled != Settled::Open {
            return false;
        }
        state.settled = Settled::Watchdog;
        match state.phase {
            Phase::Unsent => {
                // A whole response; the connection's thread is still busy with the tool,
                // so it closes this connection: nothing else may follow on it.
                let response = reply_response(200, line).closing();
                let bytes = response.to_bytes(Some("close"), &self.extra_headers);
                state.out.extend_from_slice(&bytes);
                self.flush(&mut state);
                let _ = self.socket.shutdown(Shutdown::Write);
            }
            Phase::Streaming => {
                self.last(&mut state, Some(&line));
                let _ = self.socket.shutdown(Shutdown::Write);
            }
            Phase::Closed => self.last(&mut state, Some(&line)),
        }
        true
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
