//! `http`: whole requests through the real server, over loopback.
//!
//! Two servers start once (in a `OnceLock`): "open" with authentication off, and "guarded"
//! with authentication on (its JWKS, the fuzz crate's fixed RSA and P-256 keys, is served by a
//! tiny HTTP thread here; `REQUIRED_GROUPS=sre`). Each holds one live SSE session, opened by
//! a background reader thread that also checks every event the session receives.
//!
//! Per input: bit 0 of the first byte picks the server; the rest is sent as raw bytes on a
//! new connection, after replacing placeholders so the fuzzer can reach the deeper paths:
//! `@S` → that server's live session id, `@T` → a valid RS256 token, `@E` → a valid ES256
//! token, `@G` → a valid token of a user outside the required group, `@X` → an expired one.
//! The write half is then shut and the response read to the end (2 s read timeout).
//!
//! Asserts: no panic on any thread (the abort hook); if bytes come back, they are one or
//! more HTTP/1.1 responses, each `HTTP/1.1 ddd reason`, never `500`, with `Content-Length`
//! framing and a JSON body when the type says JSON, or an SSE stream: on `/sse` it starts
//! with its `endpoint` event; on `/mcp` its first event is well formed and its data, if
//! any, JSON-RPC that is never `-32603`. Events on the held sessions are `endpoint` or
//! `message` with JSON data.
//! Connection errors (resets, refusals) are ignored.
#![no_main]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::thread;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mcp_warden::auth::jwt::Policy;
use mcp_warden::auth::{AuthConfig, RequiredGroups};
use mcp_warden::config::Config;
use serde_json::{Value, json};
use warden_fuzz::{Alg, abort_on_panic, good_claims, jwks_json, token};

const READ_TIMEOUT: Duration = Duration::from_secs(2);

struct Target {
    addr: SocketAddr,
    session: Arc<Mutex<String>>,
    _server: mcp_warden::Server,
}

struct Harness {
    open: Target,
    guarded: Target,
    /// Placeholder → replacement.
    tokens: Vec<(&'static [u8], String)>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let good_rs = token(Alg::Rs256, &live_claims());
        let good_es = token(Alg::Es256, &live_claims());
        let mut outsider = live_claims();
        outsider["groups"] = json!(["dev"]);
        let mut expired = live_claims();
        expired["exp"] = json!(1_000_000_000u64);
        let tokens = vec![
            (&b"@T"[..], good_rs.clone()),
            (&b"@E"[..], good_es),
            (&b"@G"[..], token(Alg::Rs256, &outsider)),
            (&b"@X"[..], token(Alg::Es256, &expired)),
        ];
        let jwks = serve_jwks(jwks_json());
        let auth = AuthConfig {
            jwks_uri: format!("http://{jwks}/jwks.json"),
            required_groups: RequiredGroups::OneOf(vec!["sre".into()]),
            policy: Policy::default(),
            refresh: Duration::from_secs(3600),
            min_refetch: Duration::from_secs(3600),
            max_age: Duration::from_secs(3600),
            metadata: None,
        };
        Harness {
            open: start(None, None),
            guarded: start(Some(auth), Some(good_rs)),
            tokens,
        }
    })
}

/// `good_claims` with `nbf` and `iat` at the real clock (the server checks against it).
fn live_claims() -> Value {
    let mut claims = good_claims();
    let now = mcp_warden::auth::unix_now();
    claims["nbf"] = json!(now - 60);
    claims["iat"] = json!(now - 60);
    claims
}

fn start(auth: Option<AuthConfig>, bearer: Option<String>) -> Target {
    let config = Config {
        port: 0,
        sse_keepalive: Duration::from_millis(200),
        max_body_bytes: 8192,
        request_timeout: Duration::from_secs(1),
        // The seeds' and the held session's `Host` names (any other gets 403 on loopback).
        allowed_hosts: vec!["x".into(), "fuzz".into()],
        auth,
        ..Config::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let server = mcp_warden::start(config, listener).expect("server starts");
    let addr = server.local_addr();
    let session = Arc::new(Mutex::new(String::new()));
    let (ready, started) = mpsc::channel();
    let slot = Arc::clone(&session);
    thread::spawn(move || hold_session(addr, bearer, &slot, ready));
    started
        .recv_timeout(Duration::from_secs(10))
        .expect("the held session opens");
    Target {
        addr,
        session,
        _server: server,
    }
}

/// Serves `body` at any path, one request per connection.
fn serve_jwks(body: String) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind JWKS");
    let addr = listener.local_addr().expect("JWKS address");
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut request = Vec::new();
            let mut chunk = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65536 {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&chunk[..n]),
                }
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    addr
}

/// Holds an SSE session open for the fuzz inputs to post to, reopening it if it ends, and
/// checks every event on it.
fn hold_session(
    addr: SocketAddr,
    bearer: Option<String>,
    slot: &Mutex<String>,
    ready: mpsc::Sender<()>,
) {
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    loop {
        let Ok(mut stream) = TcpStream::connect(addr) else {
            thread::sleep(Duration::from_millis(50));
            continue;
        };
        let request = format!("GET /sse HTTP/1.1\r\nHost: fuzz\r\n{auth}\r\n");
        if stream.write_all(request.as_bytes()).is_err() {
            continue;
        }
        let mut lines = BufReader::new(stream).lines();
        let mut status = None;
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if status.is_none() {
                status = Some(line.clone());
            }
            if line.is_empty() {
                break;
            }
        }
        let status = status.unwrap_or_default();
        assert!(
            status.starts_with("HTTP/1.1 200 "),
            "held session refused: {status:?}"
        );
        let mut event = None;
        for line in lines {
            let Ok(line) = line else { break };
            if let Some(name) = line.strip_prefix("event: ") {
                event = Some(name.to_string());
            } else if let Some(data) = line.strip_prefix("data: ") {
                match event.take().as_deref() {
                    Some("endpoint") => {
                        let id = data
                            .strip_prefix("/messages?sessionId=")
                            .unwrap_or_else(|| panic!("odd endpoint event: {data:?}"));
                        *slot.lock().unwrap() = id.to_string();
                        let _ = ready.send(());
                    }
                    Some("message") => {
                        let value: Value = serde_json::from_str(data).unwrap_or_else(|e| {
                            panic!("message event is not JSON ({e}): {data:?}")
                        });
                        let code = |v: &Value| v["error"]["code"].as_i64();
                        let items = match &value {
                            Value::Array(items) => items.clone(),
                            other => vec![other.clone()],
                        };
                        for item in &items {
                            assert_ne!(code(item), Some(-32603), "internal error: {data}");
                        }
                    }
                    other => panic!("data line outside an event ({other:?}): {data:?}"),
                }
            } else {
                // Blank lines end events; comments are keep-alives; `retry:` follows the
                // `endpoint` event.
                assert!(
                    line.is_empty() || line.starts_with(':') || line.starts_with("retry: "),
                    "odd SSE line: {line:?}"
                );
            }
        }
        // The stream ended (it should not, but a fuzz input may close the session):
        // open a new one.
        thread::sleep(Duration::from_millis(10));
    }
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    abort_on_panic();
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let h = harness();
    let target = if control & 1 == 0 {
        &h.open
    } else {
        &h.guarded
    };
    let session = target.session.lock().unwrap().clone();
    let mut bytes = replace_all(rest, b"@S", session.as_bytes());
    for (placeholder, token) in &h.tokens {
        bytes = replace_all(&bytes, placeholder, token.as_bytes());
    }
    exchange(target.addr, &bytes);
});

/// `WARDEN_FUZZ_DEBUG=1` prints every answer (for checking seeds by eye).
fn debug() -> bool {
    static DEBUG: OnceLock<bool> = OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("WARDEN_FUZZ_DEBUG").is_some())
}

/// Sends `bytes`, reads the answer and checks it.
fn exchange(addr: SocketAddr, bytes: &[u8]) {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(Shutdown::Write);
    let mut got = Vec::new();
    let mut chunk = [0u8; 16384];
    let clean_end = loop {
        match stream.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) => {
                got.extend_from_slice(&chunk[..n]);
                // A stream never ends by itself: stop once its first event is in.
                if let Ok(Parsed::EventStream) = parse_responses(&got) {
                    break true;
                }
            }
            Err(_) => break false, // reset or timeout: what arrived is still checked
        }
    };
    if debug() {
        eprintln!("<< {:?}", String::from_utf8_lossy(&got));
    }
    match parse_responses(&got) {
        Ok(Parsed::Complete | Parsed::EventStream) => {}
        Ok(Parsed::Truncated) if !clean_end => {}
        Ok(Parsed::Truncated) => panic!(
            "the connection closed in the middle of a response: {:?}",
            String::from_utf8_lossy(&got)
        ),
        Err(why) => panic!(
            "bad response ({why}) to {:?}: {:?}",
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(&got)
        ),
    }
}

#[derive(Debug, PartialEq)]
enum Parsed {
    /// Zero or more whole responses.
    Complete,
    /// Whole responses, then the start of one.
    Truncated,
    /// Ends in an SSE stream whose first event has arrived (`endpoint` on `/sse`).
    EventStream,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Checks a sequence of responses; `Err` says what is wrong.
fn parse_responses(mut b: &[u8]) -> Result<Parsed, String> {
    const PREFIX: &[u8] = b"HTTP/1.1 ";
    loop {
        if b.is_empty() {
            return Ok(Parsed::Complete);
        }
        let n = b.len().min(PREFIX.len());
        if b[..n] != PREFIX[..n] {
            return Err("does not start with \"HTTP/1.1 \"".into());
        }
        let Some(end) = find(b, b"\r\n\r\n") else {
            return Ok(Parsed::Truncated);
        };
        let head = std::str::from_utf8(&b[..end]).map_err(|_| "the head is not UTF-8")?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let rest = &status_line[PREFIX.len()..];
        let (code, reason) = rest.split_once(' ').ok_or("no reason phrase")?;
        if code.len() != 3 || !code.bytes().all(|c| c.is_ascii_digit()) || code < "100" {
            return Err(format!("status {code:?} is not three digits"));
        }
        if code == "500" {
            return Err(format!("status 500 {reason}"));
        }
        let mut length = None;
        let mut content_type = String::new();
        for line in lines {
            let (name, value) = line
                .split_once(": ")
                .ok_or_else(|| format!("bad header line {line:?}"))?;
            if name.is_empty() || value.contains(['\r', '\n']) {
                return Err(format!("bad header line {line:?}"));
            }
            if name.eq_ignore_ascii_case("content-length") {
                if length.is_some() {
                    return Err("two Content-Length".into());
                }
                length = Some(value.parse::<usize>().map_err(|_| "bad Content-Length")?);
            } else if name.eq_ignore_ascii_case("content-type") {
                content_type = value.to_string();
            }
        }
        let body = &b[end + 4..];
        if code == "100" || code == "204" || code == "304" {
            // No body, by definition (RFC 9110 §15.3.5, §15.4.5): a `Content-Length` is
            // not required (a 204 must not carry one other than 0).
            if code == "204" && length.is_some_and(|n| n != 0) {
                return Err("a 204 with a Content-Length other than 0".into());
            }
            b = body;
            continue;
        }
        if content_type == "text/event-stream" {
            if code != "200" {
                return Err(format!("an event stream with status {code}"));
            }
            return first_event(body);
        }
        let length = length.ok_or("no Content-Length")?;
        if body.is_empty() || (body.starts_with(PREFIX) && length > 0) {
            // Nothing, or the next response, after the head: the answer to a `HEAD`, whose
            // head says how long the body would be. (Bodies here are never empty-looking:
            // they are JSON, so they start with `{`.)
            b = body;
            continue;
        }
        if body.len() < length {
            return Ok(Parsed::Truncated);
        }
        if content_type == "application/json" {
            serde_json::from_slice::<Value>(&body[..length])
                .map_err(|e| format!("a JSON body that is not JSON: {e}"))?;
        }
        b = &body[length..];
    }
}

/// Checks the start of an event stream: a legacy `/sse` stream opens with its `endpoint`
/// event; a `/mcp` stream (a POST's answer, a GET stream, a 2026-07-28 listen) with events
/// of `id:`, `event:`, `data:` and `retry:` lines and comments, whose `message` data is
/// JSON-RPC that is never `-32603`. Done once the first whole event is in.
fn first_event(body: &[u8]) -> Result<Parsed, String> {
    let legacy = b"event: endpoint\ndata: /messages?sessionId=";
    let n = body.len().min(legacy.len());
    if n > b"event: ".len() && body[..n] == legacy[..n] {
        return Ok(match body[n..].iter().position(|&c| c == b'\n') {
            Some(_) => Parsed::EventStream,
            None => Parsed::Truncated,
        });
    }
    let Some(end) = find(body, b"\n\n") else {
        return Ok(Parsed::Truncated);
    };
    let text = std::str::from_utf8(&body[..end]).map_err(|_| "an event that is not UTF-8")?;
    let mut event = "message";
    let mut data = String::new();
    for line in text.split('\n') {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = value,
            "data" => data.push_str(value),
            "id" | "retry" => {}
            _ => return Err(format!("odd SSE line {line:?}")),
        }
    }
    if event == "endpoint" {
        return Err("an endpoint event outside a legacy stream's start".into());
    }
    if !data.is_empty() {
        let value: Value =
            serde_json::from_str(&data).map_err(|e| format!("event data is not JSON: {e}"))?;
        let items = match &value {
            Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        };
        for item in &items {
            if item["error"]["code"].as_i64() == Some(-32603) {
                return Err(format!("internal error: {data}"));
            }
        }
    }
    Ok(Parsed::EventStream)
}
