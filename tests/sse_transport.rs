//! The HTTP+SSE transport as a client meets it: a whole session, events arriving
//! unbuffered, keep-alives, isolation between sessions, and cleanup after vanished clients.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{SseClient, eventually, spawn, test_config};
use mcp_warden::config::Config;
use serde_json::json;

#[test]
fn a_whole_session_from_initialize_to_ping() {
    let server = spawn(test_config());
    let mut c = SseClient::open(server.local_addr());
    assert_eq!(c.head.header("content-type"), Some("text/event-stream"));
    assert_eq!(c.head.header("cache-control"), Some("no-cache"));
    assert!(c.endpoint.starts_with("/messages?sessionId="));
    let id = c.session_id().to_string();
    assert_eq!(id.len(), 32, "128 bits as hex: {id}");

    let init = c.initialize("2024-11-05");
    assert_eq!(init["protocolVersion"], "2024-11-05");
    assert_eq!(init["serverInfo"]["name"], "mcp-warden");
    assert_eq!(init["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
    for cap in ["tools", "resources", "prompts", "logging"] {
        assert!(
            init["capabilities"][cap].is_object(),
            "capability {cap}: {init}"
        );
    }

    let tools = c.call(1, "tools/list", json!({}));
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo", "whoami", "ask"]);
    assert_eq!(
        tools["result"]["tools"][0]["inputSchema"]["required"],
        json!(["message"])
    );

    let echo = c.call(
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "hello"}}),
    );
    assert_eq!(
        echo["result"],
        json!({"content": [{"type": "text", "text": "Tool echo: hello"}], "isError": false})
    );

    let whoami = c.call(3, "tools/call", json!({"name": "whoami"}));
    let text = whoami["result"]["content"][0]["text"].as_str().unwrap();
    let report: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(report["subject"], "anonymous");
    assert_eq!(report["authenticated"], false);

    let templates = c.call(4, "resources/templates/list", json!({}));
    assert_eq!(
        templates["result"]["resourceTemplates"][0]["uriTemplate"],
        "echo://{message}"
    );
    let resources = c.call(5, "resources/list", json!({}));
    assert_eq!(resources["result"]["resources"], json!([]));

    let read = c.call(6, "resources/read", json!({"uri": "echo://hello"}));
    assert_eq!(
        read["result"]["contents"],
        json!([{"uri": "echo://hello", "mimeType": "text/plain", "text": "Resource echo: hello"}])
    );

    let prompts = c.call(7, "prompts/list", json!({}));
    assert_eq!(prompts["result"]["prompts"][0]["name"], "echo");
    assert_eq!(
        prompts["result"]["prompts"][0]["arguments"][0]["name"],
        "message"
    );
    let prompt = c.call(
        8,
        "prompts/get",
        json!({"name": "echo", "arguments": {"message": "hi"}}),
    );
    assert_eq!(
        prompt["result"]["messages"],
        json!([{"role": "user", "content": {"type": "text", "text": "Please process this message: hi"}}])
    );

    let level = c.call(9, "logging/setLevel", json!({"level": "warning"}));
    assert_eq!(level["result"], json!({}));
    let ping = c.call(10, "ping", json!({}));
    assert_eq!(ping["result"], json!({}));
    assert_eq!(server.session_count(), 1);
}

#[test]
fn the_endpoint_event_arrives_before_anything_else_happens() {
    // Raw socket: the head and the first event must be on the wire right after the request,
    // with nothing else sent by the client and no byte left behind in a buffer. No
    // keep-alive falls due during the test, so nothing else could push a buffered event
    // out: if it is not flushed at once, it does not come before the read timeout.
    let server = spawn(Config {
        sse_keepalive: Duration::from_secs(3600),
        ..test_config()
    });
    let mut s = common::connect(server.local_addr());
    s.write_all(b"GET /sse HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"\n\n") {
        let n = s.read(&mut buf).unwrap_or_else(|e| {
            panic!(
                "the endpoint event did not arrive ({e}); so far: {:?}",
                String::from_utf8_lossy(&got)
            )
        });
        assert!(
            n > 0,
            "stream closed early: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8(got).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: text/event-stream"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("content-length"),
        "{head}"
    );
    assert!(
        body.starts_with("event: endpoint\ndata: /messages?sessionId="),
        "{body}"
    );
    // Then how soon to reconnect if the stream ends (an EventSource waits 3 s otherwise).
    assert!(body.ends_with("\n\nretry: 1000\n\n"), "{body}");
}

#[test]
fn replies_reach_the_stream_at_once_and_keepalives_flow_when_idle() {
    // With no keep-alive due, nothing but the reply itself can push it out: it arrives
    // before the read timeout only if it is flushed at once.
    let quiet = spawn(Config {
        sse_keepalive: Duration::from_secs(3600),
        ..test_config()
    });
    let mut c = SseClient::initialized(quiet.local_addr());
    assert_eq!(c.call(1, "ping", json!({}))["result"], json!({}));
    assert_eq!(c.comments, 0);

    let server = spawn(test_config()); // keep-alive every second
    let mut c = SseClient::initialized(server.local_addr());
    // Idle: keep-alive comments arrive (and nothing else), and the next reply still comes
    // through on the same stream.
    c.await_comments(2);
    let reply = c.call(1, "ping", json!({}));
    assert_eq!(reply["result"], json!({}));
}

#[test]
fn two_concurrent_sessions_never_see_each_others_replies() {
    let server = spawn(test_config());
    let addr = server.local_addr();
    let workers: Vec<_> = ["alpha", "beta"]
        .into_iter()
        .map(|tag| {
            std::thread::spawn(move || {
                let mut c = SseClient::initialized(addr);
                for i in 1..=40 {
                    let message = format!("{tag}-{i}");
                    let reply = c.call(
                        i,
                        "tools/call",
                        json!({"name": "echo", "arguments": {"message": message}}),
                    );
                    assert_eq!(
                        reply["result"]["content"][0]["text"],
                        format!("Tool echo: {message}")
                    );
                }
                c.session_id().to_string()
            })
        })
        .collect();
    let ids: Vec<String> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    assert_ne!(ids[0], ids[1]);
}

#[test]
fn a_posted_message_only_reaches_its_own_session() {
    let server = spawn(test_config());
    let mut a = SseClient::open(server.local_addr());
    let mut b = SseClient::open(server.local_addr());
    a.initialize("2025-06-18");
    b.initialize("2025-06-18");
    // b asks; a must see nothing but keep-alives before its own reply.
    b.post(&json!({"jsonrpc": "2.0", "id": "only-b", "method": "ping"}));
    assert_eq!(b.next_message()["id"], "only-b");
    a.post(&json!({"jsonrpc": "2.0", "id": "only-a", "method": "ping"}));
    assert_eq!(a.next_message()["id"], "only-a");
}

#[test]
fn sessions_dropped_abruptly_leave_the_registry_empty_and_the_server_answering() {
    let server = spawn(test_config());
    let addr = server.local_addr();
    let clients: Vec<SseClient> = (0..50).map(|_| SseClient::open(addr)).collect();
    assert_eq!(server.session_count(), 50);
    for (i, c) in clients.into_iter().enumerate() {
        let stream = c.reader.into_inner();
        if i % 2 == 0 {
            // Half shut down both directions first, half simply vanish.
            stream.shutdown(std::net::Shutdown::Both).ok();
        }
        drop(stream);
    }
    assert!(
        eventually(Duration::from_secs(5), || server.session_count() == 0),
        "{} sessions left after their clients vanished",
        server.session_count()
    );
    let mut c = SseClient::initialized(addr);
    assert_eq!(c.call(1, "ping", json!({}))["result"], json!({}));
}

#[test]
fn a_thousand_streams_opened_at_once_each_get_their_endpoint_event() {
    let server = spawn(test_config());
    let addr = server.local_addr();
    // Connect all first, then send all requests, then read: every connection is pending
    // at the same time, as when a fleet of agents reconnects after a restart.
    let mut sockets: Vec<TcpStream> = (0..1000).map(|_| common::connect(addr)).collect();
    for s in &mut sockets {
        s.write_all(b"GET /sse HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
    }
    for (i, s) in sockets.iter_mut().enumerate() {
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while !String::from_utf8_lossy(&got).contains("data: /messages?sessionId=") {
            let n = s
                .read(&mut buf)
                .unwrap_or_else(|e| panic!("connection {i} got no endpoint event: {e}"));
            assert!(n > 0, "connection {i} closed before its endpoint event");
            got.extend_from_slice(&buf[..n]);
        }
    }
    assert!(eventually(Duration::from_secs(5), || server
        .session_count()
        == 1000));
    drop(sockets);
    assert!(
        eventually(Duration::from_secs(5), || server.session_count() == 0),
        "{} sessions left",
        server.session_count()
    );
}

#[test]
fn the_built_in_ask_tool_puts_its_question_to_the_user_and_returns_the_answer() {
    let server = spawn(test_config());
    let mut c = SseClient::open(server.local_addr());
    let init = c.call(
        0,
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {"elicitation": {}},
               "clientInfo": {"name": "t", "version": "0"}}),
    );
    assert!(init["result"].is_object(), "{init}");
    c.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    c.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                   "params": {"name": "ask", "arguments": {"question": "Favourite colour?"}}}));
    let question = c.next_message();
    assert_eq!(question["method"], "elicitation/create", "{question}");
    assert_eq!(question["params"]["message"], "Favourite colour?");
    assert_eq!(
        question["params"]["requestedSchema"]["required"],
        json!(["answer"])
    );
    c.post(&json!({"jsonrpc": "2.0", "id": question["id"],
                   "result": {"action": "accept", "content": {"answer": "teal"}}}));
    let answer = c.next_message();
    assert_eq!(answer["id"], 1);
    assert_eq!(
        answer["result"]["content"][0]["text"],
        "The user answered: teal"
    );

    // A session that did not declare elicitation gets an error result naming it.
    let mut plain = SseClient::open(server.local_addr());
    plain.initialize("2025-11-25");
    let refused = plain.call(
        1,
        "tools/call",
        json!({"name": "ask", "arguments": {"question": "?"}}),
    );
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    let text = refused["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("\"elicitation\""), "{text}");
}
