//! JSON-RPC and MCP rules as a client meets them over a real stream: exact error codes,
//! version negotiation, notifications without replies, batches, and tool failures.

mod common;

use common::{session, test_config};
use serde_json::{Value, json};

fn error_code(reply: &Value) -> i64 {
    reply["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error reply: {reply}"))
}

#[test]
fn negotiates_the_clients_version_when_supported_else_the_latest() {
    for (asked, answered) in [
        ("2024-11-05", "2024-11-05"),
        ("2025-03-26", "2025-03-26"),
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("1999-01-01", "2025-11-25"),
    ] {
        let (_server, mut c) = session(test_config());
        assert_eq!(
            c.initialize(asked)["protocolVersion"],
            answered,
            "asked {asked}"
        );
    }
}

#[test]
fn ping_before_initialize_leaves_the_session_uninitialized() {
    let (_server, mut c) = session(test_config());
    assert_eq!(c.call(1, "ping", json!({}))["result"], json!({}));
    // ping adopted nothing: the client may still negotiate its own version.
    let reply = c.call(
        2,
        "initialize",
        json!({"protocolVersion": "2025-03-26",
        "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}),
    );
    assert_eq!(reply["result"]["protocolVersion"], "2025-03-26");
}

/// The official SDK's `SSEClientTransport` reopens its stream after a server restart and
/// goes on calling without `initialize`: such a session is served as a 2024-11-05 one.
#[test]
fn a_session_used_without_initialize_is_served_as_2024_11_05() {
    let (_server, mut c) = session(test_config());
    let reply = c.call(
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "again"}}),
    );
    assert_eq!(reply["result"]["content"][0]["text"], "Tool echo: again");
    assert_eq!(
        c.call(2, "tools/list", json!({}))["result"]["tools"][0]["name"],
        "echo"
    );
    // It is a 2024-11-05 session from now on: a late initialize is a second one, and
    // batches (2025-03-26 only) are refused.
    let again = c.call(
        3,
        "initialize",
        json!({"protocolVersion": "2025-03-26",
        "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}),
    );
    assert_eq!(error_code(&again), -32600);
    c.post(&json!([{"jsonrpc": "2.0", "id": 4, "method": "ping"}]));
    assert_eq!(error_code(&c.next_message()), -32600);
}

#[test]
fn initialize_needs_a_protocol_version_and_happens_once() {
    let (_server, mut c) = session(test_config());
    let reply = c.call(1, "initialize", json!({"capabilities": {}}));
    assert_eq!(error_code(&reply), -32602);
    c.initialize("2025-06-18");
    let again = c.call(2, "initialize", json!({"protocolVersion": "2025-06-18"}));
    assert_eq!(error_code(&again), -32600);
}

#[test]
fn unknown_methods_get_method_not_found() {
    let (_server, mut c) = session(test_config());
    c.initialize("2025-06-18");
    assert_eq!(error_code(&c.call(1, "tools/destroy", json!({}))), -32601);
    assert_eq!(
        error_code(&c.call(2, "sampling/createMessage", json!({}))),
        -32601
    );
    // A method this server has, without its parameters, is invalid params instead.
    assert_eq!(
        error_code(&c.call(3, "completion/complete", json!({}))),
        -32602
    );
}

#[test]
fn malformed_envelopes_get_invalid_request_with_the_id_when_usable() {
    let (_server, mut c) = session(test_config());
    c.initialize("2025-06-18");
    for (message, id) in [
        (json!({"id": 1, "method": "ping"}), json!(1)),
        (
            json!({"jsonrpc": "1.0", "id": 2, "method": "ping"}),
            json!(2),
        ),
        (json!({"jsonrpc": "2.0", "id": 3}), json!(3)),
        (
            json!({"jsonrpc": "2.0", "id": null, "method": "ping"}),
            Value::Null,
        ),
        (
            json!({"jsonrpc": "2.0", "id": {"x": 1}, "method": "ping"}),
            Value::Null,
        ),
        (
            json!({"jsonrpc": "2.0", "id": true, "method": "ping"}),
            Value::Null,
        ),
        (json!("just a string"), Value::Null),
        (json!(42), Value::Null),
    ] {
        c.post(&message);
        let reply = c.next_message();
        assert_eq!(error_code(&reply), -32600, "for {message}: {reply}");
        assert_eq!(reply["id"], id, "for {message}");
    }
}

#[test]
fn bad_params_unknown_tools_and_prompts_get_invalid_params() {
    let (_server, mut c) = session(test_config());
    c.initialize("2025-06-18");
    for (method, params) in [
        ("tools/call", json!({"name": "no-such-tool"})),
        ("tools/call", json!({})),
        ("tools/call", json!({"name": 7})),
        (
            "tools/call",
            json!({"name": "echo", "arguments": "message"}),
        ),
        ("prompts/get", json!({"name": "no-such-prompt"})),
        ("prompts/get", json!({"name": "echo"})),
        (
            "prompts/get",
            json!({"name": "echo", "arguments": {"message": 5}}),
        ),
        ("resources/read", json!({})),
        ("logging/setLevel", json!({"level": "loud"})),
    ] {
        let reply = c.call(1, method, params.clone());
        assert_eq!(error_code(&reply), -32602, "{method} {params}: {reply}");
    }
    c.post(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": [1, 2]}));
    assert_eq!(error_code(&c.next_message()), -32602);
}

#[test]
fn unknown_resources_get_resource_not_found() {
    let (_server, mut c) = session(test_config());
    c.initialize("2025-06-18");
    let reply = c.call(1, "resources/read", json!({"uri": "file:///etc/passwd"}));
    assert_eq!(error_code(&reply), -32002);
    assert_eq!(reply["error"]["data"]["uri"], "file:///etc/passwd");
}

#[test]
fn a_failing_tool_returns_is_error_not_a_protocol_error() {
    let (_server, mut c) = session(test_config());
    c.initialize("2025-06-18");
    let reply = c.call(1, "tools/call", json!({"name": "echo", "arguments": {}}));
    assert_eq!(reply["result"]["isError"], true, "{reply}");
    let text = reply["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("message"), "{text}");
    let reply = c.call(
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": 3}}),
    );
    assert_eq!(reply["result"]["isError"], true, "{reply}");
}

#[test]
fn notifications_and_client_responses_never_get_a_reply() {
    let (_server, mut c) = session(test_config());
    c.initialize("2025-06-18");
    c.post(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 9}}),
    );
    c.post(&json!({"jsonrpc": "2.0", "method": "notifications/made-up"}));
    c.post(&json!({"jsonrpc": "2.0", "method": "tools/list"}));
    c.post(&json!({"jsonrpc": "2.0", "id": "srv-1", "result": {}}));
    // The next thing on the stream is the reply to this ping, nothing before it.
    c.post(&json!({"jsonrpc": "2.0", "id": "after", "method": "ping"}));
    assert_eq!(c.next_message()["id"], "after");
}

#[test]
fn batches_are_answered_with_an_array_in_2025_03_26_sessions() {
    let (_server, mut c) = session(test_config());
    c.initialize("2025-03-26");
    c.post(&json!([
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "b"}}},
        {"jsonrpc": "2.0", "id": 3, "method": "nope"}
    ]));
    let replies = c.next_message();
    let replies = replies.as_array().expect("a batch gets an array");
    assert_eq!(replies.len(), 3, "{replies:?}");
    assert_eq!(replies[0]["id"], 1);
    assert_eq!(replies[1]["result"]["content"][0]["text"], "Tool echo: b");
    assert_eq!(error_code(&replies[2]), -32601);

    c.post(&json!([]));
    assert_eq!(error_code(&c.next_message()), -32600);
}

#[test]
fn batches_are_refused_in_other_sessions() {
    for version in ["2024-11-05", "2025-06-18", "2025-11-25"] {
        let (_server, mut c) = session(test_config());
        c.initialize(version);
        c.post(&json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]));
        let reply = c.next_message();
        assert!(reply.is_object(), "{reply}");
        assert_eq!(error_code(&reply), -32600, "{version}");
    }
}

#[test]
fn a_member_named_twice_is_refused_not_guessed_at() {
    let (_server, mut c) = session(test_config());
    c.initialize("2025-06-18");
    // Parsers disagree on which copy wins; the server trusts neither (null id: which id
    // would it be?).
    for body in [
        r#"{"jsonrpc":"2.0","id":3,"method":"ping","method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":3,"id":4,"method":"ping"}"#,
    ] {
        assert_eq!(c.post_raw(body.as_bytes()).status, 202);
        let reply = c.next_message();
        assert_eq!(reply["id"], Value::Null, "{reply}");
        assert_eq!(error_code(&reply), -32600, "{reply}");
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(message.contains("duplicate field"), "{message}");
    }
    // Inside params, JSON's usual rule (the last one) applies: params are the method's.
    let body = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"message":"a","message":"b"}}}"#;
    assert_eq!(c.post_raw(body.as_bytes()).status, 202);
    let reply = c.next_message();
    assert_eq!(
        reply["result"]["content"][0]["text"], "Tool echo: b",
        "{reply}"
    );
}

#[test]
fn deeply_nested_json_is_refused_without_harm() {
    let (server, mut c) = session(test_config());
    c.initialize("2025-06-18");
    let (open, close) = ("[".repeat(100_000), "]".repeat(100_000));
    // Nesting far past serde_json's recursion limit (128) is skipped over, never built:
    // here a batch (refused in a 2025-06-18 session), not a stack overflow.
    assert_eq!(c.post_raw(format!("{open}{close}").as_bytes()).status, 202);
    assert_eq!(error_code(&c.next_message()), -32600);
    // The same inside params: the envelope is read, the params cannot be: invalid params,
    // answered with the request's id.
    let deep_params = format!(
        r#"{{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{{"name":"echo","arguments":{{"message":{open}{close}}}}}}}"#
    );
    assert_eq!(c.post_raw(deep_params.as_bytes()).status, 202);
    let reply = c.next_message();
    assert_eq!(
        (reply["id"].clone(), error_code(&reply)),
        (json!(4), -32602),
        "{reply}"
    );
    // Unbalanced: not JSON at all.
    let r = c.post_raw(format!("{open}{}", &close[1..]).as_bytes());
    assert_eq!(r.status, 400);
    assert_eq!(error_code(&c.next_message()), -32700);
    assert_eq!(c.call(5, "ping", json!({}))["result"], json!({}));
    assert_eq!(server.session_count(), 1);
}
