//! A tiny JWKS endpoint on loopback for tests and `examples/dev-issuer.rs`: one thread,
//! std::net only, one request per connection (`Connection: close`).
//!
//! The body, and how the server answers (normally, with a status, with garbage, by closing,
//! by hanging), can be changed while it runs; every request is counted. Dropping the server
//! stops its thread and joins it.
//!
//! Self-contained on purpose (std only): it is included both as `tests/common/jwks_server.rs`
//! and, through `#[path]`, by the example.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The path the document is served at; any other path gets 404 (and is still counted).
pub const PATH: &str = "/jwks.json";

/// How the server answers the next requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `200 OK`, `application/json`, the current body.
    Normal,
    /// This status with a short text body, e.g. 500 or 404.
    Status(u16),
    /// Bytes that are not HTTP at all, then close.
    Garbage,
    /// Close the connection without answering.
    Close,
    /// Read the request, then answer nothing until the mode changes or the server stops
    /// (for timeout tests).
    Hang,
}

struct Shared {
    body: Mutex<String>,
    mode: Mutex<Mode>,
    delay: Mutex<Duration>,
    last_request: Mutex<Option<String>>,
    hits: AtomicUsize,
    stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running JWKS server; stops on drop.
pub struct JwksServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl JwksServer {
    /// Serves `body` on 127.0.0.1 at a port the OS picks.
    pub fn start(body: impl Into<String>) -> JwksServer {
        JwksServer::bind("127.0.0.1:0", body).expect("bind a loopback port for the JWKS server")
    }

    /// Serves `body` on `addr` (e.g. `"127.0.0.1:8081"`).
    pub fn bind(addr: &str, body: impl Into<String>) -> io::Result<JwksServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            body: Mutex::new(body.into()),
            mode: Mutex::new(Mode::Normal),
            delay: Mutex::new(Duration::ZERO),
            last_request: Mutex::new(None),
            hits: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let worker = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("jwks-server".into())
            .spawn(move || serve(&listener, &worker))?;
        Ok(JwksServer {
            addr,
            shared,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT/jwks.json`.
    pub fn url(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the document served from now on.
    pub fn set_body(&self, body: impl Into<String>) {
        *lock(&self.shared.body) = body.into();
    }

    pub fn body(&self) -> String {
        lock(&self.shared.body).clone()
    }

    /// Requests received so far (every path, every mode).
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.shared.mode) = mode;
    }

    /// Answer every request with `code` (e.g. 500) until `set_mode(Mode::Normal)`.
    pub fn set_status(&self, code: u16) {
        self.set_mode(Mode::Status(code));
    }

    /// Answer with bytes that are not HTTP.
    pub fn set_garbage(&self) {
        self.set_mode(Mode::Garbage);
    }

    /// Back to `200` with the body.
    pub fn set_normal(&self) {
        self.set_mode(Mode::Normal);
    }

    /// Wait this long before answering each request (the server stays stoppable).
    pub fn set_delay(&self, delay: Duration) {
        *lock(&self.shared.delay) = delay;
    }

    /// The head (request line and headers) of the last request received.
    pub fn last_request(&self) -> Option<String> {
        lock(&self.shared.last_request).clone()
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept(); failure means it is not blocked there.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A loopback URL where nothing listens, ever: port 0. No socket can listen on TCP port 0
/// (binding it asks the OS for a free port instead), and a connection to it is refused
/// at once (Linux answers `ECONNREFUSED`). A port taken from the OS and freed again would
/// not do: until the URL is used, another test may bind that port, and a port kept bound
/// for the whole test is listening (std has no bound-but-not-listening socket), so it
/// would accept the connection rather than refuse it.
pub fn unreachable_url() -> String {
    format!("http://127.0.0.1:0{PATH}")
}

fn serve(listener: &TcpListener, shared: &Shared) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(stream) = stream {
            // A failing client is the client's problem; keep serving.
            let _ = handle(stream, shared);
        }
    }
}

/// Sleeps up to `total`, returning early (false) when the server is stopping.
fn pause(shared: &Shared, total: Duration, mut keep_going: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + total;
    while Instant::now() < end && keep_going() {
        if shared.stop.load(Ordering::SeqCst) {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
    !shared.stop.load(Ordering::SeqCst)
}

fn handle(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;

    let head = read_head(&mut stream)?;
    shared.hits.fetch_add(1, Ordering::SeqCst);
    let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
    *lock(&shared.last_request) = Some(head);

    let delay = *lock(&shared.delay);
    if !pause(shared, delay, || true) {
        return Ok(());
    }

    let mode = lock(&shared.mode).clone();
    match mode {
        Mode::Normal if path == PATH || path.starts_with("/jwks.json?") => {
            let body = lock(&shared.body).clone();
            respond(&mut stream, 200, "application/json", &body)
        }
        Mode::Normal => respond(&mut stream, 404, "text/plain", "not found\n"),
        Mode::Status(code) => respond(&mut stream, code, "text/plain", "injected failure\n"),
        Mode::Garbage => {
            stream.write_all(b"\x00\xffthis is not HTTP\r\n\r\n{\"keys\":")?;
            stream.flush()
        }
        Mode::Close => Ok(()),
        Mode::Hang => {
            // An hour is "forever" for a test; a mode change or drop ends it sooner.
            pause(shared, Duration::from_secs(3600), || {
                *lock(&shared.mode) == Mode::Hang
            });
            Ok(())
        }
    }
}

/// Reads up to the blank line ending the request head (at most 16 KiB).
fn read_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    if head.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "empty request",
        ));
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

fn respond(stream: &mut TcpStream, code: u16, content_type: &str, body: &str) -> io::Result<()> {
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let response = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())?;
    stream.flush()
}
