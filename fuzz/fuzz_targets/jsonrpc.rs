//! `jsonrpc`: `mcp::handle` on hostile JSON-RPC messages, in a fresh session each run.
//!
//! The first input byte sets the session up: bits 0-2 pick the protocol version it was
//! initialized with (none; one of `SUPPORTED_VERSIONS`; an unknown one), bit 3 whether
//! `notifications/initialized` followed, bit 4 whether the caller is anonymous or a user.
//! The rest is a sequence of JSON values (up to 16), each read by `rpc::parse` (as a POST
//! body is) and handled in order on the same session, so the fuzzer can initialize and then
//! call. Input that is not JSON is skipped (after `mcp::parse_error` has described it).
//!
//! Asserts: no panic (the abort hook sees one even inside the server's `catch_unwind`); each
//! reply is one line of JSON; a reply is a JSON-RPC 2.0
//! response object (or a non-empty array of them) with exactly one of `result` and `error`,
//! an integer error code other than -32603 and a string message; a request with a usable
//! id gets exactly one reply, carrying that id.
#![no_main]

use std::fmt;

use libfuzzer_sys::fuzz_target;
use mcp_warden::identity::{Caller, Identity};
use mcp_warden::mcp::rpc;
use mcp_warden::mcp::session::Session;
use mcp_warden::mcp::{self, Context, Version};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
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
    let session = Session::detached(caller);
    static CATALOG: std::sync::LazyLock<mcp_warden::Catalog> = std::sync::LazyLock::new(|| {
        mcp_warden::builtin::add(mcp_warden::Server::builder())
            .catalog()
            .clone()
    });
    let catalog = &*CATALOG;
    let cx = Context {
        session: &session,
        catalog,
        outlet: &mcp_warden::mcp::call::Nowhere,
        client_gone: &|| false,
        tool_timeout: std::time::Duration::from_secs(60),
        versions: &Version::SUPPORTED,
        adopt_uninitialized: control & 0x20 != 0,
        bearer: None,
    };
    let version = match control & 7 {
        v @ 1..=4 => Some(Version::SUPPORTED[v as usize - 1].as_str()),
        5 => Some("1999-01-01"),
        _ => None,
    };
    if let Some(version) = version {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": version, "capabilities": {},
                       "clientInfo": {"name": "fuzz", "version": "0"}}});
        let reply = handle(&init, &cx).expect("initialize is answered");
        assert!(reply.get("result").is_some(), "{reply}");
        assert!(session.state().version.is_some());
        if control & 8 != 0 {
            let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
            assert_eq!(handle(&note, &cx), None);
        }
    }
    let mut messages = serde_json::Deserializer::from_slice(rest).into_iter::<&RawValue>();
    for _ in 0..MAX_MESSAGES {
        let raw = match messages.next() {
            Some(Ok(raw)) => raw,
            Some(Err(e)) => {
                check_reply(&line_value(&mcp::parse_error(&e).to_line()));
                return;
            }
            None => return,
        };
        // Nesting past serde_json's limit cannot be built as a `Value`; the server must
        // still answer it (unusable ids get a `null` id, checked by `check_response`).
        let value: Option<Value> = serde_json::from_str(raw.get()).ok();
        let expected_id = value
            .as_ref()
            .filter(|_| !names_a_member_twice(raw))
            .and_then(expected_reply_id);
        let body = rpc::parse(raw.get().as_bytes()).expect("a JSON value parses as a body");
        let reply = mcp::handle(body, &cx).map(|reply| line_value(&reply.to_line()));
        if let Some(id) = &expected_id {
            let reply = reply
                .as_ref()
                .expect("a request with a usable id gets a reply");
            assert_eq!(&reply["id"], id, "{reply}");
        }
        if let Some(reply) = reply {
            check_reply(&reply);
        }
    }
});

/// Handles `message` as a POST body; the reply line parsed back.
fn handle(message: &Value, cx: &Context<'_>) -> Option<Value> {
    let text = message.to_string();
    let body = rpc::parse(text.as_bytes()).expect("a JSON value parses as a body");
    mcp::handle(body, cx).map(|reply| line_value(&reply.to_line()))
}

/// A reply line as a value, after checking it is one line of JSON.
fn line_value(line: &str) -> Value {
    assert!(!line.contains(['\n', '\r']), "{line}");
    serde_json::from_str(line).expect("a reply parses")
}

/// Whether a message object names one of JSON-RPC's members twice (the server refuses it,
/// answering with a `null` id, since parsers disagree on which copy counts).
fn names_a_member_twice(raw: &RawValue) -> bool {
    struct Names(Vec<String>);
    impl<'de> Deserialize<'de> for Names {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Names, D::Error> {
            struct Visit;
            impl<'de> Visitor<'de> for Visit {
                type Value = Names;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Names, A::Error> {
                    let mut names = Vec::new();
                    while let Some(name) = map.next_key::<String>()? {
                        map.next_value::<IgnoredAny>()?;
                        names.push(name);
                    }
                    Ok(Names(names))
                }
            }
            d.deserialize_map(Visit)
        }
    }
    let Ok(Names(names)) = serde_json::from_str(raw.get()) else {
        return false;
    };
    ["jsonrpc", "id", "method", "params", "result", "error"]
        .iter()
        .any(|member| names.iter().filter(|n| n == member).count() > 1)
}

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
