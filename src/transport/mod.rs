//! What each request means: the route table, the checks every MCP endpoint shares (the
//! DNS-rebinding guard, CORS, the token), and the two transports as thin adapters over the
//! one core in `mcp/` (sessions, dispatch, catalog):
//! - `legacy.rs`: HTTP+SSE of MCP 2024-11-05 (`GET /sse` holds a stream, `POST /messages`
//!   feeds it), which Plural Flows uses;
//! - `streamable.rs`: Streamable HTTP on `/mcp` (2025-03-26 and later).
//!
//! Bytes and limits are `http.rs`'s job; `sse.rs` holds a stream; `hangup.rs` notices a
//! stream's client leaving; `auth.rs` turns a refused token into a `401`.

pub mod auth;
pub mod hangup;
mod legacy;
pub mod sse;
mod streamable;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::auth::{Authenticator, ProtectedResource, Verified};
use crate::config::Config;
use crate::http::{Conn, Handler, Head, Next, Response};
use crate::identity::Caller;
use crate::mcp::catalog::Live;
use crate::mcp::session::{OpenError, Session, Sessions};

/// The application: configuration, the token checker (when auth is on), live sessions.
pub struct App {
    pub config: Config,
    pub auth: Option<Authenticator>,
    /// Shared with the watchdog (`mcp/watchdog.rs`) and the catalog's notifications.
    pub sessions: Arc<Sessions>,
    /// What the server offers (it may change while the server runs).
    pub catalog: Arc<Live>,
    /// Listening on a loopback address only: a `Host` that is not a loopback name is a
    /// DNS-rebinding attempt.
    loopback: bool,
}

/// The MCP endpoints and the methods each offers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Sse,
    Messages,
    Mcp,
}

impl Endpoint {
    fn allow(self) -> &'static str {
        match self {
            Endpoint::Sse => "GET, OPTIONS",
            Endpoint::Messages => "POST, OPTIONS",
            Endpoint::Mcp => "GET, POST, DELETE, OPTIONS",
        }
    }

    fn offers(self, method: &str) -> bool {
        matches!(
            (self, method),
            (Endpoint::Sse, "GET")
                | (Endpoint::Messages, "POST")
                | (Endpoint::Mcp, "GET" | "POST" | "DELETE")
        )
    }
}

/// The request headers a browser may send to an MCP endpoint (CORS preflight answer).
const CORS_ALLOW_HEADERS: &str =
    "Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID";
/// The response headers a browser client may read.
const CORS_EXPOSE_HEADERS: &str = "Mcp-Session-Id, WWW-Authenticate";

impl Handler for App {
    fn handle(&self, conn: &mut Conn, head: &Head) -> Next {
        if head.path().starts_with(crate::auth::WELL_KNOWN) {
            return self.resource_metadata(conn, head);
        }
        let Some(path) = self.route_path(head.path()) else {
            return not_found(conn, head);
        };
        let endpoint = match path {
            "/healthz" | "/readyz" if matches!(head.method(), "GET" | "HEAD") => {
                return self.probe(conn, head, path);
            }
            "/healthz" | "/readyz" => {
                let message = format!("{} accepts only GET, HEAD", head.path());
                let response = Response::error(405, "method_not_allowed", &message)
                    .header("Allow", "GET, HEAD");
                return respond(conn, head, response);
            }
            "/sse" => Endpoint::Sse,
            "/messages" => Endpoint::Messages,
            "/mcp" => Endpoint::Mcp,
            _ => return not_found(conn, head),
        };
        if let Err(response) = self.guard(conn, head) {
            return respond(conn, head, response);
        }
        if head.method() == "OPTIONS" {
            return self.preflight(conn, head, endpoint);
        }
        if !endpoint.offers(head.method()) {
            let message = format!("{} accepts only {}", head.path(), endpoint.allow());
            let response = Response::error(405, "method_not_allowed", &message)
                .header("Allow", endpoint.allow());
            return respond(conn, head, response);
        }
        let verified = match self.authenticate(conn, head) {
            Ok(verified) => verified,
            Err(next) => return next,
        };
        let request = Request {
            head,
            verified: verified.as_ref(),
        };
        match (endpoint, head.method()) {
            (Endpoint::Sse, _) => self.open_legacy_stream(conn, &request),
            (Endpoint::Messages, _) => self.post_legacy_message(conn, &request),
            (Endpoint::Mcp, "POST") => self.post_mcp(conn, &request),
            (Endpoint::Mcp, "GET") => self.get_mcp(conn, &request),
            (Endpoint::Mcp, _) => self.delete_mcp(conn, &request),
        }
    }
}

/// An authenticated request to an MCP endpoint.
struct Request<'a> {
    head: &'a Head,
    /// The verified token; `None` with auth off.
    verified: Option<&'a Verified>,
}

impl Request<'_> {
    /// The caller, as a session records it.
    fn caller(&self) -> Caller {
        self.verified.map_or(Caller::Anonymous, Verified::caller)
    }
}

impl App {
    pub fn new(
        config: Config,
        auth: Option<Authenticator>,
        catalog: Arc<Live>,
        local: SocketAddr,
    ) -> Arc<App> {
        let sessions = Arc::new(Sessions::new(config.max_sessions, config.session_idle));
        catalog.serve(&sessions);
        if let Some(gateway) = &catalog.current().upstream {
            gateway.serve(&sessions);
        }
        Arc::new(App {
            sessions,
            loopback: local.ip().is_loopback(),
            config,
            auth,
            catalog,
        })
    }

    /// The protected resource metadata (RFC 9728), when configured.
    fn metadata(&self) -> Option<&ProtectedResource> {
        self.config.auth.as_ref()?.metadata.as_ref()
    }

    /// `GET /.well-known/oauth-protected-resource[/<resource path>]`: the metadata
    /// document, public (a client reads it before it has a token); `404` when none is
    /// configured.
    fn resource_metadata(&self, conn: &mut Conn, head: &Head) -> Next {
        let Some(metadata) = self.metadata().filter(|m| m.serves(head.path())) else {
            return not_found(conn, head);
        };
        if !matches!(head.method(), "GET" | "HEAD") {
            let message = format!("{} accepts only GET, HEAD", head.path());
            let response =
                Response::error(405, "method_not_allowed", &message).header("Allow", "GET, HEAD");
            return respond(conn, head, response);
        }
        let response = Response::new(200)
            .header("Content-Type", "application/json")
            .header("Cache-Control", "max-age=3600")
            .body(metadata.document().to_string().into_bytes());
        respond(conn, head, response)
    }

    /// Whether to send this process traffic: not while shutting down, and with auth on,
    /// only while the keys are fresher than `JWKS_MAX_AGE_SECS`.
    pub fn ready(&self, shutting_down: bool) -> bool {
        !shutting_down && self.auth.as_ref().is_none_or(|auth| auth.keys_fresh())
    }

    /// The path without `BASE_PATH`; `None` when it does not carry it.
    fn route_path<'p>(&self, path: &'p str) -> Option<&'p str> {
        let base = self.config.base_path.as_str();
        let rest = path.strip_prefix(base)?;
        rest.starts_with('/').then_some(rest)
    }

    /// A route as clients must call it (with `BASE_PATH`).
    fn public_path(&self, route: &str) -> String {
        format!("{}{route}", self.config.base_path)
    }

    /// `GET /healthz` (the process serves) and `GET /readyz` (it should get traffic). No
    /// token needed, and nothing about the configuration in the answer.
    fn probe(&self, conn: &mut Conn, head: &Head, path: &str) -> Next {
        let ready = path == "/healthz" || self.ready(conn.shutting_down());
        let response = if ready {
            Response::json(200, &serde_json::json!({ "status": "ok" }))
        } else {
            Response::json(503, &serde_json::json!({ "status": "unavailable" }))
        };
        respond(conn, head, response.header("Cache-Control", "no-store"))
    }

    /// DNS-rebinding protection, and CORS answers for listed origins. While listening on
    /// loopback, a `Host` that is not a loopback name is refused; an `Origin` is refused
    /// unless it is listed in `ALLOWED_ORIGINS` or (on loopback) is itself a loopback
    /// origin. Requests without `Origin` (every non-browser client) pass.
    fn guard(&self, conn: &mut Conn, head: &Head) -> Result<(), Response> {
        if head.all("host").nth(1).is_some() {
            // RFC 9112 §3.2: more than one Host is a 400; and which one a proxy in front
            // would have read cannot be known.
            return Err(Response::error(
                400,
                "bad_host",
                "the request has more than one Host header",
            ));
        }
        if self.loopback
            && let Some(host) = head.header("host")
            && !is_loopback_authority(host)
            && !self.allowed_host(host)
        {
            log::info!("refused peer={}: Host is not a loopback name", conn.peer());
            return Err(Response::error(
                403,
                "forbidden_host",
                "the Host header names no loopback address, but the server listens on loopback only (DNS rebinding protection); connect to localhost or 127.0.0.1, or list this host name in ALLOWED_HOSTS (a reverse proxy on this machine), or set HOST to listen elsewhere",
            ));
        }
        let Some(origin) = head.all("origin").next() else {
            return Ok(());
        };
        let origin = std::str::from_utf8(origin).unwrap_or("").trim();
        let listed = self.listed_origin(origin);
        let local = self.loopback
            && origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .is_some_and(is_loopback_authority);
        if !listed && !local {
            log::info!("refused peer={}: Origin not allowed", conn.peer());
            return Err(Response::error(
                403,
                "forbidden_origin",
                "this Origin may not call the server; list it in ALLOWED_ORIGINS to allow a browser client from it",
            ));
        }
        if listed {
            conn.add_header("Access-Control-Allow-Origin", origin);
            conn.add_header("Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS);
            conn.add_header("Vary", "Origin");
        }
        Ok(())
    }

    /// Whether `origin` is listed in `ALLOWED_ORIGINS` (and so gets CORS answers).
    fn listed_origin(&self, origin: &str) -> bool {
        self.config
            .allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// Whether `authority`'s host name (without its port) is listed in `ALLOWED_HOSTS`.
    fn allowed_host(&self, authority: &str) -> bool {
        let name = match authority.trim().rsplit_once(':') {
            Some((name, port)) if port.parse::<u16>().is_ok() => name,
            _ => authority.trim(),
        };
        self.config
            .allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
    }

    /// A CORS preflight (`OPTIONS`) to an MCP endpoint: only listed origins get one.
    fn preflight(&self, conn: &mut Conn, head: &Head, endpoint: Endpoint) -> Next {
        let listed = head
            .header("origin")
            .is_some_and(|origin| self.listed_origin(origin.trim()));
        if !listed {
            let response = Response::new(204).header("Allow", endpoint.allow());
            return respond(conn, head, response);
        }
        let response = Response::new(204)
            .header("Access-Control-Allow-Methods", endpoint.allow())
            .header("Access-Control-Allow-Headers", CORS_ALLOW_HEADERS)
            .header("Access-Control-Max-Age", "600");
        respond(conn, head, response)
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
                Err(respond(conn, head, auth::unauthorized(&e, self.metadata())))
            }
        }
    }

    /// The session `id`, if it exists and belongs to this request's caller. To anyone
    /// else a session does not exist: the same answer as an unknown id.
    fn owned_session(&self, request: &Request<'_>, id: &str) -> Option<Arc<Session>> {
        let session = self.sessions.get(id)?;
        let owned = match request.verified {
            None => session.caller == Caller::Anonymous,
            Some(v) => session
                .caller
                .is(v.claims.issuer.as_deref(), &v.claims.subject),
        };
        owned.then_some(session)
    }
}

/// A stream attached to a session, held by its connection's thread.
struct Attached {
    outbox: crate::mcp::outbox::Receiver,
    ticket: crate::mcp::session::Ticket,
    /// The `POST` event stream this `GET` resumes (SEP-1699); `None`: the session's own.
    resumes: Option<u64>,
}

impl App {
    /// Attaches this connection's stream to `session`; `None` when it already has one.
    fn attach(&self, conn: &mut Conn, session: &Session) -> Option<Attached> {
        let (outbox, ticket) = session.attach(Some(conn.shared_stream())).ok()?;
        Some(Attached {
            outbox,
            ticket,
            resumes: None,
        })
    }

    /// Holds an attached stream on this thread: the head (and `endpoint` event, if any),
    /// then the session's messages and keep-alives, until the client goes (noticed at once,
    /// see `hangup.rs`), the session goes, or the request's token expires. The session is
    /// held only weakly meanwhile (see `mcp/session.rs`); the stream is detached at the end.
    fn hold_stream(
        &self,
        conn: &mut Conn,
        request: &Request<'_>,
        session: Arc<Session>,
        attached: Attached,
        endpoint: Option<&str>,
    ) -> sse::End {
        conn.note_status(200);
        conn.release_buffers();
        let _watch = hangup::watch(conn.stream(), &attached.outbox);
        let extra_headers = conn.extra_headers().to_owned();
        let opening = sse::Opening {
            extra_headers: &extra_headers,
            endpoint,
            resumed: attached.resumes.is_some(),
        };
        let deadline = request.verified.and_then(|v| v.deadline());
        let weak = Arc::downgrade(&session);
        drop(session);
        let end = sse::run(
            conn.stream(),
            opening,
            &attached.outbox,
            self.config.sse_keepalive,
            deadline,
        );
        if let Some(session) = weak.upgrade() {
            match attached.resumes {
                Some(stream) => session.detach_resumed(stream, &attached.ticket),
                None => session.detach(&attached.ticket),
            }
        }
        end
    }
}

/// The answer to a session that could not be opened.
fn refused_session(e: &OpenError) -> Response {
    match e {
        OpenError::Full { max } => {
            log::warn!("refusing a session: {max} are open (MAX_SESSIONS)");
            Response::error(
                503,
                "too_many_sessions",
                "the server holds as many sessions as it may (MAX_SESSIONS); retry later",
            )
            .header("Retry-After", "5")
        }
        OpenError::ShuttingDown => Response::error(
            503,
            "shutting_down",
            "the server is shutting down; connect again (to another replica)",
        )
        .header("Retry-After", "1"),
        OpenError::Random(e) => {
            log::error!("cannot draw a session id from the OS random source: {e}");
            Response::error(
                503,
                "unavailable",
                "cannot create a session right now; retry",
            )
            .header("Retry-After", "1")
        }
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` naming a loopback address or `localhost`.
fn is_loopback_authority(authority: &str) -> bool {
    let authority = authority.trim();
    let is_port = |port: &str| port.parse::<u16>().is_ok();
    let host = if let Some(rest) = authority.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, "")) => v6,
            Some((v6, port)) if port.strip_prefix(':').is_some_and(is_port) => v6,
            _ => return false,
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) if is_port(port) => host,
            Some(_) => return false,
            None => authority,
        }
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn not_found(conn: &mut Conn, head: &Head) -> Next {
    let message = format!(
        "no such endpoint: {}; MCP clients connect to /mcp (Streamable HTTP) or GET /sse (HTTP+SSE)",
        head.path()
    );
    respond(conn, head, Response::error(404, "not_found", &message))
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

/// The request's body, or the refusal already sent (`413`, `408`, `400`…) after which the
/// connection closes.
fn read_body(conn: &mut Conn, head: &Head) -> Result<Vec<u8>, Next> {
    conn.read_body(head).map_err(|e| {
        let status = e.status().unwrap_or(400);
        let _ = conn.send(&Response::error(status, e.code(), &e.to_string()).closing());
        Next::Close
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_authorities_are_told_from_others() {
        for ok in [
            "localhost",
            "LOCALHOST:3000",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.1.2.3",
            "[::1]",
            "[::1]:3000",
        ] {
            assert!(is_loopback_authority(ok), "{ok}");
        }
        for bad in [
            "evil.com",
            "evil.com:3000",
            "localhost.evil.com",
            "127.0.0.1.evil.com",
            "10.0.0.1",
            "[::2]:80",
            "localhost:x",
            "[::1]x",
            "",
            "::1",
            "localhost::3000",
        ] {
            assert!(!is_loopback_authority(bad), "{bad}");
        }
    }
}
