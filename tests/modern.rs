//! MCP 2026-07-28 on `/mcp` beside 2025-era sessions, over real HTTP: the dual-era routing,
//! every status and error code of a modern request (its `_meta`, the revision, the headers
//! that repeat the body, removed and unknown methods, a missing resource), the modern
//! result's dress (`resultType`, the server's identity, caching hints), and 2025 clients
//! going on exactly as before.

#![allow(clippy::unwrap_used)]

mod common;

use common::{HttpResponse, McpClient, request_with, spawn, spawn_with, test_config};
use mcp_warden::{NoArgs, Server, Tool};
use serde_json::{Value, json};

const V: &str = "2026-07-28";

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "0"}
    })
}

/// A modern request body for `method` with `params` (its `_meta` added).
fn body(method: &str, mut params: Value) -> Value {
    params["_meta"] = meta();
    json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
}

/// POSTs `body` to /mcp with `headers` (each `Name: value`) besides Accept.
fn post(addr: std::net::SocketAddr, headers: &[(&str, &str)], body: &Value) -> HttpResponse {
    let mut extra = String::from("Accept: application/json, text/event-stream\r\n");
    for (name, value) in headers {
        extra.push_str(&format!("{name}: {value}\r\n"));
    }
    request_with(addr, "POST", "/mcp", &extra, body.to_string().as_bytes())
}

/// POSTs a well-formed modern request: the headers match the body.
fn call(addr: std::net::SocketAddr, method: &str, params: Value) -> HttpResponse {
    let name = params
        .get("name")
        .or_else(|| params.get("uri"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut headers = vec![("MCP-Protocol-Version", V), ("Mcp-Method", method)];
    if let Some(name) = &name {
        headers.push(("Mcp-Name", name));
    }
    post(addr, &headers, &body(method, params))
}

fn error_of(r: &HttpResponse) -> (u16, i64, Value) {
    let reply = r.json();
    assert_eq!(reply["id"], 7, "errors echo the request's id: {reply}");
    let code = reply["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {reply}"));
    (r.status, code, reply["error"].clone())
}

#[test]
fn server_discover_names_both_eras_and_dresses_its_result() {
    let server = spawn(test_config());
    let r = call(server.local_addr(), "server/discover", json!({}));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("mcp-session-id"),
        None,
        "no session in this revision"
    );
    let result = r.json()["result"].clone();
    assert_eq!(result["resultType"], "complete");
    let versions = result["supportedVersions"].as_array().unwrap();
    for v in [V, "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"] {
        assert!(versions.contains(&json!(v)), "{v} in {versions:?}");
    }
    assert!(result["capabilities"]["tools"].is_object());
    assert!(result["capabilities"]["prompts"].is_object());
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "mcp-warden"
    );
    assert_eq!(
        (result["ttlMs"].as_u64(), &result["cacheScope"]),
        (Some(0), &json!("public"))
    );
    assert!(result.get("serverInfo").is_none() && result.get("protocolVersion").is_none());
}

#[test]
fn tools_prompts_and_resources_answer_statelessly() {
    let server = spawn(test_config());
    let addr = server.local_addr();
    let listed = call(addr, "tools/list", json!({})).json()["result"].clone();
    assert_eq!(listed["resultType"], "complete");
    assert_eq!(listed["tools"][0]["name"], "echo");
    assert!(listed["ttlMs"].is_u64() && listed["cacheScope"] == "public");

    let echoed = call(
        addr,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "m"}}),
    );
    assert_eq!(echoed.status, 200);
    assert_eq!(echoed.header("content-type"), Some("application/json"));
    let result = echoed.json()["result"].clone();
    assert_eq!(result["content"][0]["text"], "Tool echo: m");
    assert_eq!(result["resultType"], "complete");
    assert!(
        result.get("ttlMs").is_none(),
        "a call's result is not cacheable"
    );

    let read =
        call(addr, "resources/read", json!({"uri": "echo://hello"})).json()["result"].clone();
    assert_eq!(read["contents"][0]["text"], "Resource echo: hello");
    assert_eq!(
        read["cacheScope"], "private",
        "a reader may answer each caller differently"
    );

    let prompt = call(
        addr,
        "prompts/get",
        json!({"name": "echo", "arguments": {"message": "p"}}),
    );
    assert_eq!(
        prompt.json()["result"]["messages"][0]["content"]["text"],
        "Please process this message: p"
    );

    // A missing resource is invalid params in this revision, its URI in `data`.
    let (status, code, error) = error_of(&call(addr, "resources/read", json!({"uri": "nope://x"})));
    assert_eq!(
        (status, code, &error["data"]["uri"]),
        (200, -32602, &json!("nope://x"))
    );
}

#[test]
fn a_missing_meta_field_is_invalid_params_with_400_and_client_info_is_optional() {
    let server = spawn(test_config());
    let addr = server.local_addr();
    let headers = [
        ("MCP-Protocol-Version", V),
        ("Mcp-Method", "server/discover"),
    ];
    let no_caps = json!({"jsonrpc": "2.0", "id": 7, "method": "server/discover",
        "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": V}}});
    let (status, code, error) = error_of(&post(addr, &headers, &no_caps));
    assert_eq!((status, code), (400, -32602));
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("clientCapabilities")
    );
    // The header alone marks the request modern: a body without `_meta` is refused too.
    let no_meta = json!({"jsonrpc": "2.0", "id": 7, "method": "server/discover", "params": {}});
    assert_eq!(error_of(&post(addr, &headers, &no_meta)).0, 400);
    let no_info = json!({"jsonrpc": "2.0", "id": 7, "method": "server/discover",
        "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": V,
                             "io.modelcontextprotocol/clientCapabilities": {}}}});
    assert_eq!(post(addr, &headers, &no_info).status, 200);
}

#[test]
fn an_unsupported_version_names_what_is_supported() {
    let server = spawn(test_config());
    let mut request = body("server/discover", json!({}));
    request["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("v999.0.0");
    let headers = [
        ("MCP-Protocol-Version", "v999.0.0"),
        ("Mcp-Method", "server/discover"),
    ];
    let (status, code, error) = error_of(&post(server.local_addr(), &headers, &request));
    assert_eq!((status, code), (400, -32022));
    assert_eq!(error["data"]["requested"], "v999.0.0");
    assert_eq!(error["data"]["supported"][0], V);
}

#[test]
fn headers_that_do_not_repeat_the_body_are_a_header_mismatch() {
    let server = spawn(test_config());
    let addr = server.local_addr();
    let echo = body(
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "m"}}),
    );
    let cases: &[&[(&str, &str)]] = &[
        &[
            ("MCP-Protocol-Version", "2025-11-25"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "echo"),
        ],
        &[("MCP-Protocol-Version", V), ("Mcp-Name", "echo")],
        &[
            ("MCP-Protocol-Version", V),
            ("Mcp-Method", "TOOLS/CALL"),
            ("Mcp-Name", "echo"),
        ],
        &[("MCP-Protocol-Version", V), ("Mcp-Method", "tools/call")],
        &[
            ("MCP-Protocol-Version", V),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "whoami"),
        ],
        &[
            ("MCP-Protocol-Version", V),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "=?base64?!!?="),
        ],
    ];
    for headers in cases {
        let (status, code, _) = error_of(&post(addr, headers, &echo));
        assert_eq!((status, code), (400, -32020), "{headers:?}");
    }
    // Names are case-insensitive, surrounding whitespace is trimmed, and a base64 value is
    // decoded before it is compared.
    let fine: &[(&str, &str)] = &[
        ("mcp-protocol-version", V),
        ("MCP-METHOD", " tools/call "),
        ("Mcp-Name", "=?base64?ZWNobw==?="),
    ];
    assert_eq!(post(addr, fine, &echo).status, 200);
}

#[test]
fn removed_and_unknown_methods_are_not_found_with_404() {
    let server = spawn(test_config());
    for method in [
        "initialize",
        "ping",
        "logging/setLevel",
        "resources/subscribe",
        "resources/unsubscribe",
        "tools/destroy",
    ] {
        let mut params = json!({});
        if method.starts_with("resources/") {
            params["uri"] = json!("echo://x");
        }
        let r = call(server.local_addr(), method, params);
        let (status, code, _) = error_of(&r);
        assert_eq!((status, code), (404, -32601), "{method}");
    }
}

/// A server with a tool that asks its user twice (elicitation) before it answers.
fn asking_server() -> Server {
    let form = || json!({"type": "object", "properties": {"name": {"type": "string"}}});
    let asker = Tool::new(
        "ask",
        "Asks the user twice.",
        json!({"type": "object"}),
        move |_: NoArgs, call| {
            let first = call.elicit("first name?", form())?;
            let last = call.elicit("last name?", form())?;
            Ok(format!(
                "hello {} {}",
                first["content"]["name"], last["content"]["name"]
            ))
        },
    );
    spawn_with(test_config(), Server::builder().tool(asker))
}

/// `tools/call ask` declaring `capabilities`, with `extra` params (a retry's).
fn ask(addr: std::net::SocketAddr, id: i64, capabilities: Value, extra: Value) -> HttpResponse {
    let mut request = body("tools/call", json!({"name": "ask", "arguments": {}}));
    request["id"] = json!(id);
    request["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] = capabilities;
    for (k, v) in extra.as_object().unwrap() {
        request["params"][k] = v.clone();
    }
    let headers = [
        ("MCP-Protocol-Version", V),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "ask"),
    ];
    post(addr, &headers, &request)
}

#[test]
fn a_tool_that_asks_its_client_answers_input_required_and_finishes_on_the_retries() {
    let server = asking_server();
    let addr = server.local_addr();
    let caps = json!({"elicitation": {}});
    // Without the capability declared, nobody is asked.
    let refused = ask(addr, 7, json!({}), json!({}));
    let (status, code, error) = error_of(&refused);
    assert_eq!((status, code), (400, -32021));
    assert_eq!(
        error["data"]["requiredCapabilities"],
        json!({"elicitation": {}})
    );

    let first = ask(addr, 1, caps.clone(), json!({})).json()["result"].clone();
    assert_eq!(first["resultType"], "input_required", "{first}");
    assert_eq!(first["inputRequests"]["q0"]["method"], "elicitation/create");
    assert_eq!(
        first["inputRequests"]["q0"]["params"]["message"],
        "first name?"
    );
    assert!(first.get("content").is_none() && first.get("ttlMs").is_none());
    let state = first["requestState"].as_str().unwrap().to_string();

    let reply = |name: &str| json!({"action": "accept", "content": {"name": name}});
    let second = ask(
        addr,
        2,
        caps.clone(),
        json!({"requestState": state, "inputResponses": {"q0": reply("Ada")}}),
    );
    let second = second.json()["result"].clone();
    assert_eq!(second["resultType"], "input_required");
    assert_eq!(
        second["inputRequests"]["q1"]["params"]["message"],
        "last name?"
    );
    assert!(
        second["inputRequests"].get("q0").is_none(),
        "an answered question is not asked again"
    );
    let state = second["requestState"].as_str().unwrap().to_string();

    let done = ask(
        addr,
        3,
        caps.clone(),
        json!({"requestState": state, "inputResponses": {"q1": reply("Lovelace")}}),
    );
    let done = done.json()["result"].clone();
    assert_eq!(done["resultType"], "complete");
    assert_eq!(done["content"][0]["text"], "hello \"Ada\" \"Lovelace\"");

    // State that was altered, or that belongs to another request, is refused.
    let mut altered = state.clone().into_bytes();
    altered[5] ^= 1;
    let altered = String::from_utf8(altered).unwrap();
    let (_, code, error) = error_of(&ask(
        addr,
        7,
        caps.clone(),
        json!({"requestState": altered, "inputResponses": {"q1": reply("x")}}),
    ));
    assert_eq!(code, -32602);
    assert!(
        error["message"].as_str().unwrap().contains("requestState"),
        "{error}"
    );
}

#[test]
fn a_request_state_is_bound_to_its_request() {
    let server = asking_server();
    let addr = server.local_addr();
    let caps = json!({"elicitation": {}});
    let first = ask(addr, 1, caps.clone(), json!({})).json()["result"].clone();
    let state = first["requestState"].as_str().unwrap().to_string();
    // The same state presented with other arguments.
    let mut request = body(
        "tools/call",
        json!({"name": "ask", "arguments": {"other": 1}}),
    );
    request["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] = caps;
    request["params"]["requestState"] = json!(state);
    let headers = [
        ("MCP-Protocol-Version", V),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "ask"),
    ];
    let (_, code, error) = error_of(&post(addr, &headers, &request));
    assert_eq!(code, -32602);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("another request"),
        "{error}"
    );
}

#[test]
fn twenty_twenty_five_clients_go_on_as_before_beside_modern_ones() {
    let server = spawn(test_config());
    let addr = server.local_addr();
    let mut old = McpClient::new(addr);
    old.initialize("2025-11-25");
    assert_eq!(call(addr, "tools/list", json!({})).status, 200);
    let reply = old.call(
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "old"}}),
    );
    assert_eq!(reply["result"]["content"][0]["text"], "Tool echo: old");
    assert!(
        reply["result"].get("resultType").is_none(),
        "2025 results keep their shape"
    );
    assert_eq!(old.call(2, "ping", json!({}))["result"], json!({}));
    // A 2025 request without a session is still refused by the 2025 rule, not for lacking
    // `_meta`.
    let headers = [("MCP-Protocol-Version", "2025-06-18")];
    let stray = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"});
    let r = post(addr, &headers, &stray);
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("Mcp-Session-Id"));
}

#[test]
fn only_the_requests_own_progress_and_asked_for_log_messages_travel_on_its_stream() {
    let chatty = Tool::new(
        "chatty",
        "Logs and reports progress.",
        json!({"type": "object"}),
        |_: NoArgs, call| {
            call.log("info", json!("working"));
            call.progress(1.0, Some(1.0), None);
            Ok("done")
        },
    );
    let server = spawn_with(test_config(), Server::builder().tool(chatty));
    let headers = [
        ("MCP-Protocol-Version", V),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "chatty"),
    ];
    let events = |log_level: Option<&str>| {
        let mut request = body("tools/call", json!({"name": "chatty"}));
        request["params"]["_meta"]["progressToken"] = json!("p1");
        if let Some(level) = log_level {
            request["params"]["_meta"]["io.modelcontextprotocol/logLevel"] = json!(level);
        }
        // The answer is an event stream that ends with the connection: read it to the end.
        let extra: String = headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}\r\n"))
            .collect();
        let (r, mut reader) = McpClient::new(server.local_addr()).post_open(&extra, &request);
        assert_eq!(r.header("content-type"), Some("text/event-stream"));
        let text = String::from_utf8(common::read_to_eof(
            &mut reader,
            "the answer's event stream",
        ))
        .unwrap();
        assert!(
            !text.contains("\nid:") && !text.starts_with("id:"),
            "no event ids: {text}"
        );
        text.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str::<Value>(d).unwrap())
            .collect::<Vec<_>>()
    };
    let methods = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| e["method"].as_str().unwrap_or("(answer)").to_string())
            .collect()
    };
    let quiet = events(None);
    assert_eq!(methods(&quiet), ["notifications/progress", "(answer)"]);
    assert_eq!(quiet[1]["result"]["resultType"], "complete");
    let logged = events(Some("info"));
    assert_eq!(
        methods(&logged),
        [
            "notifications/message",
            "notifications/progress",
            "(answer)"
        ]
    );
    assert_eq!(
        methods(&events(Some("error"))),
        ["notifications/progress", "(answer)"]
    );
}

#[test]
fn input_responses_that_are_not_results_are_refused() {
    let server = asking_server();
    let caps = json!({"elicitation": {}});
    let first = ask(server.local_addr(), 1, caps.clone(), json!({})).json()["result"].clone();
    let retry = json!({"requestState": first["requestState"], "inputResponses": {"q0": 42}});
    let (_, code, error) = error_of(&ask(server.local_addr(), 7, caps, retry));
    assert_eq!(code, -32602);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("inputResponses"),
        "{error}"
    );
}

#[test]
fn malformed_retries_params_and_notifications_get_their_answers() {
    let server = asking_server();
    let addr = server.local_addr();
    let caps = json!({"elicitation": {}});
    let (status, code, error) = error_of(&ask(addr, 7, caps.clone(), json!({"requestState": 5})));
    assert_eq!((status, code), (200, -32602));
    assert!(error["message"].as_str().unwrap().contains("requestState"));
    let (_, code, _) = error_of(&ask(addr, 7, caps, json!({"inputResponses": []})));
    assert_eq!(code, -32602);
    let headers = [("MCP-Protocol-Version", V), ("Mcp-Method", "tools/list")];
    let bad_params = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": [1]});
    let (status, code, _) = error_of(&post(addr, &headers, &bad_params));
    assert_eq!((status, code), (400, -32602));
    // A notification in this revision is accepted and answered with nothing.
    let mut note = body("notifications/cancelled", json!({"requestId": 1}));
    note.as_object_mut().unwrap().remove("id");
    let headers = [
        ("MCP-Protocol-Version", V),
        ("Mcp-Method", "notifications/cancelled"),
    ];
    let r = post(addr, &headers, &note);
    assert_eq!((r.status, r.body.len()), (202, 0));
}

#[test]
fn the_built_in_ask_tool_answers_input_required_and_the_retry_gets_the_answer() {
    let server = spawn(test_config());
    let addr = server.local_addr();
    let headers = [
        ("MCP-Protocol-Version", V),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "ask"),
    ];
    let mut request = body(
        "tools/call",
        json!({"name": "ask", "arguments": {"question": "Favourite colour?"}}),
    );
    request["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] =
        json!({"elicitation": {}});
    let first = post(addr, &headers, &request).json()["result"].clone();
    assert_eq!(first["resultType"], "input_required", "{first}");
    let (key, question) = first["inputRequests"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    assert_eq!(question["method"], "elicitation/create");
    assert_eq!(question["params"]["message"], "Favourite colour?");

    request["params"]["requestState"] = first["requestState"].clone();
    request["params"]["inputResponses"] =
        json!({ key.as_str(): {"action": "accept", "content": {"answer": "teal"}} });
    let done = post(addr, &headers, &request).json()["result"].clone();
    assert_eq!(done["resultType"], "complete", "{done}");
    assert_eq!(done["content"][0]["text"], "The user answered: teal");
}

/// A server whose prompt asks the user for context, and whose tool asks only what the
/// client declared it can answer.
fn prompt_asking_server() -> Server {
    let form = json!({"type": "object", "properties": {"context": {"type": "string"}}});
    let prompt = mcp_warden::Prompt::new("brief", "Asks for context first.", move |_, call| {
        let answer = call.elicit("context?", form.clone())?;
        let text = format!("context: {}", answer["content"]["context"]);
        Ok(vec![mcp_warden::PromptMessage::user(
            mcp_warden::Content::text(text),
        )])
    });
    let polite = Tool::new(
        "polite",
        "Asks only what the client can answer.",
        json!({"type": "object"}),
        |_: NoArgs, call| {
            let mut asked = Vec::new();
            for (capability, method) in [
                ("sampling", "sampling/createMessage"),
                ("elicitation", "elicitation/create"),
            ] {
                if call.client_supports(capability) {
                    asked.push(call.ask_as(capability, method, json!({}), call.time_left()));
                }
            }
            let answers = asked.into_iter().collect::<Result<Vec<_>, _>>()?;
            Ok(format!("{} answers", answers.len()))
        },
    );
    spawn_with(test_config(), Server::builder().prompt(prompt).tool(polite))
}

#[test]
fn a_prompt_can_ask_its_client_and_renders_on_the_retry() {
    let server = prompt_asking_server();
    let addr = server.local_addr();
    let headers = [
        ("MCP-Protocol-Version", V),
        ("Mcp-Method", "prompts/get"),
        ("Mcp-Name", "brief"),
    ];
    let mut request = body("prompts/get", json!({"name": "brief"}));
    // Without elicitation declared: -32021, as for a tool.
    let (status, code, _) = error_of(&post(addr, &headers, &request));
    assert_eq!((status, code), (400, -32021));

    request["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] =
        json!({"elicitation": {}});
    let first = post(addr, &headers, &request).json()["result"].clone();
    assert_eq!(first["resultType"], "input_required", "{first}");
    assert_eq!(
        first["inputRequests"]["q0"]["params"]["message"],
        "context?"
    );
    request["params"]["requestState"] = first["requestState"].clone();
    request["params"]["inputResponses"] =
        json!({"q0": {"action": "accept", "content": {"context": "billing"}}});
    let done = post(addr, &headers, &request).json()["result"].clone();
    assert_eq!(done["resultType"], "complete", "{done}");
    assert_eq!(
        done["messages"][0]["content"]["text"],
        "context: \"billing\""
    );
}

#[test]
fn a_tool_asks_only_what_the_request_declares_it_can_answer() {
    let server = prompt_asking_server();
    let addr = server.local_addr();
    let headers = [
        ("MCP-Protocol-Version", V),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "polite"),
    ];
    let with = |capabilities: Value| {
        let mut request = body("tools/call", json!({"name": "polite"}));
        request["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] = capabilities;
        post(addr, &headers, &request).json()["result"].clone()
    };
    let sampling_only = with(json!({"sampling": {}}));
    let asked: Vec<&String> = sampling_only["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(asked, ["sampling"], "{sampling_only}");
    let both = with(json!({"sampling": {}, "elicitation": {}}));
    assert_eq!(both["inputRequests"].as_object().unwrap().len(), 2);
    let neither = with(json!({}));
    assert_eq!(neither["resultType"], "complete");
    assert_eq!(neither["content"][0]["text"], "0 answers");
}

/// The next `data:` of an event stream, as JSON (`None` once the stream has ended).
fn next_data(reader: &mut std::io::BufReader<std::net::TcpStream>) -> Option<Value> {
    use std::io::BufRead;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => panic!("the stream went quiet or failed instead of ending: {e}"),
        }
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            return Some(serde_json::from_str(data).unwrap());
        }
    }
}

/// Opens `subscriptions/listen` (id 9) asking for `notifications`.
fn listen(
    addr: std::net::SocketAddr,
    notifications: Value,
) -> (HttpResponse, std::io::BufReader<std::net::TcpStream>) {
    let mut request = body(
        "subscriptions/listen",
        json!({ "notifications": notifications }),
    );
    request["id"] = json!(9);
    let extra = format!("MCP-Protocol-Version: {V}\r\nMcp-Method: subscriptions/listen\r\n");
    McpClient::new(addr).post_open(&extra, &request)
}

#[test]
fn a_subscription_acknowledges_then_carries_only_what_it_asked_for() {
    let note = || {
        mcp_warden::Resource::new("test://note", "note", |_| {
            Ok(vec![mcp_warden::ResourceContents::text(
                "test://note",
                "text/plain",
                "n",
            )])
        })
    };
    let mut builder = Server::builder()
        .resource(note())
        .resource(mcp_warden::Resource::new("test://other", "other", |_| {
            Ok(vec![])
        }));
    let handle = builder.handle();
    let mut server = spawn_with(test_config(), builder);
    let addr = server.local_addr();

    // Discovery advertises what a subscription can carry.
    let found = call(addr, "server/discover", json!({})).json()["result"].clone();
    assert_eq!(found["capabilities"]["tools"]["listChanged"], true);
    assert_eq!(found["capabilities"]["resources"]["subscribe"], true);

    let (head, mut stream) = listen(
        addr,
        json!({"toolsListChanged": true, "promptsListChanged": false,
               "resourceSubscriptions": ["test://note", "test://nowhere"]}),
    );
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    let ack = next_data(&mut stream).unwrap();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        9
    );
    // What the server has and was asked for; the unknown URI is left out.
    assert_eq!(
        ack["params"]["notifications"],
        json!({"toolsListChanged": true, "resourceSubscriptions": ["test://note"]})
    );

    // A prompt added (not asked for), then a tool (asked for): only the tool's change.
    let prompt = mcp_warden::Prompt::new("p", "d", |_, _| Ok(vec![]));
    handle.update(|c| c.prompts.push(prompt)).unwrap();
    let tool = Tool::new("t", "d", json!({"type": "object"}), |_: NoArgs, _| Ok("x"));
    handle.update(|c| c.tools.push(tool)).unwrap();
    let changed = next_data(&mut stream).unwrap();
    assert_eq!(
        changed["method"], "notifications/tools/list_changed",
        "{changed}"
    );
    assert_eq!(
        changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        9
    );
    // A resource it does not watch, then one it does.
    handle.resource_updated("test://other");
    handle.resource_updated("test://note");
    let updated = next_data(&mut stream).unwrap();
    assert_eq!(updated["method"], "notifications/resources/updated");
    assert_eq!(updated["params"]["uri"], "test://note");
    assert_eq!(
        updated["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        9
    );

    // The server shutting down ends it with an empty result naming the subscription.
    assert!(server.shutdown(std::time::Duration::from_secs(5)));
    let ended = next_data(&mut stream).expect("a closing result");
    assert_eq!(ended["id"], 9);
    assert_eq!(ended["result"]["resultType"], "complete");
    assert_eq!(
        ended["result"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        9
    );
    assert_eq!(next_data(&mut stream), None);
}

#[test]
fn a_subscription_needs_its_filter_and_ends_with_its_client() {
    let config = mcp_warden::config::Config {
        max_sessions: 1,
        ..test_config()
    };
    let server = spawn(config);
    let addr = server.local_addr();
    for bad in [
        json!(null),
        json!({"toolsListChanged": "yes"}),
        json!({"resourceSubscriptions": [1]}),
    ] {
        let (head, mut stream) = listen(addr, bad.clone());
        let reply = if head.header("content-type") == Some("text/event-stream") {
            next_data(&mut stream).unwrap()
        } else {
            head.json()
        };
        assert_eq!(reply["error"]["code"], -32602, "{bad}: {reply}");
    }
    // One slot (MAX_SESSIONS=1): a second subscription is refused while the first is
    // open, and served once its client has left.
    let (_, mut first) = listen(addr, json!({"toolsListChanged": true}));
    assert!(next_data(&mut first).is_some());
    let (refused, _) = listen(addr, json!({"toolsListChanged": true}));
    assert_eq!(refused.status, 503);
    drop(first);
    let freed = common::eventually(std::time::Duration::from_secs(5), || {
        let (head, mut stream) = listen(addr, json!({}));
        head.status == 200 && next_data(&mut stream).is_some()
    });
    assert!(
        freed,
        "the slot of a subscription whose client left was not freed"
    );
}

#[test]
fn closing_the_response_stream_cancels_the_work() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU8, Ordering};
    // 0: running; 1: saw its cancellation; 2: never did (gave up after 10 s).
    let outcome = Arc::new(AtomicU8::new(0));
    let seen = Arc::clone(&outcome);
    let patient = Tool::new(
        "patient",
        "Reports progress, then works until it is cancelled.",
        json!({"type": "object"}),
        move |_: NoArgs, call| {
            call.progress(1.0, None, Some("started"));
            let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while std::time::Instant::now() < end {
                if call.is_cancelled() {
                    seen.store(1, Ordering::SeqCst);
                    return Ok("cancelled");
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            seen.store(2, Ordering::SeqCst);
            Ok("finished")
        },
    );
    let server = spawn_with(test_config(), Server::builder().tool(patient));
    let mut request = body("tools/call", json!({"name": "patient"}));
    request["params"]["_meta"]["progressToken"] = json!("p");
    let extra =
        format!("MCP-Protocol-Version: {V}\r\nMcp-Method: tools/call\r\nMcp-Name: patient\r\n");
    let (head, mut stream) = McpClient::new(server.local_addr()).post_open(&extra, &request);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    let progress = next_data(&mut stream).unwrap();
    assert_eq!(progress["method"], "notifications/progress");
    assert_eq!(outcome.load(Ordering::SeqCst), 0, "still working");
    drop(stream);
    let settled = common::eventually(std::time::Duration::from_secs(5), || {
        outcome.load(Ordering::SeqCst) != 0
    });
    assert!(settled, "the tool did not notice within 5 s");
    assert_eq!(
        outcome.load(Ordering::SeqCst),
        1,
        "the tool ran to its end instead"
    );
}

#[test]
fn a_tools_mcp_param_headers_must_repeat_its_arguments() {
    let tool = Tool::with_handler(
        "regional",
        "Takes a region in a header too.",
        json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "priority": {"type": "integer", "x-mcp-header": "Priority"}}}),
        |args: &serde_json::Map<String, Value>, _: &mcp_warden::Call<'_>| {
            Ok(mcp_warden::ToolResult::text(format!(
                "{}",
                Value::Object(args.clone())
            )))
        },
    );
    let server = spawn_with(test_config(), Server::builder().tool(tool));
    let addr = server.local_addr();
    let send = |arguments: Value, extra: &[(&str, &str)]| {
        let mut headers = vec![
            ("MCP-Protocol-Version", V),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "regional"),
        ];
        headers.extend_from_slice(extra);
        post(
            addr,
            &headers,
            &body(
                "tools/call",
                json!({"name": "regional", "arguments": arguments}),
            ),
        )
    };
    let ok = |r: HttpResponse| {
        let reply = r.json();
        assert_eq!(reply["result"]["resultType"], "complete", "{reply}");
    };
    ok(send(
        json!({"region": "eu-west"}),
        &[("Mcp-Param-Region", "eu-west")],
    ));
    // Names case-insensitive; the value decoded from =?base64?…?=; a number as its text.
    ok(send(
        json!({"region": "Hello", "priority": 3}),
        &[
            ("mcp-param-region", "=?base64?SGVsbG8=?="),
            ("Mcp-Param-Priority", "3"),
        ],
    ));
    // Not given, or null: no header needed.
    ok(send(json!({"region": null}), &[]));
    // Without the =?base64? wrapper a value is literal.
    ok(send(
        json!({"region": "SGVsbG8="}),
        &[("Mcp-Param-Region", "SGVsbG8=")],
    ));
    for (arguments, extra) in [
        (json!({"region": "eu-west"}), vec![]),
        (
            json!({"region": "eu-west"}),
            vec![("Mcp-Param-Region", "us-east")],
        ),
        (
            json!({"region": "Hello"}),
            vec![("Mcp-Param-Region", "=?base64?SGVsbG8?=")],
        ),
        (
            json!({"region": "Hello"}),
            vec![("Mcp-Param-Region", "=?base64?SGVs!!!bG8=?=")],
        ),
        (
            json!({"region": "a", "priority": 3}),
            vec![("Mcp-Param-Region", "a"), ("Mcp-Param-Priority", "4")],
        ),
    ] {
        let (status, code, error) = error_of(&send(arguments.clone(), &extra));
        assert_eq!(
            (status, code),
            (400, -32020),
            "{arguments} {extra:?}: {error}"
        );
    }
}
