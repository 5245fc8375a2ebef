//! JSON-RPC 2.0 envelopes: what a message is (request, notification, response), the error
//! codes, and how replies are written. What the methods mean lives in `mcp.rs`.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON is not a valid JSON-RPC 2.0 request.
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters (including an unknown tool or prompt).
pub const INVALID_PARAMS: i64 = -32602;
/// Internal error.
pub const INTERNAL_ERROR: i64 = -32603;
/// MCP: the resource named by `uri` does not exist.
pub const RESOURCE_NOT_FOUND: i64 = -32002;

/// A JSON-RPC error object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn invalid_params(message: impl Into<String>) -> RpcError {
        RpcError::new(INVALID_PARAMS, message)
    }

    pub fn with_data(mut self, data: Value) -> RpcError {
        self.data = Some(data);
        self
    }
}

/// A request id as received: a JSON string or integer, kept as its exact text so the
/// reply echoes it byte for byte (no copy, no re-encoding). `None` is `null`: the id of
/// replies to messages whose own id is absent or unusable.
pub type Id<'a> = Option<&'a RawValue>;

/// One message from a client, classified. Borrows from the body it was read from.
#[derive(Debug)]
pub enum Message<'a> {
    /// Has an `id`: gets exactly one reply.
    Request {
        id: &'a RawValue,
        method: Cow<'a, str>,
        params: Map<String, Value>,
    },
    /// No `id`: never gets a reply.
    Notification {
        method: Cow<'a, str>,
        params: Map<String, Value>,
    },
    /// A client's answer to a request of ours: its id (`None` if unusable) and its
    /// `result` (`Ok`) or `error` (`Err`), as raw JSON.
    Response {
        id: Id<'a>,
        result: Result<&'a RawValue, &'a RawValue>,
    },
}

/// A POST body: one message, or a batch of them, each not yet classified.
pub enum Body<'a> {
    One(&'a RawValue),
    Batch(Vec<&'a RawValue>),
}

/// Reads a body as JSON. Only syntax is checked here (an `Err` is a parse error); what
/// the values mean is `classify`'s job.
pub fn parse(body: &[u8]) -> Result<Body<'_>, serde_json::Error> {
    let raw: &RawValue = serde_json::from_slice(body)?;
    if raw.get().starts_with('[') {
        return serde_json::from_str(raw.get()).map(Body::Batch);
    }
    Ok(Body::One(raw))
}

/// The members of a message object that JSON-RPC gives a meaning, each as its raw JSON
/// text; other members are ignored. A member named twice is refused (by serde, as a
/// duplicate field): parsers disagree on which copy wins, so neither is trusted.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    params: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    error: Option<&'a RawValue>,
}

/// A member that is present, even as `null` (which `Option` alone would read as absent:
/// `"id": null` is an unusable id, not a notification).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A JSON string, borrowed from the body unless it holds escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

fn text(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Text<'_>>(raw.get())
        .ok()
        .map(|t| t.0)
}

/// The method of a request (a message with both `id` and `method`), read from the envelope
/// alone: its `params` are not built. `None` for anything else, including messages that
/// `classify` would refuse.
pub fn request_method(raw: &RawValue) -> Option<Cow<'_, str>> {
    if !raw.get().starts_with('{') {
        return None;
    }
    let envelope: Envelope<'_> = serde_json::from_str(raw.get()).ok()?;
    envelope.id?;
    text(envelope.method?)
}

/// Classifies one message. An `Err` carries the id to answer with (`null` when the id
/// itself is unusable) and the error to send.
pub fn classify(raw: &RawValue) -> Result<Message<'_>, (Id<'_>, RpcError)> {
    if !raw.get().starts_with('{') {
        return Err((
            None,
            RpcError::new(INVALID_REQUEST, "a JSON-RPC message must be a JSON object"),
        ));
    }
    let envelope: Envelope<'_> = serde_json::from_str(raw.get()).map_err(|e| {
        let message = format!("not a usable JSON-RPC message: {e}");
        (None, RpcError::new(INVALID_REQUEST, message))
    })?;
    let id = envelope.id.filter(|id| is_usable_id(id));
    let invalid = |message: &str| Err((id, RpcError::new(INVALID_REQUEST, message)));
    if envelope.jsonrpc.and_then(text).as_deref() != Some("2.0") {
        return invalid("\"jsonrpc\" must be exactly \"2.0\"");
    }
    if envelope.id.is_some() && id.is_none() {
        return invalid("\"id\" must be a string or an integer");
    }
    let method = match envelope.method {
        Some(raw) => match text(raw) {
            Some(method) => method,
            None => return invalid("\"method\" must be a string"),
        },
        None => match (envelope.result, envelope.error) {
            (Some(result), None) => {
                return Ok(Message::Response {
                    id,
                    result: Ok(result),
                });
            }
            (None, Some(error)) => {
                return Ok(Message::Response {
                    id,
                    result: Err(error),
                });
            }
            (Some(_), Some(_)) => {
                return invalid("a response has a \"result\" or an \"error\", not both");
            }
            (None, None) => return invalid("a request needs a \"method\""),
        },
    };
    let params = match envelope.params.map(|p| (p.get().bytes().next(), p)) {
        None | Some((Some(b'n'), _)) => Map::new(),
        // Valid JSON (the body parsed), so only nesting past serde_json's limit fails here.
        Some((Some(b'{'), p)) => serde_json::from_str(p.get()).map_err(|e| {
            let message = format!("\"params\" cannot be read: {e}");
            (id, RpcError::invalid_params(message))
        })?,
        Some((Some(b'['), _)) => {
            return Err((
                id,
                RpcError::invalid_params(
                    "MCP methods take named parameters: \"params\" must be an object",
                ),
            ));
        }
        Some(_) => return invalid("\"params\" must be an object"),
    };
    Ok(match id {
        Some(id) => Message::Request { id, method, params },
        None => Message::Notification { method, params },
    })
}

/// JSON-RPC ids are strings, integers or null; MCP forbids null, and a fraction would not
/// round-trip exactly through every client, so it is refused too.
fn is_usable_id(id: &RawValue) -> bool {
    let text = id.get();
    if text.starts_with('"') {
        // Echoed as written, so it must decode: a `\u` escape of a lone surrogate would make
        // the reply a text that strict JSON parsers refuse (found by the jsonrpc fuzz target).
        return !text.contains("\\u") || serde_json::from_str::<String>(text).is_ok();
    }
    matches!(serde_json::from_str::<Value>(text), Ok(Value::Number(n)) if n.is_i64() || n.is_u64())
}

/// A response object as written: exactly one of `result` and `error`.
#[derive(Serialize)]
struct Response<'a, R> {
    jsonrpc: &'static str,
    id: Id<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<R>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a RpcError>,
}

/// The reply to request `id`, as one line of JSON.
pub fn reply<R: Serialize>(id: Id<'_>, outcome: Result<R, &RpcError>) -> String {
    let (result, error) = match outcome {
        Ok(result) => (Some(result), None),
        Err(error) => (None, Some(error)),
    };
    to_line(&Response {
        jsonrpc: "2.0",
        id,
        result,
        error,
    })
}

/// An error reply, as one line of JSON.
pub fn error_reply(id: Id<'_>, error: &RpcError) -> String {
    reply::<()>(id, Err(error))
}

/// Replies to the messages of a batch, as one line: a JSON array.
pub fn batch_line(replies: &[String]) -> String {
    let mut line = String::with_capacity(replies.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
    line.push('[');
    for (i, reply) in replies.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str(reply);
    }
    line.push(']');
    line
}

/// A message as one line of JSON, written straight from its typed form (no intermediate
/// `Value`: fewer allocations on the hot path).
fn to_line(message: &impl Serialize) -> String {
    match serde_json::to_string(message) {
        Ok(line) => line,
        // Our replies hold only strings, numbers and JSON values: serializing cannot fail.
        // Keep the stream well-formed regardless.
        Err(_) => "null".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(text: &str) -> &RawValue {
        match parse(text.as_bytes()).unwrap() {
            Body::One(raw) => raw,
            Body::Batch(_) => panic!("a batch: {text}"),
        }
    }

    /// The error a message gets: the id text it is answered with, and the code.
    fn refused(text: &str) -> (Option<String>, i64) {
        let (id, e) = classify(raw(text)).unwrap_err();
        (id.map(|id| id.get().to_string()), e.code)
    }

    fn reply_value(line: &str) -> Value {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn request_method_reads_only_requests() {
        let method = |text: &str| request_method(raw(text)).map(|m| m.into_owned());
        assert_eq!(
            method(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"a":[1]}}"#),
            Some("initialize".into())
        );
        assert_eq!(method(r#"{"jsonrpc":"2.0","method":"initialize"}"#), None);
        assert_eq!(method(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#), None);
        assert_eq!(
            method(r#"{"id":1,"method":"x","id":2}"#),
            None,
            "named twice"
        );
    }

    #[test]
    fn classifies_requests_and_notifications() {
        match classify(raw(r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#)).unwrap() {
            Message::Request { id, method, params } => {
                assert_eq!((id.get(), &*method), ("7", "ping"));
                assert!(params.is_empty());
            }
            other => panic!("{other:?}"),
        }
        let text = r#"{"jsonrpc":"2.0","method":"notifications/initialized","params":{"a":1}}"#;
        match classify(raw(text)).unwrap() {
            Message::Notification { method, params } => {
                assert_eq!(method, "notifications/initialized");
                assert_eq!(params["a"], 1);
            }
            other => panic!("{other:?}"),
        }
        match classify(raw(r#"{"jsonrpc":"2.0","id":"a","result":{"x":1}}"#)).unwrap() {
            Message::Response { id, result } => {
                assert_eq!(id.map(RawValue::get), Some(r#""a""#));
                assert_eq!(
                    result.map(RawValue::get).map_err(RawValue::get),
                    Ok(r#"{"x":1}"#)
                );
            }
            other => panic!("{other:?}"),
        }
        match classify(raw(
            r#"{"jsonrpc":"2.0","id":7,"error":{"code":1,"message":"m"}}"#,
        ))
        .unwrap()
        {
            Message::Response { id, result } => {
                assert_eq!(id.map(RawValue::get), Some("7"));
                assert_eq!(
                    result.map(RawValue::get).map_err(RawValue::get),
                    Err(r#"{"code":1,"message":"m"}"#)
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            refused(r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{}}"#),
            (Some("1".into()), INVALID_REQUEST)
        );
    }

    #[test]
    fn borrows_method_unless_escaped_and_keeps_the_id_text() {
        let text = r#" { "jsonrpc" : "2.0" , "id" : "x\u0041" , "method" : "to\u006fls/list" } "#;
        match classify(raw(text)).unwrap() {
            Message::Request { id, method, .. } => {
                assert_eq!(id.get(), r#""x\u0041""#);
                assert_eq!(method, "tools/list");
            }
            other => panic!("{other:?}"),
        }
        match classify(raw(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)).unwrap() {
            Message::Request { method, .. } => assert!(matches!(method, Cow::Borrowed(_))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_non_jsonrpc_with_invalid_request() {
        let Body::Batch(items) = parse(b"[[1]]").unwrap() else {
            panic!("not a batch")
        };
        assert_eq!(
            classify(items[0]).map(|_| ()).unwrap_err().1.code,
            INVALID_REQUEST
        );
        assert_eq!(refused("5"), (None, INVALID_REQUEST));
        assert_eq!(refused(r#""x""#), (None, INVALID_REQUEST));
        assert_eq!(
            refused(r#"{"id":1,"method":"ping"}"#),
            (Some("1".into()), INVALID_REQUEST)
        );
        assert_eq!(
            refused(r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#),
            (Some("1".into()), INVALID_REQUEST)
        );
        assert_eq!(
            refused(r#"{"jsonrpc":2.0,"id":1,"method":"ping"}"#),
            (Some("1".into()), INVALID_REQUEST)
        );
        assert_eq!(
            refused(r#"{"jsonrpc":"2.0","id":1}"#),
            (Some("1".into()), INVALID_REQUEST)
        );
        assert_eq!(
            refused(r#"{"jsonrpc":"2.0","id":1,"method":5}"#),
            (Some("1".into()), INVALID_REQUEST)
        );
    }

    #[test]
    fn refuses_members_named_twice() {
        for text in [
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"ping"}"#,
        ] {
            assert_eq!(refused(text), (None, INVALID_REQUEST), "{text}");
        }
    }

    #[test]
    fn refuses_bad_id_types() {
        for id in [
            "null",
            "true",
            "{}",
            "[1]",
            "1.5",
            "1e2",
            "18446744073709551616",
            r#""2\uDDDD""#,
            r#""\uD800x""#,
        ] {
            let text = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
            assert_eq!(refused(&text), (None, INVALID_REQUEST), "id {id}");
        }
        for id in [
            "0",
            "-3",
            "18446744073709551615",
            r#""""#,
            r#""a b""#,
            r#""\u00e9\uD83D\uDE00""#,
        ] {
            let text = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
            assert!(classify(raw(&text)).is_ok(), "id {id}");
        }
    }

    #[test]
    fn refuses_positional_params() {
        assert_eq!(
            refused(r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#),
            (Some("1".into()), INVALID_PARAMS)
        );
        assert_eq!(
            refused(r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":3}"#),
            (Some("1".into()), INVALID_REQUEST)
        );
        assert!(
            classify(raw(
                r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":null}"#
            ))
            .is_ok()
        );
        assert!(matches!(
            classify(raw(r#"{"jsonrpc":"2.0","id":1,"result":null}"#)),
            Ok(Message::Response { .. })
        ));
        assert_eq!(
            refused(r#"{"jsonrpc":"2.0","id":1,"method":null}"#),
            (Some("1".into()), INVALID_REQUEST)
        );
    }

    #[test]
    fn parses_batches_and_refuses_bad_json() {
        match parse(br#" [ {"a":1}, 2 ] "#).unwrap() {
            Body::Batch(items) => {
                assert_eq!(
                    items.iter().map(|i| i.get()).collect::<Vec<_>>(),
                    [r#"{"a":1}"#, "2"]
                );
            }
            Body::One(_) => panic!("not a batch"),
        }
        assert!(parse(b"{").is_err());
        assert!(parse(b"{} {}").is_err());
        assert!(parse(b"").is_err());
    }

    #[test]
    fn replies_are_one_line_with_exactly_one_of_result_and_error() {
        let id = RawValue::from_string("\"a\"".into()).unwrap();
        let ok = reply_value(&reply(Some(&id), Ok(json!({"x": [1]}))));
        assert_eq!(
            ok,
            json!({"jsonrpc": "2.0", "id": "a", "result": {"x": [1]}})
        );
        let line = error_reply(
            None,
            &RpcError::new(RESOURCE_NOT_FOUND, "nope").with_data(json!({"uri":"x"})),
        );
        assert!(!line.contains('\n'));
        assert_eq!(
            reply_value(&line),
            json!({"jsonrpc": "2.0", "id": null,
                   "error": {"code": -32002, "message": "nope", "data": {"uri": "x"}}})
        );
        let plain = reply_value(&error_reply(None, &RpcError::new(INTERNAL_ERROR, "x")));
        assert!(plain["error"].get("data").is_none(), "{plain}");
        assert_eq!(batch_line(&["1".into(), "2".into()]), "[1,2]");
    }
}
