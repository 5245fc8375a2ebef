//! Per-tool authorization over real HTTP with real tokens (a JWKS served on loopback by the
//! test, ES256 tokens minted here): every list shows a caller only what its groups let it
//! use, on `/sse`, on `/mcp` 2025 sessions and on 2026-07-28 requests; a call, `get`, read
//! or completion of anything else is answered byte for byte as an unknown name is; list
//! results are never `cacheScope: public` under a policy. The binary's side: the
//! `TOOL_POLICY_FILE` refusals naming the rule, the start-up warnings, and the log lines
//! (`denied …`, the audit line on target `audit`, arguments only with `AUDIT_ARGUMENTS`).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::issuer::{self, Issuer, plural_claims};
use common::jwks_server::JwksServer;
use common::{
    HttpResponse, McpClient, ServerProcess, SseClient, auth_settings, request_with, run_to_exit,
    spawn_with, test_config, warden_command, with_auth,
};
use mcp_warden::{
    Builder, Content, NoArgs, Policy, Prompt, PromptMessage, Resource, ResourceContents,
    ResourceTemplate, Server, StartError, Tool,
};
use serde_json::{Value, json};

const MODERN: &str = "2026-07-28";

fn issuer() -> &'static Issuer {
    static KEY: OnceLock<Issuer> = OnceLock::new();
    KEY.get_or_init(|| Issuer::es256(Some("policy-test")))
}

/// A token for `sub` in `groups` (both users pass `REQUIRED_GROUPS=sre,devops`).
fn token(sub: &str, groups: &[&str]) -> String {
    issuer().token(&plural_claims(
        sub,
        &format!("{sub}@example.com"),
        groups,
        600,
    ))
}

fn alice() -> String {
    token("alice", &["sre"])
}

fn bob() -> String {
    token("bob", &["devops"])
}

/// The rules under test.
fn policy() -> Policy {
    Policy::new()
        .tool("write_file", ["sre"])
        .prompt("incident_*", ["sre"])
        .resource("file:///secrets/", ["sre"])
}

/// The built-in tools, plus what the rules restrict and what they leave open.
fn offered() -> Builder {
    let read = |uri: &str, _: &mcp_warden::Vars, _: &mcp_warden::Call<'_>| {
        Ok(vec![ResourceContents::text(uri, "text/plain", "contents")])
    };
    mcp_warden::builtin::add(Server::builder())
        .tool(Tool::new(
            "write_file",
            "Writes a file.",
            json!({"type": "object"}),
            |_: NoArgs, _| Ok("written"),
        ))
        .prompt(
            Prompt::new("incident_review", "Reviews an incident.", |_, _| {
                Ok(vec![PromptMessage::user(Content::text("review it"))])
            })
            .completion(|_| vec!["sev1".into()]),
        )
        .resource(Resource::new("file:///secrets/db.txt", "db", |_| {
            Ok(vec![ResourceContents::text(
                "file:///secrets/db.txt",
                "text/plain",
                "password",
            )])
        }))
        .template(
            ResourceTemplate::new("file:///secrets/{name}", "secrets", read)
                .completion(|_| vec!["db.txt".into()]),
        )
        .template(ResourceTemplate::new("file:///{path}", "files", read))
        .policy(policy())
}

/// A server with auth on (`REQUIRED_GROUPS=sre,devops`) and the rules; keep the JWKS
/// server alive as long as the server.
fn setup() -> (JwksServer, Server) {
    let jwks = JwksServer::start(issuer::jwks(&[issuer().jwk()]));
    let server = spawn_with(
        with_auth(auth_settings(jwks.url(), "sre,devops")),
        offered(),
    );
    (jwks, server)
}

/// The `key` of each entry of `result[field]`.
fn names(result: &Value, field: &str, key: &str) -> Vec<String> {
    result[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {result}"))
        .iter()
        .map(|e| e[key].as_str().unwrap().to_string())
        .collect()
}

/// A 2026-07-28 request with its headers, as `token`'s holder.
fn modern(addr: SocketAddr, token: Option<&str>, method: &str, params: Value) -> HttpResponse {
    modern_with(addr, token, method, params, json!({}))
}

/// `modern`, declaring the client's `capabilities`.
fn modern_with(
    addr: SocketAddr,
    token: Option<&str>,
    method: &str,
    mut params: Value,
    capabilities: Value,
) -> HttpResponse {
    let name = params
        .get("name")
        .or_else(|| params.get("uri"))
        .and_then(Value::as_str)
        .map(str::to_string);
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    });
    let mut headers = format!(
        "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: {MODERN}\r\nMcp-Method: {method}\r\n"
    );
    if let Some(name) = name {
        headers.push_str(&format!("Mcp-Name: {name}\r\n"));
    }
    if let Some(token) = token {
        headers.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    request_with(addr, "POST", "/mcp", &headers, body.to_string().as_bytes())
}

fn modern_result(addr: SocketAddr, token: Option<&str>, method: &str) -> Value {
    let r = modern(addr, token, method, json!({}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["result"].clone()
}

/// What each list shows `token`'s holder, on all three wires: `/sse`, a `/mcp` 2025
/// session, and 2026-07-28 requests. Asserts the three agree; returns one.
fn lists(addr: SocketAddr, token: &str) -> [Vec<String>; 4] {
    let wanted = [
        ("tools/list", "tools", "name"),
        ("prompts/list", "prompts", "name"),
        ("resources/list", "resources", "uri"),
        (
            "resources/templates/list",
            "resourceTemplates",
            "uriTemplate",
        ),
    ];
    let mut sse = SseClient::initialized_authed(addr, token);
    let mut mcp = McpClient::authed(addr, token);
    mcp.initialize("2025-11-25");
    wanted.map(|(method, field, key)| {
        let over_sse = names(&sse.call(1, method, json!({}))["result"], field, key);
        let over_mcp = names(&mcp.call(1, method, json!({}))["result"], field, key);
        let over_modern = names(&modern_result(addr, Some(token), method), field, key);
        assert_eq!(over_sse, over_mcp, "{method}");
        assert_eq!(over_sse, over_modern, "{method}");
        over_sse
    })
}

#[test]
fn each_list_shows_only_what_the_callers_groups_allow_on_every_wire() {
    let (_jwks, server) = setup();
    let addr = server.local_addr();
    let [tools, prompts, resources, templates] = lists(addr, &bob());
    assert_eq!(tools, ["echo", "whoami", "ask"]);
    assert_eq!(prompts, ["echo"]);
    assert!(resources.is_empty(), "{resources:?}");
    // The secrets' template is hidden; the wider one stays, its reads checked by URI.
    assert_eq!(templates, ["echo://{message}", "file:///{path}"]);

    let [tools, prompts, resources, templates] = lists(addr, &alice());
    assert_eq!(tools, ["echo", "whoami", "ask", "write_file"]);
    assert_eq!(prompts, ["echo", "incident_review"]);
    assert_eq!(resources, ["file:///secrets/db.txt"]);
    assert_eq!(
        templates,
        [
            "echo://{message}",
            "file:///secrets/{name}",
            "file:///{path}"
        ]
    );
}

/// The answers to `method` naming `hidden` and naming `unknown` (a name of the same
/// length nothing has) on each wire, as `token`'s holder: (status, body) pairs, the
/// name replaced by `NAME`. Each pair must be equal.
fn answers(
    addr: SocketAddr,
    token: &str,
    method: &str,
    params: impl Fn(&str) -> Value,
    hidden: &str,
    unknown: &str,
) {
    assert_eq!(
        hidden.len(),
        unknown.len(),
        "same length: same Content-Length"
    );
    let mut sse = SseClient::initialized_authed(addr, token);
    let mut mcp = McpClient::authed(addr, token);
    mcp.initialize("2025-11-25");
    let mut by_wire = Vec::new();
    for name in [hidden, unknown] {
        let request = json!({"jsonrpc": "2.0", "id": 9, "method": method, "params": params(name)});
        sse.post(&request);
        let event = sse.next_event();
        let over_mcp = mcp.post(&request);
        let over_modern = modern(addr, Some(token), method, params(name));
        let strip = |text: &[u8]| String::from_utf8_lossy(text).replace(name, "NAME");
        by_wire.push([
            (200, strip(event.data.as_bytes())),
            (over_mcp.status, strip(&over_mcp.body)),
            (over_modern.status, strip(&over_modern.body)),
        ]);
    }
    assert_eq!(
        by_wire[0], by_wire[1],
        "{method}: a hidden {hidden:?} must be answered as the unknown {unknown:?}"
    );
    assert!(
        by_wire[0][0].1.contains("\"error\""),
        "{method} {hidden}: {:?}",
        by_wire[0]
    );
}

#[test]
fn a_call_to_a_hidden_tool_is_answered_exactly_as_an_unknown_one() {
    let (_jwks, server) = setup();
    let addr = server.local_addr();
    let call = |name: &str| json!({"name": name, "arguments": {}});
    answers(addr, &bob(), "tools/call", call, "write_file", "nofile_xyz");
    // …and whoever may use it does.
    let mut sse = SseClient::initialized_authed(addr, &alice());
    let reply = sse.call(1, "tools/call", call("write_file"));
    assert_eq!(reply["result"]["content"][0]["text"], "written");
    let r = modern(addr, Some(&alice()), "tools/call", call("write_file"));
    assert_eq!(r.json()["result"]["content"][0]["text"], "written");
}

#[test]
fn a_hidden_prompt_and_its_completion_are_answered_as_unknown_ones() {
    let (_jwks, server) = setup();
    let addr = server.local_addr();
    let get = |name: &str| json!({"name": name});
    answers(
        addr,
        &bob(),
        "prompts/get",
        get,
        "incident_review",
        "unknown_prompts",
    );
    let complete = |name: &str| {
        json!({"ref": {"type": "ref/prompt", "name": name},
               "argument": {"name": "sev", "value": "s"}})
    };
    answers(
        addr,
        &bob(),
        "completion/complete",
        complete,
        "incident_review",
        "unknown_prompts",
    );
    let mut mcp = McpClient::authed(addr, &alice());
    mcp.initialize("2025-11-25");
    let got = mcp.call(1, "prompts/get", get("incident_review"));
    assert_eq!(got["result"]["messages"][0]["content"]["text"], "review it");
    let values = mcp.call(2, "completion/complete", complete("incident_review"));
    assert_eq!(values["result"]["completion"]["values"], json!(["sev1"]));
}

#[test]
fn a_hidden_resource_is_answered_as_an_unknown_one_whichever_way_it_is_named() {
    let (_jwks, server) = setup();
    let addr = server.local_addr();
    let read = |uri: &str| json!({"uri": uri});
    // A fixed resource, and a URI the wider template would serve.
    answers(
        addr,
        &bob(),
        "resources/read",
        read,
        "file:///secrets/db.txt",
        "nope:///secrets/db.txt",
    );
    answers(
        addr,
        &bob(),
        "resources/read",
        read,
        "file:///secrets/x",
        "nope:///secrets/x",
    );
    let complete = |template: &str| {
        json!({"ref": {"type": "ref/resource", "uri": template},
               "argument": {"name": "name", "value": "d"}})
    };
    answers(
        addr,
        &bob(),
        "completion/complete",
        complete,
        "file:///secrets/{name}",
        "nope:///secrets/{name}",
    );
    // The wider template still serves bob what the rule does not cover.
    let mut mcp = McpClient::authed(addr, &bob());
    mcp.initialize("2025-11-25");
    let ok = mcp.call(1, "resources/read", read("file:///public/a"));
    assert_eq!(ok["result"]["contents"][0]["text"], "contents");
    // Subscribing is refused as for a URI nothing has, too.
    for uri in ["file:///secrets/db.txt", "nope:///secrets/db.txt"] {
        let refused = mcp.call(2, "resources/subscribe", read(uri));
        assert_eq!(refused["error"]["code"], -32002, "{uri}: {refused}");
    }
    // A 2026-07-28 subscription acknowledges a hidden URI as it does one nothing has: not.
    assert_eq!(listened(addr, &bob()), json!({"toolsListChanged": true}));
    assert_eq!(
        listened(addr, &alice()),
        json!({"toolsListChanged": true, "resourceSubscriptions": ["file:///secrets/db.txt"]})
    );
    let mut mcp = McpClient::authed(addr, &alice());
    mcp.initialize("2025-11-25");
    let secret = mcp.call(1, "resources/read", read("file:///secrets/db.txt"));
    assert_eq!(secret["result"]["contents"][0]["text"], "password");
    let subscribed = mcp.call(2, "resources/subscribe", read("file:///secrets/db.txt"));
    assert_eq!(subscribed["result"], json!({}));
}

/// What a `subscriptions/listen` asking for the secret resource (and one nothing has) is
/// acknowledged with, for `token`'s holder.
fn listened(addr: SocketAddr, token: &str) -> Value {
    let request = json!({"jsonrpc": "2.0", "id": 5, "method": "subscriptions/listen",
        "params": {"notifications": {"toolsListChanged": true,
                                     "resourceSubscriptions": ["file:///secrets/db.txt", "nope:///x"]},
                   "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN,
                             "io.modelcontextprotocol/clientCapabilities": {}}}});
    let headers = format!("MCP-Protocol-Version: {MODERN}\r\nMcp-Method: subscriptions/listen\r\n");
    let (head, mut stream) = McpClient::authed(addr, token).post_open(&headers, &request);
    assert_eq!(head.status, 200);
    loop {
        let mut line = String::new();
        assert_ne!(stream.read_line(&mut line).unwrap(), 0, "the stream ended");
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            let ack: Value = serde_json::from_str(data).unwrap();
            assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
            return ack["params"]["notifications"].clone();
        }
    }
}

#[test]
fn lists_under_a_policy_are_never_cached_for_everyone() {
    // Authentication off, so the transport alone would call every list public.
    let server = spawn_with(test_config(), offered());
    let addr = server.local_addr();
    for method in [
        "tools/list",
        "prompts/list",
        "resources/list",
        "resources/templates/list",
    ] {
        let result = modern_result(addr, None, method);
        assert_eq!(result["cacheScope"], "private", "{method}: {result}");
    }
    // Nothing in server/discover depends on the caller.
    assert_eq!(
        modern_result(addr, None, "server/discover")["cacheScope"],
        "public"
    );
    // An anonymous caller has no groups: the restricted tool is hidden from it.
    let tools = names(&modern_result(addr, None, "tools/list"), "tools", "name");
    assert_eq!(tools, ["echo", "whoami", "ask"]);
    // Without a policy, lists stay public as before.
    let open = spawn_with(test_config(), mcp_warden::builtin::add(Server::builder()));
    assert_eq!(
        modern_result(open.local_addr(), None, "tools/list")["cacheScope"],
        "public"
    );
}

#[test]
fn the_policy_outlives_changes_to_the_catalog() {
    let mut builder = offered();
    let handle = builder.handle();
    let server = spawn_with(test_config(), builder);
    // Even a catalog replaced whole keeps the rules the server started with.
    handle
        .update(|catalog| {
            *catalog = mcp_warden::Catalog::new();
            catalog.tools.push(Tool::new(
                "write_file",
                "Writes a file.",
                json!({"type": "object"}),
                |_: NoArgs, _| Ok("written"),
            ));
            catalog.tools.push(Tool::new(
                "read_file",
                "Reads a file.",
                json!({"type": "object"}),
                |_: NoArgs, _| Ok("read"),
            ));
        })
        .unwrap();
    assert!(!handle.catalog().policy().is_empty());
    let tools = names(
        &modern_result(server.local_addr(), None, "tools/list"),
        "tools",
        "name",
    );
    assert_eq!(tools, ["read_file"]);
}

#[test]
fn a_malformed_rule_on_the_builder_refuses_to_start_naming_it() {
    let builder = Server::builder().policy(Policy::new().tool("ad*min", ["sre"]));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    match builder.start(test_config(), listener) {
        Err(StartError::Policy(e)) => {
            assert_eq!(e.rule.as_deref(), Some("tools.\"ad*min\""));
            assert!(e.to_string().contains("a * may only end"), "{e}");
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("started with a malformed rule"),
    }
}

// ---- the binary: TOOL_POLICY_FILE, the start-up warnings, the log lines ----------------

/// A policy file with `text`, removed when dropped.
struct PolicyFile(PathBuf);

impl PolicyFile {
    fn new(text: &str) -> PolicyFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "mcp-warden-policy-{}-{}.json",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, text).unwrap();
        PolicyFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for PolicyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn a_malformed_policy_file_stops_the_binary_with_one_line_naming_the_rule() {
    for (text, named) in [
        (
            r#"{"tools": {"ad*min": ["sre"]}}"#,
            r#"rule tools."ad*min""#,
        ),
        (r#"{"tools": {"whoami": []}}"#, r#"rule tools."whoami""#),
        (r#"{"tools": {"whoami": "sre"}}"#, r#"rule tools."whoami""#),
        (r#"{"prompts": {"": ["sre"]}}"#, r#"rule prompts."""#),
        (
            r#"{"tools": {"whoami": ["sre", 1]}}"#,
            r#"rule tools."whoami""#,
        ),
        (r#"{"tools": {}, "groups": {}}"#, r#"unknown key "groups""#),
        ("{not json", "not a JSON object"),
    ] {
        let file = PolicyFile::new(text);
        let mut cmd = warden_command();
        cmd.env("TOOL_POLICY_FILE", file.path());
        let out = run_to_exit(cmd);
        assert_eq!(out.code(), 2, "{text}: {}", out.stderr);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{text}: {}", out.stderr);
        assert!(
            lines[0].starts_with(&format!("mcp-warden: TOOL_POLICY_FILE={:?}", file.path())),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains(named), "wanted {named:?}: {}", lines[0]);
    }
    let mut cmd = warden_command();
    cmd.env("TOOL_POLICY_FILE", "/nonexistent/policy.json");
    let out = run_to_exit(cmd);
    assert_eq!(out.code(), 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("TOOL_POLICY_FILE=\"/nonexistent/policy.json\"")
            && out.stderr.contains("reading it failed"),
        "{}",
        out.stderr
    );
}

#[test]
fn denials_and_every_tool_call_are_logged_without_arguments() {
    let jwks = JwksServer::start(issuer::jwks(&[issuer().jwk()]));
    let file = PolicyFile::new(
        r#"{"tools": {"whoami": ["sre"], "wirte_file": ["sre"]}, "prompts": {"incident_*": ["sre"]}}"#,
    );
    let mut cmd = warden_command();
    let url = jwks.url();
    cmd.envs([
        ("JWT_AUTH_ENABLED", "true"),
        ("JWKS_URI", url.as_str()),
        ("REQUIRED_GROUPS", "sre,devops"),
        ("TOOL_POLICY_FILE", file.path()),
        ("RUST_LOG", "info"),
    ])
    .stdout(Stdio::null());
    let mut server = ServerProcess::start(cmd);
    let log = server.log().join("\n");
    assert!(
        log.contains("per-tool authorization: 2 tool, 1 prompt, 0 resource rule(s)"),
        "{log}"
    );
    for rule in [r#"tools."wirte_file""#, r#"prompts."incident_*""#] {
        assert!(
            log.lines()
                .any(|l| l.contains("WARN") && l.contains(rule) && l.contains("matches nothing")),
            "no warning for {rule}: {log}"
        );
    }
    assert!(!log.contains("JWT_AUTH_ENABLED is off"), "{log}");

    let mut mcp = McpClient::authed(server.addr, &bob());
    mcp.initialize("2025-11-25");
    let denied = mcp.call(1, "tools/call", json!({"name": "whoami"}));
    assert_eq!(denied["error"]["message"], "unknown tool: whoami");
    let secret = "an-argument-that-stays-out-of-the-log";
    let echoed = mcp.call(
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": secret}}),
    );
    let result = echoed["result"].clone();
    assert_eq!(result["isError"], false);
    mcp.call(3, "tools/call", json!({"name": "no_such_tool"}));
    let failed = mcp.call(
        4,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": 5}}),
    );
    assert_eq!(failed["result"]["isError"], true);

    let in_bytes = json!({"message": secret}).to_string().len();
    let out_bytes = result.to_string().len();
    server.wait_for_all(&[
        "denied sub=bob tool=whoami",
        "audit] tool call sub=bob tool=whoami outcome=denied ms=",
        "audit] tool call sub=bob tool=echo outcome=ok ms=",
        &format!("in={in_bytes} out={out_bytes}"),
        "audit] tool call sub=bob tool=no_such_tool outcome=error ms=",
        "audit] tool call sub=bob tool=echo outcome=error ms=",
    ]);
    server.signal("TERM");
    assert_eq!(server.exit_code(), Some(0));
    let log = server.log_to_end();
    assert!(
        !log.iter().any(|l| l.contains(secret)),
        "arguments reached the log: {log:#?}"
    );
    let audit: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("tool call sub="))
        .collect();
    assert_eq!(audit.len(), 4, "one line per call: {audit:#?}");
    let denied: Vec<&String> = log.iter().filter(|l| l.contains("denied sub=")).collect();
    assert_eq!(denied.len(), 1, "{denied:#?}");
    assert!(denied[0].contains("INFO"), "{}", denied[0]);
}

#[test]
fn audit_arguments_adds_them_and_the_audit_target_filters_on_its_own() {
    let file = PolicyFile::new(r#"{"tools": {"whoami": ["sre"]}}"#);
    let mut cmd = warden_command();
    cmd.envs([
        ("TOOL_POLICY_FILE", file.path()),
        ("AUDIT_ARGUMENTS", "true"),
        // Warnings, the `listening on` line, and the audit lines only.
        ("RUST_LOG", "warn,mcp_warden::serve=info,audit=info"),
    ])
    .stdout(Stdio::null());
    let mut server = ServerProcess::start(cmd);
    server.wait_for_all(&["JWT_AUTH_ENABLED is off: every caller is anonymous"]);
    let mut mcp = McpClient::new(server.addr);
    mcp.initialize("2025-11-25");
    let tools = names(
        &mcp.call(1, "tools/list", json!({}))["result"],
        "tools",
        "name",
    );
    assert_eq!(tools, ["echo", "ask"], "anonymous callers have no groups");
    mcp.call(
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "a b\n\"c\""}}),
    );
    mcp.call(3, "tools/call", json!({"name": "whoami"}));
    // A 2026-07-28 round that asks the client first is neither ok nor an error.
    let asking = modern_with(
        server.addr,
        None,
        "tools/call",
        json!({"name": "ask", "arguments": {"question": "sure?"}}),
        json!({"elicitation": {}}),
    );
    assert_eq!(asking.json()["result"]["resultType"], "input_required");
    server.wait_for_all(&[
        r#"tool call sub=- tool=echo outcome=ok"#,
        r#"arguments={"message":"a b\n\"c\""}"#,
        "tool call sub=- tool=whoami outcome=denied",
        r#"tool call sub=- tool=ask outcome=input_required"#,
        r#"arguments={"question":"sure?"}"#,
    ]);
    server.signal("TERM");
    assert_eq!(server.exit_code(), Some(0));
    let log = server.log_to_end();
    assert!(
        !log.iter()
            .any(|l| l.contains("denied sub=") || l.contains("mcp_warden::access")),
        "only the audit target at info: {log:#?}"
    );
}

// ---- behind the gate (an upstream server) ---------------------------------------------

/// `mcp-warden -- python3 <the stdio fixture>` with `env`.
fn gateway_command(env: &[(&str, &str)]) -> std::process::Command {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stdio_server.py"
    );
    let mut cmd = warden_command();
    cmd.args(["--", "python3", script, "policy-test"])
        .envs(env.iter().copied())
        .stdout(Stdio::null());
    cmd
}

#[test]
fn tool_calls_through_the_gate_are_audited_too() {
    let mut server = ServerProcess::start(gateway_command(&[("RUST_LOG", "info")]));
    let mut mcp = McpClient::new(server.addr);
    mcp.initialize("2025-06-18");
    let echo = mcp.call(
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "through"}}),
    );
    let out_bytes = echo["result"].to_string().len();
    let log = server.wait_for_all(&[
        "audit] tool call sub=- tool=echo outcome=ok ms=",
        &format!("in=21 out={out_bytes}"),
    ]);
    assert!(!log.iter().any(|l| l.contains("through")), "{log:#?}");
}

#[test]
fn rules_hold_behind_the_gate_of_the_binary() {
    // The fixture offers `env`; auth is off, so the anonymous caller has no groups, and a
    // rule naming a tool the upstream lacks is only a typo to warn about later.
    let file = PolicyFile::new(r#"{"tools": {"env": ["sre"], "typo_tool": ["sre"]}}"#);
    let mut server = ServerProcess::start(gateway_command(&[
        ("TOOL_POLICY_FILE", file.path()),
        ("RUST_LOG", "info"),
    ]));
    let mut mcp = McpClient::new(server.addr);
    mcp.initialize("2025-06-18");
    let names = common::names_in(&mcp.call(1, "tools/list", json!({})), "tools");
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert!(
        names.contains(&"echo") && !names.contains(&"env"),
        "{names:?}"
    );
    let hidden = mcp.call(2, "tools/call", json!({"name": "env"}));
    assert_eq!(hidden["error"]["message"], "unknown tool: env", "{hidden}");
    let log = server.wait_for_all(&[
        "denied sub=- tool=env",
        "outcome=denied",
        r#"policy rule tools."typo_tool" matches nothing the upstream server offers"#,
    ]);
    assert!(
        !log.iter()
            .any(|l| l.contains(r#"tools."env" matches nothing"#)),
        "{log:#?}"
    );
}
