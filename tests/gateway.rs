//! The gate in front of another MCP server, over real HTTP with a real child process: the
//! stdio server in tests/fixtures/stdio_server.py (Python 3, standard library only), one
//! per session. Its tools: echo, env, ask (elicitation), progress, garbage, crash, hang,
//! flood, slow.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use common::issuer::{Issuer, jwks, plural_claims};
use common::jwks_server::JwksServer;
use common::{
    McpClient, ServerProcess, SseClient, auth_settings, eventually, next_data, spawn_with,
    test_config, warden_command, with_auth,
};
use mcp_warden::config::Config;
use mcp_warden::gateway::Upstream;
use mcp_warden::{Server, StartError};
use serde_json::{Value, json};

/// The fixture, with `tag` as an extra argument it ignores: tests running at the same
/// time count their own children by it.
fn fixture(tag: &str) -> Upstream {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stdio_server.py"
    );
    Upstream::command([python(), script, tag]).grace(Duration::from_secs(2))
}

/// The Python 3 interpreter itself, not a launcher script in front of it (a pyenv shim is
/// a shell script, and a shell adds variables of its own to the environment).
fn python() -> &'static str {
    static PYTHON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = std::process::Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 runs the upstream fixture");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}

fn gateway(config: Config) -> Server {
    spawn_with(config, Server::builder().upstream(fixture("any")))
}

fn config() -> Config {
    Config {
        tool_timeout: Duration::from_secs(2),
        ..test_config()
    }
}

fn text(reply: &Value) -> String {
    reply["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {reply}"))
        .to_string()
}

/// The processes whose parent is this test process and whose command line names `needle`.
fn children_running(needle: &str) -> usize {
    children_of(std::process::id(), needle)
}

/// The processes whose parent is `parent` and whose command line names `needle`.
fn children_of(parent: u32, needle: &str) -> usize {
    let me = parent.to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            let status = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
            let parent = status
                .lines()
                .find_map(|l| l.strip_prefix("PPid:"))
                .map(str::trim);
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            parent == Some(me.as_str()) && String::from_utf8_lossy(&cmdline).contains(needle)
        })
        .count()
}

#[test]
fn a_streamable_session_is_relayed_to_its_upstream_server() {
    let server = gateway(config());
    let mut c = McpClient::new(server.local_addr());
    let init = c.initialize("2025-06-18");
    assert_eq!(init["serverInfo"]["name"], "stdio-fixture", "{init}");
    assert_eq!(init["protocolVersion"], "2025-06-18");
    let names = common::names_in(&c.call(1, "tools/list", json!({})), "tools");
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert!(
        names.contains(&"echo") && names.contains(&"ask"),
        "{names:?}"
    );
    let echo = c.call(
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "hi"}}),
    );
    assert_eq!(text(&echo), "upstream echo: hi");
    // A line that is not JSON-RPC is skipped; the answer after it arrives.
    let garbage = c.call(3, "tools/call", json!({"name": "garbage"}));
    assert_eq!(text(&garbage), "after the garbage");
    // The upstream's own errors reach the client as they are.
    let unknown = c.call(4, "resources/list", json!({}));
    assert_eq!(unknown["error"]["code"], -32601, "{unknown}");
}

#[test]
fn progress_and_the_upstreams_questions_reach_the_client_and_its_answers_go_back() {
    let server = gateway(config());
    let mut c = SseClient::open(server.local_addr());
    c.call(
        0,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {"elicitation": {}},
               "clientInfo": {"name": "t", "version": "0"}}),
    );
    c.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    c.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                   "params": {"name": "progress", "_meta": {"progressToken": "p1"}}}));
    for step in [1, 2] {
        let note = c.next_message();
        assert_eq!(note["method"], "notifications/progress", "{note}");
        assert_eq!(note["params"]["progressToken"], "p1");
        assert_eq!(note["params"]["progress"], step);
    }
    assert_eq!(
        text(&c.next_message()),
        "progressed; the token it saw: \"p1\""
    );

    c.post(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                   "params": {"name": "ask"}}));
    let question = c.next_message();
    assert_eq!(question["method"], "elicitation/create", "{question}");
    c.post(&json!({"jsonrpc": "2.0", "id": question["id"],
                   "result": {"action": "accept", "content": {"name": "Ada"}}}));
    let answer = c.next_message();
    assert_eq!(answer["id"], 2);
    assert_eq!(text(&answer), "hello Ada");
}

#[test]
fn the_child_gets_the_verified_caller_and_only_the_allowed_environment() {
    let issuer = Issuer::rsa(None);
    let jwks_server = JwksServer::start(jwks(&[issuer.jwk()]));
    let server = gateway(Config {
        tool_timeout: Duration::from_secs(2),
        ..with_auth(auth_settings(jwks_server.url(), "sre"))
    });
    let claims = plural_claims("alice", "alice@example.com", &["sre", "dev"], 3600);
    let mut c = McpClient::authed(server.local_addr(), &issuer.token(&claims));
    c.initialize("2025-06-18");
    let env: Value =
        serde_json::from_str(&text(&c.call(1, "tools/call", json!({"name": "env"})))).unwrap();
    assert_eq!(env["user"]["MCP_USER_SUB"], "alice", "{env}");
    assert_eq!(env["user"]["MCP_USER_EMAIL"], "alice@example.com");
    assert_eq!(env["user"]["MCP_USER_GROUPS"], "sre,dev");
    // PATH and HOME by default; nothing else of the server's own environment (cargo sets
    // CARGO_MANIFEST_DIR and more for this test process; none may leak).
    let names: HashSet<&str> = env["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(names.contains("PATH"), "{names:?}");
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    for (ours, _) in std::env::vars_os() {
        let ours = ours.to_string_lossy();
        if ours != "PATH" && ours != "HOME" {
            assert!(!names.contains(ours.as_ref()), "{ours} leaked to the child");
        }
    }
}

#[test]
fn each_session_has_its_own_child_and_every_child_is_ended_with_its_session() {
    let server = spawn_with(config(), Server::builder().upstream(fixture("hundred")));
    let addr = server.local_addr();
    let mine = || children_running("hundred");
    assert_eq!(mine(), 0);
    let mut clients = Vec::new();
    for i in 0..100 {
        let mut c = McpClient::new(addr);
        c.initialize("2025-06-18");
        let echo = c.call(
            1,
            "tools/call",
            json!({"name": "echo", "arguments": {"message": i}}),
        );
        assert_eq!(text(&echo), format!("upstream echo: {i}"));
        clients.push(c);
    }
    assert_eq!(mine(), 100);
    for c in &clients {
        assert_eq!(c.delete().status, 204);
    }
    let reaped = eventually(Duration::from_secs(10), || mine() == 0);
    assert!(reaped, "{} children left", mine());
}

#[test]
fn a_child_that_crashes_ends_its_session_with_an_error_naming_its_exit() {
    let server = gateway(config());
    let mut c = McpClient::new(server.local_addr());
    c.initialize("2025-06-18");
    let crashed = c.call(1, "tools/call", json!({"name": "crash"}));
    let message = crashed["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("exit status: 3"), "{crashed}");
    let gone = eventually(Duration::from_secs(5), || {
        c.post(&json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}))
            .status
            == 404
    });
    assert!(gone, "the session outlived its child");
}

#[test]
fn a_hanging_or_flooding_child_harms_only_its_own_session() {
    let server = gateway(config());
    let addr = server.local_addr();
    let mut hung = McpClient::new(addr);
    hung.initialize("2025-06-18");
    let mut flooded = McpClient::new(addr);
    flooded.initialize("2025-06-18");
    let mut other = McpClient::new(addr);
    other.initialize("2025-06-18");

    // A child that stops reading: its call ends at TOOL_TIMEOUT_SECS with an error result.
    let stuck = hung.call(1, "tools/call", json!({"name": "hang"}));
    assert_eq!(stuck["result"]["isError"], true, "{stuck}");
    assert!(text(&stuck).contains("TOOL_TIMEOUT_SECS"), "{stuck}");

    // A child that floods its stdout is ended; its call gets an error saying why.
    let flood = flooded.call(1, "tools/call", json!({"name": "flood"}));
    let message = flood["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("longer than 16 MiB"), "{flood}");

    // Meanwhile, and afterwards, another session is served.
    let echo = other.call(
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "ok"}}),
    );
    assert_eq!(text(&echo), "upstream echo: ok");
}

#[test]
fn an_upstream_that_cannot_start_is_a_clear_error() {
    let server = spawn_with(
        config(),
        Server::builder().upstream(Upstream::command(["/nonexistent/mcp-server"])),
    );
    let c = McpClient::new(server.local_addr());
    let r = c.post(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}}}));
    let reply = r.json();
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("could not be started"), "{reply}");
    let empty = Server::builder().upstream(Upstream::command(Vec::<String>::new()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    assert!(matches!(
        empty.start(config(), listener),
        Err(StartError::Catalog(_))
    ));
}

#[test]
fn the_binary_runs_the_command_after_dashes_and_sigterm_leaves_no_child_behind() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stdio_server.py"
    );
    let mut cmd = warden_command();
    cmd.args(["--", python(), script, "sigterm-tag"])
        .env("SHUTDOWN_GRACE_SECS", "2");
    let mut server = ServerProcess::start(cmd);
    server.wait_for_all(&["gateway: each session is relayed"]);
    let pid = server.child.id();
    let clients: Vec<McpClient> = (0..3)
        .map(|i| {
            let mut c = McpClient::new(server.addr);
            let init = c.initialize("2025-06-18");
            assert_eq!(init["serverInfo"]["name"], "stdio-fixture");
            let echo = c.call(
                1,
                "tools/call",
                json!({"name": "echo", "arguments": {"message": i}}),
            );
            assert_eq!(text(&echo), format!("upstream echo: {i}"));
            c
        })
        .collect();
    assert_eq!(children_of(pid, "sigterm-tag"), 3);
    server.signal("TERM");
    assert_eq!(server.exit_code(), Some(0));
    drop(clients);
    // No process of the tag is left, whoever its parent is now.
    let everywhere = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains("sigterm-tag"))
            })
            .count()
    };
    assert_eq!(everywhere(), 0, "children outlived the server");
    let log = server.log_to_end();
    assert!(
        log.iter()
            .filter(|l| l.contains("upstream ended pid="))
            .count()
            == 3,
        "{log:#?}"
    );
}

#[test]
fn the_upstream_is_given_once_and_well_formed() {
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = warden_command();
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        common::run_to_exit(cmd)
    };
    let twice = run(&["--", "cat"], &[("UPSTREAM_COMMAND", r#"["cat"]"#)]);
    assert_eq!(twice.code(), 2);
    assert!(twice.stderr.contains("given twice"), "{}", twice.stderr);
    let shell = run(&[], &[("UPSTREAM_COMMAND", "npx -y server")]);
    assert_eq!(shell.code(), 2);
    assert!(
        shell.stderr.contains("UPSTREAM_COMMAND"),
        "{}",
        shell.stderr
    );
    let env = run(&["--", "cat"], &[("UPSTREAM_ENV", "PATH,not a name")]);
    assert_eq!(env.code(), 2);
    assert!(env.stderr.contains("UPSTREAM_ENV"), "{}", env.stderr);
}

#[test]
fn a_shared_upstream_serves_every_client_under_ids_of_its_own() {
    let server = spawn_with(
        config(),
        Server::builder().upstream(fixture("shared-tag").shared(true)),
    );
    let addr = server.local_addr();
    let mut a = McpClient::new(addr);
    let init = a.initialize("2025-11-25");
    assert_eq!(init["serverInfo"]["name"], "stdio-fixture");
    assert_eq!(init["protocolVersion"], "2025-11-25");
    let mut b = SseClient::open(addr);
    let init = b.initialize("2024-11-05");
    assert_eq!(
        init["protocolVersion"], "2024-11-05",
        "each client its own version"
    );
    // Both use id 1 at the same time; each gets its own answer.
    b.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "from b", "delay_ms": 200}}}));
    let from_a = a.call(
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "from a"}}),
    );
    assert_eq!(text(&from_a), "upstream echo: from a");
    let from_b = b.next_message();
    assert_eq!(from_b["id"], 1);
    assert_eq!(text(&from_b), "upstream echo: from b");
    assert_eq!(children_running("shared-tag"), 1, "one child for everyone");
    // The child saw ids of the gateway's, not the clients' 1s.
    let seen_a = text(&a.call(7, "tools/call", json!({"name": "id"})));
    let seen_b = text(&b.call(7, "tools/call", json!({"name": "id"})));
    assert!(
        seen_a.starts_with("\"g") && seen_b.starts_with("\"g"),
        "{seen_a} {seen_b}"
    );
    assert_ne!(seen_a, seen_b);

    // Progress comes back under the client's own token; the child saw the gateway's.
    b.post(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                   "params": {"name": "progress", "_meta": {"progressToken": "p"}}}));
    for _ in 0..2 {
        let note = b.next_message();
        assert_eq!(note["params"]["progressToken"], "p", "{note}");
    }
    let done = text(&b.next_message());
    assert!(
        done.starts_with("progressed; the token it saw: \"g"),
        "{done}"
    );

    // The child's own requests are refused, not put to some client.
    let asked = a.call(2, "tools/call", json!({"name": "ask"}));
    assert_eq!(text(&asked), "hello None", "{asked}");

    // And a stateless 2026-07-28 client is served by the same child.
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {}});
    let post = |method: &str, name: Option<&str>, params: Value| {
        let mut headers = format!(
            "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: {method}\r\n"
        );
        if let Some(name) = name {
            headers.push_str(&format!("Mcp-Name: {name}\r\n"));
        }
        let mut params = params;
        params["_meta"] = meta.clone();
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        common::request_with(addr, "POST", "/mcp", &headers, body.to_string().as_bytes()).json()
    };
    let found = post("server/discover", None, json!({}));
    assert_eq!(found["result"]["resultType"], "complete", "{found}");
    assert_eq!(
        found["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "stdio-fixture"
    );
    let modern = post(
        "tools/call",
        Some("echo"),
        json!({"name": "echo", "arguments": {"message": "modern"}}),
    );
    assert_eq!(
        modern["result"]["content"][0]["text"], "upstream echo: modern",
        "{modern}"
    );
    assert_eq!(modern["result"]["resultType"], "complete");
    assert_eq!(children_running("shared-tag"), 1);
}

#[test]
fn without_sharing_a_stateless_request_is_answered_as_a_2025_only_server_does() {
    let server = gateway(config());
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}}}});
    let headers = "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: server/discover\r\n";
    let r = common::request_with(
        server.local_addr(),
        "POST",
        "/mcp",
        headers,
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json().get("jsonrpc").is_none(),
        "not a JSON-RPC error: dual-era clients fall back"
    );
}

#[test]
fn what_a_child_started_itself_ends_with_it() {
    let server = gateway(config());
    let mut c = McpClient::new(server.local_addr());
    c.initialize("2025-06-18");
    let tag = format!("grandchild-{}", std::process::id());
    let started = c.call(
        1,
        "tools/call",
        json!({"name": "grandchild", "arguments": {"tag": tag}}),
    );
    assert_eq!(text(&started), format!("started {tag}"));
    let running = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&tag))
            })
            .count()
    };
    // Started: its command line shows once it has exec'd.
    assert!(eventually(Duration::from_secs(5), || running() == 1));
    assert_eq!(c.delete().status, 204);
    assert!(
        eventually(Duration::from_secs(10), || running() == 0),
        "the child's own process outlived its session"
    );
}

#[test]
fn per_tool_rules_hold_behind_the_gate_and_hidden_looks_like_absent() {
    let issuer = Issuer::rsa(None);
    let jwks_server = JwksServer::start(jwks(&[issuer.jwk()]));
    let server = spawn_with(
        Config {
            tool_timeout: Duration::from_secs(2),
            ..with_auth(auth_settings(jwks_server.url(), "sre,dev"))
        },
        Server::builder()
            .upstream(fixture("policy"))
            .policy(mcp_warden::policy::Policy::new().tool("env", ["sre"])),
    );
    let token = |sub: &str, group: &str| {
        issuer.token(&plural_claims(
            sub,
            &format!("{sub}@example.com"),
            &[group],
            3600,
        ))
    };
    let names = |c: &McpClient| common::names_in(&c.call(1, "tools/list", json!({})), "tools");
    let mut dev = McpClient::authed(server.local_addr(), &token("bob", "dev"));
    dev.initialize("2025-06-18");
    let listed = names(&dev);
    assert!(listed.contains(&"echo".to_string()), "{listed:?}");
    assert!(!listed.contains(&"env".to_string()), "{listed:?}");
    // A hidden tool and one the upstream does not have get the same answer, the gate's.
    let hidden = dev.call(2, "tools/call", json!({"name": "env"}));
    let absent = dev.call(3, "tools/call", json!({"name": "nope"}));
    assert_eq!(hidden["error"]["code"], absent["error"]["code"]);
    assert_eq!(hidden["error"]["message"], "unknown tool: env", "{hidden}");
    assert_eq!(absent["error"]["message"], "unknown tool: nope", "{absent}");

    let mut sre = McpClient::authed(server.local_addr(), &token("alice", "sre"));
    sre.initialize("2025-06-18");
    assert!(names(&sre).contains(&"env".to_string()));
    let env = sre.call(2, "tools/call", json!({"name": "env"}));
    assert!(text(&env).contains("\"MCP_USER_SUB\": \"alice\""), "{env}");
    // A tool the upstream has, called before any list: looked up, then served.
    let mut fresh = McpClient::authed(server.local_addr(), &token("carol", "dev"));
    fresh.initialize("2025-06-18");
    let echo = fresh.call(
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "x"}}),
    );
    assert_eq!(text(&echo), "upstream echo: x");
}

#[test]
fn a_session_that_ends_while_a_request_waits_for_its_child_ends_the_child() {
    // A deadline far away: the child must end with its session, not when the request times out.
    let config = Config {
        tool_timeout: Duration::from_secs(60),
        ..test_config()
    };
    let server = spawn_with(config, Server::builder().upstream(fixture("ends-waiting")));
    let addr = server.local_addr();
    let mine = || children_running("ends-waiting");

    // HTTP+SSE: the stream closes while the child's question waits for an answer.
    let mut sse = SseClient::open(addr);
    sse.call(
        0,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {"elicitation": {}},
               "clientInfo": {"name": "t", "version": "0"}}),
    );
    sse.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                     "params": {"name": "ask"}}));
    assert_eq!(sse.next_message()["method"], "elicitation/create");
    assert_eq!(mine(), 1);
    drop(sse);
    assert!(
        eventually(Duration::from_secs(10), || mine() == 0),
        "the child outlived its SSE session"
    );

    // Streamable HTTP: DELETE while the call's event stream is still open.
    let mut c = McpClient::new(addr);
    c.initialize("2025-06-18");
    let (head, mut reader) = c.post_open(
        "",
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "ask"}}),
    );
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert_eq!(next_data(&mut reader)["method"], "elicitation/create");
    assert_eq!(mine(), 1);
    assert_eq!(c.delete().status, 204);
    assert!(
        eventually(Duration::from_secs(10), || mine() == 0),
        "the child outlived its deleted session"
    );
}

#[test]
fn on_sse_a_cancellation_on_the_connection_of_a_waiting_request_reaches_it() {
    let server = gateway(Config {
        tool_timeout: Duration::from_secs(30),
        ..test_config()
    });
    let mut c = SseClient::open(server.local_addr());
    c.call(
        0,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "t", "version": "0"}}),
    );
    // One keep-alive connection for every POST, as Node's fetch reuses them.
    let mut conn = std::io::BufReader::new(common::connect(c.addr));
    let mut post = |body: Value| {
        let body = body.to_string();
        write!(
            conn.get_mut(),
            "POST {} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            c.endpoint,
            body.len()
        )
        .unwrap();
        common::read_response(&mut conn).status
    };
    // `slow` answers after 5 s; its cancellation, sent on the connection the call came on,
    // must reach the call before that (the connection is freed while the call waits), so
    // that its answer is never sent.
    let call =
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "slow"}});
    assert_eq!(post(call), 202);
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": {"requestId": 1, "reason": "test"}});
    assert_eq!(post(cancel), 202);
    assert_eq!(
        post(json!({"jsonrpc": "2.0", "id": 2, "method": "ping"})),
        202
    );
    let next = c.next_message();
    assert_eq!(next["id"], 2, "the cancelled call was answered: {next}");
}

#[test]
#[ignore = "needs `unshare --pid --mount-proc` (root, or unprivileged user namespaces); .ci/run runs it where `unshare --pid --fork true` succeeds"]
fn as_pid_1_the_gateway_waits_for_the_orphans_its_children_leave() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stdio_server.py"
    );
    let mut cmd = common::warden_under(
        "unshare",
        &["--pid", "--fork", "--kill-child", "--mount-proc"],
    );
    cmd.args(["--", python(), script, "pid1-tag"]);
    let unshare = ServerProcess::start(cmd);
    // Every thread's children (a child belongs to the thread that started it).
    let children = |pid: u32| -> Vec<u32> {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|tasks| {
                tasks
                    .filter_map(Result::ok)
                    .flat_map(|t| {
                        std::fs::read_to_string(t.path().join("children"))
                            .unwrap_or_default()
                            .split_whitespace()
                            .filter_map(|p| p.parse().ok())
                            .collect::<Vec<u32>>()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let server = children(unshare.child.id())[0];
    let status = std::fs::read_to_string(format!("/proc/{server}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert_eq!(nspid.split_whitespace().last(), Some("1"), "{nspid}");
    let mut c = McpClient::new(unshare.addr);
    c.initialize("2025-06-18");
    let fixture_children = children(server).len();
    assert_eq!(fixture_children, 1, "the session's child");
    assert_eq!(
        text(&c.call(1, "tools/call", json!({"name": "orphan"}))),
        "orphaned one"
    );
    // The orphan comes to the server (PID 1) ...
    assert!(
        eventually(Duration::from_secs(5), || children(server).len()
            > fixture_children),
        "no orphan reached the server"
    );
    // ... exits, and is waited for: no zombie stays.
    assert!(
        eventually(Duration::from_secs(10), || children(server).len()
            == fixture_children),
        "an orphan stayed a zombie of PID 1: {:?}",
        children(server)
    );
}
