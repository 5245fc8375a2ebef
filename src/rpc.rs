//! JSON-RPC 2.0 envelopes: what a message is (request, notification, response), the error
//! codes, and how replies are written. What the methods mean lives in `mcp.rs`.

use serde_json::{Map, Value, json};

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
#[derive(Clone, Debug, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
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

/// One message from a client, classified.
#[derive(Debug, PartialEq)]
pub enum Message {
    /// Has an `id`: gets exactly one reply.
    Request {
        id: Value,
        method: String,
        params: Map<String, Value>,
    },
    /// No `id`: never gets a reply.
    Notification {
        method: String,
        params: Map<String, Value>,
    },
    /// A reply to a request of ours (`result` or `error`); we send none, so it is dropped.
    Response,
}

/// Classifies one JSON value. An `Err` carries the id to answer with (`null` when the id
/// itself is unusable) and the error to send.
pub fn classify(value: Value) -> Result<Message, (Value, RpcError)> {
    let Value::Object(mut obj) = value else {
        return Err((
            Value::Null,
            RpcError::new(INVALID_REQUEST, "a JSON-RPC message must be a JSON object"),
        ));
    };
    let id = obj.remove("id");
    let reply_id = match &id {
        Some(v @ Value::String(_)) => v.clone(),
        Some(v @ Value::Number(n)) if n.is_i64() || n.is_u64() => v.clone(),
        _ => Value::Null,
    };
    let invalid = |message: &str| Err((reply_id.clone(), RpcError::new(INVALID_REQUEST, message)));
    if obj.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return invalid("\"jsonrpc\" must be exactly \"2.0\"");
    }
    match &id {
        None | Some(Value::String(_)) => {}
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {}
        Some(_) => return invalid("\"id\" must be a string or an integer"),
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        Some(_) => return invalid("\"method\" must be a string"),
        None if obj.contains_key("result") || obj.contains_key("error") => {
            return Ok(Message::Response);
        }
        None => return invalid("a request needs a \"method\""),
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p,
        Some(Value::Array(_)) => {
            return Err((
                reply_id,
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

/// The reply to request `id`.
pub fn reply(id: Value, outcome: Result<Value, RpcError>) -> Value {
    match outcome {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        Err(e) => error_reply(id, e),
    }
}

pub fn error_reply(id: Value, error: RpcError) -> Value {
    let mut err = json!({ "code": error.code, "message": error.message });
    if let Some(data) = error.data {
        err["data"] = data;
    }
    json!({ "jsonrpc": "2.0", "id": id, "error": err })
}

/// A message as one line of JSON. (`Value::to_string` grows its string a few bytes at a
/// time; this sizes the buffer once, which matters on the hot path.)
pub fn to_line(message: &Value) -> String {
    match serde_json::to_string(message) {
        Ok(line) => line,
        // Serializing a `Value` cannot fail; keep the stream well-formed regardless.
        Err(_) => "null".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(v: Value) -> (Value, i64) {
        let (id, e) = classify(v).unwrap_err();
        (id, e.code)
    }

    #[test]
    fn classifies_requests_and_notifications() {
        assert_eq!(
            classify(json!({"jsonrpc":"2.0","id":7,"method":"ping"})).unwrap(),
            Message::Request {
                id: json!(7),
                method: "ping".into(),
                params: Map::new()
            }
        );
        assert!(matches!(
            classify(json!({"jsonrpc":"2.0","method":"notifications/initialized"})).unwrap(),
            Message::Notification { .. }
        ));
        assert_eq!(
            classify(json!({"jsonrpc":"2.0","id":"a","result":{}})).unwrap(),
            Message::Response
        );
    }

    #[test]
    fn refuses_non_jsonrpc_with_invalid_request() {
        assert_eq!(code(json!([1])), (Value::Null, INVALID_REQUEST));
        assert_eq!(
            code(json!({"id":1,"method":"ping"})),
            (json!(1), INVALID_REQUEST)
        );
        assert_eq!(
            code(json!({"jsonrpc":"1.0","id":1,"method":"ping"})),
            (json!(1), INVALID_REQUEST)
        );
        assert_eq!(
            code(json!({"jsonrpc":"2.0","id":1})),
            (json!(1), INVALID_REQUEST)
        );
        assert_eq!(
            code(json!({"jsonrpc":"2.0","id":1,"method":5})),
            (json!(1), INVALID_REQUEST)
        );
    }

    #[test]
    fn refuses_bad_id_types() {
        for id in [json!(null), json!(true), json!({}), json!([1]), json!(1.5)] {
            assert_eq!(
                code(json!({"jsonrpc":"2.0","id":id,"method":"ping"})),
                (Value::Null, INVALID_REQUEST),
                "id {id}"
            );
        }
    }

    #[test]
    fn refuses_positional_params() {
        assert_eq!(
            code(json!({"jsonrpc":"2.0","id":1,"method":"ping","params":[1]})),
            (json!(1), INVALID_PARAMS)
        );
        assert_eq!(
            code(json!({"jsonrpc":"2.0","id":1,"method":"ping","params":3})),
            (json!(1), INVALID_REQUEST)
        );
    }

    #[test]
    fn error_replies_carry_data_when_given() {
        let r = reply(
            json!(1),
            Err(RpcError::new(RESOURCE_NOT_FOUND, "nope").with_data(json!({"uri":"x"}))),
        );
        assert_eq!(r["error"]["code"], -32002);
        assert_eq!(r["error"]["data"]["uri"], "x");
        assert_eq!(reply(json!("a"), Ok(json!({})))["result"], json!({}));
    }
}
