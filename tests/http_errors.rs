//! HTTP-level error handling as a client meets it over loopback: exact statuses and the
//! `{"error", "message"}` body for every refusal, body framing and size limits, head
//! limits, keep-alive, and deadlines. Malformed input is written as raw bytes. Every test
//! that abuses the server ends by checking that it still serves a normal request, and
//! every status is asserted exactly, so none of them can be a 500.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{
    HttpResponse, SseClient, assert_closed, connect, raw, read_response, request, session, spawn,
    test_config,
};
use mcp_warden::config::Config;
use mcp_warden::http::{MAX_HEAD_BYTES, MAX_HEADERS};
use serde_json::json;

/// The body cap used where a test needs one small enough to cross cheaply.
const SMALL_MAX_BODY: usize = 1024;

const PING: &[u8] = br#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#;

fn small_body_config() -> Config {
    Config {
        max_body_bytes: SMALL_MAX_BODY,
        ..test_config()
    }
}

/// `status` with exactly `{"error": code, "message": <non-empty text>}` as JSON.
fn assert_error(r: &HttpResponse, status: u16, code: &str) {
    let body = String::from_utf8_lossy(&r.body);
    assert_eq!(r.status, status, "body: {body}");
    assert_eq!(r.header("content-type"), Some("application/json"), "{body}");
    let v = r.json();
    assert_eq!(v["error"], code, "{v}");
    assert!(
        v["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message: {v}"
    );
    assert_eq!(v.as_object().unwrap().len(), 2, "extra fields: {v}");
}

/// A normal request still works: a new session answers `ping` on its stream.
fn assert_still_serves(addr: SocketAddr) {
    let mut c = SseClient::open(addr);
    assert_eq!(c.call(1, "ping", json!({}))["result"], json!({}));
}

/// One client connection driven by hand: raw writes, whole responses read back.
struct Raw {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Raw {
    fn open(addr: SocketAddr) -> Raw {
        let s = connect(addr);
        Raw {
            writer: s.try_clone().unwrap(),
            reader: BufReader::new(s),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> &mut Raw {
        self.writer.write_all(bytes).unwrap();
        self
    }

    fn response(&mut self) -> HttpResponse {
        read_response(&mut self.reader)
    }

    /// The server closed the connection: EOF with nothing more to read (a read error or
    /// timeout fails the test).
    fn assert_closed_by_server(&mut self) {
        assert_closed(&mut self.reader, "after the last response");
    }
}

/// A POST head for `path` with `headers` (each ending in `\r\n`), no body.
fn post_head(path: &str, headers: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{headers}\r\n"
    )
    .into_bytes()
}

// ---- routes: missing or unknown session, unknown path, wrong method -------------------

#[test]
fn post_messages_without_session_id_is_400_missing_session_id() {
    let server = spawn(test_config());
    let addr = server.local_addr();
    for path in ["/messages", "/messages?sessionId=", "/messages?other=1"] {
        let r = request(addr, "POST", path, PING);
        assert_error(&r, 400, "missing_session_id");
    }
    assert_still_serves(addr);
}

#[test]
fn post_messages_with_unknown_session_id_is_404_unknown_session() {
    let server = spawn(test_config());
    let addr = server.local_addr();
    let r = request(
        addr,
        "POST",
        "/messages?sessionId=00000000000000000000000000000000",
        PING,
    );
    assert_error(&r, 404, "unknown_session");
    assert_still_serves(addr);
}

#[test]
fn unknown_path_is_404_with_a_json_error() {
    let server = spawn(test_config());
    let addr = server.local_addr();
    for path in ["/unknown", "/", "/sse/extra", "/messages/"] {
        let r = raw(
            addr,
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
        );
        assert_error(&r, 404, "not_found");
    }
    assert_still_serves(addr);
}

#[test]
fn wrong_method_is_405_with_the_allowed_method_in_allow() {
    let server = spawn(test_config());
    let addr = server.local_addr();
    for (method, path, allow) in [
        ("POST", "/sse", "GET, OPTIONS"),
        ("PUT", "/sse", "GET, OPTIONS"),
        ("DELETE", "/sse", "GET, OPTIONS"),
        ("GET", "/messages?sessionId=abc", "POST, OPTIONS"),
        ("PUT", "/messages", "POST, OPTIONS"),
        ("DELETE", "/messages", "POST, OPTIONS"),
        ("PUT", "/mcp", "GET, POST, DELETE, OPTIONS"),
        ("PATCH", "/mcp", "GET, POST, DELETE, OPTIONS"),
        ("POST", "/healthz", "GET, HEAD"),
    ] {
        let r = request(addr, method, path, b"");
        assert_error(&r, 405, "method_not_allowed");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
    assert_still_serves(addr);
}

#[test]
fn head_request_gets_the_status_and_headers_but_no_body() {
    // RFC 9110 §9.3.2: no content in a response to HEAD. A body here would be read as the
    // start of the next response on a kept-alive connection.
    let server = spawn(test_config());
    let addr = server.local_addr();
    let mut c = Raw::open(addr);
    c.send(b"HEAD /sse HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let mut head = String::new();
    loop {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut c.reader, &mut line).unwrap();
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    assert!(head.starts_with("HTTP/1.1 405 "), "{head}");
    assert!(head.contains("\r\nAllow: GET, OPTIONS\r\n"), "{head}");
    // The next bytes on the connection must be the next response, not a stray body.
    c.send(b"GET /unknown HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_error(&c.response(), 404, "not_found");
    assert_still_serves(addr);
}

// ---- bodies: not JSON, too large, chunked, 100-continue ------------------------------

#[test]
fn body_that_is_not_json_is_400_and_a_parse_error_arrives_on_the_stream() {
    let (server, mut c) = session(test_config());
    let r = c.post_raw(b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ");
    assert_error(&r, 400, "parse_error");
    let reply = c.next_message();
    assert_eq!(reply["jsonrpc"], "2.0");
    assert_eq!(reply["id"], json!(null));
    assert_eq!(reply["error"]["code"], -32700, "{reply}");
    // The session is still usable.
    assert_eq!(c.call(2, "ping", json!({}))["result"], json!({}));
    assert_still_serves(server.local_addr());
}

#[test]
fn content_length_over_the_cap_is_413_before_the_body_is_sent() {
    // A long request deadline: a server that waited for the body would not answer within
    // the client's 10 s read timeout, and neither a 408 nor silence passes this test.
    let config = Config {
        request_timeout: Duration::from_secs(60),
        ..small_body_config()
    };
    let (server, c) = session(config);
    let addr = server.local_addr();
    let mut conn = Raw::open(addr);
    let announced = SMALL_MAX_BODY + 1;
    conn.send(&post_head(
        &c.endpoint,
        &format!("Content-Length: {announced}\r\n"),
    ));
    let r = conn.response();
    assert_error(&r, 413, "body_too_large");
    assert_eq!(r.header("connection"), Some("close"));
    conn.assert_closed_by_server();
    assert_still_serves(addr);
}

#[test]
fn content_length_over_the_cap_with_the_body_sent_at_once_is_still_413() {
    // Most clients do not wait for a verdict: head and body arrive together. The server
    // answers after reading only part of the body; the client must still see the 413.
    let (server, c) = session(small_body_config());
    let addr = server.local_addr();
    let mut conn = Raw::open(addr);
    let body = vec![b'x'; 64 * 1024];
    let mut req = post_head(&c.endpoint, &format!("Content-Length: {}\r\n", body.len()));
    req.extend_from_slice(&body);
    // The server may close before taking every byte; a failed write is expected then.
    let _ = conn.writer.write_all(&req);
    let r = conn.response();
    assert_error(&r, 413, "body_too_large");
    assert_eq!(r.header("connection"), Some("close"));
    assert_still_serves(addr);
}

#[test]
fn content_length_at_the_cap_is_accepted() {
    let (_server, mut c) = session(small_body_config());
    let mut body = PING.to_vec();
    body.resize(SMALL_MAX_BODY, b' ');
    let r = c.post_raw(&body);
    assert_eq!(r.status, 202, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(c.next_message()["id"], 7);
}

#[test]
fn expect_100_continue_with_a_length_over_the_cap_is_413_without_100_continue() {
    let (server, c) = session(small_body_config());
    let addr = server.local_addr();
    let mut conn = Raw::open(addr);
    conn.send(&post_head(
        &c.endpoint,
        &format!(
            "Expect: 100-continue\r\nContent-Length: {}\r\n",
            SMALL_MAX_BODY + 1
        ),
    ));
    let r = conn.response();
    assert_error(&r, 413, "body_too_large");
    conn.assert_closed_by_server();
    assert_still_serves(addr);
}

#[test]
fn chunked_body_that_grows_past_the_cap_is_413_while_reading() {
    let (server, mut c) = session(small_body_config());
    let addr = server.local_addr();
    let mut conn = Raw::open(addr);
    conn.send(&post_head(&c.endpoint, "Transfer-Encoding: chunked\r\n"));
    // Two chunks of 400 bytes fit under 1024; the third announces 400 more. Each chunk is
    // well under the cap: only their sum crosses it. Nothing is sent after the third size
    // line, so the server has read every byte when it answers.
    let data = [b'x'; 400];
    for _ in 0..2 {
        conn.send(b"190\r\n").send(&data).send(b"\r\n");
    }
    conn.send(b"190\r\n");
    let r = conn.response();
    assert_error(&r, 413, "body_too_large");
    assert_eq!(r.header("connection"), Some("close"));
    conn.assert_closed_by_server();
    // Nothing reached the session.
    c.post(&json!({"jsonrpc": "2.0", "id": 8, "method": "ping"}));
    assert_eq!(c.next_message()["id"], 8);
    assert_still_serves(addr);
}

#[test]
fn chunked_body_in_several_chunks_with_extensions_and_a_trailer_is_accepted() {
    let (server, mut c) = session(test_config());
    let mut conn = Raw::open(server.local_addr());
    let (a, rest) = PING.split_at(10);
    let (b, d) = rest.split_at(17);
    let mut req = post_head(&c.endpoint, "Transfer-Encoding: chunked\r\n");
    req.extend_from_slice(format!("{:x};name=value\r\n", a.len()).as_bytes());
    req.extend_from_slice(a);
    req.extend_from_slice(format!("\r\n{:X} ; quoted=\"a;b\"\r\n", b.len()).as_bytes());
    req.extend_from_slice(b);
    req.extend_from_slice(format!("\r\n{:x}\r\n", d.len()).as_bytes());
    req.extend_from_slice(d);
    req.extend_from_slice(b"\r\n0;last\r\nX-Trailer: ignored\r\n\r\n");
    conn.send(&req);
    let r = conn.response();
    assert_eq!(r.status, 202, "{:?}", String::from_utf8_lossy(&r.body));
    let reply = c.next_message();
    assert_eq!(reply["id"], 7);
    assert_eq!(reply["result"], json!({}));
    // The connection stays open for the next request after a chunked body.
    conn.send(b"GET /unknown HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_error(&conn.response(), 404, "not_found");
}

#[test]
fn malformed_chunk_is_400_bad_body_framing() {
    let (server, c) = session(test_config());
    let addr = server.local_addr();
    for chunks in [
        &b"zz\r\nabc\r\n0\r\n\r\n"[..],
        b"3\r\nabcX\r\n0\r\n\r\n",
        b";ext\r\n",
        b"11111111111111111\r\n",
    ] {
        let mut req = post_head(&c.endpoint, "Transfer-Encoding: chunked\r\n");
        req.extend_from_slice(chunks);
        let mut conn = Raw::open(addr);
        conn.send(&req);
        assert_error(&conn.response(), 400, "bad_body_framing");
        conn.assert_closed_by_server();
    }
    assert_still_serves(addr);
}

#[test]
fn expect_100_continue_gets_100_continue_then_the_final_response() {
    let (server, mut c) = session(test_config());
    let mut conn = Raw::open(server.local_addr());
    conn.send(&post_head(
        &c.endpoint,
        &format!("Expect: 100-continue\r\nContent-Length: {}\r\n", PING.len()),
    ));
    // The interim response comes before any body byte is sent.
    let interim = conn.response();
    assert_eq!(interim.status, 100);
    assert!(interim.body.is_empty());
    conn.send(PING);
    let r = conn.response();
    assert_eq!(r.status, 202, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(c.next_message()["id"], 7);
}

#[test]
fn expect_100_continue_from_an_http_1_0_client_is_ignored() {
    // RFC 9110 §10.1.1: a server must ignore 100-continue in an HTTP/1.0 request.
    let (server, mut c) = session(test_config());
    let mut conn = Raw::open(server.local_addr());
    let mut req = format!(
        "POST {} HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        c.endpoint,
        PING.len()
    )
    .into_bytes();
    req.extend_from_slice(PING);
    conn.send(&req);
    let r = conn.response();
    assert_eq!(r.status, 202, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(c.next_message()["id"], 7);
    conn.assert_closed_by_server();
}

// ---- framing that could smuggle a second request -------------------------------------

#[test]
fn content_length_with_transfer_encoding_is_400() {
    let (server, c) = session(test_config());
    let addr = server.local_addr();
    let mut conn = Raw::open(addr);
    let mut req = post_head(
        &c.endpoint,
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    );
    req.extend_from_slice(b"0\r\n\r\n");
    conn.send(&req);
    assert_error(&conn.response(), 400, "bad_body_framing");
    conn.assert_closed_by_server();
    assert_still_serves(addr);
}

#[test]
fn two_content_lengths_are_400_whether_they_differ_or_not() {
    let (server, c) = session(test_config());
    let addr = server.local_addr();
    for lengths in [
        "Content-Length: 4\r\nContent-Length: 5\r\n",
        "Content-Length: 5\r\nContent-Length: 5\r\n",
    ] {
        let mut conn = Raw::open(addr);
        conn.send(&post_head(&c.endpoint, lengths));
        assert_error(&conn.response(), 400, "bad_body_framing");
        conn.assert_closed_by_server();
    }
    assert_still_serves(addr);
}

#[test]
fn content_length_that_is_not_a_plain_number_is_400() {
    let (server, c) = session(test_config());
    let addr = server.local_addr();
    for value in ["abc", "-1", "+5", "0x10", "1 2", "99999999999999999999"] {
        let mut conn = Raw::open(addr);
        conn.send(&post_head(
            &c.endpoint,
            &format!("Content-Length: {value}\r\n"),
        ));
        assert_error(&conn.response(), 400, "bad_body_framing");
        conn.assert_closed_by_server();
    }
    assert_still_serves(addr);
}

#[test]
fn transfer_coding_other_than_chunked_is_501() {
    let (server, c) = session(test_config());
    let addr = server.local_addr();
    for coding in [
        "Transfer-Encoding: gzip\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
    ] {
        let mut conn = Raw::open(addr);
        conn.send(&post_head(&c.endpoint, coding));
        assert_error(&conn.response(), 501, "unsupported_transfer_encoding");
        conn.assert_closed_by_server();
    }
    assert_still_serves(addr);
}

#[test]
fn transfer_encoding_in_an_http_1_0_request_is_400() {
    let (server, c) = session(test_config());
    let addr = server.local_addr();
    let mut conn = Raw::open(addr);
    conn.send(
        format!(
            "POST {} HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            c.endpoint
        )
        .as_bytes(),
    );
    assert_error(&conn.response(), 400, "bad_body_framing");
    conn.assert_closed_by_server();
    assert_still_serves(addr);
}

// ---- request heads -------------------------------------------------------------------

#[test]
fn head_that_reaches_32_kib_unfinished_is_431() {
    let server = spawn(test_config());
    let addr = server.local_addr();
    // Exactly MAX_HEAD_BYTES of a head that has not ended yet: the server reads all of it
    // (so it closes cleanly, without a reset over unread bytes) and cannot wait for more.
    let mut req = b"GET /sse HTTP/1.1\r\nHost: localhost\r\nX-Big: ".to_vec();
    req.resize(MAX_HEAD_BYTES, b'a');
    let mut conn = Raw::open(addr);
    conn.send(&req);
    let r = conn.response();
    assert_error(&r, 431, "headers_too_large");
    assert_eq!(r.header("connection"), Some("close"));
    conn.assert_closed_by_server();
    assert_still_serves(addr);
}

#[test]
fn more_than_64_headers_is_431() {
    let server = spawn(test_config());
    let addr = server.local_addr();
    let head = |count: usize| {
        let mut req = String::from("GET /unknown HTTP/1.1\r\n");
        for i in 1..count {
            req.push_str(&format!("X-H{i}: v\r\n"));
        }
        req.push_str("Host: localhost\r\n\r\n");
        req
    };
    // 64 fields is the limit and passes; 65 does not.
    assert_error(&raw(addr, head(MAX_HEADERS).as_bytes()), 404, "not_found");
    let mut conn = Raw::open(addr);
    conn.send(head(MAX_HEADERS + 1).as_bytes());
    assert_error(&conn.response(), 431, "headers_too_large");
    conn.assert_closed_by_server();
    assert_still_serves(addr);
}

#[test]
fn garbage_request_line_is_400() {
    let server = spawn(test_config());
    let addr = server.local_addr();
    for garbage in [
        &b"NOT A REQUEST\r\n\r\n"[..],
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET /sse HTTP/9.9\r\n\r\n",
        b"GET /sse HTTP/1.1\r\nBad Header\r\n\r\n",
    ] {
        let mut conn = Raw::open(addr);
        conn.send(garbage);
        assert_error(&conn.response(), 400, "bad_request");
        conn.assert_closed_by_server();
    }
    assert_still_serves(addr);
}

// ---- connections: keep-alive, HTTP/1.0, deadlines ------------------------------------

#[test]
fn keep_alive_connection_answers_two_requests_in_turn_and_pipelined() {
    let (server, mut c) = session(test_config());
    let mut conn = Raw::open(server.local_addr());
    let mut post = post_head(&c.endpoint, &format!("Content-Length: {}\r\n", PING.len()));
    post.extend_from_slice(PING);
    conn.send(&post);
    assert_eq!(conn.response().status, 202);
    assert_eq!(c.next_message()["id"], 7);
    conn.send(b"GET /unknown HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_error(&conn.response(), 404, "not_found");
    // Both requests in one write.
    let mut two = post.clone();
    two.extend_from_slice(b"GET /unknown HTTP/1.1\r\nHost: localhost\r\n\r\n");
    conn.send(&two);
    assert_eq!(conn.response().status, 202);
    assert_error(&conn.response(), 404, "not_found");
    assert_eq!(c.next_message()["id"], 7);
    // Each request is read afresh, nothing kept from the one before: a long path then a
    // short one, and a `Connection: close` that only the last request carries.
    for path in ["/a-rather-long-path-that-comes-first", "/b"] {
        conn.send(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
        let r = conn.response();
        assert_error(&r, 404, "not_found");
        let message = r.json()["message"].as_str().unwrap().to_string();
        assert!(
            message.starts_with(&format!("no such endpoint: {path};")),
            "{message}"
        );
    }
    conn.send(b"GET /c HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_error(&conn.response(), 404, "not_found");
    conn.assert_closed_by_server();
}

#[test]
fn http_1_0_request_gets_its_response_then_the_connection_closes() {
    let server = spawn(test_config());
    let addr = server.local_addr();
    let mut conn = Raw::open(addr);
    conn.send(b"GET /unknown HTTP/1.0\r\n\r\n");
    assert_error(&conn.response(), 404, "not_found");
    conn.assert_closed_by_server();
    assert_still_serves(addr);
}

#[test]
fn http_1_0_keep_alive_is_announced_and_honoured() {
    let server = spawn(test_config());
    let addr = server.local_addr();
    let mut conn = Raw::open(addr);
    // RFC 9112 §9.3: an HTTP/1.0 client keeps the connection only if the response says so.
    for _ in 0..2 {
        conn.send(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let r = conn.response();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), Some("keep-alive"));
    }
    // Without it, HTTP/1.0's default (close) needs no header.
    conn.send(b"GET /healthz HTTP/1.0\r\n\r\n");
    let r = conn.response();
    assert_eq!(r.status, 200);
    assert_ne!(r.header("connection"), Some("keep-alive"));
    conn.assert_closed_by_server();
    assert_still_serves(addr);
}

#[test]
fn connection_close_is_honoured_and_announced_after_the_response() {
    let server = spawn(test_config());
    let mut conn = Raw::open(server.local_addr());
    // HTTP/1.1's default (keep the connection) needs no header.
    conn.send(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(conn.response().header("connection"), None);
    // RFC 9112 §9.6: the server closes after the response to `close`, and should say so.
    conn.send(b"GET /unknown HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let r = conn.response();
    assert_error(&r, 404, "not_found");
    assert_eq!(r.header("connection"), Some("close"));
    conn.assert_closed_by_server();
}

fn short_deadline_config() -> Config {
    Config {
        request_timeout: Duration::from_secs(1),
        ..test_config()
    }
}

#[test]
fn slowloris_partial_head_gets_408_while_other_clients_are_served() {
    let server = spawn(short_deadline_config());
    let addr = server.local_addr();
    let mut slow = Raw::open(addr);
    // A head that never ends, trickled a few bytes at a time. The deadline covers the
    // whole request, so trickling does not extend it.
    slow.send(b"GET /sse HTTP/1.1\r\nHost: localhost\r\n");
    let mut trickle = slow.writer.try_clone().unwrap();
    let trickler = std::thread::spawn(move || {
        for i in 0..100 {
            // Stops when the server has closed the connection.
            if trickle
                .write_all(format!("X-{i}: a\r\n").as_bytes())
                .is_err()
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    // Meanwhile another client gets a whole session.
    assert_still_serves(addr);
    let r = slow.response();
    assert_error(&r, 408, "request_timeout");
    assert_eq!(r.header("connection"), Some("close"));
    let _ = slow.writer.shutdown(std::net::Shutdown::Write);
    trickler.join().unwrap();
    assert_still_serves(addr);
}

#[test]
fn body_that_stops_short_gets_408() {
    let server = spawn(short_deadline_config());
    let addr = server.local_addr();
    let c = SseClient::open(addr);
    let mut conn = Raw::open(addr);
    conn.send(&post_head(&c.endpoint, "Content-Length: 100\r\n"));
    conn.send(&PING[..10]);
    let r = conn.response();
    assert_error(&r, 408, "request_timeout");
    conn.assert_closed_by_server();
    assert_still_serves(addr);
}

#[test]
fn silent_connection_is_closed_without_a_response() {
    let server = spawn(short_deadline_config());
    let addr = server.local_addr();
    let mut silent = Raw::open(addr);
    // Another client is served while the silent one holds its connection.
    assert_still_serves(addr);
    silent.assert_closed_by_server();
    assert_still_serves(addr);
}

#[test]
fn idle_keep_alive_connection_is_closed_after_the_deadline() {
    let server = spawn(short_deadline_config());
    let addr = server.local_addr();
    let mut conn = Raw::open(addr);
    conn.send(b"GET /unknown HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_error(&conn.response(), 404, "not_found");
    conn.assert_closed_by_server();
    assert_still_serves(addr);
}

#[test]
fn absolute_form_targets_are_accepted_for_their_path() {
    // RFC 9112 §3.2.2: a server must accept absolute-form; only path and query count.
    let server = spawn(test_config());
    let addr = server.local_addr();
    let r = raw(
        addr,
        b"GET http://example.com:3000/healthz HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let r = raw(
        addr,
        b"GET HTTPS://example.com?x=1 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 404, "the path of a bare authority is /");
    let r = raw(
        addr,
        b"POST http://localhost/messages HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "missing_session_id");
}

#[test]
fn a_target_that_is_not_a_path_is_400_without_echoing_it() {
    let server = spawn(test_config());
    let r = raw(
        server.local_addr(),
        b"POST messages?sessionId=0123456789abcdef HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 400);
    let body = String::from_utf8_lossy(&r.body);
    assert!(body.contains("starting with /"), "{body}");
    assert!(
        !body.contains("0123456789abcdef"),
        "the target is echoed: {body}"
    );
}
