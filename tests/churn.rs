//! Sessions that come and go, over real sockets against the built binary. A client that
//! closes its stream (FIN or reset) ends its session at once, with no write needed to find
//! out: keep-alives are an hour apart here, so nothing but the close itself can be what
//! ends it. A POST that goes away mid-body and a client that vanishes while its reply is
//! being written free their threads as well. Threads and descriptors are read from
//! `/proc/PID` and polled with a deadline, never slept for.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{ServerProcess, SseClient, connect, eventually, warden_command};
use serde_json::json;

/// Keep-alives far apart: a stream that ends within the tests' deadlines was ended by its
/// client closing, not by a failed keep-alive write.
const NO_KEEPALIVE: (&str, &str) = ("SSE_KEEPALIVE_SECS", "3600");

/// How long a freed thread or descriptor may take to be given back.
const SETTLE: Duration = Duration::from_secs(1);

fn start(env: &[(&str, &str)]) -> ServerProcess {
    let mut cmd = warden_command();
    cmd.env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    ServerProcess::start(cmd)
}

/// The server's threads and open descriptors.
fn resources(server: &ServerProcess) -> (usize, usize) {
    let pid = server.child.id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (threads, fds)
}

/// Polls until the server is back to `idle` threads and descriptors, or `SETTLE` passes.
fn assert_back_to(server: &ServerProcess, idle: (usize, usize), after: &str) {
    let mut now = resources(server);
    let settled = eventually(SETTLE, || {
        now = resources(server);
        now == idle
    });
    assert!(
        settled,
        "{after}: (threads, descriptors) still {now:?} after {SETTLE:?}, {idle:?} when idle"
    );
}

/// Opens `n` streams the way a fleet reconnects: every connection first, then every
/// request, then every answer. Returns the sockets of the opened streams (their endpoint
/// events read) and the status of every answer.
fn open_streams(addr: SocketAddr, n: usize) -> (Vec<TcpStream>, Vec<u16>) {
    let mut sockets: Vec<TcpStream> = (0..n).map(|_| connect(addr)).collect();
    for s in &mut sockets {
        s.write_all(b"GET /sse HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
    }
    let mut open = Vec::new();
    let mut statuses = Vec::new();
    for (i, mut s) in sockets.into_iter().enumerate() {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        let status = loop {
            let n = s
                .read(&mut buf)
                .unwrap_or_else(|e| panic!("stream {i}: no answer: {e}"));
            assert!(n > 0, "stream {i}: closed without an answer");
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            let Some(status) = text.get(9..12).and_then(|s| s.parse::<u16>().ok()) else {
                continue;
            };
            if status != 200 || text.contains("data: /messages?sessionId=") {
                break status;
            }
        };
        statuses.push(status);
        if status == 200 {
            open.push(s);
        }
    }
    (open, statuses)
}

#[test]
fn a_thousand_closed_streams_make_room_at_once_for_a_thousand_new_ones() {
    // MAX_SESSIONS is 1000 by default.
    let server = start(&[NO_KEEPALIVE]);
    let idle = resources(&server);
    let (first, statuses) = open_streams(server.addr, 1000);
    assert_eq!(first.len(), 1000, "statuses: {statuses:?}");
    assert!(resources(&server).0 >= idle.0 + 1000);
    drop(first);
    let (second, statuses) = open_streams(server.addr, 1000);
    let refused: Vec<&u16> = statuses.iter().filter(|s| **s != 200).collect();
    assert!(
        refused.is_empty(),
        "{} of 1000 refused right after 1000 clients left: {refused:?}",
        refused.len()
    );
    drop(second);
    assert_back_to(&server, idle, "1000 streams closed");
    // And the server still serves.
    let mut c = SseClient::initialized(server.addr);
    assert_eq!(c.call(1, "ping", json!({}))["result"], json!({}));
}

#[test]
fn a_post_that_goes_away_mid_body_frees_its_connection() {
    let server = start(&[NO_KEEPALIVE, ("REQUEST_TIMEOUT_SECS", "3600")]);
    let (threads, fds) = resources(&server);
    let mut c = SseClient::initialized(server.addr);
    // Idle but for the session: its thread and its socket, one descriptor (the session
    // shares the connection's; once the connections that carried `initialize` are gone).
    let idle = (threads + 1, fds + 1);
    assert_back_to(&server, idle, "a session opened");
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n",
        c.endpoint
    );
    // Once with a plain close (FIN); once with `100 Continue` left unread, so that the
    // close is a reset.
    for (expect, how) in [("", "closed"), ("Expect: 100-continue\r\n", "reset")] {
        let mut s = connect(server.addr);
        write!(s, "{head}{expect}\r\n{{\"jsonrpc\":\"2.0\",").unwrap();
        assert!(
            eventually(SETTLE, || resources(&server) == (idle.0 + 1, idle.1 + 1)),
            "the POST's connection never showed up: {:?}",
            resources(&server)
        );
        if !expect.is_empty() {
            // The server has answered `100 Continue`; it stays unread.
            let mut one = [0u8; 1];
            s.peek(&mut one).unwrap();
        }
        drop(s);
        assert_back_to(&server, idle, &format!("a POST {how} mid-body"));
    }
    // The session the POST was for carries on.
    assert_eq!(c.call(1, "ping", json!({}))["result"], json!({}));
}

#[test]
fn a_client_that_vanishes_while_its_reply_is_written_frees_everything() {
    let server = start(&[NO_KEEPALIVE, ("MAX_BODY_BYTES", "67108864")]);
    let idle = resources(&server);
    let mut c = SseClient::initialized(server.addr);
    // A reply far larger than the socket buffers on the way (4 MiB to send; the receiver's
    // grows only as its application reads, and this one reads a line): its write is still
    // going on when the client goes.
    let message = "x".repeat(12 << 20);
    c.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": message}}}));
    // A test build on a loaded machine takes seconds to parse, check and serialize this
    // much JSON: a longer wait for its first line than the usual read timeout (a server
    // that never answers still fails the test).
    c.reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut line = String::new();
    c.reader.read_line(&mut line).unwrap();
    assert_eq!(line, "event: message\n", "the reply has begun");
    // Gone with most of the reply unread: the kernel answers with a reset.
    drop(c);
    assert_back_to(&server, idle, "a client gone mid-reply");
    let mut again = SseClient::initialized(server.addr);
    assert_eq!(again.call(1, "ping", json!({}))["result"], json!({}));
}

#[test]
fn a_stream_closed_while_idle_ends_its_session_without_a_keepalive() {
    let server = start(&[NO_KEEPALIVE]);
    let idle = resources(&server);
    for how in ["closed", "shut down"] {
        let c = SseClient::open(server.addr);
        assert!(resources(&server).0 > idle.0);
        let socket = c.reader.into_inner();
        if how == "shut down" {
            socket.shutdown(std::net::Shutdown::Write).unwrap();
        }
        drop(socket);
        assert_back_to(&server, idle, &format!("a stream {how}"));
    }
}

#[test]
fn a_session_used_without_initialize_is_served_and_says_so_once() {
    let mut server = start(&[]);
    let mut c = SseClient::open(server.addr);
    let reply = c.call(
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "after a restart"}}),
    );
    assert_eq!(
        reply["result"]["content"][0]["text"],
        "Tool echo: after a restart"
    );
    assert_eq!(c.call(2, "ping", json!({}))["result"], json!({}));
    let line = server.wait_for("session used without initialize");
    assert!(
        line.contains("2024-11-05") && line.contains("sub=-"),
        "{line}"
    );
    drop(c);
    // Counted over the whole log: the server is stopped and its stderr read to the end.
    server.signal("TERM");
    assert_eq!(server.exit_code(), Some(0));
    let log = server.log_to_end().join("\n");
    assert_eq!(
        log.matches("session used without initialize").count(),
        1,
        "{log}"
    );
}

#[test]
fn a_stream_request_with_a_body_is_refused_not_ended_at_once() {
    let server = start(&[]);
    for framing in [
        "Content-Length: 2\r\n\r\n{}",
        "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    ] {
        let r = common::raw(
            server.addr,
            format!("GET /sse HTTP/1.1\r\nHost: localhost\r\n{framing}").as_bytes(),
        );
        assert_eq!(r.status, 400, "{framing}");
        assert_eq!(r.json()["error"], "unexpected_body");
        assert_eq!(r.header("connection"), Some("close"));
    }
    // An empty body is no body.
    let r = common::raw(
        server.addr,
        b"GET /sse HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 200);
}

#[test]
fn a_streamable_client_that_vanishes_mid_request_mid_reply_or_mid_stream_frees_everything() {
    let server = start(&[
        NO_KEEPALIVE,
        ("REQUEST_TIMEOUT_SECS", "3600"),
        ("MAX_BODY_BYTES", "67108864"),
    ]);
    let idle = resources(&server);
    let mut c = common::McpClient::new(server.addr);
    c.initialize("2025-06-18");
    // A Streamable HTTP session holds no connection between requests.
    assert_back_to(&server, idle, "a session initialized");
    let headers = format!("{}{}", common::ACCEPT_BOTH, c.session_headers());
    // Gone mid-body.
    let mut s = connect(server.addr);
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\n{headers}Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"jsonrpc\":"
    )
    .unwrap();
    assert!(eventually(SETTLE, || resources(&server).0 > idle.0));
    drop(s);
    assert_back_to(&server, idle, "a POST /mcp closed mid-body");
    // Gone while its 12 MiB answer is being written (far more than the socket buffers).
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "x".repeat(12 << 20)}}})
    .to_string();
    let mut s = connect(server.addr);
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body.as_bytes()).unwrap();
    // Seconds of JSON work in a test build on a loaded machine: see the legacy test above.
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut reader = std::io::BufReader::new(s);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "HTTP/1.1 200 OK\r\n", "the answer has begun");
    drop(reader);
    assert_back_to(&server, idle, "a client gone mid-answer");
    // Gone from its GET stream: the stream is freed, the session stays.
    let stream = c.open_stream().unwrap();
    assert!(resources(&server).0 > idle.0);
    drop(stream);
    assert_back_to(&server, idle, "a GET /mcp stream closed");
    assert_eq!(c.call(2, "ping", json!({}))["result"], json!({}));
}
