//! The library API as an embedder meets it, over real HTTP on both transports: tools that
//! carry state, typed arguments checked against the schema (a misfit is an `isError`
//! result naming the field), every content type, structured content checked against an
//! output schema, prompts, resources, templates, completion, subscriptions with
//! `notifications/resources/updated`, a catalog changed while the server runs (with
//! `list_changed`), and a handler waiting for its client's answer while other sessions
//! carry on.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{McpClient, SseClient, spawn_with, test_config};
use mcp_warden::{
    Builder, Completing, Content, Handle, HandlerError, NoArgs, Prompt, PromptMessage, Resource,
    ResourceContents, ResourceTemplate, Server, StartError, Tool, ToolResult,
};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Add {
    a: f64,
    b: f64,
}

/// A server with tools of every kind; returns it and the shared call counter.
fn library_server() -> (Server, Handle, Arc<AtomicU64>) {
    let calls = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&calls);
    let add_schema = json!({
        "type": "object",
        "properties": { "a": { "type": "number" }, "b": { "type": "number" } },
        "required": ["a", "b"]
    });
    let sum_schema = json!({
        "type": "object",
        "properties": { "sum": { "type": "number" } },
        "required": ["sum"]
    });
    let mut builder = Server::builder()
        .name("library-test", "9.9.9")
        .tool(Tool::new(
            "count",
            "Counts its calls (state shared by every session).",
            json!({"type": "object"}),
            move |_: NoArgs, _| Ok(format!("{}", counter.fetch_add(1, Ordering::SeqCst) + 1)),
        ))
        .tool(
            Tool::new("add", "Adds.", add_schema.clone(), |args: Add, _| {
                Ok(ToolResult::structured(json!({ "sum": args.a + args.b })))
            })
            .output_schema(sum_schema.clone()),
        )
        .tool(
            Tool::new(
                "broken",
                "Breaks its output schema.",
                add_schema,
                |_: Add, _| Ok(ToolResult::structured(json!({ "total": 1 }))),
            )
            .output_schema(sum_schema),
        )
        .tool(Tool::new(
            "media",
            "Returns one block of every type.",
            json!({"type": "object"}),
            |_: NoArgs, _| {
                Ok(ToolResult::text("all")
                    .with(Content::image(b"png", "image/png"))
                    .with(Content::audio(b"wav", "audio/wav"))
                    .with(Content::resource(ResourceContents::blob(
                        "test://bin",
                        "application/octet-stream",
                        b"\x00\x01",
                    )))
                    .with(Content::link("test://doc", "doc")))
            },
        ))
        .tool(Tool::new(
            "ask_name",
            "Asks the user for a name.",
            json!({"type": "object"}),
            |_: NoArgs, call| {
                let answer = call.elicit(
                    "Your name?",
                    json!({"type": "object",
                    "properties": {"name": {"type": "string"}}}),
                )?;
                Ok(format!(
                    "hello {}",
                    answer["content"]["name"].as_str().unwrap_or("?")
                ))
            },
        ))
        .resource(
            Resource::new("test://doc", "doc", |call| {
                let text = format!("read by {}", call.caller().subject());
                Ok(vec![ResourceContents::text(
                    "test://doc",
                    "text/plain",
                    text,
                )])
            })
            .description("A document")
            .mime_type("text/plain"),
        )
        .template(
            ResourceTemplate::new("notes://{book}/{id}", "notes", |uri, vars, _| {
                if vars["id"] == "404" {
                    return Err(HandlerError::not_found("no such note"));
                }
                let text = format!("note {} of {}", vars["id"], vars["book"]);
                Ok(vec![ResourceContents::text(uri, "text/plain", text)])
            })
            .completion(|c: &Completing<'_>| {
                let book = c.context.get("book").and_then(Value::as_str).unwrap_or("");
                vec![format!("{book}{}1", c.value), format!("{book}{}2", c.value)]
            }),
        )
        .prompt(
            Prompt::new("greet", "Greets someone.", |args, call| {
                let text = format!(
                    "Greet {} on behalf of {}",
                    args.str("name"),
                    call.caller().subject()
                );
                Ok(vec![PromptMessage::user(Content::text(text))])
            })
            .argument("name", "Who to greet", true)
            .completion(|c: &Completing<'_>| {
                ["alice", "bob", "alfred"]
                    .iter()
                    .filter(|n| n.starts_with(c.value))
                    .map(|n| n.to_string())
                    .collect()
            }),
        );
    let handle = builder.handle();
    (spawn_with(test_config(), builder), handle, calls)
}

/// A client on either transport.
enum Client {
    Sse(SseClient),
    Mcp(McpClient),
}

impl Client {
    fn both(server: &Server) -> [Client; 2] {
        let mut sse = SseClient::open(server.local_addr());
        sse.initialize("2025-11-25");
        let mut mcp = McpClient::new(server.local_addr());
        mcp.initialize("2025-11-25");
        [Client::Sse(sse), Client::Mcp(mcp)]
    }

    fn name(&self) -> &'static str {
        match self {
            Client::Sse(_) => "/sse",
            Client::Mcp(_) => "/mcp",
        }
    }

    fn call(&mut self, id: i64, method: &str, params: Value) -> Value {
        match self {
            Client::Sse(c) => c.call(id, method, params),
            Client::Mcp(c) => c.call(id, method, params),
        }
    }

    fn result(&mut self, method: &str, params: Value) -> Value {
        let reply = self.call(1, method, params);
        assert!(reply["error"].is_null(), "{}: {reply}", self.name());
        reply["result"].clone()
    }

    fn tool(&mut self, name: &str, arguments: Value) -> Value {
        self.result("tools/call", json!({"name": name, "arguments": arguments}))
    }

    fn error_code(&mut self, method: &str, params: Value) -> (i64, Value) {
        let reply = self.call(1, method, params);
        let code = reply["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("{}: not an error: {reply}", self.name()));
        (code, reply["error"].clone())
    }
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

#[test]
fn tools_with_state_typed_arguments_content_and_output_schemas_on_both_transports() {
    let (server, _handle, calls) = library_server();
    for mut c in Client::both(&server) {
        let listed = c.result("tools/list", json!({}));
        let add = listed["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "add")
            .unwrap()
            .clone();
        assert_eq!(
            add["outputSchema"]["required"],
            json!(["sum"]),
            "{}",
            c.name()
        );

        let sum = c.tool("add", json!({"a": 2, "b": 3.5}));
        assert_eq!(sum["structuredContent"], json!({"sum": 5.5}));
        assert_eq!(sum["isError"], false);
        assert_eq!(text(&sum), r#"{"sum":5.5}"#);

        let misfit = c.tool("add", json!({"a": "two", "b": 3}));
        assert_eq!(misfit["isError"], true, "{}", c.name());
        assert_eq!(
            text(&misfit),
            "invalid arguments for tool add: arguments.a must be a number, not a string (\"two\")"
        );
        let missing = c.tool("add", json!({"a": 1}));
        assert!(
            text(&missing).contains("arguments.b is required"),
            "{missing}"
        );
        let broken = c.tool("broken", json!({"a": 1, "b": 1}));
        assert_eq!(broken["isError"], true);
        assert!(text(&broken).contains("outputSchema"), "{broken}");
        assert!(broken["structuredContent"].is_null());

        let media = c.tool("media", json!({}));
        let kinds: Vec<&str> = media["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["text", "image", "audio", "resource", "resource_link"]
        );
        assert_eq!(media["content"][1]["data"], "cG5n");
        assert_eq!(media["content"][3]["resource"]["blob"], "AAE=");

        c.tool("count", json!({}));
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "one state for both sessions"
    );
}

#[test]
fn prompts_resources_templates_and_completion_answer_alike_on_both_transports() {
    let (server, _handle, _) = library_server();
    let mut answers = Vec::new();
    for mut c in Client::both(&server) {
        let mut seen = Vec::new();
        seen.push(c.result("resources/list", json!({})));
        seen.push(c.result("resources/templates/list", json!({})));
        seen.push(c.result("resources/read", json!({"uri": "test://doc"})));
        seen.push(c.result("resources/read", json!({"uri": "notes://tolkien/7"})));
        seen.push(c.result("prompts/list", json!({})));
        seen.push(c.result(
            "prompts/get",
            json!({"name": "greet", "arguments": {"name": "ann"}}),
        ));
        seen.push(c.result(
            "completion/complete",
            json!({
            "ref": {"type": "ref/prompt", "name": "greet"},
            "argument": {"name": "name", "value": "al"}}),
        ));
        seen.push(c.result(
            "completion/complete",
            json!({
            "ref": {"type": "ref/resource", "uri": "notes://{book}/{id}"},
            "argument": {"name": "id", "value": "x"},
            "context": {"arguments": {"book": "b"}}}),
        ));
        assert_eq!(seen[2]["contents"][0]["text"], "read by -");
        assert_eq!(seen[3]["contents"][0]["text"], "note 7 of tolkien");
        assert_eq!(
            seen[5]["messages"][0]["content"]["text"],
            "Greet ann on behalf of -"
        );
        assert_eq!(
            seen[6]["completion"],
            json!({"values": ["alice", "alfred"], "total": 2, "hasMore": false})
        );
        assert_eq!(seen[7]["completion"]["values"], json!(["bx1", "bx2"]));

        let (code, error) = c.error_code("resources/read", json!({"uri": "notes://b/404"}));
        assert_eq!(
            (code, &error["data"]["uri"]),
            (-32002, &json!("notes://b/404"))
        );
        let (code, _) = c.error_code("resources/read", json!({"uri": "nothing://here"}));
        assert_eq!(code, -32002);
        let (code, error) = c.error_code("prompts/get", json!({"name": "greet"}));
        assert_eq!(code, -32602);
        assert!(error["message"].as_str().unwrap().contains("\"name\""));
        let (code, _) = c.error_code(
            "completion/complete",
            json!({
            "ref": {"type": "ref/prompt", "name": "nope"},
            "argument": {"name": "x", "value": ""}}),
        );
        assert_eq!(code, -32602);
        let (code, _) = c.error_code("resources/subscribe", json!({"uri": "nothing://here"}));
        assert_eq!(code, -32002);
        answers.push(seen);
    }
    assert_eq!(
        answers[0], answers[1],
        "one core: the same answers on both transports"
    );
}

/// The `data` of the next SSE `message` event on a raw stream.
fn next_data(reader: &mut impl BufRead) -> Value {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the stream ended");
        if let Some(data) = line.strip_prefix("data: ") {
            return serde_json::from_str(data.trim_end()).unwrap();
        }
    }
}

#[test]
fn a_subscribed_session_hears_of_a_resource_update_and_others_do_not() {
    let (server, handle, _) = library_server();
    let addr = server.local_addr();
    let mut watcher = SseClient::open(addr);
    watcher.initialize("2025-11-25");
    let mut bystander = SseClient::open(addr);
    bystander.initialize("2025-11-25");
    let mut mcp = McpClient::new(addr);
    mcp.initialize("2025-11-25");
    let mut mcp_stream = mcp.open_stream().unwrap();
    for (id, c) in [(1, &mut watcher), (2, &mut bystander)] {
        c.call(id, "resources/subscribe", json!({"uri": "test://doc"}));
    }
    mcp.call(3, "resources/subscribe", json!({"uri": "test://doc"}));
    bystander.call(4, "resources/unsubscribe", json!({"uri": "test://doc"}));

    handle.resource_updated("test://doc");
    handle.resource_updated("test://other");
    let updated = json!({"jsonrpc": "2.0", "method": "notifications/resources/updated",
                         "params": {"uri": "test://doc"}});
    assert_eq!(watcher.next_message(), updated);
    assert_eq!(next_data(&mut mcp_stream), updated);
    // The bystander's next message is the answer to its next request: nothing came
    // before it (the stream keeps order).
    assert_eq!(bystander.call(5, "ping", json!({}))["result"], json!({}));
    assert_eq!(
        watcher.call(6, "ping", json!({}))["result"],
        json!({}),
        "one update only"
    );
}

#[test]
fn a_catalog_changed_while_running_tells_every_session_and_refuses_duplicates() {
    let (server, handle, _) = library_server();
    let addr = server.local_addr();
    let mut sse = SseClient::open(addr);
    sse.initialize("2025-11-25");
    let mut mcp = McpClient::new(addr);
    mcp.initialize("2025-06-18");
    let mut mcp_stream = mcp.open_stream().unwrap();

    let late = || {
        Tool::new(
            "late",
            "Added later.",
            json!({"type": "object"}),
            |_: NoArgs, _| Ok("late answer"),
        )
    };
    handle.update(|c| c.tools.push(late())).unwrap();
    let changed = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
    assert_eq!(sse.next_message(), changed);
    assert_eq!(next_data(&mut mcp_stream), changed);
    let reply = sse.call(1, "tools/call", json!({"name": "late"}));
    assert_eq!(text(&reply["result"]), "late answer");
    assert!(
        mcp.call(2, "tools/list", json!({}))["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "late")
    );

    let refused = handle.update(|c| c.tools.push(late())).unwrap_err();
    assert_eq!(refused.to_string(), "two tools are named \"late\"");
    assert_eq!(
        handle
            .catalog()
            .tools
            .iter()
            .filter(|t| t.name() == "late")
            .count(),
        1
    );
    // Prompts changed: only that list is announced.
    handle
        .update(|c| c.prompts.retain(|p| p.name() != "greet"))
        .unwrap();
    assert_eq!(
        sse.next_message(),
        json!({"jsonrpc": "2.0", "method": "notifications/prompts/list_changed"})
    );
    assert_eq!(sse.call(3, "ping", json!({}))["result"], json!({}));
}

#[test]
fn two_entries_of_one_name_stop_the_server_from_starting() {
    let tool = || {
        Tool::new("twin", "d", json!({"type": "object"}), |_: NoArgs, _| {
            Ok("x")
        })
    };
    let builder: Builder = Server::builder().tool(tool()).tool(tool());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    match builder.start(test_config(), listener) {
        Err(StartError::Catalog(e)) => assert_eq!(e.to_string(), "two tools are named \"twin\""),
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("a catalog with two tools named twin was served"),
    }
}

#[test]
fn a_handler_waiting_for_its_client_does_not_hold_up_other_sessions() {
    let (server, _handle, _) = library_server();
    let addr = server.local_addr();
    let mut asker = SseClient::open(addr);
    let init = asker.call(
        0,
        "initialize",
        json!({"protocolVersion": "2025-11-25",
        "capabilities": {"elicitation": {}}, "clientInfo": {"name": "t", "version": "0"}}),
    );
    assert!(init["result"]["capabilities"]["completions"].is_object());
    asker.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    asker.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "ask_name"}}));
    let question = asker.next_message();
    assert_eq!(question["method"], "elicitation/create");
    assert_eq!(question["params"]["message"], "Your name?");

    // Meanwhile another session, on the other transport, is served at once.
    let mut other = McpClient::new(addr);
    other.initialize("2025-11-25");
    let counted = other.call(2, "tools/call", json!({"name": "count"}));
    assert_eq!(text(&counted["result"]), "1");
    // And so is the waiting session's own next request.
    asker.post(&json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}));
    assert_eq!(asker.next_message()["id"], 3);

    asker.post(&json!({"jsonrpc": "2.0", "id": question["id"],
                       "result": {"action": "accept", "content": {"name": "Ada"}}}));
    let answer = asker.next_message();
    assert_eq!(answer["id"], 1);
    assert_eq!(text(&answer["result"]), "hello Ada");
}

#[test]
fn a_prompt_asks_its_client_over_a_2025_session() {
    let prompt = Prompt::new("brief", "Asks for context first.", |_, call| {
        let form = json!({"type": "object", "properties": {"context": {"type": "string"}}});
        let answer = call.elicit("context?", form)?;
        let text = format!("context: {}", answer["content"]["context"]);
        Ok(vec![PromptMessage::user(Content::text(text))])
    });
    let server = spawn_with(test_config(), Server::builder().prompt(prompt));
    let mut c = SseClient::open(server.local_addr());
    c.call(
        0,
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {"elicitation": {}},
               "clientInfo": {"name": "t", "version": "0"}}),
    );
    c.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    c.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "prompts/get",
                   "params": {"name": "brief"}}));
    let question = c.next_message();
    assert_eq!(question["method"], "elicitation/create", "{question}");
    assert_eq!(question["params"]["message"], "context?");
    c.post(&json!({"jsonrpc": "2.0", "id": question["id"],
                   "result": {"action": "accept", "content": {"context": "billing"}}}));
    let answer = c.next_message();
    assert_eq!(answer["id"], 1);
    assert_eq!(
        answer["result"]["messages"][0]["content"]["text"],
        "context: \"billing\""
    );
}
