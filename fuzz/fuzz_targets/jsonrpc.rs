//! `jsonrpc`: `mcp::handle` on hostile JSON-RPC messages, in a fresh session each run.
//!
//! The first input byte sets the session up: bits 0-2 pick the protocol version it was
//! initialized with (none; one of `SUPPORTED_VERSIONS`; an unknown one), bit 3 whether
//! `notifications/initialized` followed, bit 4 whether the caller is anonymous or a user.
//! The rest is a sequence of JSON values (up to 16), each handled in order on the same
//! session, so the fuzzer can initialize and then call. Input that is not JSON is skipped
//! (after `mcp::parse_error` has described it).
//!
//! Asserts: no panic (the abort hook sees one even inside the server's `catch_unwind`); each
//! reply serializes to one line that parses back to itself; a reply is a JSON-RPC 2.0
//! response object (or a non-empty array of them) with exactly one of `result` and `error`,
//! an integer error code other than -32603 and a string message; a request with a usable
//! id gets exactly one reply, carrying that id.
#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use mcp_warden::identity::{Caller, Identity};
use mcp_warden::mcp::{self, Context, SUPPORTED_VERSIONS, SessionState};
use mcp_warden::rpc;
use serde_json::{Value, json};
use warden_fuzz::abort_on_panic;

const MAX_MESSAGES: usize = 16;

fuzz_target!(|data: &[u8]| {
    abort_on_panic();
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let caller = if control & 0x10 == 0 {
        Caller::Anonymous
    } else {
        Caller::User(Identity {
            issuer: Some("Joken".into()),
            subject: "fuzz".into(),
            email: Some("fuzz@example.com".into()),
            name: None,
            groups: vec!["sre".into()],
        })
    };
    let state = Mutex::new(SessionState::default());
    let cx = Context {
        state: &state,
        caller: &caller,
        tools: mcp_warden::tools::TOOLS,
    };
    let version = match control & 7 {
        v @ 1..=4 => Some(SUPPORTED_VERSIONS[v as usize - 1]),
        5 => Some("1999-01-01"),
        _ => None,
    };
    if let Some(version) = version {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": version, "capabilities": {},
                       "clientInfo": {"name": "fuzz", "version": "0"}}});
        let reply = mcp::handle(init, &cx).expect("initialize is answered");
        assert!(reply.get("result").is_some(), "{reply}");
        assert!(state.lock().unwrap().version.is_some());
        if control & 8 != 0 {
            let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
            assert_eq!(mcp::handle(note, &cx), None);
        }
    }
    let mut messages = serde_json::Deserializer::from_slice(rest).into_iter::<Value>();
    for _ in 0..MAX_MESSAGES {
        let value = match messages.next() {
            Some(Ok(value)) => value,
            Some(Err(e)) => {
                check_reply(&mcp::parse_error(&e));
                return;
            }
            None => return,
        };
        let expected_id = expected_reply_id(&value);
        let reply = mcp::handle(value, &cx);
        if let Some(id) = &expected_id {
            let reply = reply.as_ref().expect("a request with a usable id gets a reply");
            assert_eq!(&reply["id"], id, "{reply}");
        }
        if let Some(reply) = reply {
            check_reply(&reply);
        }
    }
});

/// The id a single message's reply must carry, when it must get one.
fn expected_reply_id(value: &Value) -> Option<Value> {
    let obj = value.as_object()?;
    let id = match obj.get("id")? {
        v @ Value::String(_) => v.clone(),
        v @ Value::Number(n) if n.is_i64() || n.is_u64() => v.clone(),
        _ => return None,
    };
    let is_response = obj.get("jsonrpc") == Some(&json!("2.0"))
        && !obj.contains_key("method")
        && (obj.contains_key("result") || obj.contains_key("error"));
    (!is_response).then_some(id)
}

fn check_reply(reply: &Value) {
    let line = reply.to_string();
    assert!(!line.contains(['\n', '\r']), "{line}");
    let back: Value = serde_json::from_str(&line).expect("a reply parses back");
    assert_eq!(&back, reply);
    match reply {
        Value::Array(items) => {
            assert!(!items.is_empty(), "an empty batch reply");
            items.iter().for_each(check_response);
        }
        _ => check_response(reply),
    }
}

fn check_response(response: &Value) {
    let obj = response.as_object().expect("a response is an object");
    assert_eq!(obj.get("jsonrpc"), Some(&json!("2.0")), "{response}");
    let id = obj.get("id").expect("a response has an id");
    assert!(
        id.is_null() || id.is_string() || id.is_i64() || id.is_u64(),
        "{response}"
    );
    match (obj.get("result"), obj.get("error")) {
        (Some(_), None) => {}
        (None, Some(error)) => {
            let code = error["code"].as_i64().expect("an integer error code");
            assert_ne!(code, rpc::INTERNAL_ERROR, "{response}");
            assert!(error["message"].is_string(), "{response}");
        }
        _ => panic!("not exactly one of result and error: {response}"),
    }
}
