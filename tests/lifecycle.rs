//! Bounded under load and abuse, and stoppable: session and connection caps, health and
//! readiness probes, graceful shutdown (in process and by signal), panics caught at the
//! request boundary, the access log, JSON logs, and the open-file limit.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::issuer::{self, Issuer};
use common::jwks_server::JwksServer;
use common::{
    ServerProcess, SseClient, connect, eventually, read_response, request, test_config,
    warden_command,
};
use mcp_warden::auth::jwt::Policy;
use mcp_warden::auth::{AuthConfig, RequiredGroups};
use mcp_warden::config::Config;
use mcp_warden::tools::Tool;
use mcp_warden::{Server, start_with_tools};
use serde_json::{Value, json};

/// A catalog for these tests: a tool that panics and one that takes its time.
static TEST_TOOLS: &[Tool] = &[
    Tool {
        name: "panic",
        description: "Panics, on purpose: proves a panic is caught at the request boundary.",
        input_schema: || json!({"type": "object"}),
        call: |_, _| panic!("deliberate panic in a test tool"),
    },
    Tool {
        name: "big",
        description: "Answers with 64 KiB of text.",
        input_schema: || json!({"type": "object"}),
        call: |_, _| Ok("x".repeat(64 * 1024)),
    },
    Tool {
        name: "slow",
        description: "Answers after 400 ms.",
        input_schema: || json!({"type": "object"}),
        call: |_, _| {
            thread::sleep(Duration::from_millis(400));
            Ok("done".into())
        },
    },
];

fn spawn_with(config: Config) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    start_with_tools(config, listener, TEST_TOOLS).unwrap()
}

fn call_tool(client: &mut SseClient, id: i64, name: &str) -> Value {
    client.call(id, "tools/call", json!({"name": name, "arguments": {}}))
}

#[test]
fn a_panicking_tool_gets_an_internal_error_and_harms_no_other_session() {
    let server = spawn_with(test_config());
    let mut a = SseClient::open(server.local_addr());
    let mut b = SseClient::open(server.local_addr());
    a.initialize("2025-06-18");
    b.initialize("2025-06-18");
    let reply = call_tool(&mut a, 1, "panic");
    assert_eq!(reply["error"]["code"], -32603, "{reply}");
    assert!(
        !reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deliberate"),
        "panic details stay in the log: {reply}"
    );
    // The same session and another one go on.
    assert_eq!(a.call(2, "ping", json!({}))["result"], json!({}));
    assert_eq!(
        call_tool(&mut b, 3, "slow")["result"]["content"][0]["text"],
        "done"
    );
    assert_eq!(server.session_count(), 2);
}

#[test]
fn one_session_over_max_sessions_gets_503_and_the_others_are_unharmed() {
    let config = Config {
        max_sessions: 3,
        max_connections: 20,
        ..test_config()
    };
    let server = spawn_with(config);
    let addr = server.local_addr();
    let mut held: Vec<SseClient> = (0..3).map(|_| SseClient::open(addr)).collect();
    let refused = request(addr, "GET", "/sse", b"");
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("retry-after"), Some("5"));
    assert_eq!(refused.json()["error"], "too_many_sessions");
    for (i, client) in held.iter_mut().enumerate() {
        client.initialize("2025-06-18");
        assert_eq!(
            client.call(i as i64 + 10, "ping", json!({}))["result"],
            json!({})
        );
    }
    // A place freed is a place taken.
    drop(held.pop());
    assert!(eventually(Duration::from_secs(5), || server
        .session_count()
        == 2));
    SseClient::open(addr).initialize("2025-06-18");
}

#[test]
fn a_connection_over_max_connections_gets_503_and_is_closed() {
    let config = Config {
        max_sessions: 1,
        max_connections: 3,
        ..test_config()
    };
    let server = spawn_with(config);
    let addr = server.local_addr();
    let mut stream = SseClient::open(addr);
    let idle: Vec<_> = (0..2).map(|_| connect(addr)).collect();
    assert!(eventually(Duration::from_secs(5), || server
        .open_connections()
        == 3));
    let mut over = connect(addr);
    let mut reader = BufReader::new(over.try_clone().unwrap());
    let response = read_response(&mut reader);
    assert_eq!(response.status, 503);
    assert_eq!(response.header("retry-after"), Some("1"));
    assert_eq!(response.json()["error"], "over_capacity");
    let mut rest = Vec::new();
    assert_eq!(
        over.read_to_end(&mut rest).unwrap_or(0),
        0,
        "closed after the 503"
    );
    // While full, even the session's own POST is refused; a freed slot serves again,
    // and the session held is unharmed.
    let r = stream.post_raw(b"{}");
    assert_eq!(r.status, 503);
    drop(idle);
    assert!(eventually(Duration::from_secs(5), || server
        .open_connections()
        == 1));
    // (One request only: each POST borrows a connection, and a closed one is counted
    // until its thread has seen the close.)
    assert_eq!(stream.call(1, "ping", json!({}))["result"], json!({}));
}

fn auth_config(jwks: &JwksServer, refresh: Duration, max_age: Duration) -> Config {
    Config {
        auth: Some(AuthConfig {
            jwks_uri: jwks.url(),
            required_groups: RequiredGroups::Any,
            policy: Policy::default(),
            refresh,
            min_refetch: Duration::from_secs(30),
            max_age,
        }),
        ..test_config()
    }
}

#[test]
fn health_and_readiness_need_no_token_and_reveal_nothing() {
    let key = Issuer::es256(None);
    let jwks = JwksServer::start(issuer::jwks(&[key.jwk()]));
    let config = auth_config(&jwks, Duration::from_secs(600), Duration::from_secs(3600));
    let server = spawn_with(config);
    let addr = server.local_addr();
    for path in ["/healthz", "/readyz"] {
        let r = request(addr, "GET", path, b"");
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.json(), json!({"status": "ok"}), "{path}");
        let mut head = connect(addr);
        head.write_all(format!("HEAD {path} HTTP/1.1\r\nConnection: close\r\n\r\n").as_bytes())
            .unwrap();
        let mut text = String::new();
        head.read_to_string(&mut text).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n"), "HEAD has no body: {text}");
        let r = request(addr, "POST", path, b"");
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
    }
    // The MCP endpoints still need a token.
    assert_eq!(request(addr, "GET", "/sse", b"").status, 401);
    let plain = spawn_with(test_config());
    assert_eq!(
        request(plain.local_addr(), "GET", "/readyz", b"").status,
        200
    );
}

#[test]
fn readiness_fails_while_the_keys_are_stale_and_recovers() {
    let key = Issuer::es256(None);
    let jwks = JwksServer::start(issuer::jwks(&[key.jwk()]));
    let config = auth_config(
        &jwks,
        Duration::from_millis(100),
        Duration::from_millis(600),
    );
    let server = spawn_with(config);
    let addr = server.local_addr();
    assert_eq!(request(addr, "GET", "/readyz", b"").status, 200);
    jwks.set_status(500);
    assert!(eventually(Duration::from_secs(5), || {
        request(addr, "GET", "/readyz", b"").status == 503
    }));
    assert_eq!(
        request(addr, "GET", "/readyz", b"").json(),
        json!({"status": "unavailable"})
    );
    assert_eq!(request(addr, "GET", "/healthz", b"").status, 200);
    jwks.set_normal();
    assert!(eventually(Duration::from_secs(5), || {
        request(addr, "GET", "/readyz", b"").status == 200
    }));
}

#[test]
fn shutdown_lets_in_flight_requests_finish_then_ends_every_stream() {
    let mut server = spawn_with(test_config());
    let addr = server.local_addr();
    let mut busy = SseClient::open(addr);
    let mut quiet = SseClient::open(addr);
    busy.initialize("2025-06-18");
    quiet.initialize("2025-06-18");
    busy.post(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "slow", "arguments": {}}}));
    let started = Instant::now();
    let stopper = thread::spawn(move || {
        let clean = server.shutdown(Duration::from_secs(5));
        (clean, server)
    });
    // The in-flight call's answer still arrives, then the stream ends cleanly.
    let reply = busy.next_message();
    assert_eq!(reply["id"], 7);
    assert_eq!(reply["result"]["content"][0]["text"], "done");
    assert_eq!(busy.try_next_event(), None);
    assert_eq!(quiet.try_next_event(), None);
    let (clean, server) = stopper.join().unwrap();
    assert!(clean, "every connection closed within the grace period");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(server.session_count(), 0);
    assert_eq!(server.open_connections(), 0);
    // Nothing is accepted any more.
    let refused = std::net::TcpStream::connect(addr)
        .and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(b"GET /healthz HTTP/1.1\r\n\r\n")?;
            let mut buf = [0u8; 1];
            s.read(&mut buf)
        })
        .unwrap_or(0);
    assert_eq!(refused, 0);
}

#[test]
fn shutdown_closes_idle_keep_alive_connections_at_once() {
    let mut server = spawn_with(test_config()); // REQUEST_TIMEOUT_SECS is 10
    let addr = server.local_addr();
    let mut idle = connect(addr);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(idle.try_clone().unwrap());
    assert_eq!(read_response(&mut reader).status, 200);
    let started = Instant::now();
    assert!(server.shutdown(Duration::from_secs(5)));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "did not wait for the idle timeout"
    );
    let mut rest = Vec::new();
    assert_eq!(reader.read_to_end(&mut rest).unwrap_or(0), 0);
}

#[test]
fn a_request_in_flight_at_shutdown_is_answered_and_says_connection_close() {
    let mut server = spawn_with(test_config());
    let addr = server.local_addr();
    let mut watcher = SseClient::open(addr);
    // A keep-alive connection, served once (so it is surely accepted), then a request whose
    // head is only partly sent: in flight when shutdown begins. It asks for a new stream,
    // which a server shutting down refuses, saying so.
    let mut conn = connect(addr);
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut reader).header("connection"), None);
    conn.write_all(b"GET /sse HTTP/1.1\r\nHost: x\r\n").unwrap();
    let stopper = thread::spawn(move || server.shutdown(Duration::from_secs(5)));
    // Streams end once shutdown has begun: from then on the server is stopping.
    assert_eq!(watcher.try_next_event(), None);
    conn.write_all(b"\r\n").unwrap();
    let r = read_response(&mut reader);
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"], "shutting_down");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("connection"), Some("close"));
    let mut rest = Vec::new();
    assert_eq!(reader.read_to_end(&mut rest).unwrap_or(0), 0);
    assert!(stopper.join().unwrap(), "closed within the grace period");
}

// ---- the binary -------------------------------------------------------------------

#[test]
fn sigterm_and_sigint_end_streams_and_exit_0_within_the_grace_period() {
    for signal in ["TERM", "INT"] {
        let mut cmd = warden_command();
        cmd.env("SHUTDOWN_GRACE_SECS", "3");
        let mut child = ServerProcess::start(cmd);
        let mut client = SseClient::open(child.addr);
        client.initialize("2025-06-18");
        let started = Instant::now();
        child.signal(signal);
        assert_eq!(client.try_next_event(), None, "the stream ends cleanly");
        assert_eq!(child.exit_code(), Some(0), "SIG{signal}");
        assert!(started.elapsed() < Duration::from_secs(3));
        let log = child.log().join("\n");
        assert!(log.contains(&format!("SIG{signal} received")), "{log}");
        assert!(log.contains("shut down cleanly"), "{log}");
    }
}

#[test]
fn every_request_gets_one_access_line_without_its_query_string() {
    let mut cmd = warden_command();
    cmd.env("SSE_KEEPALIVE_SECS", "1");
    let mut child = ServerProcess::start(cmd);
    let addr = child.addr;
    assert_eq!(request(addr, "GET", "/healthz", b"").status, 200);
    let r = request(addr, "POST", "/messages?sessionId=deadbeef", b"{}");
    assert_eq!(r.status, 404);
    let mut client = SseClient::open(addr);
    client.initialize("2025-06-18");
    drop(client);
    child.wait_for("GET /sse 200");
    let log = child.log();
    let access: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("mcp_warden::access"))
        .collect();
    assert!(
        access
            .iter()
            .any(|l| l.contains("GET /healthz 200 ") && l.ends_with("sub=-")),
        "{log:#?}"
    );
    assert!(
        access.iter().any(|l| l.contains("POST /messages 404 ")),
        "{log:#?}"
    );
    assert_eq!(
        access
            .iter()
            .filter(|l| l.contains("POST /messages 202 "))
            .count(),
        2,
        "{log:#?}"
    );
    let all = log.join("\n");
    assert!(
        !all.contains("deadbeef") && !all.contains("sessionId"),
        "{all}"
    );
}

#[test]
fn log_format_json_writes_one_object_per_line() {
    let mut cmd = warden_command();
    cmd.env("LOG_FORMAT", "json");
    let mut child = ServerProcess::start(cmd);
    assert_eq!(request(child.addr, "GET", "/readyz", b"").status, 200);
    child.wait_for("GET /readyz 200");
    let log = child.log();
    assert!(log.len() >= 3, "{log:#?}");
    for line in &log {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        for key in ["ts", "level", "target", "msg"] {
            assert!(v.get(key).is_some(), "{key} missing: {line}");
        }
    }
    assert!(
        log.iter()
            .any(|l| l.contains("\"level\":\"WARN\"") && l.contains("authentication is off"))
    );
}

/// The binary run under `sh` with lowered file limits.
fn with_limits(soft: u64, hard: u64, env: &[(&str, &str)]) -> Command {
    let cmd = warden_command();
    let bin = cmd.get_program().to_owned();
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(format!(
            "ulimit -Sn {soft} && ulimit -Hn {hard} && exec \"$0\""
        ))
        .arg(bin);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    sh.envs(env.iter().copied());
    sh.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    sh
}

#[test]
fn the_open_file_limit_is_raised_for_max_connections() {
    let mut child = ServerProcess::start(with_limits(256, 8192, &[("MAX_CONNECTIONS", "3000")]));
    let log = child.log().join("\n");
    assert!(log.contains("open files=3064"), "{log}");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert!(line.split_whitespace().any(|w| w == "3064"), "{line}");
}

#[test]
fn max_connections_beyond_the_hard_limit_refuses_to_start_naming_both_numbers() {
    let mut cmd = with_limits(256, 1024, &[("MAX_CONNECTIONS", "5000")]);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("5064") && stderr.contains("1024"),
        "{stderr}"
    );
    assert!(stderr.contains("MAX_CONNECTIONS"), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
}

#[test]
fn a_client_that_stops_reading_its_stream_is_disconnected_not_buffered() {
    let server = spawn_with(Config {
        max_body_bytes: 1 << 20,
        ..test_config()
    });
    let addr = server.local_addr();
    let mut stalled = SseClient::open(addr);
    stalled.initialize("2025-06-18");
    let mut other = SseClient::open(addr);
    other.initialize("2025-06-18");
    // Large replies fill the socket buffers, then the session's bounded outbox; the
    // stalled client never reads. Within a bounded number of posts its session is closed.
    let call = |id: i64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "big", "arguments": {}}})
        .to_string()
    };
    let mut closed_after = None;
    for id in 0..2000 {
        let r = stalled.post_raw(call(id).as_bytes());
        if r.status == 404 {
            closed_after = Some(id);
            break;
        }
        assert_eq!(r.status, 202);
    }
    let n = closed_after.expect("the stalled session was never closed");
    assert!(
        n > 256,
        "closed after {n} posts, before its outbox could fill"
    );
    assert!(eventually(Duration::from_secs(5), || server
        .session_count()
        == 1));
    // The other session never noticed.
    assert_eq!(other.call(1, "ping", json!({}))["result"], json!({}));
}

fn threads_of(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn every_connection_thread_ends_when_its_client_goes() {
    let mut cmd = warden_command();
    cmd.env("SSE_KEEPALIVE_SECS", "1");
    let child = ServerProcess::start(cmd);
    let pid = child.child.id();
    let idle = threads_of(pid);
    let clients: Vec<SseClient> = (0..20).map(|_| SseClient::open(child.addr)).collect();
    for _ in 0..5 {
        assert_eq!(request(child.addr, "GET", "/healthz", b"").status, 200);
    }
    assert!(threads_of(pid) >= idle + 20);
    drop(clients);
    assert!(
        eventually(Duration::from_secs(10), || threads_of(pid) == idle),
        "{} threads left, {idle} when idle",
        threads_of(pid)
    );
}

#[test]
fn sigterm_works_when_the_server_is_pid_1() {
    // In a container the server is PID 1, for which the kernel drops signals that have no
    // handler: SIGTERM must still shut it down. `unshare --pid` makes it PID 1 here.
    let usable = Command::new("unshare")
        .args(["--pid", "--fork", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !usable {
        eprintln!("note: unshare --pid is not permitted here; PID 1 behaviour not checked");
        return;
    }
    let cmd = warden_command();
    let mut sh = Command::new("unshare");
    sh.args(["--pid", "--fork", "--kill-child"])
        .arg(cmd.get_program());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    sh.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = ServerProcess::start(sh);
    let mut client = SseClient::open(child.addr);
    client.initialize("2025-06-18");
    // Find the server (the unshare child) and check it is PID 1 in its namespace.
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.child.id())).unwrap();
    let server: u32 = children.split_whitespace().next().unwrap().parse().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{server}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert_eq!(nspid.split_whitespace().last(), Some("1"), "{nspid}");
    let killed = Command::new("kill")
        .args(["-TERM", &server.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(client.try_next_event(), None, "the stream ends cleanly");
    assert_eq!(child.exit_code(), Some(0));
    assert!(child.log().join("\n").contains("shut down cleanly"));
}
