//! load: the load client behind `scripts/bench` (issue 4). Drives any server of MCP's
//! HTTP+SSE transport (`GET /sse`, `POST /messages?sessionId=`) or of Streamable HTTP
//! (`/mcp`) over plain loopback TCP and writes its figures as `key=value` lines; `report`
//! and `report-streamable` turn such files into tables.
//!
//! Figures only: nothing here asserts a speed. Every loop is bounded in count and in time.
//!
//! ```text
//! load run --url http://127.0.0.1:PORT --pid PID --out FILE [--token-file FILE]
//!          [--sessions 100,1000] [--inflight 1,16,64] [--secs 5] [--warmup 1]
//!     RSS and threads of PID idle and holding N initialized sessions, then `tools/call echo`
//!     round trips at each in-flight level (one session and one keep-alive POST
//!     connection per in-flight slot, each slot calling sequentially).
//! load churn --url http://127.0.0.1:PORT --pid PID --out FILE [--token-file FILE]
//!            [--clients 4,16] [--burst 1000] [--bursts 2] [--secs 5] [--warmup 1]
//!     VmRSS, RssAnon, RssFile, threads and open fds of PID: cold idle (as started); warm
//!     idle (after one whole session, once threads and fds are back at cold idle, polled
//!     every 1 ms for 5 s at most); holding a burst of N initialized sessions; and 1 s
//!     after they have all closed, with the time until fds and threads are back at cold
//!     idle (polled every 1 ms, 5 s at most); the same burst again, `--bursts` in all
//!     (does what the first left behind grow?); then, at each level of concurrent clients, whole
//!     sessions one after another per client: `GET /sse` on a new connection, `initialize`,
//!     `notifications/initialized`, one `tools/call echo`, close (sessions/s, p50/p99 of
//!     the whole sequence, errors by step and kind, CPU of PID and of the client per
//!     session, from utime + stime).
//! load streamable --url http://127.0.0.1:PORT --pid PID --out FILE [--token-file FILE]
//!                 [--hold 1000] [--inflight 1,16,64] [--clients 4,16] [--secs 5]
//!                 [--warmup 1]
//!     Streamable HTTP on `/mcp`. VmRSS, RssAnon, RssFile, threads and fds of PID at cold
//!     idle, at warm idle (after one whole session), holding N initialized sessions
//!     (`initialize` + `notifications/initialized`, no GET stream, every connection
//!     closed) and 1 s after they were all `DELETE`d; `tools/call echo` at each in-flight
//!     level (one session and one keep-alive connection per slot, each slot calling
//!     sequentially): calls/s, p50/p99, errors, and the server's and the client's CPU
//!     (utime + stime) per call over the measured window; then, at each level of clients,
//!     whole sessions one after another per client on one keep-alive connection
//!     (`initialize`, `notifications/initialized`, one `tools/call echo`, `DELETE`):
//!     sessions/s, p50/p99, errors by step and kind, CPU per session.
//! load modern --url http://127.0.0.1:PORT --pid PID --out FILE [--token-file FILE]
//!             [--inflight 1,16,64] [--secs 5] [--warmup 1]
//!     MCP 2026-07-28, stateless, on `/mcp`: `tools/call echo` with no session, each request
//!     carrying `params._meta` (`io.modelcontextprotocol/protocolVersion` `2026-07-28`,
//!     `io.modelcontextprotocol/clientCapabilities` `{}`) and the headers
//!     `MCP-Protocol-Version`, `Mcp-Method: tools/call` and `Mcp-Name: echo`. One call first
//!     (the run stops if it fails); then at each in-flight level one keep-alive connection
//!     per slot, each slot calling sequentially: calls/s, p50/p99, errors by kind, and the
//!     server's and the client's CPU (utime + stime) per call over the measured window. An
//!     answer must carry the request's id, `result.resultType` `complete` and the text
//!     `Tool echo: <message>`. VmRSS, threads and fds of PID before the first level and
//!     1 s after the last.
//! load startup --out FILE [--runs 20] -- CMD [ARGS...]
//!     Spawns CMD with PORT=<free port> HOST=127.0.0.1, polls connect every 0.5 ms, and
//!     records exec -> first accepted connection and exec -> first HTTP response.
//! load report WARDEN_FILE PEER_FILE
//!     The comparison table (Markdown) and the issue's targets, met or not (the burst
//!     target against the idle right before the burst, with the second burst against the
//!     first one's leftovers and the first against cold idle beside it).
//! load report-streamable WARDEN_FILE RMCP_FILE TS_FILE
//!     The Streamable HTTP table (Markdown) for three servers and the issue's targets.
//! load report-modern WARDEN_FILE PEER_FILE
//!     The stateless 2026-07-28 table (Markdown) for mcp-warden and the TypeScript SDK v2,
//!     and the issue's target (≥ 10× the peer's calls/s at 16 in flight, auth on).
//! ```
//!
//! A round trip is: POST the request on the slot's connection, read its `202`, then read
//! the slot's stream until the `message` event carrying the same JSON-RPC id. An answer
//! with another id, or with the wrong text, counts as mismatched; none within
//! `ANSWER_TIMEOUT` counts as lost (and ends that slot, whose stream is then out of step).
//! In `churn`, any failure of a session (a status other than 200 or 202, such as `503`, an
//! I/O error or timeout, a wrong answer) counts as one error, is tallied by step and kind
//! in the results, and the client begins its next session.
//!
//! On Streamable HTTP every request carries `Accept: application/json, text/event-stream`,
//! and after `initialize` the session's `Mcp-Session-Id` and the negotiated
//! `MCP-Protocol-Version`. A request's answer is read from an `application/json` body, or
//! from a `text/event-stream` response: its events until the message that answers the
//! request's id (others skipped), then the rest of the response up to its end, so that the
//! connection carries the next request. A call's latency ends when its answer has been
//! read. A status other than the one expected, an I/O error (any read waits `IO_TIMEOUT`
//! at most) or an answer with another id or text is counted, never retried; only a request
//! whose kept-alive connection the server had closed before answering is sent again on a
//! new one (and counted).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Longest wait for any single read or write; a stuck server fails a step, never hangs it.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the answer to one call before it counts as lost.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// Calls per slot at most, whatever the duration (bounds the latency sample vectors too).
const MAX_CALLS_PER_SLOT: u64 = 2_000_000;
/// Threads opening held sessions (each with its own keep-alive POST connection).
const OPEN_WORKERS: usize = 8;
/// Pause after opening sessions before RSS is read, so the server settles.
const SETTLE: Duration = Duration::from_millis(1000);
/// The protocol version offered in `initialize`; both servers speak it.
const PROTOCOL_VERSION: &str = "2025-06-18";
/// The stateless revision `modern` speaks, and the `params._meta` keys that carry it and the
/// client's capabilities.
const MODERN_VERSION: &str = "2026-07-28";
const MODERN_META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const MODERN_META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("churn") => churn(&args[1..]),
        Some("streamable") => streamable(&args[1..]),
        Some("modern") => modern(&args[1..]),
        Some("startup") => startup(&args[1..]),
        Some("report") => report(&args[1..]),
        Some("report-streamable") => report_streamable(&args[1..]),
        Some("report-modern") => report_modern(&args[1..]),
        _ => {
            Err("usage: load run|churn|streamable|modern|startup|report|report-streamable|report-modern ... (see the top of examples/load.rs)".into())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------
// Command lines and result files

/// `--flag value` pairs, and whatever follows `--`.
struct Flags {
    values: BTreeMap<String, String>,
    rest: Vec<String>,
}

impl Flags {
    fn parse(args: &[String]) -> Result<Flags> {
        let mut values = BTreeMap::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            if arg == "--" {
                return Ok(Flags {
                    values,
                    rest: it.cloned().collect(),
                });
            }
            let name = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {arg:?}"))?;
            let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            values.insert(name.to_string(), value.clone());
        }
        Ok(Flags {
            values,
            rest: Vec::new(),
        })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    fn required(&self, name: &str) -> Result<&str> {
        self.get(name)
            .ok_or_else(|| format!("--{name} is required").into())
    }

    fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name}: not a number: {v:?}").into()),
        }
    }

    fn list(&self, name: &str, default: &[usize]) -> Result<Vec<usize>> {
        match self.get(name) {
            None => Ok(default.to_vec()),
            Some(v) => v
                .split(',')
                .map(|n| {
                    n.trim()
                        .parse()
                        .map_err(|_| format!("--{name}: not a list of numbers: {v:?}").into())
                })
                .collect(),
        }
    }

    /// `--secs` (default 5, 0.1-600) and `--warmup` (default 1, 0-60).
    fn window(&self) -> Result<Window> {
        let secs: f64 = self.number("secs", 5.0)?;
        let warmup: f64 = self.number("warmup", 1.0)?;
        if !(0.1..=600.0).contains(&secs) || !(0.0..=60.0).contains(&warmup) {
            return Err("--secs must be 0.1-600 and --warmup 0-60".into());
        }
        Ok(Window { warmup, secs })
    }
}

/// How long each level of load runs: `warmup` seconds, then `secs` measured.
#[derive(Clone, Copy)]
struct Window {
    warmup: f64,
    secs: f64,
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} s warm-up + {} s", self.warmup, self.secs)
    }
}

/// What every mode that loads a server takes: the server (`--url`, with the token of
/// `--token-file` if any), its `--pid`, and the result file (`--out`).
struct LoadArgs {
    target: Target,
    /// A token is sent with every request.
    auth: bool,
    pid: u32,
    out: Out,
}

impl LoadArgs {
    fn parse(flags: &Flags) -> Result<LoadArgs> {
        let token = match flags.get("token-file") {
            Some(path) => Some(std::fs::read_to_string(path)?.trim().to_string()),
            None => None,
        };
        let target = Target::new(flags.required("url")?, token.as_deref())?;
        let pid: u32 = flags
            .required("pid")?
            .parse()
            .map_err(|_| "--pid must be a number")?;
        let out = Out {
            path: flags.required("out")?.to_string(),
        };
        Ok(LoadArgs {
            target,
            auth: token.is_some(),
            pid,
            out,
        })
    }
}

/// Appends `key=value` lines to the result file (and echoes them to stderr as progress).
struct Out {
    path: String,
}

impl Out {
    fn put(&self, key: &str, value: impl std::fmt::Display) -> Result<()> {
        let line = format!("{key}={value}\n");
        eprint!("load:   {line}");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(line.as_bytes())?;
        Ok(())
    }

    /// `auth=on|off` (whether a token is sent) and `cpus=N`, the first lines of a result
    /// file.
    fn put_setup(&self, auth: bool) -> Result<()> {
        self.put("auth", if auth { "on" } else { "off" })?;
        self.put(
            "cpus",
            thread::available_parallelism().map_or(0, |n| n.get()),
        )
    }
}

fn read_results(path: &str) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// A process's memory and threads, from `/proc/<pid>/status` (sizes in KiB). `VmRSS` is
/// `RssAnon` (heap, stacks) + `RssFile` (pages of mapped files: the binary's code and data,
/// shared libraries) + `RssShmem`.
#[derive(Clone, Copy)]
struct Status {
    rss: u64,
    anon: u64,
    file: u64,
    shmem: u64,
    threads: u64,
}

fn proc_status(pid: u32) -> Result<Status> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e} (has the server exited?)"))?;
    let field = |name: &str| -> Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("/proc/{pid}/status has no {name}").into())
    };
    Ok(Status {
        rss: field("VmRSS:")?,
        anon: field("RssAnon:")?,
        file: field("RssFile:")?,
        shmem: field("RssShmem:")?,
        threads: field("Threads:")?,
    })
}

/// How many descriptors a process has open: the entries of `/proc/<pid>/fd`.
fn open_fds(pid: u32) -> Result<u64> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map_err(|e| format!("/proc/{pid}/fd: {e} (has the server exited?)"))?;
    Ok(dir.count() as u64)
}

/// `proc_status` and `open_fds` together: one reading of the churn server.
#[derive(Clone, Copy)]
struct Reading {
    status: Status,
    fds: u64,
}

impl Reading {
    fn take(pid: u32) -> Result<Reading> {
        Ok(Reading {
            status: proc_status(pid)?,
            fds: open_fds(pid)?,
        })
    }

    /// Writes `<prefix><figure>.<when>` for every figure (`prefix` is `churn.` or empty).
    fn put(&self, out: &Out, prefix: &str, when: &str) -> Result<()> {
        let s = &self.status;
        out.put(&format!("{prefix}rss_kib.{when}"), s.rss)?;
        out.put(&format!("{prefix}rss_anon_kib.{when}"), s.anon)?;
        out.put(&format!("{prefix}rss_file_kib.{when}"), s.file)?;
        out.put(&format!("{prefix}rss_shmem_kib.{when}"), s.shmem)?;
        out.put(&format!("{prefix}threads.{when}"), s.threads)?;
        out.put(&format!("{prefix}fds.{when}"), self.fds)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// HTTP/1.1 on plain TCP: just what the two servers send (Content-Length or chunked bodies)

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// A response head: status, how its body is framed, and the headers Streamable HTTP reads.
struct Head {
    status: u16,
    chunked: bool,
    length: usize,
    /// A `Content-Length` was sent (else, unless chunked, the body ends at close).
    has_length: bool,
    close: bool,
    /// `Content-Type`, lower-cased, parameters included.
    content_type: String,
    /// `Mcp-Session-Id`, as sent (case kept).
    session_id: Option<String>,
}

fn read_line(r: &mut impl BufRead, line: &mut String) -> io::Result<()> {
    line.clear();
    if r.read_line(line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    Ok(())
}

fn read_head(r: &mut impl BufRead) -> io::Result<Head> {
    let mut line = String::new();
    read_line(r, &mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("not an HTTP status line: {line:?}")))?;
    let mut head = Head {
        status,
        chunked: false,
        length: 0,
        has_length: false,
        close: false,
        content_type: String::new(),
        session_id: None,
    };
    for _ in 0..200 {
        read_line(r, &mut line)?;
        let h = line.trim_end();
        if h.is_empty() {
            return Ok(head);
        }
        let Some((name, raw)) = h.split_once(':') else {
            continue;
        };
        let value = raw.trim().to_ascii_lowercase();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                head.length = value
                    .parse()
                    .map_err(|_| bad(format!("bad Content-Length {value:?}")))?;
                head.has_length = true;
            }
            "transfer-encoding" => head.chunked = value.contains("chunked"),
            "connection" => head.close = value.contains("close"),
            "content-type" => head.content_type = value,
            "mcp-session-id" => head.session_id = Some(raw.trim().to_string()),
            _ => {}
        }
    }
    Err(bad("more than 200 header lines"))
}

/// Reads (and returns) the body of a response whose head was just read.
fn read_body(r: &mut impl BufRead, head: &Head) -> io::Result<Vec<u8>> {
    if !head.chunked {
        let mut body = vec![0; head.length.min(1 << 20)];
        r.read_exact(&mut body)?;
        return Ok(body);
    }
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        read_line(r, &mut line)?;
        let size = chunk_size(&line)?;
        if size == 0 {
            break;
        }
        if body.len() + size > 1 << 20 {
            return Err(bad("body over 1 MiB"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        read_line(r, &mut line)?; // the CRLF after the data
    }
    // Trailers, up to the empty line.
    for _ in 0..100 {
        read_line(r, &mut line)?;
        if line.trim_end().is_empty() {
            return Ok(body);
        }
    }
    Err(bad("too many trailer lines"))
}

fn chunk_size(line: &str) -> io::Result<usize> {
    let hex = line.trim_end().split(';').next().unwrap_or("");
    usize::from_str_radix(hex.trim(), 16).map_err(|_| bad(format!("bad chunk size {line:?}")))
}

/// One keep-alive connection for POSTs, reopened if the server closes it.
struct PostConn {
    addr: SocketAddr,
    host: String,
    /// Header lines sent with every request (`Authorization`), each ending in CRLF.
    extra: String,
    conn: Option<BufReader<TcpStream>>,
    /// Requests sent again on a fresh connection after the old one failed.
    retries: u64,
}

impl PostConn {
    fn new(target: &Target) -> PostConn {
        PostConn {
            addr: target.addr,
            host: target.host.clone(),
            extra: target.extra.clone(),
            conn: None,
            retries: 0,
        }
    }

    /// POSTs `body` to `path`; returns the status. One retry on a fresh connection if the
    /// kept-alive one fails (the server may have closed it while idle).
    fn post(&mut self, path: &str, body: &str) -> io::Result<u16> {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n{}Content-Length: {}\r\n\r\n{body}",
            self.host,
            self.extra,
            body.len()
        );
        let reused = self.conn.is_some();
        match self.send(&request) {
            Ok(status) => Ok(status),
            Err(_) if reused => {
                self.retries += 1;
                self.send(&request)
            }
            Err(e) => Err(e),
        }
    }

    fn send(&mut self, request: &str) -> io::Result<u16> {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => BufReader::new(connect(self.addr)?),
        };
        conn.get_mut().write_all(request.as_bytes())?;
        let head = read_head(&mut conn)?;
        read_body(&mut conn, &head)?;
        if !head.close {
            self.conn = Some(conn);
        }
        Ok(head.status)
    }
}

/// The body of an SSE response: passes bytes through, or undoes chunked framing.
struct Body {
    inner: BufReader<TcpStream>,
    chunked: bool,
    /// Bytes left in the current chunk.
    left: usize,
    /// The CRLF after a chunk's data is still to be read.
    crlf: bool,
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.chunked {
            return self.inner.read(buf);
        }
        let mut line = String::new();
        if self.left == 0 {
            if self.crlf {
                read_line(&mut self.inner, &mut line)?;
                self.crlf = false;
            }
            read_line(&mut self.inner, &mut line)?;
            self.left = chunk_size(&line)?;
            if self.left == 0 {
                return Ok(0); // last chunk: the stream ended
            }
        }
        let n = self.left.min(buf.len());
        let n = self.inner.read(&mut buf[..n])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside a chunk",
            ));
        }
        self.left -= n;
        self.crlf = self.left == 0;
        Ok(n)
    }
}

/// Where to connect, and what to send with every request.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    host: String,
    extra: String,
}

impl Target {
    fn new(url: &str, token: Option<&str>) -> Result<Target> {
        let hostport = url
            .strip_prefix("http://")
            .ok_or("--url must start with http://")?
            .trim_end_matches('/');
        let addr = hostport
            .parse()
            .map_err(|_| format!("--url must be http://IP:PORT, not {url:?}"))?;
        let extra = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        Ok(Target {
            addr,
            host: hostport.to_string(),
            extra,
        })
    }
}

/// An open SSE session: its stream and the POST path from its `endpoint` event.
struct Session {
    events: BufReader<Body>,
    endpoint: String,
    line: String,
}

impl Session {
    /// `GET /sse`, and the `endpoint` event.
    fn open(target: &Target) -> Result<Session> {
        let mut stream = connect(target.addr)?;
        write!(
            stream,
            "GET /sse HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n{}\r\n",
            target.host, target.extra
        )?;
        let mut inner = BufReader::new(stream);
        let head = read_head(&mut inner)?;
        if head.status != 200 {
            let body = read_body(&mut inner, &head).unwrap_or_default();
            return Err(StatusError::new("GET /sse", head.status, &body).into());
        }
        let body = Body {
            inner,
            chunked: head.chunked,
            left: 0,
            crlf: false,
        };
        let mut session = Session {
            events: BufReader::new(body),
            endpoint: String::new(),
            line: String::new(),
        };
        let (name, data) = session.next_event()?;
        if name != "endpoint" {
            return Err(format!("first event is {name:?}, not endpoint").into());
        }
        session.endpoint = data;
        Ok(session)
    }

    /// Sets how long `next_event` may wait.
    fn set_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.events
            .get_ref()
            .inner
            .get_ref()
            .set_read_timeout(Some(timeout))
    }

    /// The next event's name and data (see `next_event`).
    fn next_event(&mut self) -> io::Result<(String, String)> {
        next_event(&mut self.events, &mut self.line)
    }

    /// The next `message` event, parsed.
    fn next_message(&mut self) -> Result<Value> {
        for _ in 0..100 {
            let (name, data) = self.next_event()?;
            if name == "message" {
                return Ok(serde_json::from_str(&data)?);
            }
        }
        Err("no message event within 100 events".into())
    }

    /// `initialize` and `notifications/initialized`, POSTed on `post`.
    fn initialize(&mut self, post: &mut PostConn) -> Result<()> {
        expect_202(
            post.post(&self.endpoint, &initialize_request())?,
            "POST initialize",
        )?;
        let reply = self.next_message()?;
        if reply["id"] != 0 || reply.get("result").is_none() {
            return Err(format!("unexpected answer to initialize: {reply}").into());
        }
        let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        expect_202(
            post.post(&self.endpoint, &done.to_string())?,
            "POST notifications/initialized",
        )?;
        Ok(())
    }
}

/// The `initialize` request (id 0) both transports send, offering `PROTOCOL_VERSION`.
fn initialize_request() -> String {
    json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "mcp-warden-load", "version": "0"}
        }
    })
    .to_string()
}

/// The next SSE event's name and data from `r`: comments, `id:` and `retry:` lines are
/// skipped, and so are events without data (such as a priming event, `id` and `retry`
/// only). At most 1000 lines read.
fn next_event(r: &mut impl BufRead, line: &mut String) -> io::Result<(String, String)> {
    let mut name = String::from("message");
    let mut data = String::new();
    for _ in 0..1000 {
        read_line(r, line)?;
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if data.is_empty() {
                name.clear();
                name.push_str("message"); // an event without data is dropped whole
                continue;
            }
            return Ok((name, data));
        }
        if let Some(v) = line.strip_prefix("event:") {
            name = v.trim_start().to_string();
        } else if let Some(v) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    Err(bad("no event within 1000 lines"))
}

fn expect_202(status: u16, what: &'static str) -> Result<()> {
    if status == 202 {
        Ok(())
    } else {
        Err(StatusError::new(what, status, b"").into())
    }
}

/// A request answered with a status other than the one expected (200 for `GET /sse`, 202
/// for a POST): what was sent, the status, and the `error` code of a JSON body if any.
#[derive(Debug)]
struct StatusError {
    what: &'static str,
    status: u16,
    code: Option<String>,
    body: String,
}

impl StatusError {
    fn new(what: &'static str, status: u16, body: &[u8]) -> StatusError {
        let code = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string));
        let body = String::from_utf8_lossy(body).chars().take(300).collect();
        StatusError {
            what,
            status,
            code,
            body,
        }
    }

    /// `status 503 too_many_sessions`: what the error counts are grouped by.
    fn kind(&self) -> String {
        match &self.code {
            Some(code) => format!("status {} {code}", self.status),
            None => format!("status {}", self.status),
        }
    }
}

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: status {}", self.what, self.status)?;
        if !self.body.is_empty() {
            write!(f, ": {}", self.body)?;
        }
        Ok(())
    }
}

impl std::error::Error for StatusError {}

// ---------------------------------------------------------------------------------------
// Levels of load: threads started together, what each counted, and the level's figures

/// Threads started by `start_together`, and when their measured window began.
struct Together<T> {
    handles: Vec<thread::JoinHandle<T>>,
    /// The end of the warm-up, counted from when this thread let the others go.
    measure_from: Instant,
}

impl<T> Together<T> {
    /// Every thread's result, in the order they were started; `panicked` is the error when
    /// one of them panicked.
    fn join(self, panicked: &'static str) -> Result<Vec<T>> {
        self.handles
            .into_iter()
            .map(|h| h.join().map_err(|_| panicked.into()))
            .collect()
    }
}

/// `count` threads, `<name>-<n>`, that start one level of load together. Each runs
/// `prepare(n)` (opening its session, say) and waits until every thread has; then each
/// runs `work(n, prepared, measure_from, end)`, its window counted from leaving the
/// barrier: warm-up until `measure_from`, measured until `end`. Every thread reaches the
/// barrier whatever `prepare` gave, so a failure there is for `work` to return.
fn start_together<P: 'static, T: Send + 'static>(
    name: &str,
    count: usize,
    window: Window,
    prepare: impl Fn(usize) -> P + Clone + Send + 'static,
    work: impl Fn(usize, P, Instant, Instant) -> T + Clone + Send + 'static,
) -> io::Result<Together<T>> {
    let ready = Arc::new(Barrier::new(count + 1));
    let go = Arc::new(Barrier::new(count + 1));
    let handles = (0..count)
        .map(|n| {
            let (ready, go) = (Arc::clone(&ready), Arc::clone(&go));
            let (prepare, work) = (prepare.clone(), work.clone());
            thread::Builder::new()
                .name(format!("{name}-{n}"))
                .spawn(move || {
                    let prepared = prepare(n);
                    ready.wait();
                    go.wait();
                    let start = Instant::now();
                    let measure_from = start + Duration::from_secs_f64(window.warmup);
                    let end = measure_from + Duration::from_secs_f64(window.secs);
                    work(n, prepared, measure_from, end)
                })
        })
        .collect::<io::Result<_>>()?;
    ready.wait();
    let begun = Instant::now();
    go.wait();
    Ok(Together {
        handles,
        measure_from: begun + Duration::from_secs_f64(window.warmup),
    })
}

/// What one thread of a level counted, or all of them together (`Tally::merged`). Each
/// mode fills what it measures: `lost` only `run`, `completed` only `churn`,
/// `delete_statuses` only the sessions of `streamable`, `sse_answers` and `json_answers`
/// only the calls on `/mcp`.
#[derive(Default)]
struct Tally {
    /// The latency of each call or session begun after the warm-up and completed.
    samples_ns: Vec<u64>,
    /// When the last call or session begun after the warm-up ended (in sessions, a failed
    /// one too: sessions/s is over the time spent).
    last_done: Option<Instant>,
    /// Sessions completed, warm-up included.
    completed: u64,
    errors: u64,
    lost: u64,
    mismatched: u64,
    /// Failures by kind (`status 503`, `I/O error (timed out)`, `wrong reply`; in
    /// sessions with the step first).
    kinds: BTreeMap<String, u64>,
    /// Sessions that ended with a `DELETE`, by its status.
    delete_statuses: BTreeMap<u16, u64>,
    /// Requests sent again on a new connection.
    retries: u64,
    /// Answers that came as `text/event-stream` responses, and as `application/json`.
    sse_answers: u64,
    json_answers: u64,
    first_error: Option<String>,
}

impl Tally {
    /// Every thread's tally added up; the first error is that of the first thread (in the
    /// order given) that had one.
    fn merged(tallies: impl IntoIterator<Item = Tally>) -> Tally {
        let mut all = Tally::default();
        for t in tallies {
            all.samples_ns.extend(t.samples_ns);
            all.last_done = all.last_done.max(t.last_done);
            all.completed += t.completed;
            all.errors += t.errors;
            all.lost += t.lost;
            all.mismatched += t.mismatched;
            for (k, v) in t.kinds {
                *all.kinds.entry(k).or_default() += v;
            }
            for (k, v) in t.delete_statuses {
                *all.delete_statuses.entry(k).or_default() += v;
            }
            all.retries += t.retries;
            all.sse_answers += t.sse_answers;
            all.json_answers += t.json_answers;
            all.first_error = all.first_error.or(t.first_error);
        }
        all
    }

    /// A latency sample: from `began` to `done`.
    fn sample(&mut self, began: Instant, done: Instant) {
        self.samples_ns
            .push(done.duration_since(began).as_nanos() as u64);
    }

    /// A failure of `kind` (only tallied by kind: the caller counts it as an error or
    /// otherwise).
    fn count_kind(&mut self, kind: String) {
        *self.kinds.entry(kind).or_default() += 1;
    }

    /// `describe()` becomes the first error, unless there is one already.
    fn first(&mut self, describe: impl FnOnce() -> String) {
        if self.first_error.is_none() {
            self.first_error = Some(describe());
        }
    }
}

/// Linux reports utime and stime in clock ticks of `USER_HZ`, which is 100 on every
/// architecture this runs on (`getconf CLK_TCK`).
const TICKS_PER_SEC: f64 = 100.0;

/// utime + stime of `/proc/<which>/stat`, in clock ticks (`which` is a pid or `self`).
fn proc_cpu_ticks(which: &str) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{which}/stat"))
        .map_err(|e| format!("/proc/{which}/stat: {e} (has the server exited?)"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count from the
    // last ')'. After it come field 3 (state) onwards; utime and stime are fields 14, 15.
    let rest = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("/proc/{which}/stat: no ')'"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("/proc/{which}/stat: field {} missing", i + 3).into())
    };
    Ok(tick(11)? + tick(12)?)
}

/// utime + stime of the server (`pid`) and of this process from a start
/// (`CpuWindow::start`, when the warm-up ends, or `CpuWindow::now`) to when `per` is asked.
struct CpuWindow<'a> {
    pid: &'a str,
    server: u64,
    client: u64,
}

/// µs of CPU per call or session, of the server and of the load client (`None` without
/// any call or session, or where not measured).
#[derive(Default)]
struct CpuPer {
    server: Option<f64>,
    client: Option<f64>,
}

impl CpuWindow<'_> {
    /// Waits until `from` (the end of the warm-up), then reads both.
    fn start(pid: &str, from: Instant) -> Result<CpuWindow<'_>> {
        thread::sleep(from.saturating_duration_since(Instant::now()));
        CpuWindow::now(pid)
    }

    fn now(pid: &str) -> Result<CpuWindow<'_>> {
        Ok(CpuWindow {
            pid,
            server: proc_cpu_ticks(pid)?,
            client: proc_cpu_ticks("self")?,
        })
    }

    /// µs of CPU per unit (call or session) for the server and the client.
    fn per(&self, units: usize) -> Result<CpuPer> {
        let server = proc_cpu_ticks(self.pid)? - self.server;
        let client = proc_cpu_ticks("self")? - self.client;
        let per =
            |ticks: u64| (units > 0).then(|| ticks as f64 / TICKS_PER_SEC * 1e6 / units as f64);
        Ok(CpuPer {
            server: per(server),
            client: per(client),
        })
    }
}

/// One level's figures: what its threads counted (`all`, the samples sorted), calls or
/// sessions per second over the measured window, and CPU per call or session.
struct Measured {
    all: Tally,
    per_sec: f64,
    cpu: CpuPer,
}

impl Measured {
    /// The window runs from `measure_from` to the end of the last call or session in it.
    fn new(mut all: Tally, measure_from: Instant, cpu: CpuPer) -> Measured {
        let window = all.last_done.map_or(0.0, |t| {
            t.saturating_duration_since(measure_from).as_secs_f64()
        });
        all.samples_ns.sort_unstable();
        let n = all.samples_ns.len();
        Measured {
            per_sec: if window > 0.0 { n as f64 / window } else { 0.0 },
            all,
            cpu,
        }
    }

    /// The `p` percentile of the samples, in µs (NaN without samples).
    fn pct_us(&self, p: f64) -> f64 {
        let sorted_ns = &self.all.samples_ns;
        let n = sorted_ns.len();
        if n == 0 {
            return f64::NAN;
        }
        let i = ((n as f64 * p).ceil() as usize).clamp(1, n) - 1;
        sorted_ns[i] as f64 / 1000.0
    }
}

/// The percentiles written for calls, and for whole sessions: key and fraction.
const CALL_PERCENTILES: &[(&str, f64)] = &[
    ("p50_us", 0.50),
    ("p99_us", 0.99),
    ("p999_us", 0.999),
    ("max_us", 1.0),
];
const SESSION_PERCENTILES: &[(&str, f64)] = &[("p50_us", 0.50), ("p99_us", 0.99), ("max_us", 1.0)];

/// Writes a level's count of samples and its rate (keys `k(count)` and `k(rate)`), then
/// its `percentiles` (key `k(name)` each).
fn put_rates(
    out: &Out,
    k: &dyn Fn(&str) -> String,
    m: &Measured,
    [count, rate]: [&str; 2],
    percentiles: &[(&str, f64)],
) -> Result<()> {
    out.put(&k(count), m.all.samples_ns.len())?;
    out.put(&k(rate), format!("{:.0}", m.per_sec))?;
    for &(name, p) in percentiles {
        out.put(&k(name), format!("{:.1}", m.pct_us(p)))?;
    }
    Ok(())
}

/// Writes, where there are any, CPU per call or session (`k("server_cpu_us")`,
/// `k("client_cpu_us")`), failures by kind (`k("error_kinds")`) and the first error
/// (`k("first_error")`).
fn put_cpu_and_errors(out: &Out, k: &dyn Fn(&str) -> String, m: &Measured) -> Result<()> {
    if let Some(cpu) = m.cpu.server {
        out.put(&k("server_cpu_us"), format!("{cpu:.1}"))?;
    }
    if let Some(cpu) = m.cpu.client {
        out.put(&k("client_cpu_us"), format!("{cpu:.1}"))?;
    }
    if !m.all.kinds.is_empty() {
        out.put(&k("error_kinds"), counts(&m.all.kinds))?;
    }
    if let Some(first) = &m.all.first_error {
        out.put(&k("first_error"), one_line(first))?;
    }
    Ok(())
}

/// `3 × status 503; 1 × I/O error (timed out)`: how many of each.
fn counts<K: std::fmt::Display>(by: &BTreeMap<K, u64>) -> String {
    let each: Vec<String> = by.iter().map(|(k, c)| format!("{c} × {k}")).collect();
    each.join("; ")
}

/// The results of the slots that opened their session, and the error of the first that
/// could not.
fn opened_slots<T>(results: Vec<Result<T>>) -> (Vec<T>, Result<()>) {
    let mut opened = Vec::with_capacity(results.len());
    let mut first_failure = Ok(());
    for r in results {
        match r {
            Ok(slot) => opened.push(slot),
            Err(e) if first_failure.is_ok() => {
                first_failure = Err(format!("a slot could not open its session: {e}").into());
            }
            Err(_) => {}
        }
    }
    (opened, first_failure)
}

// ---------------------------------------------------------------------------------------
// `run`: held sessions, then echo round trips

fn run(args: &[String]) -> Result<()> {
    let flags = Flags::parse(args)?;
    let load = LoadArgs::parse(&flags)?;
    let (target, pid, out) = (load.target, load.pid, load.out);
    let levels = flags.list("sessions", &[100, 1000])?;
    let inflight = flags.list("inflight", &[1, 16, 64])?;
    let window = flags.window()?;
    if levels
        .iter()
        .chain(&inflight)
        .any(|&n| n == 0 || n > 10_000)
    {
        return Err("--sessions and --inflight take counts of 1-10000".into());
    }

    out.put_setup(load.auth)?;
    let idle = proc_status(pid)?;
    let idle_threads = idle.threads;
    out.put("rss_kib.idle", idle.rss)?;
    out.put("threads.idle", idle_threads)?;

    // Held sessions: opened in steps up to each level, held until the last level is read.
    let mut held: Vec<Session> = Vec::new();
    for &level in &levels {
        let want = level.saturating_sub(held.len());
        eprintln!("load: opening {want} more sessions (to {level})");
        let started = Instant::now();
        held.extend(open_sessions(&target, want)?);
        eprintln!(
            "load: {level} sessions held ({:.2} s to open)",
            started.elapsed().as_secs_f64()
        );
        thread::sleep(SETTLE);
        let held = proc_status(pid)?;
        out.put(&format!("rss_kib.{level}"), held.rss)?;
        out.put(&format!("threads.{level}"), held.threads)?;
    }
    drop(held);
    // Let the servers notice the closed streams (mcp-warden at its next keep-alive tick)
    // before timing calls, so tearing 1000 sessions down does not land in the figures.
    let settle_until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < settle_until {
        if proc_status(pid)?.threads <= idle_threads + 2 {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }

    for &slots in &inflight {
        eprintln!("load: echo, {slots} in flight, {window}");
        let r = echo(&target, slots, window)?;
        let k = |name: &str| format!("{name}.{slots}");
        put_rates(&out, &k, &r, ["calls", "calls_per_s"], CALL_PERCENTILES)?;
        out.put(&k("lost"), r.all.lost)?;
        out.put(&k("mismatched"), r.all.mismatched)?;
        out.put(&k("errors"), r.all.errors)?;
        out.put(&k("retries"), r.all.retries)?;
        if let Some(first) = &r.all.first_error {
            out.put(&k("first_error"), first.replace('\n', " "))?;
        }
    }
    Ok(())
}

/// Opens `count` initialized sessions with `OPEN_WORKERS` threads; their POST connections
/// are closed before returning, so only the streams stay open.
fn open_sessions(target: &Target, count: usize) -> Result<Vec<Session>> {
    let workers = OPEN_WORKERS.min(count.max(1));
    thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let share = count / workers + usize::from(w < count % workers);
                scope.spawn(move || -> Result<Vec<Session>> {
                    let mut post = PostConn::new(target);
                    let mut mine = Vec::with_capacity(share);
                    for _ in 0..share {
                        let mut session = Session::open(target)?;
                        session.initialize(&mut post)?;
                        mine.push(session);
                    }
                    Ok(mine)
                })
            })
            .collect();
        let mut all = Vec::with_capacity(count);
        for h in handles {
            all.extend(h.join().map_err(|_| "an opening thread panicked")??);
        }
        Ok(all)
    })
}

/// `slots` threads, each with its own session and POST connection, calling `echo` one
/// call at a time for the window; calls begun after the warm-up are counted.
fn echo(target: &Target, slots: usize, window: Window) -> Result<Measured> {
    let target = target.clone();
    let open = move |_| {
        Session::open(&target).and_then(|mut s| {
            let mut post = PostConn::new(&target);
            s.initialize(&mut post)?;
            Ok((s, post))
        })
    };
    let call = |n, opened: Result<(Session, PostConn)>, measure_from, end| -> Result<Tally> {
        let (mut session, mut post) = opened?;
        Ok(slot_loop(n, &mut session, &mut post, measure_from, end))
    };
    let together = start_together("slot", slots, window, open, call)?;
    let measure_from = together.measure_from;
    let (tallies, opened) = opened_slots(together.join("a slot thread panicked")?);
    opened?;
    Ok(Measured::new(
        Tally::merged(tallies),
        measure_from,
        CpuPer::default(),
    ))
}

/// One slot's sequential calls. Ids are unique across slots (`slot * 10^9 + n`).
fn slot_loop(
    slot: usize,
    session: &mut Session,
    post: &mut PostConn,
    measure_from: Instant,
    end: Instant,
) -> Tally {
    let mut result = Tally::default();
    let fail = |result: &mut Tally, what: String| result.first(|| format!("slot {slot}: {what}"));
    if let Err(e) = session.set_timeout(ANSWER_TIMEOUT) {
        result.errors += 1;
        fail(&mut result, e.to_string());
        return result;
    }
    for n in 1..=MAX_CALLS_PER_SLOT {
        let began = Instant::now();
        if began >= end {
            break;
        }
        let id = slot as u64 * 1_000_000_000 + n;
        let message = format!("bench {id}");
        let body = json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": message}}
        })
        .to_string();
        match post.post(&session.endpoint, &body) {
            Ok(202) => {}
            Ok(status) => {
                result.errors += 1;
                fail(&mut result, format!("POST tools/call: status {status}"));
                continue;
            }
            Err(e) => {
                result.errors += 1;
                fail(&mut result, format!("POST tools/call: {e}"));
                break;
            }
        }
        // Read answers until ours; others are mismatched (at most 100 in a row).
        let mut answered = false;
        for _ in 0..100 {
            let reply = match session.next_message() {
                Ok(reply) => reply,
                Err(e) => {
                    result.lost += 1;
                    fail(&mut result, format!("no answer to id {id}: {e}"));
                    break;
                }
            };
            if reply["id"] != id {
                result.mismatched += 1;
                fail(&mut result, format!("waiting for id {id}, got {reply}"));
                continue;
            }
            let text = &reply["result"]["content"][0]["text"];
            if text.as_str() != Some(&format!("Tool echo: {message}")) {
                result.mismatched += 1;
                fail(&mut result, format!("wrong answer to id {id}: {reply}"));
            }
            answered = true;
            break;
        }
        if !answered {
            break; // the stream is out of step with this slot's calls
        }
        let done = Instant::now();
        if began >= measure_from {
            result.sample(began, done);
            result.last_done = Some(done);
        }
    }
    result.retries = post.retries;
    result
}

// ---------------------------------------------------------------------------------------
// `churn`: sessions that open, call one tool and leave

/// Sessions per client at most, whatever the duration (bounds the latency samples too).
const MAX_SESSIONS_PER_CLIENT: u64 = 1_000_000;
/// How long `churn` polls, after the burst has closed, for its fds and threads to be back
/// at idle (and for the reading 1 s after the close).
const BURST_DRAIN: Duration = Duration::from_secs(5);
/// How long `churn` waits, after its one warm-up session, for fds and threads to be back at
/// idle before the warm-idle reading (taken at this limit if they are not).
const SETTLE_LIMIT: Duration = Duration::from_secs(5);

fn churn(args: &[String]) -> Result<()> {
    let flags = Flags::parse(args)?;
    let load = LoadArgs::parse(&flags)?;
    let (target, pid, out) = (load.target, load.pid, load.out);
    let clients = flags.list("clients", &[4, 16])?;
    let burst: usize = flags.number("burst", 1000)?;
    let bursts: usize = flags.number("bursts", 2)?;
    let window = flags.window()?;
    if burst > 10_000 || !(1..=20).contains(&bursts) || clients.iter().any(|&n| n == 0 || n > 1000)
    {
        return Err("--burst takes 0-10000, --bursts 1-20 and --clients counts of 1-1000".into());
    }
    let pid_s = pid.to_string();

    out.put("churn.auth", if load.auth { "on" } else { "off" })?;
    // Cold idle: the server as started, before any request has touched its code.
    let cold = Reading::take(pid)?;
    cold.put(&out, "churn.", "cold_idle")?;

    if burst > 0 {
        out.put("churn.burst", burst)?;
        // Warm idle: after one whole session (every path the burst takes, for the first
        // time) has come and gone, and the server has let go of its threads and sockets.
        eprintln!("load: warm idle: one session, then waiting for threads and fds at idle");
        let mut post = PostConn::new(&target);
        let one = churn_session(&target, &mut post, "warm idle");
        drop(post);
        match one {
            Ok(()) => put_warm_idle(&out, pid, &cold, "churn.")?,
            Err((step, e)) => out.put(
                "churn.warm_error",
                one_line(&format!("the one session, {step}: {e}")),
            )?,
        }

        // More than once: the later bursts show whether what the first left behind grows.
        for round in 1..=bursts {
            let name = if round == 1 {
                "burst".to_string()
            } else {
                format!("burst{round}")
            };
            burst_round(&target, pid, burst, &cold, &out, &name)?;
        }
        out.put("churn.bursts", bursts)?;
    }

    for &n in &clients {
        eprintln!("load: churn, {n} clients, {window}");
        // CPU per completed session over the whole level (warm-up included); failed
        // attempts cost CPU too and are not in the divisor.
        let cpu = CpuWindow::now(&pid_s)?;
        let mut r = session_level("churn", churn_client, &target, n, window, None)?;
        r.cpu = cpu.per(r.all.completed as usize)?;
        let k = |name: &str| format!("churn.{name}.{n}");
        put_rates(
            &out,
            &k,
            &r,
            ["sessions", "sessions_per_s"],
            SESSION_PERCENTILES,
        )?;
        out.put(&k("errors"), r.all.errors)?;
        out.put(&k("retries"), r.all.retries)?;
        put_cpu_and_errors(&out, &k, &r)?;
    }
    Ok(())
}

/// After one whole session has closed (`closed`: now), polls every 1 ms (for
/// `SETTLE_LIMIT` at most) until the server's threads and fds are back at `cold` idle,
/// writes how long that took (`<prefix>warm_settled_ms`), then the warm-idle reading.
fn put_warm_idle(out: &Out, pid: u32, cold: &Reading, prefix: &str) -> Result<()> {
    let closed = Instant::now();
    let mut settled = None;
    poll_every_ms(closed, SETTLE_LIMIT, || {
        let now = proc_status(pid)?.threads <= cold.status.threads && open_fds(pid)? <= cold.fds;
        if now {
            settled = Some(closed.elapsed());
        }
        Ok(now)
    })?;
    put_ms(out, &format!("{prefix}warm_settled_ms"), settled)?;
    Reading::take(pid)?.put(out, prefix, "warm_idle")
}

/// Opens `burst` initialized sessions, takes a reading while they are held
/// (`churn.*.<name>_held`), closes them all, and polls every 1 ms from the close for the
/// time until the server has closed the streams' sockets (fds back at cold idle) and let
/// go of their threads (threads back at cold idle), with a reading 1 s after the close
/// (`churn.*.<name>_after_1s`).
fn burst_round(
    target: &Target,
    pid: u32,
    burst: usize,
    cold: &Reading,
    out: &Out,
    name: &str,
) -> Result<()> {
    eprintln!("load: {name}: opening {burst} sessions, then closing them all");
    let held = match open_sessions(target, burst) {
        Ok(held) => held,
        Err(e) => return out.put(&format!("churn.{name}_error"), one_line(&e.to_string())),
    };
    Reading::take(pid)?.put(out, "churn.", &format!("{name}_held"))?;
    drop(held);
    let closed = Instant::now();
    let one_second = closed + Duration::from_secs(1);
    let (mut fds_back, mut threads_back, mut after) = (None, None, None);
    poll_every_ms(closed, BURST_DRAIN, || {
        if after.is_none() && Instant::now() >= one_second {
            after = Some(Reading::take(pid)?);
        }
        if threads_back.is_none() && proc_status(pid)?.threads <= cold.status.threads {
            threads_back = Some(closed.elapsed());
        }
        if fds_back.is_none() && open_fds(pid)? <= cold.fds {
            fds_back = Some(closed.elapsed());
        }
        Ok(after.is_some() && threads_back.is_some() && fds_back.is_some())
    })?;
    if let Some(after) = after {
        after.put(out, "churn.", &format!("{name}_after_1s"))?;
    }
    put_ms(out, &format!("churn.{name}_fds_back_ms"), fds_back)?;
    put_ms(out, &format!("churn.{name}_threads_back_ms"), threads_back)
}

/// Calls `check` about every millisecond from `from` until it returns true or `limit` has
/// passed since `from` (then returns, without an error: the caller records what it saw).
fn poll_every_ms(
    from: Instant,
    limit: Duration,
    mut check: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let tick = Duration::from_millis(1);
    let mut next = Instant::now();
    while from.elapsed() < limit {
        if check()? {
            return Ok(());
        }
        next += tick;
        let now = Instant::now();
        if next < now {
            next = now; // a slow check: no catching up in a burst of polls
        }
        thread::sleep(next - now);
    }
    Ok(())
}

/// `key=<ms, 0.1 ms>` for a time seen, `key=never` for none within the polling limit.
fn put_ms(out: &Out, key: &str, d: Option<Duration>) -> Result<()> {
    match d {
        Some(d) => out.put(key, format!("{:.1}", d.as_secs_f64() * 1000.0)),
        None => out.put(key, "never"),
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// `clients` threads, each running `client(n, target, measure_from, end)`: whole sessions
/// one after another for the window (sessions begun after the warm-up count). With
/// `window_cpu_of`, a pid, CPU per session of that server and of this process over the
/// measured window.
fn session_level(
    name: &str,
    client: fn(usize, &Target, Instant, Instant) -> Tally,
    target: &Target,
    clients: usize,
    window: Window,
    window_cpu_of: Option<&str>,
) -> Result<Measured> {
    let target = target.clone();
    let together = start_together(
        name,
        clients,
        window,
        |_| (),
        move |n, (), measure_from, end| client(n, &target, measure_from, end),
    )?;
    let measure_from = together.measure_from;
    let cpu = window_cpu_of
        .map(|pid| CpuWindow::start(pid, measure_from))
        .transpose()?;
    let all = Tally::merged(together.join("a churn client thread panicked")?);
    let cpu = cpu.map(|cpu| cpu.per(all.samples_ns.len())).transpose()?;
    Ok(Measured::new(all, measure_from, cpu.unwrap_or_default()))
}

/// One client's sessions (`churn_session`), one after another until `end`, on one
/// keep-alive POST connection.
fn churn_client(client: usize, target: &Target, measure_from: Instant, end: Instant) -> Tally {
    let mut post = PostConn::new(target);
    // No limit on failed sessions: each is a new stream connection, counted by kind.
    let mut result = client_sessions(client, measure_from, end, u64::MAX, |message| {
        churn_session(target, &mut post, message).map(|()| None)
    });
    result.retries = post.retries;
    result
}

/// The step of a session that failed, and why.
type StepError = (&'static str, Box<dyn std::error::Error + Send + Sync>);

/// One client's whole sessions, one after another until `end` (or until `max_errors` of
/// them have failed): `session(message)` runs one, with a message of its own, and gives
/// the status its `DELETE` was answered with, if it ends with one. A failed session is
/// counted by step and kind (`GET /sse: status 503 too_many_sessions`) and the next one
/// begins. Sessions begun after `measure_from` are sampled.
fn client_sessions(
    client: usize,
    measure_from: Instant,
    end: Instant,
    max_errors: u64,
    mut session: impl FnMut(&str) -> std::result::Result<Option<u16>, StepError>,
) -> Tally {
    let mut result = Tally::default();
    for n in 1..=MAX_SESSIONS_PER_CLIENT {
        let began = Instant::now();
        if began >= end || result.errors >= max_errors {
            break;
        }
        let message = format!("churn {client}.{n}");
        let outcome = session(&message);
        let done = Instant::now();
        if began >= measure_from {
            // Failed attempts end the window too: sessions/s is over the time spent.
            result.last_done = Some(done);
        }
        match outcome {
            Ok(delete_status) => {
                result.completed += 1;
                if let Some(status) = delete_status {
                    *result.delete_statuses.entry(status).or_default() += 1;
                }
                if began >= measure_from {
                    result.sample(began, done);
                }
            }
            Err((step, e)) => {
                result.errors += 1;
                result.count_kind(format!("{step}: {}", error_kind(e.as_ref())));
                result.first(|| format!("client {client}, {step}: {e}"));
            }
        }
    }
    result
}

/// One whole session: `GET /sse` (new connection) and its `endpoint` event, `initialize`
/// and its answer, `notifications/initialized`, `tools/call echo` and its answer, then the
/// stream is closed. On failure, the step that failed and why.
fn churn_session(
    target: &Target,
    post: &mut PostConn,
    message: &str,
) -> std::result::Result<(), StepError> {
    let mut session = Session::open(target).map_err(|e| ("open", e))?;
    session
        .set_timeout(ANSWER_TIMEOUT)
        .map_err(|e| ("open", e.into()))?;
    session.initialize(post).map_err(|e| ("initialize", e))?;
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": message}}
    })
    .to_string();
    let call = (|| -> Result<()> {
        expect_202(post.post(&session.endpoint, &body)?, "POST tools/call")?;
        let reply = session.next_message()?;
        let text = &reply["result"]["content"][0]["text"];
        if reply["id"] != 1 || text.as_str() != Some(&format!("Tool echo: {message}")) {
            return Err(format!("wrong answer to tools/call: {reply}").into());
        }
        Ok(())
    })();
    call.map_err(|e| ("tools/call", e))?;
    drop(session); // close the stream: the client leaves
    Ok(())
}

// ---------------------------------------------------------------------------------------
// `streamable`: Streamable HTTP on `/mcp`

/// Failed calls or sessions after which a slot or client stops (a server that refuses
/// everything is not hammered for the rest of the level).
const MAX_ERRORS_PER_CLIENT: u64 = 1000;
/// The most of an SSE response read after its answer (to reach its end) or of a body.
const MAX_BODY: u64 = 1 << 20;

/// A Streamable HTTP session: its `Mcp-Session-Id` and the revision `initialize` agreed.
struct McpSession {
    id: String,
    version: String,
}

/// What one exchange on `/mcp` brought back.
struct McpReply {
    status: u16,
    session_id: Option<String>,
    /// The JSON-RPC answer to the request (`None` for a notification, a body-less status,
    /// or a status other than 200).
    answer: Option<Value>,
    /// When the answer had been read (an SSE response is then read on to its end).
    answered: Instant,
    /// The body of a response without an answer (for the error message).
    body: Vec<u8>,
}

/// An answer that came but was not the right one (another id, another text).
#[derive(Debug)]
struct Mismatch(String);

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Mismatch {}

/// A response body read through its framing (`Content-Length`, chunked, or up to the
/// close), never past its end, so that the connection can carry the next request.
struct Framed<'a> {
    inner: &'a mut BufReader<TcpStream>,
    framing: Framing,
    line: String,
}

enum Framing {
    /// Bytes left of a `Content-Length` body.
    Length(usize),
    /// Bytes left in the current chunk; the CRLF after a chunk's data is still to read;
    /// the last chunk (and trailers) have been read.
    Chunked { left: usize, crlf: bool, done: bool },
    /// Neither: the body ends when the server closes the connection.
    UntilClose,
}

impl<'a> Framed<'a> {
    fn new(inner: &'a mut BufReader<TcpStream>, head: &Head) -> Framed<'a> {
        let framing = if head.status == 204 || head.status == 304 || head.status < 200 {
            Framing::Length(0)
        } else if head.chunked {
            Framing::Chunked {
                left: 0,
                crlf: false,
                done: false,
            }
        } else if head.has_length {
            Framing::Length(head.length)
        } else {
            Framing::UntilClose
        };
        Framed {
            inner,
            framing,
            line: String::new(),
        }
    }

    /// Whether the connection may carry another request once the body has been read.
    fn reusable(&self) -> bool {
        !matches!(self.framing, Framing::UntilClose)
    }
}

impl Read for Framed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let cap = match &mut self.framing {
            Framing::UntilClose => return self.inner.read(buf),
            Framing::Length(0) => return Ok(0),
            Framing::Length(left) => *left,
            Framing::Chunked { done: true, .. } => return Ok(0),
            Framing::Chunked { left, crlf, done } => {
                if *left == 0 {
                    if *crlf {
                        read_line(self.inner, &mut self.line)?;
                        *crlf = false;
                    }
                    read_line(self.inner, &mut self.line)?;
                    *left = chunk_size(&self.line)?;
                    if *left == 0 {
                        // Trailers, up to the empty line.
                        for _ in 0..100 {
                            read_line(self.inner, &mut self.line)?;
                            if self.line.trim_end().is_empty() {
                                *done = true;
                                return Ok(0);
                            }
                        }
                        return Err(bad("too many trailer lines"));
                    }
                }
                *left
            }
        };
        let want = cap.min(buf.len());
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside a body",
            ));
        }
        match &mut self.framing {
            Framing::Length(left) => *left -= n,
            Framing::Chunked { left, crlf, .. } => {
                *left -= n;
                *crlf = *left == 0;
            }
            Framing::UntilClose => {}
        }
        Ok(n)
    }
}

/// One keep-alive connection to `/mcp` (reopened when the server closes it), and what it
/// has seen: requests resent, and how answers came.
struct McpConn {
    target: Target,
    conn: Option<BufReader<TcpStream>>,
    request: String,
    line: String,
    /// Requests sent again on a fresh connection because the kept-alive one had been
    /// closed before any of the response came.
    retries: u64,
    /// Answers that came as `text/event-stream` responses, and as `application/json`.
    sse_answers: u64,
    json_answers: u64,
}

impl McpConn {
    fn new(target: &Target) -> McpConn {
        McpConn {
            target: target.clone(),
            conn: None,
            request: String::with_capacity(1024),
            line: String::new(),
            retries: 0,
            sse_answers: 0,
            json_answers: 0,
        }
    }

    /// `METHOD /mcp` with the session's headers (if any) and `body` (if any); `want` is
    /// the id of the request's answer, read from a JSON body or from the events of an SSE
    /// response (others skipped, up to 100).
    fn exchange(
        &mut self,
        method: &str,
        session: Option<&McpSession>,
        body: Option<&str>,
        want: Option<&Value>,
    ) -> io::Result<McpReply> {
        self.request.clear();
        let _ = write!(
            self.request,
            "{method} /mcp HTTP/1.1\r\nHost: {}\r\n{}Accept: application/json, text/event-stream\r\n",
            self.target.host, self.target.extra
        );
        if let Some(s) = session {
            let _ = write!(
                self.request,
                "Mcp-Session-Id: {}\r\nMCP-Protocol-Version: {}\r\n",
                s.id, s.version
            );
        }
        match body {
            Some(body) => {
                let _ = write!(
                    self.request,
                    "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
            None => self.request.push_str("\r\n"),
        }
        self.send_request(want)
    }

    /// Sends `self.request` (already written); once more on a new connection if the
    /// kept-alive one had been closed before any of the response came.
    fn send_request(&mut self, want: Option<&Value>) -> io::Result<McpReply> {
        let reused = self.conn.is_some();
        match self.send(want) {
            Ok(reply) => Ok(reply),
            Err((true, _)) if reused => {
                self.retries += 1;
                self.send(want).map_err(|(_, e)| e)
            }
            Err((_, e)) => Err(e),
        }
    }

    /// Sends the request; on failure, whether it failed before any of the response came
    /// on a connection the server had closed (so it may be sent again).
    fn send(&mut self, want: Option<&Value>) -> std::result::Result<McpReply, (bool, io::Error)> {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => BufReader::new(connect(self.target.addr).map_err(|e| (false, e))?),
        };
        let closed = |e: io::Error| {
            let gone = matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            );
            (gone, e)
        };
        conn.get_mut()
            .write_all(self.request.as_bytes())
            .map_err(closed)?;
        let head = read_head(&mut conn).map_err(closed)?;
        let (reply, reusable) = self
            .read_reply(&mut conn, &head, want)
            .map_err(|e| (false, e))?;
        if reusable && !head.close {
            self.conn = Some(conn);
        }
        Ok(reply)
    }

    fn read_reply(
        &mut self,
        conn: &mut BufReader<TcpStream>,
        head: &Head,
        want: Option<&Value>,
    ) -> io::Result<(McpReply, bool)> {
        let mut framed = Framed::new(conn, head);
        let mut reply = McpReply {
            status: head.status,
            session_id: head.session_id.clone(),
            answer: None,
            answered: Instant::now(),
            body: Vec::new(),
        };
        let sse = head.content_type.starts_with("text/event-stream");
        if head.status == 200 && sse && want.is_some() {
            let mut events = BufReader::new(framed);
            for _ in 0..100 {
                let (name, data) = next_event(&mut events, &mut self.line)?;
                if name != "message" {
                    continue;
                }
                let message: Value = serde_json::from_str(&data)
                    .map_err(|e| bad(format!("an event's data is not JSON ({e}): {data}")))?;
                let is_answer = message.get("result").is_some() || message.get("error").is_some();
                if is_answer && message.get("id") == want {
                    reply.answer = Some(message);
                    break;
                }
            }
            if reply.answer.is_none() {
                return Err(bad("no answer with the request's id within 100 events"));
            }
            reply.answered = Instant::now();
            self.sse_answers += 1;
            // The rest of the response (the server ends it after the answer), so that the
            // connection can carry the next request.
            let mut rest = events.take(MAX_BODY);
            io::copy(&mut rest, &mut io::sink())?;
            if rest.limit() == 0 {
                return Err(bad("the SSE response went on past 1 MiB after its answer"));
            }
            let reusable = rest.into_inner().into_inner().reusable();
            return Ok((reply, reusable));
        }
        let mut body = Vec::new();
        (&mut framed).take(MAX_BODY + 1).read_to_end(&mut body)?;
        if body.len() as u64 > MAX_BODY {
            return Err(bad("body over 1 MiB"));
        }
        reply.answered = Instant::now();
        if head.status == 200 && want.is_some() {
            if sse {
                return Err(bad("unreachable: SSE answers are read above"));
            }
            let message: Value = serde_json::from_slice(&body).map_err(|e| {
                bad(format!(
                    "the answer is not JSON ({e}): {}",
                    String::from_utf8_lossy(&body)
                ))
            })?;
            reply.answer = Some(message);
            self.json_answers += 1;
        } else {
            reply.body = body;
        }
        Ok((reply, framed.reusable()))
    }

    /// `initialize` (no session yet): the session the server names, and the revision it
    /// answered with.
    fn initialize(&mut self) -> Result<McpSession> {
        let init = initialize_request();
        let reply = self.exchange("POST", None, Some(&init), Some(&json!(0)))?;
        if reply.status != 200 {
            return Err(StatusError::new("POST initialize", reply.status, &reply.body).into());
        }
        let answer = reply.answer.unwrap_or_default();
        let version = answer["result"]["protocolVersion"]
            .as_str()
            .ok_or_else(|| Mismatch(format!("unexpected answer to initialize: {answer}")))?;
        let id = reply
            .session_id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| Mismatch("initialize answered without Mcp-Session-Id".into()))?;
        Ok(McpSession {
            id,
            version: version.to_string(),
        })
    }

    /// `notifications/initialized`: `202`.
    fn initialized(&mut self, session: &McpSession) -> Result<()> {
        let done = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        let reply = self.exchange("POST", Some(session), Some(done), None)?;
        if reply.status != 202 {
            return Err(StatusError::new(
                "POST notifications/initialized",
                reply.status,
                &reply.body,
            )
            .into());
        }
        Ok(())
    }

    /// `initialize` and `notifications/initialized`.
    fn open(&mut self) -> Result<McpSession> {
        let session = self.initialize()?;
        self.initialized(&session)?;
        Ok(session)
    }

    /// `tools/call echo` with `id` and `message`; when the right answer had been read.
    fn echo(&mut self, session: &McpSession, id: u64, message: &str) -> Result<Instant> {
        let body = json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": message}}
        })
        .to_string();
        let reply = self.exchange("POST", Some(session), Some(&body), Some(&json!(id)))?;
        if reply.status != 200 {
            return Err(StatusError::new("POST tools/call", reply.status, &reply.body).into());
        }
        let answer = reply.answer.unwrap_or_default();
        let text = &answer["result"]["content"][0]["text"];
        if answer["id"] != id || text.as_str() != Some(&format!("Tool echo: {message}")) {
            return Err(Mismatch(format!("wrong answer to tools/call id {id}: {answer}")).into());
        }
        Ok(reply.answered)
    }

    /// MCP 2026-07-28, stateless: `tools/call echo` with `id` and `message`, no session,
    /// `params._meta` naming the revision and empty client capabilities, and the headers
    /// `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name`. The answer (from a JSON body
    /// or an SSE response) must carry the request's id, `result.resultType` `complete`
    /// and the text `Tool echo: <message>`. When the right answer had been read.
    /// `message` goes into the JSON as it is: it must need no escaping.
    fn modern_echo(&mut self, id: u64, message: &str) -> Result<Instant> {
        let body = format!(
            concat!(
                r#"{{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{{"name":"echo","#,
                r#""arguments":{{"message":"{}"}},"_meta":{{"{}":"{}","{}":{{}}}}}}}}"#
            ),
            id, message, MODERN_META_VERSION, MODERN_VERSION, MODERN_META_CAPABILITIES
        );
        self.request.clear();
        let _ = write!(
            self.request,
            "POST /mcp HTTP/1.1\r\nHost: {}\r\n{}Accept: application/json, text/event-stream\r\n\
             MCP-Protocol-Version: {MODERN_VERSION}\r\nMcp-Method: tools/call\r\nMcp-Name: echo\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.target.host,
            self.target.extra,
            body.len()
        );
        let reply = self.send_request(Some(&json!(id)))?;
        if reply.status != 200 {
            return Err(StatusError::new("POST tools/call", reply.status, &reply.body).into());
        }
        let answer = reply.answer.unwrap_or_default();
        let result = &answer["result"];
        let right = answer["id"] == id
            && result["resultType"] == "complete"
            && result["content"][0]["text"].as_str() == Some(&format!("Tool echo: {message}"));
        if !right {
            return Err(Mismatch(format!("wrong answer to tools/call id {id}: {answer}")).into());
        }
        Ok(reply.answered)
    }

    /// `DELETE /mcp`: any 2xx (mcp-warden `204`, the TypeScript SDK `200`, rmcp `202`).
    fn delete(&mut self, session: &McpSession) -> Result<u16> {
        let reply = self.exchange("DELETE", Some(session), None, None)?;
        if !(200..300).contains(&reply.status) {
            return Err(StatusError::new("DELETE /mcp", reply.status, &reply.body).into());
        }
        Ok(reply.status)
    }
}

/// How an error is tallied: `status 404 unknown_session`, `I/O error (timed out)`, `wrong
/// reply`.
fn error_kind(e: &(dyn std::error::Error + Send + Sync + 'static)) -> String {
    if let Some(s) = e.downcast_ref::<StatusError>() {
        s.kind()
    } else if let Some(io) = e.downcast_ref::<io::Error>() {
        format!("I/O error ({})", io.kind())
    } else {
        "wrong reply".to_string()
    }
}

fn streamable(args: &[String]) -> Result<()> {
    let flags = Flags::parse(args)?;
    let load = LoadArgs::parse(&flags)?;
    let (target, pid, out) = (load.target, load.pid, load.out);
    let hold: usize = flags.number("hold", 1000)?;
    let inflight = flags.list("inflight", &[1, 16, 64])?;
    let clients = flags.list("clients", &[4, 16])?;
    let window = flags.window()?;
    if hold > 10_000 || inflight.iter().chain(&clients).any(|&n| n == 0 || n > 1000) {
        return Err("--hold takes 0-10000, --inflight and --clients counts of 1-1000".into());
    }
    let pid_s = pid.to_string();

    out.put_setup(load.auth)?;
    // Cold idle: as started. Warm idle: after one whole session (every path the held
    // sessions take, for the first time) and once threads and fds are back at cold idle.
    let cold = Reading::take(pid)?;
    cold.put(&out, "", "cold_idle")?;
    eprintln!("load: warm idle: one session (initialize, initialized, echo, DELETE)");
    let one = (|| -> Result<()> {
        let mut conn = McpConn::new(&target);
        let session = conn.open()?;
        conn.echo(&session, 1, "warm")?;
        conn.delete(&session)?;
        Ok(())
    })();
    match one {
        Ok(()) => put_warm_idle(&out, pid, &cold, "")?,
        Err(e) => out.put("warm_error", one_line(&e.to_string()))?,
    }

    if hold > 0 {
        out.put("hold", hold)?;
        eprintln!("load: holding {hold} initialized sessions (no GET stream, no connection)");
        let started = Instant::now();
        let (held, error) = mcp_open_many(&target, hold);
        out.put(
            "hold_open_ms",
            format!("{:.1}", started.elapsed().as_secs_f64() * 1000.0),
        )?;
        if let Some(e) = error {
            out.put("hold_error", one_line(&e))?;
        }
        if held.len() == hold {
            // Every connection that opened them is closed: only the sessions remain.
            thread::sleep(SETTLE);
            Reading::take(pid)?.put(&out, "", "held")?;
        }
        let (deleted, failed) = mcp_delete_many(&target, held);
        out.put("hold_deleted", deleted)?;
        out.put("hold_delete_errors", failed.len())?;
        if let Some(e) = failed.first() {
            out.put("hold_delete_first_error", one_line(e))?;
        }
        thread::sleep(SETTLE);
        Reading::take(pid)?.put(&out, "", "after_delete")?;
    }

    for &slots in &inflight {
        eprintln!("load: streamable echo, {slots} in flight, {window}");
        let r = mcp_echo(&target, &pid_s, EchoMode::Session, slots, window)?;
        put_echo(&out, slots, &r)?;
    }

    for &n in &clients {
        eprintln!("load: streamable sessions, {n} clients, {window}");
        let r = session_level(
            "mcp-churn",
            mcp_churn_client,
            &target,
            n,
            window,
            Some(&pid_s),
        )?;
        let k = |name: &str| format!("sessions.{name}.{n}");
        put_rates(&out, &k, &r, ["count", "per_s"], SESSION_PERCENTILES)?;
        out.put(&k("errors"), r.all.errors)?;
        out.put(&k("retries"), r.all.retries)?;
        put_cpu_and_errors(&out, &k, &r)?;
        if !r.all.delete_statuses.is_empty() {
            out.put(&k("delete_statuses"), counts(&r.all.delete_statuses))?;
        }
    }
    Ok(())
}

/// Opens `count` initialized sessions with `OPEN_WORKERS` threads, one keep-alive
/// connection each (closed before returning); on a failure, the sessions opened so far
/// and the first error.
fn mcp_open_many(target: &Target, count: usize) -> (Vec<McpSession>, Option<String>) {
    let workers = OPEN_WORKERS.min(count.max(1));
    thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let share = count / workers + usize::from(w < count % workers);
                scope.spawn(move || {
                    let mut conn = McpConn::new(target);
                    let mut mine = Vec::with_capacity(share);
                    for _ in 0..share {
                        match conn.open() {
                            Ok(session) => mine.push(session),
                            Err(e) => return (mine, Some(e.to_string())),
                        }
                    }
                    (mine, None)
                })
            })
            .collect();
        let mut all = Vec::with_capacity(count);
        let mut first = None;
        for h in handles {
            match h.join() {
                Ok((mine, error)) => {
                    all.extend(mine);
                    first = first.or(error);
                }
                Err(_) => first = first.or(Some("an opening thread panicked".to_string())),
            }
        }
        (all, first)
    })
}

/// `DELETE`s every session with `OPEN_WORKERS` threads: how many went, and the errors.
fn mcp_delete_many(target: &Target, sessions: Vec<McpSession>) -> (usize, Vec<String>) {
    let workers = OPEN_WORKERS.min(sessions.len().max(1));
    let mut shares: Vec<Vec<McpSession>> = (0..workers).map(|_| Vec::new()).collect();
    for (i, s) in sessions.into_iter().enumerate() {
        shares[i % workers].push(s);
    }
    thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|share| {
                scope.spawn(move || {
                    let mut conn = McpConn::new(target);
                    let mut errors = Vec::new();
                    let mut ok = 0;
                    for s in &share {
                        match conn.delete(s) {
                            Ok(_) => ok += 1,
                            Err(e) => errors.push(e.to_string()),
                        }
                    }
                    (ok, errors)
                })
            })
            .collect();
        let (mut ok, mut errors) = (0, Vec::new());
        for h in handles {
            match h.join() {
                Ok((n, e)) => {
                    ok += n;
                    errors.extend(e);
                }
                Err(_) => errors.push("a deleting thread panicked".to_string()),
            }
        }
        (ok, errors)
    })
}

/// How a slot calls `echo`: in a 2025 session it opened first (`streamable`), or as
/// stateless 2026-07-28 requests (`modern`).
#[derive(Clone, Copy, PartialEq)]
enum EchoMode {
    Session,
    Stateless,
}

/// `slots` threads, each with its own keep-alive connection (and, in `EchoMode::Session`,
/// its own session), calling `echo` one call at a time for the window; calls begun after
/// the warm-up count. A call's latency ends when its answer has been read; the slot's
/// next call begins when the whole response has been read.
fn mcp_echo(
    target: &Target,
    pid: &str,
    mode: EchoMode,
    slots: usize,
    window: Window,
) -> Result<Measured> {
    let target = target.clone();
    let open = move |_| {
        let mut conn = McpConn::new(&target);
        let opened = match mode {
            EchoMode::Session => conn.open().map(Some),
            EchoMode::Stateless => Ok(None),
        };
        (conn, opened)
    };
    type Opened = (McpConn, Result<Option<McpSession>>);
    type Done = (Tally, McpConn, Option<McpSession>);
    let call = |n, (mut conn, opened): Opened, measure_from, end| -> Result<Done> {
        let session = opened?;
        let slot = mcp_slot_loop(n, &mut conn, session.as_ref(), measure_from, end);
        Ok((slot, conn, session))
    };
    let together = start_together("mcp-slot", slots, window, open, call)?;
    let measure_from = together.measure_from;
    let cpu = CpuWindow::start(pid, measure_from)?;
    let (done, opened) = opened_slots(together.join("a slot thread panicked")?);
    let mut to_delete = Vec::new();
    let mut tallies = Vec::with_capacity(done.len());
    for (slot, conn, session) in done {
        tallies.push(slot);
        if let Some(session) = session {
            to_delete.push((conn, session));
        }
    }
    let all = Tally::merged(tallies);
    let cpu = cpu.per(all.samples_ns.len())?;
    // The slots' sessions end, outside the measured window.
    for (mut conn, session) in to_delete {
        let _ = conn.delete(&session);
    }
    opened?;
    Ok(Measured::new(all, measure_from, cpu))
}

/// Writes one `mcp_echo` level's figures as `<name>.<slots>` keys.
fn put_echo(out: &Out, slots: usize, r: &Measured) -> Result<()> {
    let k = |name: &str| format!("{name}.{slots}");
    put_rates(out, &k, r, ["calls", "calls_per_s"], CALL_PERCENTILES)?;
    out.put(&k("errors"), r.all.errors)?;
    out.put(&k("mismatched"), r.all.mismatched)?;
    out.put(&k("retries"), r.all.retries)?;
    out.put(&k("sse_answers"), r.all.sse_answers)?;
    out.put(&k("json_answers"), r.all.json_answers)?;
    put_cpu_and_errors(out, &k, r)
}

/// One slot's sequential calls, in its session or (without one) stateless. Ids are unique
/// across slots (`slot * 10^9 + n`).
fn mcp_slot_loop(
    slot: usize,
    conn: &mut McpConn,
    session: Option<&McpSession>,
    measure_from: Instant,
    end: Instant,
) -> Tally {
    let mut result = Tally::default();
    let mut message = String::with_capacity(32);
    for n in 1..=MAX_CALLS_PER_SLOT {
        let began = Instant::now();
        if began >= end || result.errors + result.mismatched >= MAX_ERRORS_PER_CLIENT {
            break;
        }
        let id = slot as u64 * 1_000_000_000 + n;
        message.clear();
        let _ = write!(message, "bench {id}");
        let outcome = match session {
            Some(session) => conn.echo(session, id, &message),
            None => conn.modern_echo(id, &message),
        };
        match outcome {
            Ok(answered) => {
                if began >= measure_from {
                    result.sample(began, answered);
                    result.last_done = Some(Instant::now());
                }
            }
            Err(e) => {
                if e.is::<Mismatch>() {
                    result.mismatched += 1;
                } else {
                    result.errors += 1;
                }
                result.count_kind(error_kind(e.as_ref()));
                result.first(|| format!("slot {slot}: {e}"));
            }
        }
    }
    result.retries = conn.retries;
    result.sse_answers = conn.sse_answers;
    result.json_answers = conn.json_answers;
    result
}

/// One client's sessions of `streamable` (`initialize`, `notifications/initialized`, one
/// `tools/call echo`, `DELETE`), one after another until `end` (or
/// `MAX_ERRORS_PER_CLIENT` failed ones), on one keep-alive connection.
fn mcp_churn_client(client: usize, target: &Target, measure_from: Instant, end: Instant) -> Tally {
    let mut conn = McpConn::new(target);
    let mut result = client_sessions(
        client,
        measure_from,
        end,
        MAX_ERRORS_PER_CLIENT,
        |message| {
            let session = conn.initialize().map_err(|e| ("initialize", e))?;
            conn.initialized(&session)
                .map_err(|e| ("notifications/initialized", e))?;
            conn.echo(&session, 1, message)
                .map_err(|e| ("tools/call", e))?;
            conn.delete(&session).map(Some).map_err(|e| ("DELETE", e))
        },
    );
    result.retries = conn.retries;
    result
}

// ---------------------------------------------------------------------------------------
// `modern`: stateless MCP 2026-07-28 `tools/call echo`

fn modern(args: &[String]) -> Result<()> {
    let flags = Flags::parse(args)?;
    let load = LoadArgs::parse(&flags)?;
    let (target, pid, out) = (load.target, load.pid, load.out);
    let inflight = flags.list("inflight", &[1, 16, 64])?;
    let window = flags.window()?;
    if inflight.iter().any(|&n| n == 0 || n > 1000) {
        return Err("--inflight takes counts of 1-1000".into());
    }
    let pid_s = pid.to_string();

    out.put_setup(load.auth)?;
    Reading::take(pid)?.put(&out, "", "before")?;
    // One call first: a server that does not serve the revision (or refuses the token)
    // stops the run here, with its answer, rather than filling every level with errors.
    eprintln!("load: modern: one stateless tools/call echo ({MODERN_VERSION})");
    if let Err(e) = McpConn::new(&target).modern_echo(1, "check") {
        out.put("check_error", one_line(&e.to_string()))?;
        return Err(format!("the first stateless call failed: {e}").into());
    }
    for &slots in &inflight {
        eprintln!("load: modern echo, {slots} in flight, {window}");
        let r = mcp_echo(&target, &pid_s, EchoMode::Stateless, slots, window)?;
        put_echo(&out, slots, &r)?;
    }
    // Every slot's connection is closed by now.
    thread::sleep(SETTLE);
    Reading::take(pid)?.put(&out, "", "after")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// `startup`: exec -> first accepted connection

fn startup(args: &[String]) -> Result<()> {
    let flags = Flags::parse(args)?;
    let out = Out {
        path: flags.required("out")?.to_string(),
    };
    let runs: usize = flags.number("runs", 20)?;
    if !(1..=1000).contains(&runs) {
        return Err("--runs must be 1-1000".into());
    }
    let (program, cmd_args) = flags
        .rest
        .split_first()
        .ok_or("startup needs -- CMD [ARGS...]")?;
    let mut ready = Vec::with_capacity(runs);
    let mut answered = Vec::with_capacity(runs);
    for _ in 0..runs {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let began = Instant::now();
        let mut child = Command::new(program)
            .args(cmd_args)
            .env("PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let outcome = first_contact(addr, began, &mut child);
        let _ = child.kill();
        let _ = child.wait();
        let (connected, responded) = outcome?;
        ready.push(connected);
        answered.push(responded);
    }
    let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1000.0);
    ready.sort_unstable();
    answered.sort_unstable();
    out.put("startup_runs", runs)?;
    out.put("ready_ms.median", ms(ready[runs / 2]))?;
    out.put("ready_ms.min", ms(ready[0]))?;
    out.put("ready_ms.max", ms(ready[runs - 1]))?;
    out.put("first_response_ms.median", ms(answered[runs / 2]))?;
    Ok(())
}

/// Polls `addr` every 0.5 ms (for 10 s at most) until a connection is accepted, then asks
/// for `/` and waits for any status line. Both times are measured from `began`.
fn first_contact(
    addr: SocketAddr,
    began: Instant,
    child: &mut std::process::Child,
) -> Result<(Duration, Duration)> {
    let give_up = began + Duration::from_secs(10);
    let stream = loop {
        if let Ok(stream) = TcpStream::connect(addr) {
            break stream;
        }
        if Instant::now() > give_up {
            return Err("the server did not accept a connection within 10 s".into());
        }
        if let Some(status) = child.try_wait()? {
            return Err(format!("the server exited ({status}) before accepting").into());
        }
        thread::sleep(Duration::from_micros(500));
    };
    let connected = began.elapsed();
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(stream);
    write!(
        reader.get_mut(),
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    read_head(&mut reader)?;
    Ok((connected, began.elapsed()))
}

// ---------------------------------------------------------------------------------------
// `report`: the table

fn report(args: &[String]) -> Result<()> {
    let [warden, peer] = args else {
        return Err("usage: load report WARDEN_FILE PEER_FILE".into());
    };
    let (w, p) = (Figures(read_results(warden)?), Figures(read_results(peer)?));
    let num = |m: &Figures, k: &str| -> Option<f64> { m.0.get(k).and_then(|v| v.parse().ok()) };
    let both = |k: &str| [num(&w, k), num(&p, k)];
    let levels: Vec<String> = keys_with_prefix(&w.0, "rss_kib.")
        .into_iter()
        .filter(|l| l != "idle")
        .collect();
    let inflight = keys_with_prefix(&w.0, "calls_per_s.");
    let top = levels.last().cloned();

    // Derived: KiB per held session, from idle to the largest level.
    let per_session = |m: &Figures| -> Option<f64> {
        let top = top.as_ref()?;
        let n: f64 = top.parse().ok()?;
        Some((num(m, &format!("rss_kib.{top}"))? - num(m, "rss_kib.idle")?) / n)
    };

    let mut t = String::new();
    let auth = |m: &Figures| {
        m.0.get("auth")
            .or(m.0.get("churn.auth"))
            .map_or("?", |a| if a == "on" { "auth on" } else { "no auth" })
    };
    let _ = writeln!(
        t,
        "| measure | mcp-warden ({}) | TS SDK peer ({}) | warden/peer |",
        auth(&w),
        auth(&p)
    );
    let _ = writeln!(t, "|---|---:|---:|---:|");
    let mib = |v: f64| format!("{:.1} MiB", v / 1024.0);
    let kib = |v: f64| format!("{v:.1} KiB");
    let int = |v: f64| format!("{v:.0}");
    let us = |v: f64| format!("{v:.0} µs");
    let ms = |v: f64| format!("{v:.1} ms");

    row(&mut t, "RSS idle", &both("rss_kib.idle"), &mib);
    for l in &levels {
        let name = format!("RSS, {l} sessions held");
        row(&mut t, &name, &both(&format!("rss_kib.{l}")), &mib);
    }
    if let Some(top) = &top {
        row(
            &mut t,
            &format!("RSS per held session (idle → {top})"),
            &[per_session(&w), per_session(&p)],
            &kib,
        );
    }
    row(&mut t, "threads idle", &both("threads.idle"), &int);
    for l in &levels {
        let name = format!("threads, {l} sessions held");
        row(&mut t, &name, &both(&format!("threads.{l}")), &int);
    }
    for f in &inflight {
        // No CPU rows: `run` does not measure it.
        echo_rows(&mut t, &[&w, &p], f);
    }
    for (name, prefix) in [
        ("lost answers (all levels)", "lost"),
        ("mismatched answers (all levels)", "mismatched"),
        ("failed POSTs (all levels)", "errors"),
        ("POSTs resent on a new connection", "retries"),
    ] {
        let (a, b) = (w.total(prefix), p.total(prefix));
        if a.is_none() && b.is_none() {
            continue;
        }
        let cell = |v: Option<f64>| v.map_or("-".to_string(), int);
        text_row(&mut t, name, &[cell(a), cell(b)]);
    }
    let runs = w.0.get("startup_runs").map_or("?", String::as_str);
    row(
        &mut t,
        &format!("ready: exec → first accepted connection, median of {runs} (auth off)"),
        &both("ready_ms.median"),
        &ms,
    );
    row(
        &mut t,
        "exec → first HTTP response, median",
        &both("first_response_ms.median"),
        &ms,
    );
    let churn_levels = keys_with_prefix(&w.0, "churn.sessions_per_s.");
    churn_rows(&mut t, &w.0, &p.0, &churn_levels);
    print!("{t}");

    for (m, name) in [(&w, "mcp-warden"), (&p, "peer")] {
        for f in &inflight {
            if let Some(e) = m.0.get(&format!("first_error.{f}")) {
                println!("{name}, {f} in flight, first problem: {e}");
            }
        }
        for c in &churn_levels {
            if let Some(kinds) = m.0.get(&format!("churn.error_kinds.{c}")) {
                println!("{name}, churn with {c} clients, errors: {kinds}");
            }
            if let Some(e) = m.0.get(&format!("churn.first_error.{c}")) {
                println!("{name}, churn with {c} clients, first error: {e}");
            }
        }
        if let Some(e) = m.0.get("churn.warm_error") {
            println!("{name}, warm idle: {e}");
        }
        for round in ["burst", "burst2"] {
            if let Some(e) = m.0.get(&format!("churn.{round}_error")) {
                println!("{name}, {round}: {e}");
            }
        }
    }

    // The issue's targets, for mcp-warden.
    println!();
    println!("Targets (mcp-warden):");
    let times = |v: f64| format!("{v:.2}×");
    let to_peer = |key: &str| {
        let [a, b] = both(key);
        ratio(a, b)
    };
    target_line("idle RSS ≤ 3 MiB", num(&w, "rss_kib.idle"), &mib, |v| {
        v <= 3.0 * 1024.0
    });
    target_line(
        "≤ 24 KiB RSS per held session",
        per_session(&w),
        &kib,
        |v| v <= 24.0,
    );
    target_line(
        "calls/s ≥ 5× the TS peer at 16 in flight",
        to_peer("calls_per_s.16"),
        &times,
        |r| r >= 5.0,
    );
    target_line(
        "p99 ≤ 2 ms at 16 in flight",
        num(&w, "p99_us.16"),
        &us,
        |v| v <= 2000.0,
    );
    target_line(
        "ready in ≤ 20 ms (auth off)",
        num(&w, "ready_ms.median"),
        &ms,
        |v| v <= 20.0,
    );
    let lost = w
        .total("lost")
        .map(|l| l + w.total("mismatched").unwrap_or(0.0));
    println!(
        "- no lost or mismatched answers: {}",
        verdict(lost.map(|l| l == 0.0))
    );
    target_line(
        "churn sessions/s ≥ 10× the TS peer with 16 clients",
        to_peer("churn.sessions_per_s.16"),
        &times,
        |r| r >= 10.0,
    );
    target_line(
        "churn with zero errors (all levels)",
        w.total("churn.errors"),
        &int,
        |e| e == 0.0,
    );
    // The burst target: 1 s after the burst closed, back within 10 % of the server idle as
    // it was right before the burst (warm idle: it had served one session, so the code a
    // session runs is already paged in). Beside it, two readings that say what the target
    // alone would not: the second burst against the first one's leftovers (does what stays
    // grow?), and the first burst against the server as started (cold idle: code pages the
    // first session ran count as growth).
    let burst = w.0.get("churn.burst").map_or("?", String::as_str);
    let back = burst_back(&w.0, "warm_idle", "burst_after_1s");
    println!(
        "- VmRSS and threads back within 10 % of idle 1 s after a {burst}-session burst has closed (idle: right before the burst, after one session): {} — {}",
        back.as_ref().map_or("-".into(), BurstBack::describe),
        verdict(back.as_ref().map(|b| b.ok))
    );
    for (reference, after, label) in [
        (
            "burst_after_1s",
            "burst2_after_1s",
            "growth across bursts: 1 s after the second burst, against 1 s after the first",
        ),
        (
            "cold_idle",
            "burst_after_1s",
            "1 s after the first burst, against cold idle (as started, before any session: the code a session runs is paged in by the first one)",
        ),
    ] {
        println!(
            "- (not a target) {label}: {}",
            burst_back(&w.0, reference, after)
                .as_ref()
                .map_or("-".into(), BurstBack::describe),
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// `report-streamable`: the Streamable HTTP table (mcp-warden, rmcp, the TypeScript SDK)

fn report_streamable(args: &[String]) -> Result<()> {
    let [warden, rmcp, ts] = args else {
        return Err("usage: load report-streamable WARDEN_FILE RMCP_FILE TS_FILE".into());
    };
    let sides = [
        Figures(read_results(warden)?),
        Figures(read_results(rmcp)?),
        Figures(read_results(ts)?),
    ];
    let [w, r, _] = &sides;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| measure | mcp-warden ({}) | rmcp ({}) | TS SDK ({}) | warden/rmcp | warden/TS |",
        sides[0].auth(),
        sides[1].auth(),
        sides[2].auth()
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|");
    let mib = |v: f64| format!("{:.1} MiB", v / 1024.0);
    let kib = |v: f64| format!("{v:.2} KiB");
    let int = |v: f64| format!("{v:.0}");
    let us = |v: f64| format!("{v:.0} µs");
    let ms = |v: f64| format!("{v:.1} ms");
    let each = |f: &dyn Fn(&Figures) -> Option<f64>| sides.each_ref().map(f);
    let each_text = |f: &dyn Fn(&Figures) -> String| sides.each_ref().map(f);
    let all = sides.each_ref();

    text_row(
        &mut t,
        "answers to tools/call came as",
        &each_text(&Figures::answers_came_as),
    );

    let hold =
        w.0.get("hold")
            .or(r.0.get("hold"))
            .cloned()
            .unwrap_or_else(|| "?".into());
    for (label, key) in [
        ("VmRSS, cold idle (as started)", "rss_kib.cold_idle"),
        ("VmRSS, warm idle (after one session)", "rss_kib.warm_idle"),
        (
            "VmRSS, {hold} initialized sessions held, no stream",
            "rss_kib.held",
        ),
        (
            "VmRSS, 1 s after DELETE of all of them",
            "rss_kib.after_delete",
        ),
    ] {
        let label = label.replace("{hold}", &hold);
        row(&mut t, &label, &each(&|f| f.num(key)), &mib);
    }
    row(
        &mut t,
        "RSS per held session (warm idle → held)",
        &each(&|f| f.per_session("warm_idle")),
        &kib,
    );
    row(
        &mut t,
        "RSS per held session (cold idle → held)",
        &each(&|f| f.per_session("cold_idle")),
        &kib,
    );
    row(
        &mut t,
        "RssAnon per held session (warm idle → held)",
        &each(&|f| {
            Some((f.num("rss_anon_kib.held")? - f.num("rss_anon_kib.warm_idle")?) / f.num("hold")?)
        }),
        &kib,
    );
    for (name, key) in [
        ("threads: warm idle / sessions held", "threads"),
        ("open fds: warm idle / sessions held", "fds"),
    ] {
        let pair = |f: &Figures| -> String {
            match (
                f.num(&format!("{key}.warm_idle")),
                f.num(&format!("{key}.held")),
            ) {
                (Some(a), Some(b)) => format!("{a:.0} / {b:.0}"),
                _ => "-".into(),
            }
        };
        text_row(&mut t, name, &each_text(&pair));
    }
    row(
        &mut t,
        &format!("time to open the {hold} sessions (8 clients)"),
        &each(&|f| f.num("hold_open_ms")),
        &ms,
    );

    for l in &levels_of(&all[..2], "calls_per_s.") {
        echo_rows(&mut t, &all, l);
    }
    for (name, prefix) in [
        ("failed calls (all levels)", "errors"),
        ("wrong answers (all levels)", "mismatched"),
        (
            "requests resent on a new connection (all levels)",
            "retries",
        ),
    ] {
        row(&mut t, name, &each(&|f| f.total(prefix)), &int);
    }

    for c in &levels_of(&all[..2], "sessions.per_s.") {
        let k = |name: &str| format!("sessions.{name}.{c}");
        for (name, key, fmt) in [
            (
                "sessions/s (initialize … DELETE)",
                "per_s",
                &int as &dyn Fn(f64) -> String,
            ),
            ("session p50", "p50_us", &us),
            ("session p99", "p99_us", &us),
            ("session errors", "errors", &int),
            ("server CPU per session", "server_cpu_us", &us),
            ("load client CPU per session", "client_cpu_us", &us),
        ] {
            let name = format!("{name}, {c} clients");
            row(&mut t, &name, &each(&|f| f.num(&k(key))), fmt);
        }
        let statuses = |f: &Figures| {
            f.0.get(&k("delete_statuses"))
                .cloned()
                .unwrap_or_else(|| "-".into())
        };
        text_row(
            &mut t,
            &format!("DELETE answered, {c} clients (warm-up included)"),
            &each_text(&statuses),
        );
    }
    print!("{t}");

    for (f, name) in sides.iter().zip(["mcp-warden", "rmcp", "TS SDK"]) {
        for (key, value) in &f.0 {
            let problem = key.contains("first_error")
                || key.contains("error_kinds")
                || key == "warm_error"
                || key == "hold_error";
            if problem {
                println!("{name}: {key}: {value}");
            }
        }
        if let Some(n) = f.num("hold_delete_errors").filter(|&n| n > 0.0) {
            println!("{name}: {n:.0} held sessions could not be deleted");
        }
    }

    println!();
    println!("Targets (mcp-warden, Streamable HTTP, auth on):");
    let (wc, rc) = (w.num("calls_per_s.16"), r.num("calls_per_s.16"));
    println!(
        "- calls/s ≥ 1.5× rmcp's at 16 in flight: {} — {}",
        versus(wc, rc),
        verdict(ratio(wc, rc).map(|x| x >= 1.5))
    );
    target_line(
        "p99 ≤ 1 ms at 16 in flight",
        w.num("p99_us.16"),
        &us,
        |v| v <= 1000.0,
    );
    for (idle, label) in [
        ("warm_idle", "from warm idle (after one session)"),
        ("cold_idle", "from cold idle (as started)"),
    ] {
        target_line(
            &format!("≤ 4 KiB RSS per initialized session without a stream, {label}"),
            w.per_session(idle),
            &kib,
            |v| v <= 4.0,
        );
    }
    println!(
        "- (not a target) failed calls, wrong answers and failed sessions: {}",
        w.totals(&["errors", "mismatched", "sessions.errors"])
            .map_or("-".into(), int)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// `report-modern`: the stateless 2026-07-28 table (mcp-warden, the TypeScript SDK v2)

fn report_modern(args: &[String]) -> Result<()> {
    let [warden, peer] = args else {
        return Err("usage: load report-modern WARDEN_FILE PEER_FILE".into());
    };
    let (w, p) = (Figures(read_results(warden)?), Figures(read_results(peer)?));
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| measure | mcp-warden ({}) | TS SDK v2 ({}) | warden/TS |",
        w.auth(),
        p.auth()
    );
    let _ = writeln!(t, "|---|---:|---:|---:|");
    let int = |v: f64| format!("{v:.0}");
    let mib = |v: f64| format!("{:.1} MiB", v / 1024.0);

    text_row(
        &mut t,
        "answers to tools/call came as",
        &[w.answers_came_as(), p.answers_came_as()],
    );
    for l in &levels_of(&[&w, &p], "calls_per_s.") {
        echo_rows(&mut t, &[&w, &p], l);
    }
    for (name, prefix) in [
        ("failed calls (all levels)", "errors"),
        ("wrong answers (all levels)", "mismatched"),
        (
            "requests resent on a new connection (all levels)",
            "retries",
        ),
    ] {
        let cell = |f: &Figures| f.total(prefix).map_or("-".to_string(), int);
        text_row(&mut t, name, &[cell(&w), cell(&p)]);
    }
    for (name, key) in [
        ("VmRSS before the load", "rss_kib.before"),
        (
            "VmRSS after the load (1 s after the last level)",
            "rss_kib.after",
        ),
    ] {
        row(&mut t, name, &[w.num(key), p.num(key)], &mib);
    }
    print!("{t}");

    for (f, name) in [(&w, "mcp-warden"), (&p, "TS SDK v2")] {
        for (key, value) in &f.0 {
            if key.contains("first_error") || key.contains("error_kinds") || key == "check_error" {
                println!("{name}: {key}: {value}");
            }
        }
    }

    println!();
    println!("Target (mcp-warden, stateless 2026-07-28, auth on):");
    let (wc, pc) = (w.num("calls_per_s.16"), p.num("calls_per_s.16"));
    let verdict = match (ratio(wc, pc), w.0.get("auth").map(String::as_str)) {
        (None, _) => "not measured",
        (Some(x), Some("on")) if x >= 10.0 => "met",
        (Some(_), Some("on")) => "NOT met",
        (Some(_), _) => "not evaluated: mcp-warden ran without authentication",
    };
    println!(
        "- calls/s ≥ 10× the TS SDK v2's at 16 in flight: {} — {verdict}",
        versus(wc, pc),
    );
    println!(
        "- (not a target) mcp-warden's failed calls and wrong answers: {}",
        w.totals(&["errors", "mismatched"]).map_or("-".into(), int)
    );
    Ok(())
}

/// A burst's reading 1 s after the close (`burst_after_1s` or `burst2_after_1s`), against
/// an earlier reading (`cold_idle`, `warm_idle` or the first burst's `burst_after_1s`).
struct BurstBack {
    rss_idle: f64,
    rss_after: f64,
    /// `RssAnon` and `RssFile` after minus idle, in KiB.
    anon_change: f64,
    file_change: f64,
    threads_idle: f64,
    threads_after: f64,
    /// VmRSS and threads both at most 1.1 × idle.
    ok: bool,
}

impl BurstBack {
    fn rss_pct(&self) -> f64 {
        (self.rss_after - self.rss_idle) / self.rss_idle
    }

    fn threads_pct(&self) -> f64 {
        (self.threads_after - self.threads_idle) / self.threads_idle
    }

    /// `VmRSS 1644 → 1868 KiB (+13.6 %: RssAnon +96 KiB, RssFile +128 KiB), threads 4 → 4
    /// (+0.0 %)`
    fn describe(&self) -> String {
        format!(
            "VmRSS {:.0} → {:.0} KiB ({}: RssAnon {:+.0} KiB, RssFile {:+.0} KiB), threads {:.0} → {:.0} ({})",
            self.rss_idle,
            self.rss_after,
            signed_pct(self.rss_pct()),
            self.anon_change,
            self.file_change,
            self.threads_idle,
            self.threads_after,
            signed_pct(self.threads_pct())
        )
    }
}

fn burst_back(m: &BTreeMap<String, String>, reference: &str, after: &str) -> Option<BurstBack> {
    let num = |k: &str| -> Option<f64> { m.get(k).and_then(|v| v.parse().ok()) };
    let pair = |figure: &str| -> Option<(f64, f64)> {
        Some((
            num(&format!("churn.{figure}.{reference}"))?,
            num(&format!("churn.{figure}.{after}"))?,
        ))
    };
    let (rss_idle, rss_after) = pair("rss_kib")?;
    let (anon_idle, anon_after) = pair("rss_anon_kib")?;
    let (file_idle, file_after) = pair("rss_file_kib")?;
    let (threads_idle, threads_after) = pair("threads")?;
    Some(BurstBack {
        rss_idle,
        rss_after,
        anon_change: anon_after - anon_idle,
        file_change: file_after - file_idle,
        threads_idle,
        threads_after,
        ok: rss_after <= 1.1 * rss_idle && threads_after <= 1.1 * threads_idle,
    })
}

fn signed_pct(change: f64) -> String {
    format!("{:+.1} %", change * 100.0)
}

/// The churn part of the table: the burst, then each level of concurrent clients.
fn churn_rows(
    t: &mut String,
    w: &BTreeMap<String, String>,
    p: &BTreeMap<String, String>,
    levels: &[String],
) {
    let num = |m: &BTreeMap<String, String>, k: &str| -> Option<f64> {
        m.get(k).and_then(|v| v.parse().ok())
    };
    let int = |v: f64| format!("{v:.0}");
    let us = |v: f64| format!("{v:.0} µs");
    if w.contains_key("churn.rss_kib.cold_idle") || p.contains_key("churn.rss_kib.cold_idle") {
        let burst = w
            .get("churn.burst")
            .or(p.get("churn.burst"))
            .map_or("?", String::as_str);
        let kib = |v: f64| format!("{v:.0} KiB");
        let shmem = [w, p].iter().any(|m| {
            m.iter()
                .any(|(k, v)| k.starts_with("churn.rss_shmem_kib.") && v != "0")
        });
        // (name, key, in KiB)
        for (figure, key, in_kib) in [
            ("VmRSS", "rss_kib", true),
            ("RssAnon", "rss_anon_kib", true),
            ("RssFile", "rss_file_kib", true),
            ("RssShmem", "rss_shmem_kib", true),
            ("threads", "threads", false),
            ("open fds", "fds", false),
        ] {
            let fmt: &dyn Fn(f64) -> String = if in_kib { &kib } else { &int };
            if key == "rss_shmem_kib" && !shmem {
                continue; // 0 everywhere: VmRSS = RssAnon + RssFile
            }
            for (when, suffix) in [
                ("cold idle (as started)", "cold_idle"),
                ("warm idle (after one session)", "warm_idle"),
                ("{burst}-session burst held", "burst_held"),
                ("1 s after the burst closed", "burst_after_1s"),
                ("second {burst}-session burst held", "burst2_held"),
                ("1 s after the second burst closed", "burst2_after_1s"),
            ] {
                let name = format!("churn server: {figure}, {}", when.replace("{burst}", burst));
                let k = format!("churn.{key}.{suffix}");
                row(t, &name, &[num(w, &k), num(p, &k)], fmt);
            }
        }
        let ms = |m: &BTreeMap<String, String>, key: &str, limit: Duration| match m.get(key) {
            Some(v) if v == "never" => format!("not within {} s", limit.as_secs()),
            Some(v) => format!("{v} ms"),
            None => "-".to_string(),
        };
        for (name, key, limit) in [
            (
                "warm idle: fds and threads back at cold idle after the one session closed",
                "churn.warm_settled_ms",
                SETTLE_LIMIT,
            ),
            (
                "fds back at cold idle after the burst closed (polled every 1 ms)",
                "churn.burst_fds_back_ms",
                BURST_DRAIN,
            ),
            (
                "threads back at cold idle after the burst closed (polled every 1 ms)",
                "churn.burst_threads_back_ms",
                BURST_DRAIN,
            ),
            (
                "fds back at cold idle after the second burst closed",
                "churn.burst2_fds_back_ms",
                BURST_DRAIN,
            ),
            (
                "threads back at cold idle after the second burst closed",
                "churn.burst2_threads_back_ms",
                BURST_DRAIN,
            ),
        ] {
            text_row(t, name, &[ms(w, key, limit), ms(p, key, limit)]);
        }
        for (reference, after, label) in [
            (
                "warm_idle",
                "burst_after_1s",
                "VmRSS and threads within 10 % of warm idle (right before the burst) 1 s after the burst closed",
            ),
            (
                "burst_after_1s",
                "burst2_after_1s",
                "VmRSS and threads within 10 % of the first burst's leftovers 1 s after the second closed",
            ),
            (
                "cold_idle",
                "burst_after_1s",
                "VmRSS and threads within 10 % of cold idle (as started) 1 s after the burst closed",
            ),
        ] {
            let back = |m: &BTreeMap<String, String>| {
                burst_back(m, reference, after).map_or("-".to_string(), |b| {
                    format!(
                        "{} (VmRSS {}, threads {})",
                        if b.ok { "yes" } else { "no" },
                        signed_pct(b.rss_pct()),
                        signed_pct(b.threads_pct())
                    )
                })
            };
            text_row(t, label, &[back(w), back(p)]);
        }
    }
    for c in levels {
        // (name, key, format: `None` for the value as written)
        for (name, key, fmt) in [
            (
                "churn sessions/s",
                "sessions_per_s",
                Some(&int as &dyn Fn(f64) -> String),
            ),
            ("churn p50 of the whole session", "p50_us", Some(&us)),
            ("churn p99 of the whole session", "p99_us", Some(&us)),
            ("churn errors", "errors", None),
            ("server CPU per session", "server_cpu_us", Some(&us)),
            ("load client CPU per session", "client_cpu_us", Some(&us)),
        ] {
            let name = format!("{name}, {c} clients");
            let key = format!("churn.{key}.{c}");
            match fmt {
                Some(fmt) => row(t, &name, &[num(w, &key), num(p, &key)], fmt),
                None => {
                    let cell = |m: &BTreeMap<String, String>| {
                        m.get(&key).cloned().unwrap_or_else(|| "-".to_string())
                    };
                    text_row(t, &name, &[cell(w), cell(p)]);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// What the three reports share: result files, rows, targets

/// Figures of one result file, by key.
struct Figures(BTreeMap<String, String>);

impl Figures {
    fn num(&self, key: &str) -> Option<f64> {
        self.0
            .get(key)
            .and_then(|v| v.parse().ok())
            .filter(|v: &f64| !v.is_nan())
    }

    /// KiB of VmRSS per held session, from `idle` (`cold_idle` or `warm_idle`).
    fn per_session(&self, idle: &str) -> Option<f64> {
        let n = self.num("hold")?;
        Some((self.num("rss_kib.held")? - self.num(&format!("rss_kib.{idle}"))?) / n)
    }

    /// The sum of `<prefix>.<level>` over every level present.
    fn total(&self, prefix: &str) -> Option<f64> {
        let keys = keys_with_prefix(&self.0, &format!("{prefix}."));
        (!keys.is_empty()).then(|| {
            keys.iter()
                .filter_map(|k| self.num(&format!("{prefix}.{k}")))
                .sum()
        })
    }

    /// The sum of the `total`s of `prefixes`, if any of them is present.
    fn totals(&self, prefixes: &[&str]) -> Option<f64> {
        let totals: Vec<Option<f64>> = prefixes.iter().map(|p| self.total(p)).collect();
        totals
            .iter()
            .any(Option::is_some)
            .then(|| totals.iter().flatten().sum::<f64>())
    }

    /// The table header's word on authentication.
    fn auth(&self) -> &'static str {
        match self.0.get("auth").map(String::as_str) {
            Some("on") => "auth on",
            Some(_) => "no auth",
            None => "?",
        }
    }

    /// How the answers to `tools/call` came, over every level.
    fn answers_came_as(&self) -> String {
        match (self.total("sse_answers"), self.total("json_answers")) {
            (Some(sse), Some(json)) if sse == 0.0 && json > 0.0 => "application/json".into(),
            (Some(sse), Some(json)) if json == 0.0 && sse > 0.0 => "text/event-stream".into(),
            (Some(sse), Some(json)) => format!("{json:.0} JSON, {sse:.0} SSE"),
            _ => "-".into(),
        }
    }
}

/// The levels (suffixes of `prefix`) of the first side that has any.
fn levels_of(sides: &[&Figures], prefix: &str) -> Vec<String> {
    sides
        .iter()
        .map(|f| keys_with_prefix(&f.0, prefix))
        .find(|levels| !levels.is_empty())
        .unwrap_or_default()
}

/// The rows of one level of echo calls (`calls_per_s.<level>` and so on), for every side.
fn echo_rows(t: &mut String, sides: &[&Figures], level: &str) {
    let int = |v: f64| format!("{v:.0}");
    let us = |v: f64| format!("{v:.0} µs");
    let us1 = |v: f64| format!("{v:.1} µs");
    for (name, key, fmt) in [
        (
            "echo calls/s",
            "calls_per_s",
            &int as &dyn Fn(f64) -> String,
        ),
        ("echo p50", "p50_us", &us),
        ("echo p99", "p99_us", &us),
        ("server CPU per call", "server_cpu_us", &us1),
        ("load client CPU per call", "client_cpu_us", &us1),
    ] {
        let key = format!("{key}.{level}");
        let values: Vec<Option<f64>> = sides.iter().map(|f| f.num(&key)).collect();
        row(t, &format!("{name}, {level} in flight"), &values, fmt);
    }
}

/// The first side's figure against the second's: `40964 vs 19791 calls/s, 2.07×`.
fn versus(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b, ratio(a, b)) {
        (Some(a), Some(b), Some(x)) => format!("{a:.0} vs {b:.0} calls/s, {x:.2}×"),
        _ => "-".into(),
    }
}

/// `a / b`, where both are known and `b` is above 0.
fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    a.zip(b).filter(|(_, b)| *b > 0.0).map(|(a, b)| a / b)
}

/// A target's line: `- <label>: <value> — <verdict>`, `met` saying whether the value meets
/// it.
fn target_line(
    label: &str,
    value: Option<f64>,
    fmt: &dyn Fn(f64) -> String,
    met: impl Fn(f64) -> bool,
) {
    println!(
        "- {label}: {} — {}",
        value.map_or("-".into(), fmt),
        verdict(value.map(met))
    );
}

/// A target's verdict: met, not met, or not measured (`None`).
fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "not measured",
    }
}

/// One table row: each side's figure, then the first side's ratio to each other side's.
/// Left out when no side has the figure (not measured in this run: BENCH_PHASES).
fn row(t: &mut String, name: &str, sides: &[Option<f64>], fmt: &dyn Fn(f64) -> String) {
    // NaN: a percentile of no samples at all.
    let sides: Vec<Option<f64>> = sides.iter().map(|v| v.filter(|v| !v.is_nan())).collect();
    if sides.iter().all(Option::is_none) {
        return;
    }
    let ratio = |b: Option<f64>| match (sides[0], b) {
        (Some(a), Some(b)) if b != 0.0 && a / b < 0.1 => format!("{:.4}", a / b),
        (Some(a), Some(b)) if b != 0.0 => format!("{:.2}", a / b),
        _ => "-".to_string(),
    };
    let _ = write!(t, "| {name} |");
    for v in &sides {
        let _ = write!(t, " {} |", v.map_or("-".to_string(), fmt));
    }
    for &b in &sides[1..] {
        let _ = write!(t, " {} |", ratio(b));
    }
    t.push('\n');
}

/// One table row of text: each side's cell, and empty ratio cells.
fn text_row(t: &mut String, name: &str, cells: &[String]) {
    let _ = write!(t, "| {name} |");
    for cell in cells {
        let _ = write!(t, " {cell} |");
    }
    for _ in 1..cells.len() {
        t.push_str(" |");
    }
    t.push('\n');
}

/// The suffixes of keys `prefix<suffix>`, numeric suffixes in numeric order.
fn keys_with_prefix(m: &BTreeMap<String, String>, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = m
        .keys()
        .filter_map(|k| k.strip_prefix(prefix))
        .map(str::to_string)
        .collect();
    keys.sort_by_key(|k| (k.parse::<u64>().unwrap_or(0), k.clone()));
    keys
}
