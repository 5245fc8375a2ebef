//! Test harness: the real server on an ephemeral loopback port, raw HTTP clients, and an
//! SSE reader. Rules (after static-web-server's tests): the OS picks every port, readiness
//! is polled rather than slept for, and every read has a timeout so a hang fails fast.
#![allow(dead_code, clippy::unwrap_used)]

pub mod issuer;
pub mod jwks_server;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mcp_warden::Server;
use mcp_warden::config::Config;
use serde_json::{Value, json};

/// How long any single read in a test may block.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A config for tests: loopback, a short keep-alive.
pub fn test_config() -> Config {
    Config {
        sse_keepalive: Duration::from_secs(1),
        ..Config::default()
    }
}

/// Starts the server in this process on 127.0.0.1:0.
pub fn spawn(config: Config) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    mcp_warden::start(config, listener).unwrap()
}

/// The built binary, with every variable `--help` documents removed from the inherited
/// environment (so a developer's shell cannot change a test), and `PORT=0`. Output piped.
pub fn warden_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-warden"));
    for var in mcp_warden::config::HELP
        .lines()
        .filter_map(|line| line.strip_prefix("    ")?.split_whitespace().next())
        .filter(|word| word.len() > 2 && word.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
    {
        cmd.env_remove(var);
    }
    cmd.env("PORT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
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

/// Reads one response (head and `Content-Length` body) from `reader`.
pub fn read_response(reader: &mut impl BufRead) -> HttpResponse {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no status line: {line:?}"))
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
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
    reader.read_exact(&mut body).unwrap();
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
        let mut s = connect(addr);
        write!(
            s,
            "GET /sse HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{extra_headers}\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(s);
        let head = read_response(&mut reader);
        assert_eq!(
            head.status,
            200,
            "GET /sse: {:?}",
            String::from_utf8_lossy(&head.body)
        );
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
        client
    }

    /// Opens a stream with `Authorization: Bearer <token>`, sent with every POST too.
    pub fn open_authed(addr: SocketAddr, token: &str) -> SseClient {
        Self::open_with(addr, &format!("Authorization: Bearer {token}\r\n"))
    }

    pub fn session_id(&self) -> &str {
        self.endpoint.split_once("sessionId=").unwrap().1
    }

    /// The next event, skipping comments. Panics on timeout or EOF.
    pub fn next_event(&mut self) -> Event {
        self.try_next_event().expect("stream ended")
    }

    /// The next event, or `None` at EOF.
    pub fn try_next_event(&mut self) -> Option<Event> {
        let mut name = String::from("message");
        let mut data = Vec::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).unwrap() == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']);
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

/// The binary as a child: stderr lines on a channel, killed by PID on drop.
pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl ServerProcess {
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

    pub fn wait_for(&mut self, needle: &str) -> String {
        let end = Instant::now() + Duration::from_secs(10);
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

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit (10 s at most); returns the exit code.
    pub fn exit_code(&mut self) -> Option<i32> {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn log(&mut self) -> Vec<String> {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(300)) {
            self.seen.push(line);
        }
        self.seen.clone()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
