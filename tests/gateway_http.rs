//! The gate in front of an MCP server over Streamable HTTP (`UPSTREAM_URL`), over real
//! HTTP on both sides: the upstream is another mcp-warden (its built-in echo, whoami and
//! ask), or a raw socket playing an upstream that is down, slow, or answers garbage.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use common::issuer::{Issuer, jwks, plural_claims};
use common::jwks_server::JwksServer;
use common::{
    McpClient, SseClient, auth_settings, eventually, spawn, spawn_with, test_config, with_auth,
};
use mcp_warden::config::Config;
use mcp_warden::gateway::Upstream;
use mcp_warden::{Server, StartError};
use serde_json::{Value, json};

fn config() -> Config {
    Config {
        tool_timeout: Duration::from_secs(2),
        ..test_config()
    }
}

fn gate(config: Config, url: String) -> Server {
    spawn_with(config, Server::builder().upstream(Upstream::url(url)))
}

fn text(reply: &Value) -> String {
    reply["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {reply}"))
        .to_string()
}

#[test]
fn each_session_is_a_session_of_its_own_at_the_upstream_and_ends_with_it() {
    let upstream = spawn(test_config());
    let server = gate(config(), format!("http://{}/mcp", upstream.local_addr()));
    let mut a = McpClient::new(server.local_addr());
    let init = a.initialize("2025-11-25");
    assert_eq!(init["serverInfo"]["name"], "mcp-warden");
    let echo = a.call(
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "hi"}}),
    );
    assert_eq!(text(&echo), "Tool echo: hi");
    let mut b = McpClient::new(server.local_addr());
    b.initialize("2025-06-18");
    assert_eq!(
        upstream.session_count(),
        2,
        "one upstream session per client session"
    );
    // The upstream's session ids stay here: the client sees only its own.
    assert_ne!(a.session, b.session);
    assert_eq!(a.delete().status, 204);
    assert_eq!(b.delete().status, 204);
    assert!(eventually(Duration::from_secs(5), || upstream
        .session_count()
        == 0));
}

#[test]
fn the_upstreams_questions_reach_the_client_and_its_answers_go_back() {
    let upstream = spawn(test_config());
    let server = gate(config(), format!("http://{}/mcp", upstream.local_addr()));
    let mut c = SseClient::open(server.local_addr());
    c.call(
        0,
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {"elicitation": {}},
               "clientInfo": {"name": "t", "version": "0"}}),
    );
    c.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    c.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                   "params": {"name": "ask", "arguments": {"question": "Colour?"}}}));
    let question = c.next_message();
    assert_eq!(question["method"], "elicitation/create", "{question}");
    assert_eq!(question["params"]["message"], "Colour?");
    c.post(&json!({"jsonrpc": "2.0", "id": question["id"],
                   "result": {"action": "accept", "content": {"answer": "teal"}}}));
    let answer = c.next_message();
    assert_eq!(answer["id"], 1);
    assert_eq!(text(&answer), "The user answered: teal");
}

#[test]
fn a_stateless_request_and_its_retry_are_forwarded_as_they_are() {
    let upstream = spawn(test_config());
    let server = gate(config(), format!("http://{}/mcp", upstream.local_addr()));
    let headers = "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: ask\r\n";
    let mut body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "ask", "arguments": {"question": "Colour?"},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}}}});
    let post = |body: &Value| {
        common::request_with(
            server.local_addr(),
            "POST",
            "/mcp",
            headers,
            body.to_string().as_bytes(),
        )
        .json()
    };
    let first = post(&body);
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
    body["params"]["requestState"] = first["result"]["requestState"].clone();
    body["params"]["inputResponses"] =
        json!({"q0": {"action": "accept", "content": {"answer": "teal"}}});
    let done = post(&body);
    assert_eq!(text(&done), "The user answered: teal", "{done}");
    assert_eq!(done["result"]["resultType"], "complete");
}

/// A raw upstream: accepts connections, reports each request head and body, and answers
/// with `reply` (or, when `None`, never).
fn fake_upstream(
    reply: Option<&'static str>,
) -> (String, mpsc::Receiver<String>, std::thread::JoinHandle<()>) {
    scripted_upstream(vec![reply; 4])
}

/// `fake_upstream` with one reply per request, in order.
fn scripted_upstream(
    replies: Vec<Option<&'static str>>,
) -> (String, mpsc::Receiver<String>, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        // Bounded: a test makes a handful of requests.
        for reply in replies {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            head.push_str(&String::from_utf8_lossy(&body));
            if tx.send(head).is_err() {
                return;
            }
            match reply {
                Some(reply) => {
                    let mut stream = stream;
                    let _ = stream.write_all(reply.as_bytes());
                }
                // Never answers: holds the connection until the test ends.
                None => std::thread::sleep(Duration::from_secs(30)),
            }
        }
    });
    (url, rx, handle)
}

fn initialize(server: &Server, extra: &str) -> Value {
    let c = McpClient::new(server.local_addr());
    let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}}});
    c.post_raw(extra, body.to_string().as_bytes()).json()
}

fn error_message(reply: &Value) -> String {
    reply["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error: {reply}"))
        .to_string()
}

#[test]
fn an_upstream_that_is_down_slow_or_garbled_is_a_clear_error() {
    // Port 1: nothing listens there, and the tests bind ephemeral ports only.
    let down = gate(config(), "http://127.0.0.1:1/mcp".into());
    assert!(error_message(&initialize(&down, "")).contains("unreachable"));

    let (url, _heads, _t) = fake_upstream(None);
    let slow = gate(
        Config {
            tool_timeout: Duration::from_secs(1),
            ..test_config()
        },
        url,
    );
    let started = std::time::Instant::now();
    assert!(error_message(&initialize(&slow, "")).contains("did not answer in time"));
    assert!(started.elapsed() < Duration::from_secs(5));

    let (url, _heads, _t) = fake_upstream(Some(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\nConnection: close\r\n\r\nnot json",
    ));
    let garbled = gate(config(), url);
    assert!(error_message(&initialize(&garbled, "")).contains("not JSON-RPC"));

    let empty = Server::builder().upstream(Upstream::url("ftp://example.com/mcp"));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    assert!(matches!(
        empty.start(config(), listener),
        Err(StartError::Catalog(_))
    ));
}

#[test]
fn the_upstream_gets_the_verified_caller_as_headers_and_never_the_clients_own() {
    let body =
        r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18","capabilities":{}}}"#;
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: up-1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (url, heads, _t) = fake_upstream(Some(Box::leak(reply.into_boxed_str())));
    let issuer = Issuer::rsa(None);
    let jwks_server = JwksServer::start(jwks(&[issuer.jwk()]));
    let server = spawn_with(
        Config {
            tool_timeout: Duration::from_secs(2),
            ..with_auth(auth_settings(jwks_server.url(), "sre"))
        },
        Server::builder().upstream(Upstream::url(url).identity_headers(true)),
    );
    let token = issuer.token(&plural_claims(
        "alice",
        "alice@example.com",
        &["sre", "dev"],
        3600,
    ));
    let extra = format!(
        "Authorization: Bearer {token}\r\nX-MCP-User-Sub: mallory\r\nX-MCP-User-Groups: admin\r\n"
    );
    let init = initialize(&server, &extra);
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18", "{init}");
    let head = heads
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .to_ascii_lowercase();
    assert!(head.contains("x-mcp-user-sub: alice\r\n"), "{head}");
    assert!(head.contains("x-mcp-user-groups: sre,dev\r\n"), "{head}");
    assert!(
        head.contains("x-mcp-user-email: alice@example.com\r\n"),
        "{head}"
    );
    assert!(
        !head.contains("mallory") && !head.contains(": admin"),
        "{head}"
    );
    assert!(
        !head.contains("authorization"),
        "the token is not forwarded: {head}"
    );
}

#[test]
fn the_clients_token_reaches_the_upstream_only_when_forwarding_is_on() {
    let issuer = Issuer::rsa(None);
    let jwks_server = JwksServer::start(jwks(&[issuer.jwk()]));
    let auth = || with_auth(auth_settings(jwks_server.url(), "sre"));
    let upstream = spawn(auth());
    let url = format!("http://{}/mcp", upstream.local_addr());
    let token = issuer.token(&plural_claims("alice", "alice@example.com", &["sre"], 3600));

    let forwarding = spawn_with(
        Config {
            tool_timeout: Duration::from_secs(2),
            ..auth()
        },
        Server::builder().upstream(Upstream::url(url.clone()).forward_token(true)),
    );
    let mut c = McpClient::authed(forwarding.local_addr(), &token);
    c.initialize("2025-11-25");
    let who: Value =
        serde_json::from_str(&text(&c.call(1, "tools/call", json!({"name": "whoami"})))).unwrap();
    assert_eq!(who["subject"], "alice", "{who}");
    assert_eq!(c.delete().status, 204);
    assert!(eventually(Duration::from_secs(5), || upstream
        .session_count()
        == 0));

    let keeping = spawn_with(
        Config {
            tool_timeout: Duration::from_secs(2),
            ..auth()
        },
        Server::builder().upstream(Upstream::url(url)),
    );
    let refused = initialize(&keeping, &format!("Authorization: Bearer {token}\r\n"));
    assert!(error_message(&refused).contains("HTTP 401"), "{refused}");
}

/// An upstream whose `patient` tool reports progress, then works until it is cancelled (10 s
/// at most); `seen` says whether it saw the cancellation.
fn patient_upstream() -> (Server, std::sync::Arc<std::sync::atomic::AtomicU8>) {
    use std::sync::atomic::{AtomicU8, Ordering};
    let seen = std::sync::Arc::new(AtomicU8::new(0));
    let flag = std::sync::Arc::clone(&seen);
    let patient = mcp_warden::Tool::new(
        "patient",
        "Works until cancelled.",
        json!({"type": "object"}),
        move |_: mcp_warden::NoArgs, call| {
            call.progress(1.0, None, Some("started"));
            let end = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < end {
                if call.is_cancelled() {
                    flag.store(1, Ordering::SeqCst);
                    return Ok("cancelled");
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            flag.store(2, Ordering::SeqCst);
            Ok("finished")
        },
    );
    let upstream = spawn_with(
        Config {
            tool_timeout: Duration::from_secs(30),
            ..test_config()
        },
        Server::builder().tool(patient),
    );
    (upstream, seen)
}

#[test]
fn a_cancellation_or_the_sessions_end_reaches_a_call_waiting_at_the_upstream() {
    use std::sync::atomic::Ordering;
    let (upstream, seen) = patient_upstream();
    let server = gate(
        Config {
            tool_timeout: Duration::from_secs(30),
            ..test_config()
        },
        format!("http://{}/mcp", upstream.local_addr()),
    );
    // On /sse: the client's notifications/cancelled.
    let mut c = SseClient::open(server.local_addr());
    c.initialize("2025-11-25");
    c.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                   "params": {"name": "patient", "_meta": {"progressToken": "p"}}}));
    let progress = c.next_message();
    assert_eq!(progress["method"], "notifications/progress", "{progress}");
    c.post(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                   "params": {"requestId": 1, "reason": "changed my mind"}}),
    );
    assert!(eventually(Duration::from_secs(5), || seen
        .load(Ordering::SeqCst)
        != 0));
    assert_eq!(seen.load(Ordering::SeqCst), 1, "the upstream's tool ran on");
    // No answer for the cancelled request: the next message is the next request's.
    assert_eq!(c.call(2, "ping", json!({}))["id"], 2);

    // On /mcp: the session's DELETE while the call waits.
    seen.store(0, Ordering::SeqCst);
    let mut m = McpClient::new(server.local_addr());
    m.initialize("2025-11-25");
    let with_m = upstream.session_count();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "patient", "_meta": {"progressToken": "q"}}});
    let (head, mut stream) = m.post_open("", &body);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    let mut line = String::new();
    while !line.contains("notifications/progress") {
        line.clear();
        assert!(
            stream.read_line(&mut line).unwrap() > 0,
            "the stream ended early"
        );
    }
    assert_eq!(m.delete().status, 204);
    assert!(eventually(Duration::from_secs(5), || seen
        .load(Ordering::SeqCst)
        != 0));
    assert_eq!(seen.load(Ordering::SeqCst), 1, "the upstream's tool ran on");
    // Its session at the upstream ends too (the SSE client's stays).
    assert!(eventually(Duration::from_secs(5), || upstream
        .session_count()
        == with_m - 1));
}

/// A whole HTTP response with a JSON body.
fn json_response(body: &str, extra: &str) -> &'static str {
    Box::leak(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_boxed_str(),
    )
}

#[test]
fn behind_rules_a_resource_the_upstream_lacks_looks_like_a_hidden_one() {
    let (url, _heads, _t) = scripted_upstream(vec![
        Some(json_response(
            r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18","capabilities":{"resources":{}}}}"#,
            "Mcp-Session-Id: up-1\r\n",
        )),
        Some("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        Some(json_response(
            r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32002,"message":"No such thing here, friend"}}"#,
            "",
        )),
    ]);
    let server = spawn_with(
        config(),
        Server::builder()
            .upstream(Upstream::url(url))
            .policy(mcp_warden::policy::Policy::new().resource("test://secret/", ["sre"])),
    );
    let mut c = McpClient::new(server.local_addr());
    c.initialize("2025-06-18");
    let hidden = c.call(1, "resources/read", json!({"uri": "test://secret/x"}));
    let absent = c.call(2, "resources/read", json!({"uri": "test://nowhere"}));
    assert_eq!(hidden["error"]["code"], -32002, "{hidden}");
    assert_eq!(absent["error"]["code"], -32002, "{absent}");
    assert_eq!(
        hidden["error"]["message"],
        "resource not found: test://secret/x"
    );
    assert_eq!(
        absent["error"]["message"], "resource not found: test://nowhere",
        "{absent}"
    );
    assert_eq!(absent["error"]["data"]["uri"], "test://nowhere");
}
