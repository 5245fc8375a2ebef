//! What each request means: the route table, and the HTTP+SSE transport of MCP 2024-11-05
//! (`GET /sse` holds a stream, `POST /messages?sessionId=` feeds it). Bytes and limits are
//! `http.rs`'s job; the MCP methods are `mcp.rs`'s.

pub mod hangup;
pub mod sse;

use std::sync::Arc;
use std::time::Instant;

use crate::auth::{Authenticator, Verified};
use crate::config::Config;
use crate::http::{Conn, Handler, Head, Next, Response};
use crate::identity::Caller;
use crate::mcp::rpc;
use crate::mcp::session::{OpenError, Sessions, Undeliverable};
use crate::mcp::tools::Tool;
use crate::mcp::{self, Context};

/// The application: configuration, the token checker (when auth is on), live sessions.
pub struct App {
    pub config: Config,
    pub auth: Option<Authenticator>,
    pub sessions: Sessions,
    pub tools: &'static [Tool],
}

impl Handler for App {
    fn handle(&self, conn: &mut Conn, head: &Head) -> Next {
        let (allowed, next) = match head.path() {
            "/healthz" | "/readyz" if head.method() == "GET" || head.method() == "HEAD" => {
                return self.probe(conn, head);
            }
            "/healthz" | "/readyz" => ("GET, HEAD", false),
            "/sse" => ("GET", head.method() == "GET"),
            "/messages" => ("POST", head.method() == "POST"),
            _ => {
                let message = format!(
                    "no such endpoint: {}; MCP clients connect to GET /sse",
                    head.path()
                );
                return respond(conn, head, Response::error(404, "not_found", &message));
            }
        };
        if !next {
            let message = format!("{} accepts only {allowed}", head.path());
            let response =
                Response::error(405, "method_not_allowed", &message).header("Allow", allowed);
            return respond(conn, head, response);
        }
        let verified = match self.authenticate(conn, head) {
            Ok(verified) => verified,
            Err(next) => return next,
        };
        match allowed {
            "GET" => {
                let (caller, deadline) = match &verified {
                    None => (Caller::Anonymous, None),
                    Some(v) => (Caller::User(v.identity()), v.deadline()),
                };
                self.open_stream(conn, head, caller, deadline)
            }
            _ => self.post_message(conn, head, verified.as_ref()),
        }
    }
}

impl App {
    pub fn new(config: Config, auth: Option<Authenticator>, tools: &'static [Tool]) -> Arc<App> {
        Arc::new(App {
            sessions: Sessions::new(config.max_sessions),
            config,
            auth,
            tools,
        })
    }

    /// Whether to send this process traffic: not while shutting down, and with auth on,
    /// only while the keys are fresher than `JWKS_MAX_AGE_SECS`.
    pub fn ready(&self, shutting_down: bool) -> bool {
        !shutting_down && self.auth.as_ref().is_none_or(|auth| auth.keys_fresh())
    }

    /// `GET /healthz` (the process serves) and `GET /readyz` (it should get traffic). No
    /// token needed, and nothing about the configuration in the answer.
    fn probe(&self, conn: &mut Conn, head: &Head) -> Next {
        let ready = head.path() == "/healthz" || self.ready(conn.shutting_down());
        let response = if ready {
            Response::json(200, &serde_json::json!({ "status": "ok" }))
        } else {
            Response::json(503, &serde_json::json!({ "status": "unavailable" }))
        };
        respond(conn, head, response.header("Cache-Control", "no-store"))
    }

    /// The verified token of the request: `None` with auth off; with it on, the token's
    /// claims, or the `401` already sent.
    fn authenticate(&self, conn: &mut Conn, head: &Head) -> Result<Option<Verified>, Next> {
        let Some(auth) = &self.auth else {
            return Ok(None);
        };
        match auth.authenticate(head.all("authorization")) {
            Ok(verified) => {
                conn.note_subject(&verified.claims.subject);
                Ok(Some(verified))
            }
            Err(e) => {
                if let Some(sub) = e.subject() {
                    conn.note_subject(sub);
                }
                log::info!(
                    "refused peer={} {} {} sub={}: {e}",
                    conn.peer(),
                    head.method(),
                    head.path(),
                    e.subject().unwrap_or("-")
                );
                Err(respond(conn, head, e.response()))
            }
        }
    }

    /// `GET /sse`: opens a session and holds its stream on this thread until the client
    /// goes or, with auth on, until the token that opened it expires.
    fn open_stream(
        &self,
        conn: &mut Conn,
        head: &Head,
        caller: Caller,
        deadline: Option<Instant>,
    ) -> Next {
        if announces_body(head) {
            // Anything a stream's client sends after its request ends the stream (see
            // `hangup.rs`): a body would end it at once, so it is refused up front.
            let message = "GET /sse takes no body; send messages with POST to the endpoint the stream announces";
            return respond(conn, head, Response::error(400, "unexpected_body", message));
        }
        let socket = conn.stream().try_clone().ok();
        let (session, outbox) = match self.sessions.open(caller, socket) {
            Ok(opened) => opened,
            Err(OpenError::Full { max }) => {
                log::warn!("refusing a session: {max} are open (MAX_SESSIONS)");
                let response = Response::error(
                    503,
                    "too_many_sessions",
                    "the server holds as many sessions as it may (MAX_SESSIONS); retry later",
                );
                return respond(conn, head, response.header("Retry-After", "5"));
            }
            Err(OpenError::ShuttingDown) => {
                let response = Response::error(
                    503,
                    "shutting_down",
                    "the server is shutting down; connect again (to another replica)",
                );
                return respond(conn, head, response.header("Retry-After", "1"));
            }
            Err(OpenError::Random(e)) => {
                log::error!("cannot draw a session id from the OS random source: {e}");
                let response = Response::error(
                    503,
                    "unavailable",
                    "cannot create a session right now; retry",
                );
                return respond(conn, head, response.header("Retry-After", "1"));
            }
        };
        log::info!(
            "session opened peer={} sub={}",
            conn.peer(),
            session.caller.subject()
        );
        let endpoint = format!("/messages?sessionId={}", session.id);
        // The session holds its own sender; drop our handle so only the registry keeps it.
        let id = session.id.clone();
        let subject = session.caller.subject().to_string();
        drop(session);
        conn.note_status(200);
        conn.release_buffers();
        // The client closing its connection ends the stream at once (see `hangup.rs`).
        let _watch = hangup::watch(conn.stream(), &outbox);
        let end = sse::run(
            conn.stream(),
            &endpoint,
            &outbox,
            self.config.sse_keepalive,
            deadline,
        );
        self.sessions.close(&id);
        log::info!(
            "session closed peer={} sub={subject} ({end:?})",
            conn.peer()
        );
        Next::Close
    }

    /// `POST /messages?sessionId=…`: one JSON-RPC message (or batch) for a session. The
    /// reply goes out on the session's stream; the POST itself gets `202`.
    fn post_message(&self, conn: &mut Conn, head: &Head, verified: Option<&Verified>) -> Next {
        let Some(id) = head.query_param("sessionId").filter(|id| !id.is_empty()) else {
            let message =
                "missing sessionId query parameter; POST to the endpoint URL the SSE stream sent";
            return respond(
                conn,
                head,
                Response::error(400, "missing_session_id", message),
            );
        };
        // A session belongs to whoever opened it: to anyone else it does not exist.
        let owned = |s: &Arc<crate::mcp::session::Session>| match verified {
            None => s.caller == Caller::Anonymous,
            Some(v) => s.caller.is(v.claims.issuer.as_deref(), &v.claims.subject),
        };
        let Some(session) = self.sessions.get(id).filter(owned) else {
            let message = "unknown sessionId: the session has ended or never existed; open a new one with GET /sse";
            return respond(conn, head, Response::error(404, "unknown_session", message));
        };
        let body = match conn.read_body(head) {
            Ok(body) => body,
            Err(e) => {
                let status = e.status().unwrap_or(400);
                let _ = conn.send(&Response::error(status, e.code(), &e.to_string()).closing());
                return Next::Close;
            }
        };
        let message = match rpc::parse(&body) {
            Ok(message) => message,
            Err(e) => {
                let _ = session.deliver(mcp::parse_error(&e));
                let message = format!("the body is not valid JSON: {e}");
                return send(conn, Response::error(400, "parse_error", &message));
            }
        };
        // Acknowledge first: the reply travels on the stream, and a slow method must not
        // hold the client's POST open.
        let next = send(conn, Response::new(202));
        let cx = Context {
            state: &session.state,
            caller: &session.caller,
            tools: self.tools,
            adopt_uninitialized: true,
        };
        if let Some(reply) = mcp::handle(message, &cx) {
            match session.deliver(reply) {
                Ok(()) | Err(Undeliverable::Closed) => {}
                Err(Undeliverable::Full) => {
                    log::warn!(
                        "closing session of sub={}: its client stopped reading the stream",
                        session.caller.subject()
                    );
                    self.sessions.close(&session.id);
                    session.disconnect();
                }
            }
        }
        next
    }
}

/// Sends `response` to a request whose body was not read: if it announced one, the
/// connection closes, since the unread bytes cannot be told from the next request.
fn respond(conn: &mut Conn, head: &Head, response: Response) -> Next {
    send(
        conn,
        if announces_body(head) {
            response.closing()
        } else {
            response
        },
    )
}

fn announces_body(head: &Head) -> bool {
    head.all("transfer-encoding").next().is_some() || head.all("content-length").any(|v| v != b"0")
}

fn send(conn: &mut Conn, response: Response) -> Next {
    let close = response.is_closing();
    match conn.send(&response) {
        Ok(()) if !close => Next::KeepAlive,
        _ => Next::Close,
    }
}
