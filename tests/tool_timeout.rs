//! `TOOL_TIMEOUT_SECS` without the tool's cooperation, over real HTTP on both transports: a
//! tool that ignores its cancellation and blocks well past the deadline has its client
//! answered with an error result about when the deadline passes (by the watchdog, see
//! `src/mcp/watchdog.rs`), sees `is_cancelled()`, and its own late result never reaches the
//! client; the session, and others, carry on meanwhile.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufReader, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{FnTool as Tool, str_arg};
use common::{
    McpClient, SseClient, connect, eventually, read_response, read_to_eof, spawn_with_tools,
    test_config,
};
use mcp_warden::config::Config;
use mcp_warden::mcp::call::Call;
use serde_json::{Map, Value, json};

/// How long `stubborn` blocks: well past the 1 s deadline. An answer that arrives while
/// the tool still blocks (`returned` says so) can only be the watchdog's.
const BLOCKS: Duration = Duration::from_secs(3);

/// `(tag, whether is_cancelled() said so)` of every `stubborn` call that has returned.
static RETURNED: Mutex<Vec<(String, bool)>> = Mutex::new(Vec::new());

/// Ignores cancellation: blocks for `BLOCKS` (after one progress notification, with
/// `"progress": true`, and after closing its `/mcp` stream, with `"close": true`), then
/// answers anyway.
fn stubborn(args: &Map<String, Value>, call: &Call<'_>) -> Result<String, String> {
    let tag = str_arg(args, "tag")?.to_string();
    if args.get("progress") == Some(&json!(true)) {
        call.progress(1.0, None, Some("working"));
    }
    if args.get("close") == Some(&json!(true)) {
        call.close_stream();
    }
    std::thread::sleep(BLOCKS);
    call.progress(2.0, None, Some("too late"));
    let result = format!("late result of {tag}");
    RETURNED.lock().unwrap().push((tag, call.is_cancelled()));
    Ok(result)
}

/// Blocks like `stubborn`, then panics.
fn stubborn_then_panics(args: &Map<String, Value>, call: &Call<'_>) -> Result<String, String> {
    let tag = str_arg(args, "tag")?.to_string();
    std::thread::sleep(BLOCKS);
    RETURNED.lock().unwrap().push((tag, call.is_cancelled()));
    panic!("a tool bug, after its deadline");
}

static TOOLS: &[Tool] = &[
    Tool {
        name: "stubborn",
        description: "Blocks past any short deadline, ignoring cancellation.",
        input_schema: || json!({"type": "object"}),
        call: stubborn,
    },
    Tool {
        name: "stubborn_then_panics",
        description: "Blocks past any short deadline, then panics.",
        input_schema: || json!({"type": "object"}),
        call: stubborn_then_panics,
    },
];

fn config() -> Config {
    Config {
        tool_timeout: Duration::from_secs(1),
        ..test_config()
    }
}

/// Whether the `stubborn` call `tag` has returned, and what `is_cancelled` told it.
fn returned(tag: &str) -> Option<bool> {
    let list = RETURNED.lock().unwrap();
    list.iter().find(|(t, _)| t == tag).map(|(_, c)| *c)
}

/// Waits until the `stubborn` call `tag` has returned; asserts it saw its cancellation.
fn await_return(tag: &str) {
    assert!(
        eventually(BLOCKS + Duration::from_secs(5), || returned(tag).is_some()),
        "{tag} never returned"
    );
    assert_eq!(
        returned(tag),
        Some(true),
        "{tag} did not see is_cancelled()"
    );
}

fn stubborn_call(id: i64, tag: &str, progress: bool) -> Value {
    let mut params = json!({"name": "stubborn", "arguments": {"tag": tag, "progress": progress}});
    if progress {
        params["_meta"] = json!({"progressToken": tag});
    }
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
}

/// Checks the watchdog's answer to call `id`: an error result naming the setting, about
/// when the deadline passed (the watchdog looks at least once a second, and at the next
/// deadline), before the tool `tag` has returned.
fn assert_timed_out(reply: &Value, id: i64, sent: Instant, tag: &str) {
    let took = sent.elapsed();
    assert!(
        returned(tag).is_none(),
        "{tag} returned before its answer came"
    );
    assert!(
        took >= Duration::from_millis(900) && took < BLOCKS,
        "answered after {took:?}"
    );
    assert_eq!(reply["id"], id, "{reply}");
    assert_eq!(reply["result"]["isError"], true, "{reply}");
    let text = reply["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("TOOL_TIMEOUT_SECS"), "{text}");
}

#[test]
fn on_sse_a_tool_that_ignores_its_deadline_is_answered_for_and_its_late_result_dropped() {
    let server = spawn_with_tools(config(), TOOLS);
    let addr = server.local_addr();
    let mut c = SseClient::initialized(addr);
    let sent = Instant::now();
    c.post(&stubborn_call(1, "sse", false));
    assert_timed_out(&c.next_message(), 1, sent, "sse");
    // The tool still runs: the session, and another, are served meanwhile.
    assert_eq!(c.call(2, "ping", json!({}))["result"], json!({}));
    let other = SseClient::initialized(addr);
    drop(other);
    await_return("sse");
    // Nothing of it follows: the stream stays quiet (keep-alives are 1 s apart here)…
    c.await_comments(2);
    // …and the next answer is the next call's.
    assert_eq!(c.call(3, "ping", json!({}))["id"], 3);
}

#[test]
fn on_mcp_the_watchdog_answers_in_json_and_closes_the_post() {
    let server = spawn_with_tools(config(), TOOLS);
    let addr = server.local_addr();
    let mut c = McpClient::new(addr);
    c.initialize("2025-11-25");
    let body = stubborn_call(1, "mcp-json", false);
    let sent = Instant::now();
    let (head, mut reader) = c.post_open("", &body);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("application/json"));
    assert_eq!(head.header("connection"), Some("close"));
    assert_timed_out(&head.json(), 1, sent, "mcp-json");
    // Nothing follows on that connection, and it ends at once (the tool still runs).
    let rest = read_to_eof(&mut reader, "the POST the watchdog answered");
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    // The session is served meanwhile, and afterwards; each reply is its own call's.
    assert_eq!(c.call(2, "ping", json!({}))["result"], json!({}));
    await_return("mcp-json");
    assert_eq!(c.call(3, "ping", json!({}))["id"], 3);
}

#[test]
fn on_mcp_an_event_stream_ends_with_the_watchdogs_answer() {
    let server = spawn_with_tools(config(), TOOLS);
    let addr = server.local_addr();
    let mut c = McpClient::new(addr);
    c.initialize("2025-11-25");
    let body = stubborn_call(4, "mcp-sse", true);
    let sent = Instant::now();
    let (head, mut reader) = c.post_open("", &body);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    let rest = read_to_eof(&mut reader, "the event stream the watchdog ended");
    let data: Vec<Value> = String::from_utf8(rest)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| !d.is_empty())
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(data.len(), 2, "{data:?}");
    assert_eq!(data[0]["params"]["message"], "working");
    assert_timed_out(&data[1], 4, sent, "mcp-sse");
    // Another session is served while the tool still blocks.
    let mut other = McpClient::new(addr);
    other.initialize("2025-11-25");
    assert_eq!(other.call(1, "ping", json!({}))["result"], json!({}));
    await_return("mcp-sse");
    assert_eq!(c.call(5, "ping", json!({}))["id"], 5);
}

#[test]
fn a_tool_that_panics_after_the_watchdog_answered_harms_nothing() {
    let server = spawn_with_tools(config(), TOOLS);
    let mut c = SseClient::initialized(server.local_addr());
    let sent = Instant::now();
    c.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "stubborn_then_panics", "arguments": {"tag": "panics"}}}));
    assert_timed_out(&c.next_message(), 1, sent, "panics");
    await_return("panics");
    // The panic's internal error is not sent either, and the session carries on.
    c.await_comments(2);
    assert_eq!(c.call(2, "ping", json!({}))["id"], 2);
}

#[test]
fn on_mcp_a_tool_that_closed_its_stream_has_the_watchdogs_answer_on_the_resuming_get() {
    let server = spawn_with_tools(config(), TOOLS);
    let addr = server.local_addr();
    let mut c = McpClient::new(addr);
    c.initialize("2025-11-25");
    let body = json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call",
        "params": {"name": "stubborn", "arguments": {"tag": "closed", "close": true}}});
    let sent = Instant::now();
    let (head, mut reader) = c.post_open("", &body);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    let priming = String::from_utf8(read_to_eof(&mut reader, "the closed stream")).unwrap();
    let last = priming
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap();
    let mut s = connect(addr);
    write!(
        s,
        "GET /mcp HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n{}Last-Event-ID: {last}\r\n\r\n",
        c.session_headers()
    )
    .unwrap();
    let mut reader = BufReader::new(s);
    assert_eq!(read_response(&mut reader).status, 200);
    let rest = String::from_utf8(read_to_eof(&mut reader, "the resumed stream")).unwrap();
    let data: Vec<Value> = rest
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(data.len(), 1, "{rest}");
    assert_timed_out(&data[0], 6, sent, "closed");
    await_return("closed");
}

#[test]
fn a_2026_07_28_call_is_answered_for_by_the_watchdog_too() {
    let server = spawn_with_tools(config(), TOOLS);
    let addr = server.local_addr();
    let mut body = stubborn_call(6, "modern", false);
    body["params"]["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let headers =
        "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: stubborn\r\n";
    let sent = Instant::now();
    let (head, mut reader) = McpClient::new(addr).post_open(headers, &body);
    assert_eq!(head.status, 200);
    let reply = head.json();
    assert_timed_out(&reply, 6, sent, "modern");
    assert_eq!(reply["result"]["resultType"], "complete", "{reply}");
    let rest = read_to_eof(&mut reader, "the POST the watchdog answered");
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    await_return("modern");
}
