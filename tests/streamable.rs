//! Streamable HTTP on `/mcp`, over real HTTP on an ephemeral loopback port: the session
//! handshake, every status code the transport defines, `DELETE`, the `GET` stream (one at
//! a time), expiry, the DNS-rebinding guard and CORS, `BASE_PATH`, and sessions shared
//! with the legacy transport under one `MAX_SESSIONS`.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::BufRead;
use std::sync::OnceLock;
use std::time::Duration;

use common::issuer::{self, Issuer, plural_claims};
use common::jwks_server::JwksServer;
use common::{
    ACCEPT_BOTH, HttpResponse, McpClient, SseClient, auth_settings, eventually, request_with,
    spawn, test_config, with_auth,
};
use mcp_warden::config::Config;
use serde_json::{Value, json};

fn assert_error(r: &HttpResponse, status: u16, code: &str) {
    let body = String::from_utf8_lossy(&r.body);
    assert_eq!(r.status, status, "{body}");
    assert_eq!(r.json()["error"], code, "{body}");
}

fn initialized(addr: std::net::SocketAddr) -> McpClient {
    let mut c = McpClient::new(addr);
    c.initialize("2025-06-18");
    c
}

#[test]
fn initialize_names_a_session_that_later_requests_use() {
    let server = spawn(test_config());
    let mut c = McpClient::new(server.local_addr());
    let result = c.initialize("2025-11-25");
    assert_eq!(result["protocolVersion"], "2025-11-25");
    let id = c.session.clone().unwrap();
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    let reply = c.call(
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "over /mcp"}}),
    );
    assert_eq!(
        reply["result"]["content"][0]["text"],
        "Tool echo: over /mcp"
    );
    assert_eq!(server.session_count(), 1);
    // Another initialize is another session.
    let other = initialized(server.local_addr());
    assert_ne!(other.session, c.session);
    assert_eq!(server.session_count(), 2);
}

#[test]
fn notifications_and_client_answers_get_202_and_no_body() {
    let server = spawn(test_config());
    let c = initialized(server.local_addr());
    for message in [
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}),
        json!({"jsonrpc": "2.0", "id": "mcp-warden-9", "result": {}}),
    ] {
        let r = c.post(&message);
        assert_eq!(r.status, 202, "{message}");
        assert!(r.body.is_empty());
    }
}

#[test]
fn accept_and_content_type_are_checked() {
    let server = spawn(test_config());
    let c = initialized(server.local_addr());
    let ping = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let headers = c.session_headers();
    for accept in [
        "",
        "Accept: application/json\r\n",
        "Accept: text/event-stream\r\n",
    ] {
        let r = request_with(
            server.local_addr(),
            "POST",
            "/mcp",
            &format!("{accept}{headers}"),
            ping,
        );
        assert_error(&r, 406, "not_acceptable");
    }
    for accept in ["Accept: */*\r\n", "Accept: application/*, text/*;q=0.5\r\n"] {
        let r = request_with(
            server.local_addr(),
            "POST",
            "/mcp",
            &format!("{accept}{headers}"),
            ping,
        );
        assert_eq!(r.status, 200, "{accept}");
    }
    // `request_with` sends Content-Type: application/json; send another by hand.
    let raw = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\n{ACCEPT_BOTH}{headers}Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        ping.len()
    );
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(ping);
    assert_error(
        &common::raw(server.local_addr(), &bytes),
        415,
        "unsupported_media_type",
    );
    let charset = c.post_raw("", ping); // application/json is what the helper sends
    assert_eq!(charset.status, 200);
}

#[test]
fn requests_without_a_usable_session_are_400_or_404() {
    let server = spawn(test_config());
    let mut c = initialized(server.local_addr());
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let id = c.session.take();
    assert_error(&c.post(&ping), 400, "missing_session_id");
    c.session = Some("0123456789abcdef0123456789abcdef".into());
    assert_error(&c.post(&ping), 404, "unknown_session");
    assert_error(&c.delete(), 404, "unknown_session");
    c.session = id;
    // initialize is the one request that must come without a session.
    let init = json!({"jsonrpc": "2.0", "id": 2, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}}});
    assert_error(&c.post(&init), 400, "session_id_on_initialize");
    assert_eq!(c.call(3, "ping", json!({}))["result"], json!({}));
}

#[test]
fn the_protocol_version_header_is_checked_and_may_be_absent() {
    let server = spawn(test_config());
    let mut c = initialized(server.local_addr());
    c.version = Some("2024-01-01".into());
    let r = c.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}));
    assert_error(&r, 400, "unsupported_protocol_version");
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("2025-11-25") && message.contains("2025-03-26"),
        "{message}"
    );
    // 2024-11-05 had no Streamable HTTP: not served on /mcp, and not negotiated there.
    c.version = Some("2024-11-05".into());
    assert_error(
        &c.post(&json!({"jsonrpc": "2.0", "id": 3, "method": "ping"})),
        400,
        "unsupported_protocol_version",
    );
    let mut old = McpClient::new(server.local_addr());
    assert_eq!(
        old.initialize("2024-11-05")["protocolVersion"],
        "2025-11-25"
    );
    // Absent: taken as 2025-03-26, and served.
    c.version = None;
    assert_eq!(c.call(2, "ping", json!({}))["result"], json!({}));
}

#[test]
fn malformed_bodies_are_400_with_a_json_rpc_error() {
    let server = spawn(test_config());
    let c = initialized(server.local_addr());
    let r = c.post_raw("", b"{not json");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32700);
    let r = c.post(&json!({"jsonrpc": "1.0", "id": 1, "method": "ping"}));
    assert_eq!(
        r.status, 200,
        "a request with an id gets its error as its answer"
    );
    assert_eq!(r.json()["error"]["code"], -32600);
    // A batch outside a 2025-03-26 session is refused as a whole.
    let r = c.post(&json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32600);
    // A failing initialize opens no session.
    let fresh = McpClient::new(server.local_addr());
    let r = fresh.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["error"]["code"], -32602);
    assert_eq!(r.header("mcp-session-id"), None);
    assert_eq!(server.session_count(), 1);
}

#[test]
fn batches_are_answered_in_2025_03_26_sessions() {
    let server = spawn(test_config());
    let mut c = McpClient::new(server.local_addr());
    c.initialize("2025-03-26");
    let r = c.post(&json!([
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 0}},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]));
    assert_eq!(r.status, 200);
    let replies = r.json();
    let ids: Vec<&Value> = replies
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["id"])
        .collect();
    assert_eq!(ids, [&json!(1), &json!(2)]);
    // Only notifications: 202.
    let r = c.post(&json!([{"jsonrpc": "2.0", "method": "notifications/initialized"}]));
    assert_eq!(r.status, 202);
}

#[test]
fn delete_ends_the_session() {
    let server = spawn(test_config());
    let c = initialized(server.local_addr());
    let r = c.delete();
    assert_eq!(r.status, 204);
    assert_eq!(r.header("content-length"), None, "a 204 says no length");
    assert_eq!(server.session_count(), 0);
    assert_error(
        &c.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})),
        404,
        "unknown_session",
    );
    assert_error(&c.delete(), 404, "unknown_session");
}

#[test]
fn one_get_stream_at_a_time_and_a_closed_one_makes_room_for_the_next() {
    let server = spawn(test_config());
    let c = initialized(server.local_addr());
    let first = c.open_stream().unwrap();
    assert_error(&c.open_stream().unwrap_err(), 409, "stream_open");
    // Without `Accept: text/event-stream`: 406.
    let r = request_with(
        server.local_addr(),
        "GET",
        "/mcp",
        &c.session_headers(),
        b"",
    );
    assert_error(&r, 406, "not_acceptable");
    drop(first);
    // The closed stream is noticed at once (no keep-alive needed), so a new one opens.
    let mut again = None;
    assert!(eventually(Duration::from_secs(5), || {
        again = c.open_stream().ok();
        again.is_some()
    }));
    // The session outlived its streams, and its keep-alives flow on the new one.
    assert_eq!(c.call(1, "ping", json!({}))["result"], json!({}));
    let mut line = String::new();
    again.unwrap().read_line(&mut line).unwrap();
    assert_eq!(line, ": keep-alive\n");
}

#[test]
fn delete_ends_the_sessions_get_stream() {
    let server = spawn(test_config());
    let c = initialized(server.local_addr());
    let mut stream = c.open_stream().unwrap();
    assert_eq!(c.delete().status, 204);
    let rest = common::read_to_eof(&mut stream, "the GET stream after DELETE");
    assert!(
        rest.iter().all(|&b| b == b':' || b.is_ascii()),
        "only keep-alives, then the end"
    );
}

#[test]
fn an_idle_session_expires_but_not_while_its_stream_is_open() {
    let server = spawn(Config {
        session_idle: Duration::from_millis(300),
        ..test_config()
    });
    let quiet = initialized(server.local_addr());
    let streaming = initialized(server.local_addr());
    let stream = streaming.open_stream().unwrap();
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    // Any request counts as use, so polling would keep it alive: wait out the idle time
    // itself (what is tested), then ask once.
    std::thread::sleep(Duration::from_millis(400));
    assert_error(&quiet.post(&ping), 404, "unknown_session");
    assert_eq!(streaming.call(2, "ping", json!({}))["result"], json!({}));
    drop(stream);
}

#[test]
fn wrong_methods_get_405_with_allow() {
    let server = spawn(test_config());
    for method in ["PUT", "PATCH"] {
        let r = request_with(server.local_addr(), method, "/mcp", ACCEPT_BOTH, b"");
        assert_error(&r, 405, "method_not_allowed");
        assert_eq!(r.header("allow"), Some("GET, POST, DELETE, OPTIONS"));
    }
}

#[test]
fn max_sessions_counts_both_transports() {
    let server = spawn(Config {
        max_sessions: 2,
        max_connections: 10,
        ..test_config()
    });
    let addr = server.local_addr();
    let _legacy = SseClient::open(addr);
    let _streamable = initialized(addr);
    let mut third = McpClient::new(addr);
    let r = third.post(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}}}));
    assert_error(&r, 503, "too_many_sessions");
    assert_eq!(r.header("retry-after"), Some("5"));
    let r = request_with(addr, "GET", "/sse", "", b"");
    assert_error(&r, 503, "too_many_sessions");
    third.session = None;
}

// ---- DNS rebinding and CORS -----------------------------------------------------------

#[test]
fn a_host_that_is_not_loopback_is_refused_on_a_loopback_server() {
    let server = spawn(test_config());
    let addr = server.local_addr();
    for path in ["/mcp", "/sse", "/messages?sessionId=x"] {
        let raw = format!(
            "POST {path} HTTP/1.1\r\nHost: evil.example:{}\r\n{ACCEPT_BOTH}Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
            addr.port()
        );
        assert_error(&common::raw(addr, raw.as_bytes()), 403, "forbidden_host");
    }
    // Two Host headers: which one a proxy in front read cannot be known (RFC 9112 §3.2).
    let raw =
        b"GET /mcp HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n";
    assert_error(&common::raw(addr, raw), 400, "bad_host");
    for host in ["localhost", "127.0.0.1", "[::1]"] {
        let mut c = McpClient::new(addr);
        c.headers = format!("Origin: http://{host}:{}\r\n", addr.port());
        let raw = format!(
            "GET /healthz HTTP/1.1\r\nHost: {host}:{}\r\nConnection: close\r\n\r\n",
            addr.port()
        );
        assert_eq!(common::raw(addr, raw.as_bytes()).status, 200);
        c.initialize("2025-06-18"); // a loopback Origin passes
    }
}

#[test]
fn a_host_listed_in_allowed_hosts_passes_on_a_loopback_server() {
    // A reverse proxy on the same machine forwards its public name.
    let server = spawn(Config {
        allowed_hosts: vec!["mcp.example.com".into()],
        ..test_config()
    });
    let addr = server.local_addr();
    let get = |host: &str| {
        let raw = format!(
            "GET /mcp HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n"
        );
        common::raw(addr, raw.as_bytes())
    };
    // Past the guard (then 400 for the missing session id).
    assert_error(&get("mcp.example.com"), 400, "missing_session_id");
    assert_error(&get("MCP.example.com:443"), 400, "missing_session_id");
    assert_error(&get("evil.example"), 403, "forbidden_host");
    assert_error(&get("mcp.example.com.evil.example"), 403, "forbidden_host");
}

#[test]
fn an_origin_not_allowed_is_refused_and_a_listed_one_gets_cors_answers() {
    let server = spawn(Config {
        allowed_origins: vec!["https://app.example.com".into()],
        ..test_config()
    });
    let addr = server.local_addr();
    let mut evil = McpClient::new(addr);
    evil.headers = "Origin: http://evil.example\r\n".into();
    let r = evil.post(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}}}));
    assert_error(&r, 403, "forbidden_origin");
    assert_eq!(r.header("access-control-allow-origin"), None);
    let mut app = McpClient::new(addr);
    app.headers = "Origin: https://app.example.com\r\n".into();
    let preflight = request_with(
        addr,
        "OPTIONS",
        "/mcp",
        "Origin: https://app.example.com\r\nAccess-Control-Request-Method: POST\r\n",
        b"",
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let allowed = preflight.header("access-control-allow-headers").unwrap();
    for name in ["Mcp-Session-Id", "MCP-Protocol-Version", "Authorization"] {
        assert!(allowed.contains(name), "{allowed}");
    }
    assert!(
        preflight
            .header("access-control-allow-methods")
            .unwrap()
            .contains("DELETE")
    );
    let r = app.post(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}}}));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(
        r.header("access-control-expose-headers")
            .unwrap()
            .contains("Mcp-Session-Id")
    );
    // The legacy stream answers listed origins the same way.
    let r = SseClient::open_with(addr, "Origin: https://app.example.com\r\n");
    assert_eq!(
        r.head.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
}

// ---- BASE_PATH --------------------------------------------------------------------------

#[test]
fn base_path_prefixes_every_route_and_the_legacy_endpoint() {
    let server = spawn(Config {
        base_path: "/tools".into(),
        ..test_config()
    });
    let addr = server.local_addr();
    let mut c = McpClient::new(addr);
    c.path = "/tools/mcp".into();
    c.initialize("2025-06-18");
    assert_eq!(c.call(1, "ping", json!({}))["result"], json!({}));
    assert_error(
        &request_with(addr, "POST", "/mcp", ACCEPT_BOTH, b"{}"),
        404,
        "not_found",
    );
    assert_eq!(
        request_with(addr, "GET", "/tools/healthz", "", b"").status,
        200
    );
    let mut sse = SseClient::open_path(addr, "/tools/sse");
    assert!(
        sse.endpoint.starts_with("/tools/messages?sessionId="),
        "{}",
        sse.endpoint
    );
    sse.initialize("2025-06-18");
}

// ---- authentication ---------------------------------------------------------------------

fn rsa() -> &'static Issuer {
    static KEY: OnceLock<Issuer> = OnceLock::new();
    KEY.get_or_init(|| Issuer::rsa(Some("rsa-1")))
}

fn token(sub: &str) -> String {
    rsa().token(&plural_claims(
        sub,
        &format!("{sub}@example.com"),
        &["sre"],
        3600,
    ))
}

#[test]
fn a_token_is_needed_on_every_request_and_sessions_belong_to_their_subject() {
    let jwks = JwksServer::start(issuer::jwks(&[rsa().jwk()]));
    let server = spawn(with_auth(auth_settings(jwks.url(), "sre")));
    let addr = server.local_addr();
    let mut alice = McpClient::authed(addr, &token("alice"));
    alice.initialize("2025-06-18");
    let who = alice.call(1, "tools/call", json!({"name": "whoami"}));
    assert!(
        who["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("alice")
    );
    // No token: 401 with a challenge, whatever the method.
    let mut anonymous = McpClient::new(addr);
    anonymous.session = alice.session.clone();
    let r = anonymous.post(&json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}));
    assert_error(&r, 401, "missing_token");
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer "));
    assert_eq!(anonymous.delete().status, 401);
    // Mallory's valid token on Alice's session: it does not exist, DELETE included.
    let mut mallory = McpClient::authed(addr, &token("mallory"));
    mallory.session = alice.session.clone();
    let r = mallory.post(&json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}));
    assert_error(&r, 404, "unknown_session");
    assert_error(&mallory.delete(), 404, "unknown_session");
    assert_error(&mallory.open_stream().unwrap_err(), 404, "unknown_session");
    // Alice's session is unharmed.
    assert_eq!(alice.call(4, "ping", json!({}))["result"], json!({}));
    assert_eq!(alice.delete().status, 204);
}
