//! Resumable event streams on `/mcp` (SEP-1699, MCP 2025-11-25), over real HTTP: a `POST`
//! answer that becomes an event stream opens with a priming event (an id, `retry`, empty
//! data) and gives every event an id; a tool that ends its stream early
//! (`Call::close_stream`) has the rest of its messages, result included, delivered on the
//! client's `GET` with `Last-Event-ID`, whether that `GET` comes before the tool has
//! finished or after. Plain JSON answers are unchanged, and on `/sse` closing the stream
//! does nothing.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{FnTool as Tool, str_arg};
use common::{
    McpClient, SseClient, connect, eventually, read_response, spawn_with_tools, test_config,
};
use mcp_warden::mcp::call::Call;
use serde_json::{Map, Value, json};

/// Tags the test lets go on (`close_then_wait` waits for its own).
static RELEASED: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// Tags of the calls that have returned.
static FINISHED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn has(list: &Mutex<Vec<String>>, tag: &str) -> bool {
    list.lock().unwrap().iter().any(|t| t == tag)
}

/// Reports progress, closes its stream, waits for the test to release it (10 s at most),
/// reports progress again and answers. Says so if it saw a cancellation instead.
fn close_then_wait(args: &Map<String, Value>, call: &Call<'_>) -> Result<String, String> {
    let tag = str_arg(args, "tag")?.to_string();
    call.progress(1.0, Some(2.0), Some("before the close"));
    call.close_stream();
    let end = Instant::now() + Duration::from_secs(10);
    while !has(&RELEASED, &tag) && Instant::now() < end {
        if call.is_cancelled() {
            FINISHED.lock().unwrap().push(tag);
            return Err("cancelled".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    call.progress(2.0, Some(2.0), Some("after the close"));
    FINISHED.lock().unwrap().push(tag);
    Ok("result after the close".into())
}

/// Closes its stream and answers at once.
fn close_then_return(args: &Map<String, Value>, call: &Call<'_>) -> Result<String, String> {
    let tag = str_arg(args, "tag")?.to_string();
    call.close_stream();
    call.close_stream(); // a second close changes nothing
    FINISHED.lock().unwrap().push(tag);
    Ok("answered after closing".into())
}

/// Sends one progress notification, then answers (its stream is never closed).
fn progress_once(_args: &Map<String, Value>, call: &Call<'_>) -> Result<String, String> {
    call.progress(1.0, None, None);
    Ok("streamed".into())
}

static TOOLS: &[Tool] = &[
    Tool {
        name: "close_then_wait",
        description: "Closes its stream, waits to be released, answers.",
        input_schema: || json!({"type": "object"}),
        call: close_then_wait,
    },
    Tool {
        name: "close_then_return",
        description: "Closes its stream and answers.",
        input_schema: || json!({"type": "object"}),
        call: close_then_return,
    },
    Tool {
        name: "progress_once",
        description: "Reports progress once and answers.",
        input_schema: || json!({"type": "object"}),
        call: progress_once,
    },
];

/// One event as it is on the wire, fields as sent.
#[derive(Debug, Default)]
struct RawEvent {
    id: Option<String>,
    retry: Option<String>,
    data: Option<String>,
}

impl RawEvent {
    fn json(&self) -> Value {
        serde_json::from_str(self.data.as_deref().unwrap()).unwrap()
    }
}

/// The next event of an event stream, skipping comments; `None` at its end.
fn next_event(reader: &mut impl BufRead) -> Option<RawEvent> {
    let mut event = RawEvent::default();
    let mut fields = 0;
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("reading an event stream: {e}"));
        if n == 0 {
            assert_eq!(fields, 0, "the stream ended inside an event: {event:?}");
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if fields > 0 {
                return Some(event);
            }
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value).to_string();
        fields += 1;
        match name {
            "id" => event.id = Some(value),
            "retry" => event.retry = Some(value),
            "data" => event.data = Some(value),
            _ => {}
        }
    }
}

/// Every event until the stream ends.
fn all_events(reader: &mut impl BufRead) -> Vec<RawEvent> {
    std::iter::from_fn(|| next_event(reader)).collect()
}

fn session(addr: SocketAddr) -> McpClient {
    let mut c = McpClient::new(addr);
    c.initialize("2025-11-25");
    c
}

fn tool_call(id: i64, tool: &str, tag: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": {"tag": tag}, "_meta": {"progressToken": tag}}})
}

/// POSTs `body` for `c`'s session; returns the response head and a reader on its body.
fn post(c: &McpClient, body: &Value) -> (common::HttpResponse, BufReader<TcpStream>) {
    c.post_open("", body)
}

/// `GET /mcp` for `c`'s session with `Last-Event-ID: last`: the head and the stream.
fn resume(c: &McpClient, last: &str) -> (common::HttpResponse, BufReader<TcpStream>) {
    let mut s = connect(c.addr);
    write!(
        s,
        "GET /mcp HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n{}Last-Event-ID: {last}\r\n\r\n",
        c.session_headers()
    )
    .unwrap();
    let mut reader = BufReader::new(s);
    let head = read_response(&mut reader);
    (head, reader)
}

/// Checks the priming event: the first, with an id, a `retry` and empty data.
fn assert_priming(first: &RawEvent) {
    assert!(
        first.id.as_deref().is_some_and(|id| !id.is_empty()),
        "{first:?}"
    );
    assert_eq!(first.retry.as_deref(), Some("1000"), "{first:?}");
    assert_eq!(first.data.as_deref(), Some(""), "{first:?}");
}

#[test]
fn a_tool_that_closes_its_stream_has_its_result_delivered_on_the_resuming_get() {
    let server = spawn_with_tools(test_config(), TOOLS);
    let c = session(server.local_addr());
    let (head, mut body) = post(&c, &tool_call(7, "close_then_wait", "live"));
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    let events = all_events(&mut body);
    assert_priming(&events[0]);
    // Then the progress sent before the close, with an id of its own; then the end,
    // without the result.
    assert_eq!(events.len(), 2, "{events:?}");
    let progress = events[1].json();
    assert_eq!(progress["params"]["message"], "before the close");
    let last = events[1].id.clone().unwrap();
    assert_ne!(Some(&last), events[0].id.as_ref());
    assert!(!has(&FINISHED, "live"), "the tool still runs");

    let (head, mut stream) = resume(&c, &last);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    RELEASED.lock().unwrap().push("live".into());
    let mut resumed = all_events(&mut stream);
    // A `retry` opens the stream; then the progress and the result, each with an id.
    let opening = resumed.remove(0);
    assert_eq!(opening.retry.as_deref(), Some("1000"), "{opening:?}");
    assert_eq!(resumed.len(), 2, "{resumed:?}");
    assert_eq!(resumed[0].json()["params"]["message"], "after the close");
    let result = resumed[1].json();
    assert_eq!(result["id"], 7, "{result}");
    assert_eq!(
        result["result"]["content"][0]["text"], "result after the close",
        "the tool did not take its client leaving the POST for a cancellation"
    );
    let ids: Vec<&str> = resumed.iter().map(|e| e.id.as_deref().unwrap()).collect();
    assert!(!ids.contains(&last.as_str()), "{ids:?} reuse {last}");
    // The session carries on.
    assert_eq!(c.call(8, "ping", json!({}))["result"], json!({}));
}

#[test]
fn the_result_waits_for_a_get_that_comes_after_the_tool_has_finished() {
    let server = spawn_with_tools(test_config(), TOOLS);
    let c = session(server.local_addr());
    let (head, mut body) = post(&c, &tool_call(3, "close_then_return", "late-get"));
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    let events = all_events(&mut body);
    assert_eq!(events.len(), 1, "only the priming event: {events:?}");
    assert_priming(&events[0]);
    assert!(eventually(Duration::from_secs(5), || has(
        &FINISHED, "late-get"
    )));
    let (head, mut stream) = resume(&c, events[0].id.as_deref().unwrap());
    assert_eq!(head.status, 200);
    let resumed: Vec<RawEvent> = all_events(&mut stream)
        .into_iter()
        .filter(|e| e.data.is_some())
        .collect();
    assert_eq!(resumed.len(), 1, "{resumed:?}");
    let result = resumed[0].json();
    assert_eq!(result["id"], 3);
    assert_eq!(
        result["result"]["content"][0]["text"],
        "answered after closing"
    );
    // Delivered once: resuming again finds nothing, and is the session's own stream.
    let again = c.open_stream();
    assert!(
        again.is_ok(),
        "a GET without anything to resume is the session's stream"
    );
}

#[test]
fn a_client_holding_the_sessions_stream_resumes_on_a_second_get_and_only_there() {
    let server = spawn_with_tools(test_config(), TOOLS);
    let c = session(server.local_addr());
    // As the TypeScript SDK's client does: the session's own GET stream, open throughout.
    let mut own = c.open_stream().unwrap();
    let (_, mut body) = post(&c, &tool_call(11, "close_then_wait", "beside"));
    let events = all_events(&mut body);
    let (head, mut stream) = resume(&c, events.last().unwrap().id.as_deref().unwrap());
    assert_eq!(
        head.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&head.body)
    );
    RELEASED.lock().unwrap().push("beside".into());
    let result = all_events(&mut stream).pop().unwrap().json();
    assert_eq!(result["id"], 11);
    // Nothing of it on the session's stream: only keep-alives (one a second in tests).
    let mut line = String::new();
    for _ in 0..2 {
        line.clear();
        own.read_line(&mut line).unwrap();
        assert!(
            line.starts_with(": keep-alive") || line.trim().is_empty(),
            "{line:?}"
        );
    }
}

#[test]
fn a_last_event_id_with_nothing_behind_it_opens_the_sessions_stream() {
    let server = spawn_with_tools(test_config(), TOOLS);
    for id in ["9-0", "0-0", "garbage", "1-x", ""] {
        let c = session(server.local_addr());
        let (head, _stream) = resume(&c, id);
        assert_eq!(head.status, 200, "{id:?}");
        let second = c.open_stream().map(drop).unwrap_err();
        assert_eq!(
            second.status, 409,
            "{id:?}: it was the session's one stream"
        );
    }
}

#[test]
fn each_event_stream_of_a_session_has_ids_of_its_own_and_plain_json_has_none() {
    let server = spawn_with_tools(test_config(), TOOLS);
    let c = session(server.local_addr());
    let mut seen = Vec::new();
    for id in [1, 2] {
        let (head, mut body) = post(&c, &tool_call(id, "progress_once", "ids"));
        assert_eq!(head.header("content-type"), Some("text/event-stream"));
        let events = all_events(&mut body);
        assert_priming(&events[0]);
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!(events[2].json()["id"], id);
        seen.extend(events.into_iter().map(|e| e.id.unwrap()));
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "{seen:?}");
    // An answer with nothing before it: plain JSON, no priming.
    let r = c.post(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "close_then_return", "arguments": {"tag": "x"}}}));
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let r = c.post(&json!({"jsonrpc": "2.0", "id": 4, "method": "ping"}));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), json!({"jsonrpc": "2.0", "id": 4, "result": {}}));
}

#[test]
fn on_sse_closing_the_stream_does_nothing_and_the_answer_arrives_as_usual() {
    let server = spawn_with_tools(test_config(), TOOLS);
    let mut c = SseClient::initialized(server.local_addr());
    let reply = c.call(
        5,
        "tools/call",
        json!({"name": "close_then_return", "arguments": {"tag": "sse"}}),
    );
    assert_eq!(
        reply["result"]["content"][0]["text"],
        "answered after closing"
    );
    assert_eq!(c.call(6, "ping", json!({}))["result"], json!({}));
}
