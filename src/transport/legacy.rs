//! The HTTP+SSE transport of MCP 2024-11-05, which Plural Flows uses: `GET /sse` opens a
//! session and holds its stream (the first event names the POST endpoint), `POST
//! /messages?sessionId=` carries one message (or batch) whose reply travels on the stream.
//! A session lives exactly as long as its stream. A tool call past `TOOL_TIMEOUT_SECS` has
//! its error result delivered to the stream by the watchdog (`StreamAnswer`).

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::{App, Request, announces_body, read_body, refused_session, respond, send};
use crate::http::{Conn, Handoff, Next, Response};
use crate::mcp::call::{Answerer, Outlet, Settled};
use crate::mcp::rpc;
use crate::mcp::session::{Session, Transport, Undeliverable};
use crate::mcp::{self, Context, Version};

/// The answer to one `POST /messages`, and the outlet of what its handler sends before
/// it: both join the session's stream. Shared with the watchdog, which may answer in the
/// handler's place (`Answerer`): whoever settles it first gives the answer, and what the
/// handler sends after the watchdog has answered is dropped.
struct StreamAnswer {
    session: Weak<Session>,
    /// Moves the POST's connection to another thread (see `http::Conn::handoff`).
    connection: Option<Arc<Handoff>>,
    /// A batch gets one reply for all its requests: the watchdog cannot answer one of them.
    batch: bool,
    settled: Mutex<Settled>,
}

impl StreamAnswer {
    fn settled(&self) -> MutexGuard<'_, Settled> {
        // A flag: never left half-written.
        self.settled.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The handler's reply, unless the watchdog has answered.
    fn finish(&self, app: &App, session: &Arc<Session>, line: String) {
        let mut settled = self.settled();
        if *settled == Settled::Watchdog {
            return;
        }
        *settled = Settled::Handler;
        app.deliver(session, line);
    }

    /// Queues `line` for the stream under the lock (so nothing the watchdog sends is
    /// overtaken); a client that stopped reading its stream is cut off, and the stream's
    /// end closes the session.
    fn deliver(&self, line: String) {
        let Some(session) = self.session.upgrade() else {
            return;
        };
        if session.deliver(line) == Err(Undeliverable::Full) {
            log::warn!(
                "cutting the stream of sub={}: its client stopped reading it",
                session.caller.subject()
            );
            session.disconnect();
        }
    }
}

/// The outlet a `POST`'s handler sees: the shared answer.
struct Shared(Arc<StreamAnswer>);

impl Outlet for Shared {
    fn send(&self, line: String) {
        self.0.send(line);
    }

    fn free_connection(&self) {
        self.0.free_connection();
    }

    fn answerer(&self) -> Option<Arc<dyn Answerer>> {
        (!self.0.batch).then(|| Arc::clone(&self.0) as Arc<dyn Answerer>)
    }
}

impl Outlet for StreamAnswer {
    fn send(&self, line: String) {
        let settled = self.settled();
        if *settled != Settled::Watchdog {
            self.deliver(line);
        }
    }

    fn free_connection(&self) {
        if let Some(handoff) = &self.connection {
            handoff.now();
        }
    }
}

impl Answerer for StreamAnswer {
    fn settle(&self) -> bool {
        let mut settled = self.settled();
        if *settled == Settled::Watchdog {
            return false;
        }
        *settled = Settled::Handler;
        true
    }

    fn answer_instead(&self, line: String) -> bool {
        let mut settled = self.settled();
        if *settled != Settled::Open {
            return false;
        }
        *settled = Settled::Watchdog;
        self.deliver(line);
        true
    }
}

impl App {
    /// `GET /sse`: opens a session and holds its stream on this thread until the client
    /// goes or, with auth on, until the token that opened it expires.
    pub(super) fn open_legacy_stream(&self, conn: &mut Conn, request: &Request<'_>) -> Next {
        let head = request.head;
        if announces_body(head) {
            // Anything a stream's client sends after its request ends the stream (see
            // `hangup.rs`): a body would end it at once, so it is refused up front.
            let message = "GET /sse takes no body; send messages with POST to the endpoint the stream announces";
            return respond(conn, head, Response::error(400, "unexpected_body", message));
        }
        let session = match self.sessions.open(request.caller(), Transport::Legacy) {
            Ok(session) => session,
            Err(e) => return respond(conn, head, refused_session(&e)),
        };
        let Some(attached) = self.attach(conn, &session) else {
            // A new session has no stream yet; should that ever change, refuse cleanly.
            self.sessions.close(&session.id);
            let response = Response::error(503, "unavailable", "cannot open a stream; retry");
            return respond(conn, head, response.header("Retry-After", "1"));
        };
        log::info!(
            "session opened peer={} sub={} transport=sse",
            conn.peer(),
            session.caller.subject()
        );
        let endpoint = format!(
            "{}?sessionId={}",
            self.public_path("/messages"),
            session.id.as_str()
        );
        let (id, subject) = (session.id.clone(), session.caller.subject().to_string());
        let end = self.hold_stream(conn, request, session, attached, Some(&endpoint));
        // The session lives as long as its stream.
        self.sessions.close(&id);
        log::info!(
            "session closed peer={} sub={subject} ({end:?})",
            conn.peer()
        );
        Next::Close
    }

    /// `POST /messages?sessionId=…`: one JSON-RPC message (or batch) for a session. The
    /// reply goes out on the session's stream; the POST itself gets `202`.
    pub(super) fn post_legacy_message(&self, conn: &mut Conn, request: &Request<'_>) -> Next {
        let head = request.head;
        let Some(id) = head.query_param("sessionId").filter(|id| !id.is_empty()) else {
            let message =
                "missing sessionId query parameter; POST to the endpoint URL the SSE stream sent";
            return respond(
                conn,
                head,
                Response::error(400, "missing_session_id", message),
            );
        };
        let Some(session) = self
            .owned_session(request, id)
            .filter(|s| s.transport == Transport::Legacy)
        else {
            let message = "unknown sessionId: the session has ended or never existed; open a new one with GET /sse";
            return respond(conn, head, Response::error(404, "unknown_session", message));
        };
        let body = match read_body(conn, head) {
            Ok(body) => body,
            Err(next) => return next,
        };
        let message = match rpc::parse(&body) {
            Ok(message) => message,
            Err(e) => {
                self.deliver(&session, mcp::parse_error(&e).to_line());
                let message = format!("the body is not valid JSON: {e}");
                return send(conn, Response::error(400, "parse_error", &message));
            }
        };
        // Acknowledge first: the reply travels on the stream, and a slow method must not
        // hold the client's POST open.
        let next = send(conn, Response::new(202));
        let answer = Shared(Arc::new(StreamAnswer {
            session: Arc::downgrade(&session),
            connection: conn.handoff(),
            batch: matches!(message, rpc::Body::Batch(_)),
            settled: Mutex::new(Settled::Open),
        }));
        let cx = Context {
            bearer: request.head.header("authorization"),
            session: &session,
            catalog: &self.catalog.current(),
            outlet: &answer,
            // The answer goes out on the stream, not on this POST: its client leaving
            // cancels nothing.
            client_gone: &|| false,
            tool_timeout: self.config.tool_timeout,
            versions: &Version::SUPPORTED,
            adopt_uninitialized: true,
        };
        if let Some(reply) = mcp::handle(message, &cx) {
            answer.0.finish(self, &session, reply.to_line());
        }
        next
    }

    /// Queues `line` for the session's stream; a client that stopped reading it is cut off.
    fn deliver(&self, session: &Arc<Session>, line: String) {
        match session.deliver(line) {
            Ok(()) | Err(Undeliverable::NoStream) => {}
            Err(Undeliverable::Full) => {
                log::warn!(
                    "closing session of sub={}: its client stopped reading the stream",
                    session.caller.subject()
                );
                session.disconnect();
                self.sessions.close(&session.id);
            }
        }
    }
}
