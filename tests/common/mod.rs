//! Test harness: the real server on an ephemeral loopback port, raw HTTP clients, an SSE
//! reader, and the built binary as a child process. Rules (after static-web-server's
//! tests): the OS picks every port, readiness is polled rather than slept for, and every
//! read has a timeout so a hang fails fast. A read that fails or times out is a failure,
//! never taken for "the server closed the connection" (`read_to_eof`, `assert_closed`).
//!
//! Each helper here is the one copy: starting the server (`spawn`, `spawn_with_tools`,
//! `try_start`), the auth settings (`auth_settings`, `with_auth`), opening a session
//! (`session`, `SseClient::initialized`), and the binary (`warden_command`,
//! `warden_under`, `run_to_exit`, `ServerProcess`).
#![allow(dead_code, clippy::unwrap_used)]

pub mod issuer;
pub mod jwks_server;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use mcp_warden::auth::jwt::Policy;
use mcp_warden::auth::{AuthConfig, RequiredGroups};
use mcp_warden::config::Config;
use mcp_warden::{Builder, Call, HandlerError, Server, StartError, Tool, ToolResult};
use serde_json::{Map, Value, json};

/// How long any single read in a test may block.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The protocol version a session opened by `SseClient::initialized` asks for.
pub const VERSION: &str = "2025-06-18";

/// A config for tests: loopback, a short keep-alive.
pub fn test_config() -> Config {
    Config {
        sse_keepalive: Duration::from_secs(1),
        ..Config::default()
    }
}

/// Auth settings for a test: keys from `jwks_uri`, `groups` as `REQUIRED_GROUPS`, the
/// default policy, and refresh intervals long enough that only a test changes them.
/// Adjust with struct update: `AuthConfig { refresh, ..auth_settings(uri, "sre") }`.
pub fn auth_settings(jwks_uri: impl Into<String>, groups: &str) -> AuthConfig {
    AuthConfig {
        jwks_uri: jwks_uri.into(),
        required_groups: RequiredGroups::parse(groups)
            .unwrap_or_else(|| panic!("not a REQUIRED_GROUPS value: {groups:?}")),
        policy: Policy::default(),
        refresh: Duration::from_secs(600),
        min_refetch: Duration::from_secs(30),
        max_age: Duration::from_secs(3600),
        metadata: None,
    }
}

/// `test_config()` with authentication on.
pub fn with_auth(auth: AuthConfig) -> Config {
    Config {
        auth: Some(auth),
        ..test_config()
    }
}

/// Starts the server in this process on 127.0.0.1:0 with the built-in tools, or says why
/// it would not start.
pub fn try_start(config: Config) -> Result<Server, StartError> {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    mcp_warden::start(config, listener)
}

/// Starts the server in this process on 127.0.0.1:0 with the built-in tools.
pub fn spawn(config: Config) -> Server {
    try_start(config).unwrap_or_else(|e| panic!("the server did not start: {e}"))
}

/// A test tool as a table entry: tests declare theirs in a `static` and serve them with
/// `spawn_with_tools`, which builds each into a library `Tool`.
pub struct FnTool {
    pub name: &'static str,
    pub description: &'static str,
    pub input_schema: fn() -> Value,
    /// `Ok` is the text result; `Err` a result with `isError: true`.
    pub call: fn(&Map<String, Value>, &Call<'_>) -> Result<String, String>,
}

/// Argument `name` as a string, or a message saying what is missing.
pub fn str_arg<'a>(args: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    match args.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("argument \"{name}\" must be a string, not {other}")),
        None => Err(format!("missing required argument \"{name}\" (a string)")),
    }
}

/// Like `spawn`, offering only `tools`.
pub fn spawn_with_tools(config: Config, tools: &'static [FnTool]) -> Server {
    let builder = tools.iter().fold(Server::builder(), |builder, tool| {
        let run = tool.call;
        builder.tool(Tool::with_handler(
            tool.name,
            tool.description,
            (tool.input_schema)(),
            move |args: &Map<String, Value>, call: &Call<'_>| {
                run(args, call)
                    .map(ToolResult::text)
                    .map_err(HandlerError::new)
            },
        ))
    });
    spawn_with(config, builder)
}

/// Like `spawn`, serving what `builder` offers.
pub fn spawn_with(config: Config, builder: Builder) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    builder
        .start(config, listener)
        .unwrap_or_else(|e| panic!("the server did not start: {e}"))
}

/// A server and a stream opened on it (not initialized yet).
pub fn session(config: Config) -> (Server, SseClient) {
    let server = spawn(config);
    let client = SseClient::open(server.local_addr());
    (server, client)
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// Polls `cond` every 20 ms until it holds or `within` passes.
pub fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Why a read failed, for a panic message: a timeout says the other side went quiet.
fn read_failure(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("nothing arrived within the {IO_TIMEOUT:?} read timeout ({e})")
        }
        _ => e.to_string(),
    }
}

/// The next `data:` line of an event stream read from a raw response, parsed as JSON.
/// Panics when the stream ends or the read fails (a server that goes quiet fails the test).
pub fn next_data(reader: &mut impl BufRead) -> Value {
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => panic!("the event stream ended early"),
            Ok(_) => {}
            Err(e) => panic!("reading the event stream: {}", read_failure(&e)),
        }
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            return serde_json::from_str(data).unwrap();
        }
    }
}

/// Reads until the peer closes the connection and returns the bytes that came first.
/// Panics, saying `what` was expected, when the read fails or times out: a server that
/// hangs or resets the connection has not closed it.
pub fn read_to_eof(reader: &mut impl Read, what: &str) -> Vec<u8> {
    let mut rest = Vec::new();
    if let Err(e) = reader.read_to_end(&mut rest) {
        panic!(
            "{what}: waited for the server to close the connection, but {} (after {} bytes: {:?})",
            read_failure(&e),
            rest.len(),
            String::from_utf8_lossy(&rest)
        );
    }
    rest
}

/// The server closed the connection, with nothing sent before the close.
pub fn assert_closed(reader: &mut impl Read, what: &str) {
    let rest = read_to_eof(reader, what);
    assert!(
        rest.is_empty(),
        "{what}: bytes before the close: {:?}",
        String::from_utf8_lossy(&rest)
    );
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Reads one line, panicking with a clear message when the read fails or times out.
fn read_line(reader: &mut impl BufRead, what: &str) -> String {
    let mut line = String::new();
    if let Err(e) = reader.read_line(&mut line) {
        panic!("{what}: {} (partial line: {line:?})", read_failure(&e));
    }
    line
}

/// Reads one response (head and `Content-Length` body) from `reader`.
pub fn read_response(reader: &mut impl BufRead) -> HttpResponse {
    let line = read_line(reader, "reading a status line");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no status line: {line:?}"))
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    loop {
        let h = read_line(reader, "reading a response header");
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':').unwrap();
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if let Err(e) = reader.read_exact(&mut body) {
        panic!("reading a {len}-byte response body: {}", read_failure(&e));
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// Sends raw bytes on a new connection and reads one response.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> HttpResponse {
    let mut s = connect(addr);
    s.write_all(bytes).unwrap();
    read_response(&mut BufReader::new(s))
}

/// `method path` with a body, on a new connection.
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> HttpResponse {
    request_with(addr, method, path, "", body)
}

/// Like `request`, with extra header lines (each ending in `\r\n`).
pub fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra_headers: &str,
    body: &[u8],
) -> HttpResponse {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{extra_headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    raw(addr, &req)
}

/// One SSE event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    pub data: String,
}

/// A client holding an SSE stream, reading it line by line.
pub struct SseClient {
    pub addr: SocketAddr,
    pub reader: BufReader<TcpStream>,
    pub head: HttpResponse,
    /// The POST path from the `endpoint` event.
    pub endpoint: String,
    /// Comment lines seen so far (`: keep-alive`).
    pub comments: usize,
    /// Header lines sent with every POST (the `Authorization` header, with auth on).
    pub post_headers: String,
}

impl SseClient {
    /// `GET /sse`, checks the head, reads the `endpoint` event.
    pub fn open(addr: SocketAddr) -> SseClient {
        Self::open_with(addr, "")
    }

    /// Like `open`, with extra header lines (each ending in `\r\n`).
    pub fn open_with(addr: SocketAddr, extra_headers: &str) -> SseClient {
        Self::try_open_with(addr, extra_headers).unwrap_or_else(|refused| {
            panic!(
                "GET /sse: {} {:?}",
                refused.status,
                String::from_utf8_lossy(&refused.body)
            )
        })
    }

    /// Like `open_with`, returning a response other than `200` instead of panicking.
    pub fn try_open_with(addr: SocketAddr, extra_headers: &str) -> Result<SseClient, HttpResponse> {
        Self::try_open_at(addr, "/sse", extra_headers)
    }

    /// `open` at another path (with a `BASE_PATH`).
    pub fn open_path(addr: SocketAddr, path: &str) -> SseClient {
        Self::try_open_at(addr, path, "")
            .unwrap_or_else(|refused| panic!("GET {path}: {}", refused.status))
    }

    fn try_open_at(
        addr: SocketAddr,
        path: &str,
        extra_headers: &str,
    ) -> Result<SseClient, HttpResponse> {
        let mut s = connect(addr);
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{extra_headers}\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(s);
        let head = read_response(&mut reader);
        if head.status != 200 {
            return Err(head);
        }
        let mut client = SseClient {
            addr,
            reader,
            head,
            endpoint: String::new(),
            comments: 0,
            post_headers: extra_headers.to_string(),
        };
        let first = client.next_event();
        assert_eq!(first.name, "endpoint");
        client.endpoint = first.data;
        Ok(client)
    }

    /// Opens a stream with `Authorization: Bearer <token>`, sent with every POST too.
    pub fn open_authed(addr: SocketAddr, token: &str) -> SseClient {
        Self::open_with(addr, &format!("Authorization: Bearer {token}\r\n"))
    }

    /// A session ready for requests: `open`, then `initialize` with `VERSION`.
    pub fn initialized(addr: SocketAddr) -> SseClient {
        let mut client = Self::open(addr);
        client.initialize(VERSION);
        client
    }

    /// Like `initialized`, with a Bearer token.
    pub fn initialized_authed(addr: SocketAddr, token: &str) -> SseClient {
        let mut client = Self::open_authed(addr, token);
        client.initialize(VERSION);
        client
    }

    pub fn session_id(&self) -> &str {
        self.endpoint.split_once("sessionId=").unwrap().1
    }

    /// The next event, skipping comments. Panics on timeout, error or EOF.
    pub fn next_event(&mut self) -> Event {
        self.try_next_event().expect("stream ended")
    }

    /// The next event, or `None` when the server ends the stream. Panics on a read error
    /// or timeout: a stream that goes quiet has not ended.
    pub fn try_next_event(&mut self) -> Option<Event> {
        let mut name = String::from("message");
        let mut data = Vec::new();
        loop {
            let line = self.next_line()?;
            if line.is_empty() {
                if data.is_empty() {
                    continue;
                }
                return Some(Event {
                    name,
                    data: data.join("\n"),
                });
            }
            if line.starts_with(':') {
                self.comments += 1;
            } else if let Some(v) = line.strip_prefix("event: ") {
                name = v.to_string();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push(v.to_string());
            }
        }
    }

    /// Reads the stream until `n` more comment lines (keep-alives) have arrived. Panics if
    /// an event comes first (the stream was meant to be idle), or on EOF, error or timeout.
    pub fn await_comments(&mut self, n: usize) {
        let goal = self.comments + n;
        while self.comments < goal {
            let line = self
                .next_line()
                .unwrap_or_else(|| panic!("stream ended after {} comments", self.comments));
            if line.starts_with(':') {
                self.comments += 1;
            } else {
                assert!(line.is_empty(), "an event on an idle stream: {line:?}");
            }
        }
    }

    /// The next line without its line ending, or `None` at EOF.
    fn next_line(&mut self) -> Option<String> {
        let line = read_line(&mut self.reader, "reading the SSE stream");
        if line.is_empty() {
            return None;
        }
        Some(line.trim_end_matches(['\r', '\n']).to_string())
    }

    /// The next `message` event, parsed.
    pub fn next_message(&mut self) -> Value {
        let e = self.next_event();
        assert_eq!(e.name, "message");
        serde_json::from_str(&e.data).unwrap()
    }

    /// POSTs raw bytes to the session's endpoint.
    pub fn post_raw(&self, body: &[u8]) -> HttpResponse {
        request_with(self.addr, "POST", &self.endpoint, &self.post_headers, body)
    }

    /// POSTs a JSON value and asserts `202`.
    pub fn post(&self, message: &Value) {
        let r = self.post_raw(message.to_string().as_bytes());
        assert_eq!(r.status, 202, "{:?}", String::from_utf8_lossy(&r.body));
    }

    /// Sends request `method` with `id` and returns its reply from the stream.
    pub fn call(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let reply = self.next_message();
        assert_eq!(reply["id"], id, "reply to another request: {reply}");
        reply
    }

    /// initialize (with `version`) + notifications/initialized; returns the initialize result.
    pub fn initialize(&mut self, version: &str) -> Value {
        let reply = self.call(
            0,
            "initialize",
            json!({"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}),
        );
        self.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        reply["result"].clone()
    }
}

// ---- the binary -------------------------------------------------------------------

/// Whether a `--help` line starts an entry (four spaces, then the name); continuation
/// lines are indented further.
pub fn is_help_entry(line: &str) -> bool {
    line.starts_with("    ") && !line.starts_with("     ")
}

/// The variable names `--help` documents: the upper-case first word of each entry.
pub fn documented_vars() -> Vec<&'static str> {
    mcp_warden::config::HELP
        .lines()
        .filter(|line| is_help_entry(line))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| is_var_name(word))
        .collect()
}

/// An upper-case name such as `PORT` or `JWKS_URI`.
pub fn is_var_name(word: &str) -> bool {
    word.len() >= 3 && word.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
}

/// The built binary, with every variable `--help` documents removed from the inherited
/// environment (so a developer's shell cannot change a test), and `PORT=0` (so a server
/// that starts when it should not takes no fixed port). Output piped.
pub fn warden_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-warden"));
    for var in documented_vars() {
        cmd.env_remove(var);
    }
    cmd.env("PORT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The binary run by another program: `program args… <binary>`, with the environment of
/// `warden_command` (e.g. `sh -c 'ulimit …; exec "$0"'`, or `unshare --pid --fork`).
pub fn warden_under(program: &str, args: &[&str]) -> Command {
    let inner = warden_command();
    let mut cmd = Command::new(program);
    cmd.args(args).arg(inner.get_program());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Reads a child's pipe to its end on a thread, so neither pipe can fill and block it.
fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            pipe.read_to_string(&mut text).unwrap();
        }
        text
    })
}

/// What a child that was expected to exit by itself printed.
pub struct Exited {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Exited {
    /// The exit code; panics if a signal ended the child.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("ended by a signal: {}\n{}", self.status, self.stderr))
    }
}

/// How long a child expected to exit by itself may run (a JWKS fetch included).
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `cmd` to its end and collects its output. Fails the test, killing the child, if it
/// still runs after `EXIT_TIMEOUT` (as a server would that accepted what it should refuse).
pub fn run_to_exit(mut cmd: Command) -> Exited {
    let mut child = Killed(cmd.spawn().unwrap());
    let stdout = drain(child.0.stdout.take());
    let stderr = drain(child.0.stderr.take());
    let end = Instant::now() + EXIT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < end,
            "still running after {EXIT_TIMEOUT:?}: {cmd:?}"
        );
        thread::sleep(Duration::from_millis(10));
    };
    Exited {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Kills the child by its PID when dropped, so a failing test leaves no process behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The binary as a child serving: stderr lines on a channel, killed by PID on drop.
pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl ServerProcess {
    /// Spawns `cmd` and waits for its `listening on` line, which gives the address.
    pub fn start(mut cmd: Command) -> ServerProcess {
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut c = ServerProcess {
            child,
            addr: "127.0.0.1:1".parse().unwrap(),
            lines,
            seen: Vec::new(),
        };
        let line = c.wait_for("listening on http://");
        let at = line.find("listening on http://").unwrap() + "listening on http://".len();
        let addr: String = line[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
            .collect();
        c.addr = addr.parse().unwrap();
        c
    }

    /// The next stderr line (from now on) that contains `needle`.
    pub fn wait_for(&mut self, needle: &str) -> String {
        let end = Instant::now() + IO_TIMEOUT;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no {needle:?} in stderr: {:#?}", self.seen)
    }

    /// Waits until each of `needles` is in some stderr line (seen before or now); returns
    /// the whole log so far.
    pub fn wait_for_all(&mut self, needles: &[&str]) -> Vec<String> {
        let end = Instant::now() + IO_TIMEOUT;
        loop {
            let missing: Vec<&&str> = needles
                .iter()
                .filter(|n| !self.seen.iter().any(|l| l.contains(**n)))
                .collect();
            if missing.is_empty() {
                return self.seen.clone();
            }
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no {missing:?} in stderr: {:#?}", self.seen),
            }
        }
    }

    /// Every stderr line received so far, without waiting for more.
    pub fn log(&mut self) -> Vec<String> {
        self.seen.extend(self.lines.try_iter());
        self.seen.clone()
    }

    /// The whole of stderr, once the child has closed it (at its exit). Panics if it is
    /// still open after `IO_TIMEOUT`.
    pub fn log_to_end(&mut self) -> Vec<String> {
        let end = Instant::now() + IO_TIMEOUT;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => return self.seen.clone(),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("stderr still open after {IO_TIMEOUT:?}: {:#?}", self.seen)
                }
            }
        }
    }

    /// Sends signal `name` (e.g. `"TERM"`) to the child.
    pub fn signal(&self, name: &str) {
        send_signal(self.child.id(), name);
    }

    /// Waits for the exit (`IO_TIMEOUT` at most); returns the exit code.
    pub fn exit_code(&mut self) -> Option<i32> {
        let end = Instant::now() + IO_TIMEOUT;
        while Instant::now() < end {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

/// `kill -<name> <pid>`, asserting it was delivered.
pub fn send_signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}: {status}");
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Streamable HTTP client of `/mcp`: one session, each request on a new connection.
pub struct McpClient {
    pub addr: SocketAddr,
    /// The route (`/mcp`, or with a `BASE_PATH`).
    pub path: String,
    /// `Mcp-Session-Id`, once `initialize` has answered.
    pub session: Option<String>,
    /// The negotiated revision, sent as `MCP-Protocol-Version` after `initialize`.
    pub version: Option<String>,
    /// Header lines sent with every request (`Authorization`, with auth on).
    pub headers: String,
}

/// What `McpClient` sends as `Accept` on a POST.
pub const ACCEPT_BOTH: &str = "Accept: application/json, text/event-stream\r\n";

impl McpClient {
    pub fn new(addr: SocketAddr) -> McpClient {
        McpClient {
            addr,
            path: "/mcp".into(),
            session: None,
            version: None,
            headers: String::new(),
        }
    }

    /// With `Authorization: Bearer <token>` on every request.
    pub fn authed(addr: SocketAddr, token: &str) -> McpClient {
        McpClient {
            headers: format!("Authorization: Bearer {token}\r\n"),
            ..McpClient::new(addr)
        }
    }

    /// The session's headers (id and version, when known) and `headers`.
    pub fn session_headers(&self) -> String {
        let mut h = self.headers.clone();
        if let Some(id) = &self.session {
            h.push_str(&format!("Mcp-Session-Id: {id}\r\n"));
        }
        if let Some(v) = &self.version {
            h.push_str(&format!("MCP-Protocol-Version: {v}\r\n"));
        }
        h
    }

    /// POSTs `body` with `Accept` for both types, the session's headers and `extra`.
    pub fn post_raw(&self, extra: &str, body: &[u8]) -> HttpResponse {
        let headers = format!("{ACCEPT_BOTH}{}{extra}", self.session_headers());
        request_with(self.addr, "POST", &self.path, &headers, body)
    }

    pub fn post(&self, message: &Value) -> HttpResponse {
        self.post_raw("", message.to_string().as_bytes())
    }

    /// Writes a POST of `body` on a new connection, with `Accept` for both types, the
    /// session's headers and `extra` (header lines ending in CRLF); returns the connection,
    /// nothing read yet.
    pub fn post_unread(&self, extra: &str, body: &Value) -> TcpStream {
        let text = body.to_string();
        let mut s = connect(self.addr);
        write!(
            s,
            "POST {} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{ACCEPT_BOTH}{}{extra}Content-Length: {}\r\n\r\n{text}",
            self.path,
            self.session_headers(),
            text.len()
        )
        .unwrap();
        s
    }

    /// `post_unread`, then its response head: the head and a reader on the body (an event
    /// stream answering a POST runs to the connection's end).
    pub fn post_open(&self, extra: &str, body: &Value) -> (HttpResponse, BufReader<TcpStream>) {
        let mut reader = BufReader::new(self.post_unread(extra, body));
        let head = read_response(&mut reader);
        (head, reader)
    }

    /// `initialize` with `version`, then `notifications/initialized`; keeps the session id.
    pub fn initialize(&mut self, version: &str) -> Value {
        let r = self.post(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": version, "capabilities": {},
                       "clientInfo": {"name": "test", "version": "0"}}}));
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
        let id = r
            .header("mcp-session-id")
            .expect("initialize names the session");
        self.session = Some(id.to_string());
        let result = r.json()["result"].clone();
        self.version = result["protocolVersion"].as_str().map(str::to_string);
        let note = self.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        assert_eq!(note.status, 202);
        result
    }

    /// A request; asserts a `200` JSON answer with the same id and returns it.
    pub fn call(&self, id: i64, method: &str, params: Value) -> Value {
        let r = self.post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("content-type"), Some("application/json"));
        let reply = r.json();
        assert_eq!(reply["id"], id, "{reply}");
        reply
    }

    /// `DELETE` with the session's headers.
    pub fn delete(&self) -> HttpResponse {
        request_with(
            self.addr,
            "DELETE",
            &self.path,
            &self.session_headers(),
            b"",
        )
    }

    /// `GET` with `Accept: text/event-stream`: the stream's reader after a `200` head, or
    /// the refusal.
    pub fn open_stream(&self) -> Result<BufReader<TcpStream>, HttpResponse> {
        let mut s = connect(self.addr);
        write!(
            s,
            "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n{}\r\n",
            self.path,
            self.addr,
            self.session_headers()
        )
        .unwrap();
        let mut reader = BufReader::new(s);
        let head = read_response(&mut reader);
        if head.status == 200 {
            assert_eq!(head.header("content-type"), Some("text/event-stream"));
            Ok(reader)
        } else {
            Err(head)
        }
    }
}

/// The names in a `tools/list` (or `prompts/list`) reply, in order.
pub fn names_in(reply: &Value, list: &str) -> Vec<String> {
    reply["result"][list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {reply}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap_or_default().to_string())
        .collect()
}
