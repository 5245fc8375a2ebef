//! Replicas without session affinity (MCP 2026-07-28): two server processes with the same
//! `STATE_SECRET`, and each step of a flow sent to the other one — discover, list, a tool
//! that needs elicitation, its retry. A retry whose state was sealed under another key is
//! refused. The processes run `examples/conformance` (its `test_elicitation` asks the
//! user), which `cargo test` builds beside the binary.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{HttpResponse, ServerProcess, documented_vars, request_with};
use serde_json::{Value, json};

const V: &str = "2026-07-28";
const SECRET: &str = "c2hhcmVkIGJ5IGV2ZXJ5IHJlcGxpY2Egb2YgdGhpcyB0ZXN0IQ=="; // 37 bytes

/// `examples/conformance`, built by `cargo test` next to the binary's directory.
fn example() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_mcp-warden"));
    let path = bin.parent().unwrap().join("examples").join("conformance");
    assert!(
        path.exists(),
        "{} is not built (cargo test builds it)",
        path.display()
    );
    path
}

fn replica(secret: &str) -> ServerProcess {
    let mut cmd = Command::new(example());
    for var in documented_vars() {
        cmd.env_remove(var);
    }
    cmd.env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .env("STATE_SECRET", secret)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    ServerProcess::start(cmd)
}

/// A modern request for `method` to `at`, with `params` (its `_meta` added).
fn send(at: &ServerProcess, id: i64, method: &str, mut params: Value) -> HttpResponse {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
    });
    let mut headers = format!(
        "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: {V}\r\nMcp-Method: {method}\r\n"
    );
    if let Some(name) = params.get("name").and_then(Value::as_str) {
        headers.push_str(&format!("Mcp-Name: {name}\r\n"));
    }
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    request_with(
        at.addr,
        "POST",
        "/mcp",
        &headers,
        body.to_string().as_bytes(),
    )
}

#[test]
fn each_step_of_a_flow_may_land_on_another_replica_with_the_same_state_secret() {
    let a = replica(SECRET);
    let b = replica(SECRET);
    let discovered = send(&a, 1, "server/discover", json!({})).json();
    assert!(
        discovered["result"]["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!(V))
    );
    let listed = send(&b, 2, "tools/list", json!({})).json();
    assert!(
        listed["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "test_elicitation")
    );
    let call = json!({"name": "test_elicitation", "arguments": {"message": "who are you?"}});
    let asked = send(&a, 3, "tools/call", call.clone()).json()["result"].clone();
    assert_eq!(asked["resultType"], "input_required", "{asked}");
    let (key, question) = asked["inputRequests"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    assert_eq!(question["method"], "elicitation/create");
    let mut retry = call.clone();
    retry["requestState"] = asked["requestState"].clone();
    retry["inputResponses"] = json!({ key.as_str(): {
        "action": "accept", "content": {"username": "ada", "email": "ada@example.com"}}});
    let done = send(&b, 4, "tools/call", retry.clone()).json();
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert!(
        done["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("ada"),
        "{done}"
    );

    // A replica with another key cannot read the state: refused, not misread.
    let other = replica("b3RoZXIgc2VjcmV0LCBub3Qgc2hhcmVkIHdpdGggdGhlIG90aGVycyE=");
    let refused = send(&other, 5, "tools/call", retry).json();
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("STATE_SECRET"),
        "{refused}"
    );
}
