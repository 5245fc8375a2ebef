//! What a running tool can do through its `Call`, on both transports: progress and log
//! messages reach the client before the result (on `/mcp` the POST's answer becomes an
//! event stream; on `/sse` they join the session's stream), and a tool sees that its request
//! was cancelled, by `notifications/cancelled` or, on `/mcp`, by its client leaving.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufReader, Write};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{FnTool as Tool, str_arg};
use common::{
    McpClient, SseClient, connect, eventually, next_data, read_response, spawn_with_tools,
    test_config,
};
use mcp_warden::mcp::call::Call;
use serde_json::{Map, Value, json};

/// Tags of the `until_cancelled` calls that saw their cancellation.
static CANCELLED: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// Tags of the `until_cancelled` calls that have started.
static STARTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn progress(_args: &Map<String, Value>, call: &Call<'_>) -> Result<String, String> {
    call.log("info", json!("starting"));
    call.log("debug", json!("below the level the tests set: never sent"));
    call.progress(1.0, Some(2.0), Some("half"));
    call.progress(2.0, Some(2.0), None);
    Ok("done".into())
}

fn until_cancelled(args: &Map<String, Value>, call: &Call<'_>) -> Result<String, String> {
    let tag = str_arg(args, "tag")?.to_string();
    STARTED.lock().unwrap().push(tag.clone());
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if call.is_cancelled() {
            // Carrying on after the cancellation reaches nobody.
            call.log("emergency", json!("still running after the cancellation"));
            call.progress(99.0, None, Some("after the cancellation"));
            CANCELLED.lock().unwrap().push(tag);
            return Ok("cancelled".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok("never cancelled".into())
}

/// Asks the client for its roots, waiting `wait_ms` (default 5 s) for the answer.
fn ask_roots(args: &Map<String, Value>, call: &Call<'_>) -> Result<String, String> {
    let wait = args.get("wait_ms").and_then(Value::as_u64).unwrap_or(5000);
    call.ask("roots/list", json!({}), Duration::from_millis(wait))
        .map(|roots| roots.to_string())
        .map_err(|e| e.to_string())
}

static TOOLS: &[Tool] = &[
    Tool {
        name: "ask_roots",
        description: "Asks the client for its roots and answers with them.",
        input_schema: || json!({"type": "object"}),
        call: ask_roots,
    },
    Tool {
        name: "progress",
        description: "Logs, reports progress twice, then answers.",
        input_schema: || json!({"type": "object"}),
        call: progress,
    },
    Tool {
        name: "until_cancelled",
        description: "Runs until cancelled (10 s at most).",
        input_schema: || json!({"type": "object"}),
        call: until_cancelled,
    },
];

fn started(tag: &str) -> bool {
    STARTED.lock().unwrap().iter().any(|t| t == tag)
}

fn cancelled(tag: &str) -> bool {
    CANCELLED.lock().unwrap().iter().any(|t| t == tag)
}

/// POSTs `body` to `/mcp` for `client`'s session and reads the whole answer: its head,
/// and the `message` events of an event-stream body (read to its end).
fn post_events(client: &McpClient, body: &Value) -> (common::HttpResponse, Vec<Value>) {
    let (head, mut reader) = client.post_open("", body);
    let mut events = Vec::new();
    if head.header("content-type") == Some("text/event-stream") {
        let rest = common::read_to_eof(&mut reader, "the event stream answering a POST");
        for line in String::from_utf8(rest).unwrap().lines() {
            // The priming event's data is empty (see tests/resume.rs).
            if let Some(data) = line.strip_prefix("data: ").filter(|d| !d.is_empty()) {
                events.push(serde_json::from_str(data).unwrap());
            }
        }
    }
    (head, events)
}

fn call_with_token(id: i64, tool: &str, token: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": {}, "_meta": {"progressToken": token}}})
}

fn streamable(addr: SocketAddr) -> McpClient {
    let mut c = McpClient::new(addr);
    c.initialize("2025-06-18");
    c
}

#[test]
fn on_mcp_what_a_tool_sends_turns_its_answer_into_an_event_stream() {
    let server = spawn_with_tools(test_config(), TOOLS);
    let c = streamable(server.local_addr());
    assert_eq!(
        c.call(1, "logging/setLevel", json!({"level": "info"}))["result"],
        json!({})
    );
    let (head, events) = post_events(&c, &call_with_token(2, "progress", json!("p-1")));
    assert_eq!(head.status, 200);
    assert_eq!(head.header("connection"), Some("close"));
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["method"].as_str().unwrap_or("(answer)"))
        .collect();
    assert_eq!(
        kinds,
        [
            "notifications/message",
            "notifications/progress",
            "notifications/progress",
            "(answer)"
        ]
    );
    assert_eq!(events[0]["params"]["level"], "info");
    assert_eq!(events[0]["params"]["data"], "starting");
    assert_eq!(
        events[1]["params"],
        json!({"progressToken": "p-1", "progress": 1.0, "total": 2.0, "message": "half"})
    );
    assert_eq!(events[3]["id"], 2);
    assert_eq!(events[3]["result"]["content"][0]["text"], "done");
}

#[test]
fn on_mcp_a_tool_that_sends_nothing_is_answered_in_json() {
    let server = spawn_with_tools(test_config(), TOOLS);
    let c = streamable(server.local_addr());
    // No progress token and no log level: the tool's progress and logs go nowhere.
    let reply = c.call(
        1,
        "tools/call",
        json!({"name": "progress", "arguments": {}}),
    );
    assert_eq!(reply["result"]["content"][0]["text"], "done");
}

#[test]
fn on_sse_what_a_tool_sends_arrives_on_the_stream_before_its_result() {
    let server = spawn_with_tools(test_config(), TOOLS);
    let mut c = SseClient::initialized(server.local_addr());
    c.post(&call_with_token(5, "progress", json!(17)));
    let first = c.next_message();
    assert_eq!(first["method"], "notifications/progress");
    assert_eq!(first["params"]["progressToken"], 17);
    assert_eq!(c.next_message()["params"]["progress"], 2.0);
    let answer = c.next_message();
    assert_eq!(answer["id"], 5);
    assert_eq!(answer["result"]["content"][0]["text"], "done");
}

#[test]
fn on_sse_notifications_cancelled_stops_the_tool_and_its_answer() {
    let server = spawn_with_tools(test_config(), TOOLS);
    let mut c = SseClient::initialized(server.local_addr());
    c.call(1, "logging/setLevel", json!({"level": "debug"}));
    c.post(
        &json!({"jsonrpc": "2.0", "id": "long-1", "method": "tools/call",
        "params": {"name": "until_cancelled", "arguments": {"tag": "sse-1"},
                   "_meta": {"progressToken": "p"}}}),
    );
    assert!(eventually(Duration::from_secs(5), || started("sse-1")));
    c.post(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": "long-1", "reason": "the user gave up"}}),
    );
    assert!(eventually(Duration::from_secs(5), || cancelled("sse-1")));
    // No answer for the cancelled request, and nothing the tool sent after its
    // cancellation (it logs and reports progress once more): the next message is the
    // ping's.
    assert_eq!(c.call(2, "ping", json!({}))["id"], 2);
}

#[test]
fn on_mcp_notifications_cancelled_from_another_post_ends_the_request_without_an_answer() {
    let server = spawn_with_tools(test_config(), TOOLS);
    let addr = server.local_addr();
    let c = streamable(addr);
    let long = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "until_cancelled", "arguments": {"tag": "mcp-1"}}});
    let poster = {
        let session = c.session.clone();
        std::thread::spawn(move || {
            let mut c = McpClient::new(addr);
            c.session = session;
            c.version = Some("2025-06-18".into());
            c.post(&long)
        })
    };
    assert!(eventually(Duration::from_secs(5), || started("mcp-1")));
    let r = c.post(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 9}}),
    );
    assert_eq!(r.status, 202);
    let answered = poster.join().unwrap();
    assert!(cancelled("mcp-1"));
    assert_eq!(answered.status, 202, "a cancelled request gets no answer");
    assert!(answered.body.is_empty());
}

#[test]
fn on_mcp_a_client_that_leaves_cancels_its_running_tool() {
    let server = spawn_with_tools(test_config(), TOOLS);
    let c = streamable(server.local_addr());
    let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "until_cancelled", "arguments": {"tag": "gone-1"}}});
    let s = c.post_unread("", &body);
    assert!(eventually(Duration::from_secs(5), || started("gone-1")));
    drop(s);
    assert!(
        eventually(Duration::from_secs(5), || cancelled("gone-1")),
        "the tool never saw its client leave"
    );
    // The session carries on.
    assert_eq!(c.call(4, "ping", json!({}))["result"], json!({}));
}

// ---- asking the client -------------------------------------------------------------------

const ROOTS: &str = r#"{"roots":[{"uri":"file:///work","name":"work"}]}"#;

fn initialize_with_roots() -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {"roots": {}},
                   "clientInfo": {"name": "test", "version": "0"}}})
}

fn ask_call(id: i64, wait_ms: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "ask_roots", "arguments": {"wait_ms": wait_ms}}})
}

#[test]
fn on_sse_a_tool_asks_the_client_and_gets_its_answer() {
    let server = spawn_with_tools(test_config(), TOOLS);
    let mut c = SseClient::open(server.local_addr());
    c.post(&initialize_with_roots());
    assert_eq!(c.next_message()["id"], 0);
    c.post(&ask_call(1, 5000));
    let request = c.next_message();
    assert_eq!(request["method"], "roots/list");
    let id = request["id"].clone();
    assert!(id.is_string(), "{request}");
    let answer = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{ROOTS}}}"#);
    let r = c.post_raw(answer.as_bytes());
    assert_eq!(r.status, 202);
    let result = c.next_message();
    assert_eq!(result["id"], 1);
    assert_eq!(result["result"]["isError"], false);
    let text = result["result"]["content"][0]["text"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap(),
        serde_json::from_str::<Value>(ROOTS).unwrap()
    );
}

#[test]
fn on_mcp_a_tool_asks_the_client_in_its_event_stream_and_gets_the_answer_by_post() {
    let server = spawn_with_tools(test_config(), TOOLS);
    let addr = server.local_addr();
    let mut c = McpClient::new(addr);
    let r = c.post(&initialize_with_roots());
    c.session = r.header("mcp-session-id").map(str::to_string);
    c.version = Some("2025-06-18".into());
    let (head, mut reader) = c.post_open("", &ask_call(2, 5000));
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    let request = next_data(&mut reader);
    assert_eq!(request["method"], "roots/list");
    // The answer comes as a POST of its own, while the tool's POST is still open.
    let answer = format!(
        r#"{{"jsonrpc":"2.0","id":{},"result":{ROOTS}}}"#,
        request["id"]
    );
    assert_eq!(c.post_raw("", answer.as_bytes()).status, 202);
    let result = next_data(&mut reader);
    assert_eq!(result["id"], 2);
    let text = result["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("file:///work"), "{text}");
    // Then the stream ends (after the blank line that closes the last event).
    let rest = common::read_to_eof(&mut reader, "the rest of the answer");
    assert!(rest.iter().all(u8::is_ascii_whitespace), "{rest:?}");
}

#[test]
fn a_client_that_never_answers_times_the_question_out_and_others_go_on() {
    let server = spawn_with_tools(test_config(), TOOLS);
    let addr = server.local_addr();
    let mut c = SseClient::open(addr);
    c.post(&initialize_with_roots());
    c.next_message();
    c.post(&ask_call(3, 300));
    assert_eq!(c.next_message()["method"], "roots/list");
    // Meanwhile another session is served at once.
    let other = streamable(addr);
    assert_eq!(other.call(1, "ping", json!({}))["result"], json!({}));
    let result = c.next_message();
    assert_eq!(result["id"], 3);
    assert_eq!(result["result"]["isError"], true);
    let text = result["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("no answer within"), "{text}");
}

#[test]
fn a_client_that_did_not_declare_roots_is_not_asked() {
    let server = spawn_with_tools(test_config(), TOOLS);
    let c = streamable(server.local_addr()); // capabilities: {}
    let result = c.call(
        1,
        "tools/call",
        json!({"name": "ask_roots", "arguments": {}}),
    );
    assert_eq!(result["result"]["isError"], true);
    let text = result["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("\"roots\" capability"), "{text}");
}

#[test]
fn a_tool_past_tool_timeout_secs_sees_a_cancellation_and_the_client_an_error() {
    let server = spawn_with_tools(
        mcp_warden::config::Config {
            tool_timeout: Duration::from_secs(1),
            ..test_config()
        },
        TOOLS,
    );
    for client in ["sse", "mcp"] {
        let tag = format!("deadline-{client}");
        let call = json!({"name": "until_cancelled", "arguments": {"tag": tag}});
        let reply = if client == "sse" {
            SseClient::initialized(server.local_addr()).call(1, "tools/call", call)
        } else {
            streamable(server.local_addr()).call(1, "tools/call", call)
        };
        // The answer may be the watchdog's, given before the tool's next look.
        assert!(
            eventually(Duration::from_secs(5), || cancelled(&tag)),
            "the tool saw the deadline as a cancellation"
        );
        assert_eq!(reply["result"]["isError"], true, "{reply}");
        let text = reply["result"]["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("TOOL_TIMEOUT_SECS"), "{text}");
    }
}

#[test]
fn a_session_that_ends_cancels_its_running_tools() {
    let server = spawn_with_tools(test_config(), TOOLS);
    let addr = server.local_addr();
    // HTTP+SSE: the client closes its stream while its tool runs.
    let c = SseClient::initialized(addr);
    c.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "until_cancelled", "arguments": {"tag": "ended-sse"}}}));
    assert!(eventually(Duration::from_secs(5), || started("ended-sse")));
    drop(c);
    assert!(
        eventually(Duration::from_secs(5), || cancelled("ended-sse")),
        "the tool outlived its session"
    );
    // Streamable HTTP: the session is DELETEd while its tool runs on another POST.
    let c = streamable(addr);
    let (session, version) = (c.session.clone(), c.version.clone());
    let poster = std::thread::spawn(move || {
        let mut c = McpClient::new(addr);
        (c.session, c.version) = (session, version);
        c.post(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "until_cancelled", "arguments": {"tag": "ended-mcp"}}}))
    });
    assert!(eventually(Duration::from_secs(5), || started("ended-mcp")));
    assert_eq!(c.delete().status, 204);
    assert!(
        eventually(Duration::from_secs(5), || cancelled("ended-mcp")),
        "the tool outlived its session"
    );
    poster.join().unwrap();
}

#[test]
fn a_client_that_answers_with_an_error_is_reported_to_the_tool() {
    let server = spawn_with_tools(test_config(), TOOLS);
    let mut c = SseClient::open(server.local_addr());
    c.post(&initialize_with_roots());
    c.next_message();
    c.post(&ask_call(4, 5000));
    let request = c.next_message();
    let refusal = format!(
        r#"{{"jsonrpc":"2.0","id":{},"error":{{"code":-32601,"message":"no roots here"}}}}"#,
        request["id"]
    );
    assert_eq!(c.post_raw(refusal.as_bytes()).status, 202);
    let result = c.next_message();
    assert_eq!(result["id"], 4);
    assert_eq!(result["result"]["isError"], true);
    let text = result["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("answered with an error: no roots here"),
        "{text}"
    );
}

// ---- one keep-alive connection for every POST (as Node's fetch reuses them) --------------

/// A keep-alive connection that POSTs to a legacy session's endpoint, one request at a
/// time, reading each response before the next.
struct KeepAlive {
    reader: BufReader<std::net::TcpStream>,
    endpoint: String,
}

impl KeepAlive {
    fn new(c: &SseClient) -> KeepAlive {
        KeepAlive {
            reader: BufReader::new(connect(c.addr)),
            endpoint: c.endpoint.clone(),
        }
    }

    /// POSTs `body` and returns the response's status.
    fn post(&mut self, body: &str) -> u16 {
        write!(
            self.reader.get_mut(),
            "POST {} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.endpoint,
            body.len()
        )
        .unwrap();
        let response = read_response(&mut self.reader);
        assert_ne!(
            response.header("connection"),
            Some("close"),
            "the connection is kept for the next request"
        );
        response.status
    }
}

#[test]
fn on_sse_a_client_answering_on_the_connection_its_tool_call_came_on_is_heard() {
    let server = spawn_with_tools(test_config(), TOOLS);
    let mut c = SseClient::open(server.local_addr());
    let mut post = KeepAlive::new(&c);
    assert_eq!(post.post(&initialize_with_roots().to_string()), 202);
    assert_eq!(c.next_message()["id"], 0);
    assert_eq!(post.post(&ask_call(1, 5000).to_string()), 202);
    let request = c.next_message();
    assert_eq!(request["method"], "roots/list");
    // The answer goes on the same connection as the call that is waiting for it.
    let answer = format!(
        r#"{{"jsonrpc":"2.0","id":{},"result":{ROOTS}}}"#,
        request["id"]
    );
    assert_eq!(post.post(&answer), 202);
    let result = c.next_message();
    assert_eq!(result["id"], 1);
    assert_eq!(result["result"]["isError"], false, "{result}");
    // And the connection carries on.
    assert_eq!(
        post.post(&json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}).to_string()),
        202
    );
    assert_eq!(c.next_message()["id"], 2);
}

#[test]
fn on_sse_a_cancellation_on_the_connection_of_a_long_call_reaches_it() {
    let server = spawn_with_tools(test_config(), TOOLS);
    let mut c = SseClient::initialized(server.local_addr());
    let mut post = KeepAlive::new(&c);
    let call = json!({"jsonrpc": "2.0", "id": "long-ka", "method": "tools/call",
        "params": {"name": "until_cancelled", "arguments": {"tag": "keepalive"}}});
    assert_eq!(post.post(&call.to_string()), 202);
    assert!(eventually(Duration::from_secs(5), || started("keepalive")));
    // Sent on the connection the call holds: it is read once the call has run a while
    // (`LONG_CALL`), not when the call ends (it would run for 10 s).
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": "long-ka"}});
    assert_eq!(post.post(&cancel.to_string()), 202);
    assert!(eventually(Duration::from_secs(5), || cancelled(
        "keepalive"
    )));
    assert_eq!(c.call(3, "ping", json!({}))["id"], 3);
}
