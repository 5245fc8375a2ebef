//! The HTTP/1.1 layer: accept loop, one thread per connection (reused for the next one if it
//! arrives within `WORKER_LINGER`), request heads parsed by `httparse`, bodies by
//! `Content-Length` or a chunked decoder, responses written in one go.
//!
//! What a request means is decided elsewhere (`transport/`); this file only knows bytes,
//! limits and deadlines. Read top to bottom: `serve` → `connection` → `Conn::read_head` →
//! `Conn::read_body` → `Response`.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::net::RecvFlags;
use serde_json::json;

/// The longest request head (request line and headers) accepted; larger gets `431`.
/// Room for a 16 KiB bearer token and the usual headers.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;
/// The most header fields in one request; more gets `431`.
pub const MAX_HEADERS: usize = 64;
/// How much one read asks the socket for.
const READ_CHUNK_BYTES: usize = 8192;
/// The longest chunk-size line (size and extensions) in a chunked body.
const MAX_CHUNK_LINE_BYTES: usize = 1024;
/// Stack for each connection thread. Request handling is shallow (serde_json caps nesting
/// at 128 levels), and an idle SSE stream touches only a few pages of it.
pub const CONNECTION_STACK_BYTES: usize = 256 * 1024;
/// How long a write to a client may block before the client counts as gone.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a connection idle between requests looks up from its read to see whether the
/// server is shutting down.
const IDLE_POLL: Duration = Duration::from_millis(200);

/// What the application does with a parsed request head. `handle` owns the connection for
/// the length of the request (an SSE stream holds it until the stream ends).
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, conn: &mut Conn, head: &Head) -> Next;
}

/// Whether the connection may carry another request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    KeepAlive,
    Close,
}

/// Limits that apply to every connection.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Deadline for one whole request (head and body), and for an idle keep-alive connection.
    pub request_timeout: Duration,
    /// Largest body accepted (`413` above it).
    pub max_body_bytes: usize,
    /// Open connections at most; one more is answered `503` and closed.
    pub max_connections: usize,
}

/// What the accept loop and every connection share: the shutdown flag and the count of
/// open connections.
#[derive(Debug, Default)]
pub struct Shared {
    stopping: AtomicBool,
    open: AtomicUsize,
}

impl Shared {
    /// Stops accepting, and makes idle connections close and busy ones close after their
    /// current request.
    pub fn begin_shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Connections open now (each SSE stream is one).
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// Counts a connection as open for as long as it lives.
struct OpenGuard(Arc<Shared>);

impl OpenGuard {
    /// Counts one more connection; also returns how many were open before it.
    fn new(shared: &Arc<Shared>) -> (OpenGuard, usize) {
        let before = shared.open.fetch_add(1, Ordering::AcqRel);
        (OpenGuard(Arc::clone(shared)), before)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accepts connections until shutdown begins, each on its own thread. Returns when stopped.
pub fn serve(
    listener: TcpListener,
    handler: Arc<dyn Handler>,
    limits: Limits,
    shared: Arc<Shared>,
) {
    let workers = Workers::default();
    for stream in listener.incoming() {
        if shared.is_stopping() {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off a moment instead of spinning.
                log::warn!("accept failed: {e}");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let (guard, open) = OpenGuard::new(&shared);
        if open >= limits.max_connections {
            refuse_over_capacity(stream, limits.max_connections);
            continue; // `guard` drops here: the refused connection no longer counts
        }
        let handler = Arc::clone(&handler);
        let continues = workers.clone();
        let job = move || {
            let _open = guard;
            connection(stream, handler, limits, &_open.0, continues);
        };
        if let Err(e) = workers.run(Box::new(job)) {
            log::warn!("cannot start a thread for a new connection, dropping it: {e}");
        }
    }
}

/// One connection's work, run on a thread of its own.
type Job = Box<dyn FnOnce() + Send>;

/// How long a connection thread whose connection has ended waits for the next one before
/// it exits. Under churn (agents that connect, call once and leave: at 20 connections a
/// second or more) most connections find such a thread, and skip creating one (and, with
/// musl, mapping and faulting in a fresh stack). Short, so that after a burst the thread
/// count is back at idle within a tenth of a second.
const WORKER_LINGER: Duration = Duration::from_millis(50);
/// Threads at most that wait for a next connection; others exit when theirs ends.
const MAX_IDLE_WORKERS: usize = 64;

/// The connection threads: every connection gets a thread of its own at once, never a
/// place in a queue behind long-lived streams. A thread whose connection has ended is
/// reused for a new one if one arrives within `WORKER_LINGER`; otherwise a new thread is
/// started.
#[derive(Clone, Default)]
struct Workers(Arc<WorkerShared>);

#[derive(Default)]
struct WorkerShared {
    state: Mutex<WorkerState>,
    ready: Condvar,
}

#[derive(Default)]
struct WorkerState {
    /// Threads waiting for a job.
    idle: usize,
    /// Jobs handed to waiting threads and not yet taken: never more than `idle`.
    handed: VecDeque<Job>,
}

impl WorkerShared {
    fn state(&self) -> MutexGuard<'_, WorkerState> {
        // Each critical section is a counter change or a push/pop: never left half-done.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs jobs: `first`, then each handed over while this thread waits.
    fn work(&self, first: Job) {
        let mut job = first;
        loop {
            // A panic in a connection is caught there (`catch_unwind` in dispatch); one
            // that escapes ends only this thread, as before.
            job();
            let mut state = self.state();
            if state.idle >= MAX_IDLE_WORKERS {
                return;
            }
            state.idle += 1;
            let deadline = Instant::now() + WORKER_LINGER;
            let next = loop {
                if let Some(next) = state.handed.pop_front() {
                    break Some(next);
                }
                let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                    break None;
                };
                state = self
                    .ready
                    .wait_timeout(state, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            };
            state.idle -= 1;
            match next {
                Some(next) => job = next,
                None => return,
            }
        }
    }
}

impl Workers {
    /// Runs `job` on a waiting thread, or on a new one.
    fn run(&self, job: Job) -> io::Result<()> {
        let mut state = self.0.state();
        if state.idle > state.handed.len() {
            state.handed.push_back(job);
            drop(state);
            self.0.ready.notify_one();
            return Ok(());
        }
        drop(state);
        let shared = Arc::clone(&self.0);
        thread::Builder::new()
            .name("conn".into())
            .stack_size(CONNECTION_STACK_BYTES)
            .spawn(move || shared.work(job))
            .map(drop)
    }
}

/// `503` to a connection over `MAX_CONNECTIONS`, written from the accept loop with a short
/// timeout (no thread is spent on it), then closed.
fn refuse_over_capacity(mut stream: TcpStream, max: usize) {
    log::debug!("refusing a connection: {max} are open (MAX_CONNECTIONS)");
    let message = "the server is at its connection limit (MAX_CONNECTIONS); retry shortly";
    let response = Response::error(503, "over_capacity", message)
        .header("Retry-After", "1")
        .closing();
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let _ = stream.write_all(&response.to_bytes(Some("close"), ""));
    let _ = stream.shutdown(Shutdown::Write);
}

/// One connection: requests in order until the client closes, a deadline passes, a
/// handler says `Close`, or the server shuts down.
fn connection(
    stream: TcpStream,
    handler: Arc<dyn Handler>,
    limits: Limits,
    shared: &Arc<Shared>,
    workers: Workers,
) {
    let Ok(peer) = stream.peer_addr() else { return };
    // Every response and event is one write; never wait for delayed ACKs (Nagle).
    if stream.set_nodelay(true).is_err() || stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_err() {
        return;
    }
    let conn = Conn {
        stream: Arc::new(stream),
        buf: Vec::new(),
        scratch: Vec::new(),
        peer,
        limits,
        deadline: Instant::now(),
        head_only: false,
        keep_alive: false,
        http10: false,
        keep_open: false,
        shared: Arc::clone(shared),
        status: 0,
        subject: String::new(),
        extra_headers: String::new(),
        handler,
        workers,
        handoff: None,
    };
    serve_connection(conn);
}

/// The request loop of `connection`, also where a connection handed off carries on.
fn serve_connection(mut conn: Conn) {
    let peer = conn.peer;
    let mut head = Head::default();
    loop {
        conn.deadline = Instant::now() + conn.limits.request_timeout;
        let started = Instant::now();
        match conn.read_head(&mut head) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                if let Some(status) = e.status() {
                    log::debug!("{peer}: bad request head: {e}");
                    let _ = conn.send(&Response::error(status, e.code(), &e.to_string()).closing());
                    access_log("-", "-", status, started, "");
                }
                break;
            }
        };
        conn.keep_alive = head.keep_alive();
        conn.http10 = head.version == 0;
        conn.keep_open = false;
        conn.status = 0;
        conn.subject.clear();
        conn.extra_headers.clear();
        let handler = Arc::clone(&conn.handler);
        let next = handler.handle(&mut conn, &head);
        access_log(
            head.method(),
            head.path(),
            conn.status,
            started,
            &conn.subject,
        );
        if let Some(handoff) = conn.handoff.take()
            && !handoff.take_back(&mut conn)
        {
            // The connection carries on on another thread: nothing more here.
            return;
        }
        match next {
            // Only what the response announced: a connection `send` did not promise to keep
            // (or where nothing was sent) closes.
            Next::KeepAlive if conn.keep_open => continue,
            _ => break,
        }
    }
    linger_close(&conn.stream);
}

/// Lets a connection carry on reading requests on another thread while its handler, whose
/// response has gone out already, keeps working (see `Conn::handoff`).
pub struct Handoff(Mutex<Option<Conn>>);

impl Handoff {
    /// Moves the connection to another thread now, which reads its next requests; the
    /// handler's thread no longer touches it. Once; later calls do nothing.
    pub fn now(&self) {
        let Some(conn) = self.0.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let workers = conn.workers.clone();
        let shared = Arc::clone(&conn.shared);
        let job = move || {
            let (_open, _) = OpenGuard::new(&shared);
            serve_connection(conn);
        };
        if let Err(e) = workers.run(Box::new(job)) {
            log::warn!("cannot start a thread to carry a connection on, closing it: {e}");
        }
    }

    /// Gives the connection's state back to `conn` if it was not handed off; `false` when
    /// it was (another thread has it).
    fn take_back(&self, conn: &mut Conn) -> bool {
        match self.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(parked) => {
                conn.buf = parked.buf;
                conn.scratch = parked.scratch;
                true
            }
            None => false,
        }
    }
}

/// What a non-blocking look at `stream` sees: `Some(n)` with `n` > 0 when bytes are
/// waiting, `Some(0)` at EOF (the client closed its side), `None` when nothing has arrived.
/// Nothing is consumed, and the socket's mode is left alone (`MSG_DONTWAIT`), so another
/// thread may be writing to it meanwhile.
pub fn peek_now(stream: &TcpStream) -> io::Result<Option<usize>> {
    let flags = RecvFlags::PEEK | RecvFlags::DONTWAIT;
    match rustix::net::recv(stream, &mut [0u8; 1], flags) {
        Ok((n, _)) => Ok(Some(n)),
        Err(Errno::AGAIN) => Ok(None),
        Err(Errno::INTR) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether the client of a held stream has gone: it closed (EOF), the connection failed,
/// or it sent something, which a stream's client never does. Only "nothing to read yet"
/// means it is still there.
pub fn stream_client_gone(stream: &TcpStream) -> bool {
    !matches!(peek_now(stream), Ok(None))
}

/// Closes after RFC 9112 §9.6: stop sending first, then read and discard what the client
/// still sends (bounded in bytes and time) before closing. Closing with unread bytes makes
/// the kernel send a reset, which can destroy a `413` or `400` before the client reads it.
fn linger_close(stream: &TcpStream) {
    let mut stream = stream;
    const LINGER: Duration = Duration::from_millis(500);
    const MAX_DISCARD: usize = 256 * 1024;
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let end = Instant::now() + LINGER;
    let mut discarded = 0;
    let mut chunk = [0u8; 8192];
    while discarded < MAX_DISCARD {
        let Some(left) = end.checked_duration_since(Instant::now()) else {
            break;
        };
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => discarded += n,
        }
    }
}

/// One line per request at info: method, path (never the query string: it carries session
/// ids), status, duration, subject (`-` when not known, given as ""). An SSE stream's line
/// comes when the stream ends.
fn access_log(method: &str, path: &str, status: u16, started: Instant, subject: &str) {
    log::info!(
        target: "mcp_warden::access",
        "{} {} {} {}ms sub={}",
        method.escape_debug(),
        path.escape_debug(),
        status,
        started.elapsed().as_millis(),
        if subject.is_empty() { "-" } else { subject }
    );
}

/// A parsed request head. One per connection, refilled by each request: its buffers are
/// reused, so a keep-alive connection parses heads without allocating.
#[derive(Debug, Default)]
pub struct Head {
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// The method, the path and the query string, back to back…
    line: String,
    method: Range<usize>,
    path: Range<usize>,
    query: Range<usize>,
    /// …header names (in lower case) and values, back to back in another buffer…
    fields: Vec<u8>,
    /// …and where each field's name and value lie in it, in order.
    spans: Vec<(Range<usize>, Range<usize>)>,
}

impl Head {
    pub fn method(&self) -> &str {
        self.line.get(self.method.clone()).unwrap_or_default()
    }

    /// The path without the query string.
    pub fn path(&self) -> &str {
        self.line.get(self.path.clone()).unwrap_or_default()
    }

    /// The raw query string, without `?`; empty when there is none.
    pub fn query(&self) -> &str {
        self.line.get(self.query.clone()).unwrap_or_default()
    }

    /// The single value of header `name` (lower case), as text. `None` when absent or not
    /// UTF-8; see `all` for repeated headers.
    pub fn header(&self, name: &str) -> Option<&str> {
        std::str::from_utf8(self.all(name).next()?).ok()
    }

    /// Every value of header `name` (lower case).
    pub fn all<'h, 'n>(&'h self, name: &'n str) -> impl Iterator<Item = &'h [u8]> + use<'h, 'n> {
        self.spans
            .iter()
            .filter(move |(n, _)| self.fields.get(n.clone()) == Some(name.as_bytes()))
            .filter_map(|(_, v)| self.fields.get(v.clone()))
    }

    /// The value of query parameter `name`, percent-decoding not applied (ids are hex).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query()
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    fn keep_alive(&self) -> bool {
        let connection = self.header("connection").unwrap_or("");
        let has = |token: &str| {
            connection
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        };
        if self.version == 0 {
            has("keep-alive")
        } else {
            !has("close")
        }
    }
}

/// One client connection, owned by its thread.
pub struct Conn {
    /// Shared with a session that holds this connection's stream (to cut a client that
    /// stops reading, or to see that it left), so no second descriptor is needed.
    stream: Arc<TcpStream>,
    /// Bytes read but not yet consumed (the start of a body, or of the next request).
    buf: Vec<u8>,
    /// Where each read lands before it joins `buf` (`fill`).
    scratch: Vec<u8>,
    peer: SocketAddr,
    limits: Limits,
    /// When the current request must have arrived in full.
    deadline: Instant,
    /// The current request is `HEAD`: responses to it carry no body (RFC 9110 §9.3.2).
    head_only: bool,
    /// The current request's client wants the connection kept open…
    keep_alive: bool,
    /// …and speaks HTTP/1.0, so a kept connection must be announced.
    http10: bool,
    /// Whether the response just sent left the connection open (decided and announced by
    /// `send`; the connection loop follows it).
    keep_open: bool,
    shared: Arc<Shared>,
    /// The status sent for the current request (for the access log).
    status: u16,
    /// Who made the current request, when the handler knows (for the access log).
    /// Empty when not known; the buffer is reused from request to request.
    subject: String,
    /// Header lines (each ending in CRLF) every response to the current request carries,
    /// such as CORS answers; reused from request to request.
    extra_headers: String,
    handler: Arc<dyn Handler>,
    /// Where a connection handed off carries on.
    workers: Workers,
    /// Set by `handoff` for the current request.
    handoff: Option<Arc<Handoff>>,
}

impl Conn {
    /// Adds a header to every response to the current request (and to a stream's head,
    /// see `extra_headers`).
    pub fn add_header(&mut self, name: &str, value: &str) {
        use std::fmt::Write as _;
        let _ = write!(self.extra_headers, "{name}: {value}\r\n");
    }

    /// The header lines `add_header` collected, each ending in CRLF.
    pub fn extra_headers(&self) -> &str {
        &self.extra_headers
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The underlying socket, for a handler that takes the connection over (SSE).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// The socket, shared: what a session keeps of the stream it holds.
    pub fn shared_stream(&self) -> Arc<TcpStream> {
        Arc::clone(&self.stream)
    }

    /// For a handler that has sent its response and keeps working (a tool on the legacy
    /// transport, whose answer travels on the session's stream): a handle that moves the
    /// connection to another thread when called, so the client's next request on it (its
    /// answer to a question the tool asks, a `notifications/cancelled`) is not held up
    /// behind the work. `None` when the response closed the connection. Until it is
    /// called, the connection stays with this thread; preparing it costs one allocation
    /// (the parked state, which the connection takes back when the handler returns).
    pub fn handoff(&mut self) -> Option<Arc<Handoff>> {
        if !self.keep_open {
            return None;
        }
        let parked = Conn {
            stream: Arc::clone(&self.stream),
            buf: std::mem::take(&mut self.buf),
            scratch: std::mem::take(&mut self.scratch),
            peer: self.peer,
            limits: self.limits,
            deadline: self.deadline,
            head_only: false,
            keep_alive: false,
            http10: false,
            keep_open: false,
            shared: Arc::clone(&self.shared),
            status: 0,
            subject: String::new(),
            extra_headers: String::new(),
            handler: Arc::clone(&self.handler),
            workers: self.workers.clone(),
            handoff: None,
        };
        let handoff = Arc::new(Handoff(Mutex::new(Some(parked))));
        self.handoff = Some(Arc::clone(&handoff));
        Some(handoff)
    }

    /// Frees the read buffer, for a handler about to hold the connection for long (an SSE
    /// stream reads nothing more).
    pub fn release_buffers(&mut self) {
        self.buf = Vec::new();
        self.scratch = Vec::new();
    }

    /// Records the status of a response the handler writes itself (an SSE stream's head).
    pub fn note_status(&mut self, status: u16) {
        self.status = status;
    }

    /// Records who made the current request, for the access log.
    pub fn note_subject(&mut self, subject: &str) {
        self.subject.clear();
        self.subject.push_str(subject);
    }

    /// Whether the server is shutting down (streams should end).
    pub fn shutting_down(&self) -> bool {
        self.shared.is_stopping()
    }

    /// Waits for the first byte of the next request like `fill`, but looks up every
    /// `IDLE_POLL` and reports EOF (`Ok(0)`) once the server is shutting down, unless a
    /// request has already arrived.
    fn fill_idle(&mut self) -> Result<usize, HttpError> {
        let deadline = self.deadline;
        loop {
            if self.shared.is_stopping() {
                // Bytes the client has already sent are a request in flight: serve it (its
                // response says `close`). Otherwise the connection is idle: end it.
                return match peek_now(&self.stream) {
                    Ok(Some(1..)) => self.fill(),
                    _ => Ok(0),
                };
            }
            self.deadline = deadline.min(Instant::now() + IDLE_POLL);
            let result = self.fill();
            self.deadline = deadline;
            match result {
                Err(HttpError::Timeout) if Instant::now() < deadline => continue,
                other => return other,
            }
        }
    }

    /// Reads more bytes into `buf`, waiting no later than the deadline. `Ok(0)` is EOF.
    fn fill(&mut self) -> Result<usize, HttpError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HttpError::Timeout);
        }
        self.stream
            .set_read_timeout(Some(left))
            .map_err(HttpError::Io)?;
        // Read into the connection's scratch buffer, zeroed once when first needed (safe
        // code cannot read into uninitialized memory, and zeroing 8 KiB before every read
        // cost more than the copy of what arrived). Not on the stack: an 8 KiB array there
        // would stay resident in every idle SSE thread's stack for the life of its stream.
        if self.scratch.is_empty() {
            self.scratch = vec![0; READ_CHUNK_BYTES];
        }
        let read = (&*self.stream).read(&mut self.scratch);
        if let Ok(n) = read {
            self.buf.extend_from_slice(&self.scratch[..n]);
        }
        match read {
            Ok(n) => Ok(n),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(HttpError::Timeout)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(self.fill()?),
            Err(e) => Err(HttpError::Io(e)),
        }
    }

    /// Reads and parses the next request head. `Ok(None)`: the client closed (or went idle
    /// past the deadline) between requests, which is not an error.
    pub fn read_head(&mut self, head: &mut Head) -> Result<bool, HttpError> {
        self.head_only = false;
        loop {
            if !self.buf.is_empty() {
                let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut req = httparse::Request::new(&mut fields);
                match req.parse(&self.buf) {
                    Ok(httparse::Status::Complete(len)) => {
                        head.fill_from(&req)?;
                        self.buf.drain(..len);
                        self.head_only = head.method() == "HEAD";
                        return Ok(true);
                    }
                    Ok(httparse::Status::Partial) if self.buf.len() >= MAX_HEAD_BYTES => {
                        return Err(HttpError::HeadTooLarge);
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders),
                    Err(e) => return Err(HttpError::BadHead(e.to_string())),
                }
            }
            let idle = self.buf.is_empty();
            let filled = if idle { self.fill_idle() } else { self.fill() };
            match filled {
                Ok(0) if idle => return Ok(false),
                Ok(0) => return Err(HttpError::Io(io::ErrorKind::UnexpectedEof.into())),
                Ok(_) => {}
                Err(HttpError::Timeout) if idle => return Ok(false),
                Err(e) => return Err(e),
            }
            // A head that is all blank lines is not worth waiting for.
            if self.buf.len() > MAX_HEAD_BYTES {
                return Err(HttpError::HeadTooLarge);
            }
        }
    }

    /// Reads the body `head` announces, up to `Limits::max_body_bytes`. After an error the
    /// connection must close: the rest of the body is still on the wire.
    pub fn read_body(&mut self, head: &Head) -> Result<Vec<u8>, HttpError> {
        let framing = Framing::of(head)?;
        // RFC 9110 §10.1.1: an HTTP/1.0 client cannot expect 100, so its Expect is ignored.
        if head.version == 1
            && head
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
            && framing != Framing::Length(0)
        {
            if let Framing::Length(n) = framing
                && n > self.limits.max_body_bytes as u64
            {
                return Err(HttpError::BodyTooLarge(self.limits.max_body_bytes));
            }
            (&*self.stream)
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .map_err(HttpError::Io)?;
        }
        match framing {
            Framing::Length(n) => self.read_sized(n),
            Framing::Chunked => self.read_chunked(),
        }
    }

    fn read_sized(&mut self, len: u64) -> Result<Vec<u8>, HttpError> {
        let max = self.limits.max_body_bytes;
        if len > max as u64 {
            return Err(HttpError::BodyTooLarge(max));
        }
        let len = len as usize;
        while self.buf.len() < len {
            if self.fill()? == 0 {
                return Err(HttpError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
        Ok(self.buf.drain(..len).collect())
    }

    /// RFC 9112 §7.1: chunk-size [; ext] CRLF data CRLF … 0 CRLF [trailers] CRLF.
    fn read_chunked(&mut self) -> Result<Vec<u8>, HttpError> {
        let max = self.limits.max_body_bytes;
        let mut body = Vec::new();
        loop {
            let line = self.read_line(MAX_CHUNK_LINE_BYTES)?;
            let size_text = line.split(|&b| b == b';').next().unwrap_or(&[]);
            let size_text = std::str::from_utf8(size_text)
                .map_err(|_| HttpError::BadChunk)?
                .trim_matches([' ', '\t']);
            if size_text.is_empty() || size_text.len() > 16 {
                return Err(HttpError::BadChunk);
            }
            let size = u64::from_str_radix(size_text, 16).map_err(|_| HttpError::BadChunk)?;
            if size == 0 {
                // Trailer fields are read and ignored, up to the blank line.
                let mut trailer_bytes = 0;
                loop {
                    let line = self.read_line(MAX_HEAD_BYTES)?;
                    if line.is_empty() {
                        return Ok(body);
                    }
                    trailer_bytes += line.len();
                    if trailer_bytes > MAX_HEAD_BYTES {
                        return Err(HttpError::HeadTooLarge);
                    }
                }
            }
            if size > (max - body.len()) as u64 {
                return Err(HttpError::BodyTooLarge(max));
            }
            let size = size as usize;
            while self.buf.len() < size + 2 {
                if self.fill()? == 0 {
                    return Err(HttpError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
            }
            if &self.buf[size..size + 2] != b"\r\n" {
                return Err(HttpError::BadChunk);
            }
            body.extend_from_slice(&self.buf[..size]);
            self.buf.drain(..size + 2);
        }
    }

    /// One CRLF-terminated line, without the CRLF.
    fn read_line(&mut self, max: usize) -> Result<Vec<u8>, HttpError> {
        let mut scanned = 0;
        loop {
            if let Some(i) = self.buf[scanned..].windows(2).position(|w| w == b"\r\n") {
                let end = scanned + i;
                let line = self.buf[..end].to_vec();
                self.buf.drain(..end + 2);
                return Ok(line);
            }
            scanned = self.buf.len().saturating_sub(1);
            if self.buf.len() > max {
                return Err(HttpError::BadChunk);
            }
            if self.fill()? == 0 {
                return Err(HttpError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    /// Writes a whole response in one write; only its head if the request was `HEAD`.
    pub fn send(&mut self, response: &Response) -> io::Result<()> {
        // Say what happens to the connection when it is not the version's default (RFC 9112
        // §9.3, §9.6): `close` whenever it will close after this response (the response
        // closes it, the client asked, or the server is shutting down), `keep-alive` to an
        // HTTP/1.0 client whose connection stays open.
        let closing = response.close || !self.keep_alive || self.shared.is_stopping();
        let connection = if closing {
            Some("close")
        } else if self.http10 {
            Some("keep-alive")
        } else {
            None
        };
        self.keep_open = !closing;
        let bytes = response.to_bytes(connection, &self.extra_headers);
        let end = if self.head_only {
            bytes.len() - response.body.len()
        } else {
            bytes.len()
        };
        self.status = response.status;
        (&*self.stream).write_all(&bytes[..end])?;
        (&*self.stream).flush()
    }
}

impl Head {
    /// Refills this head from a parsed request, reusing its buffers.
    fn fill_from(&mut self, req: &httparse::Request<'_, '_>) -> Result<(), HttpError> {
        let method = req.method.unwrap_or_default();
        let target = req.path.unwrap_or_default();
        // RFC 9112 §3.2.2: absolute-form (`http://host/path`) must be accepted too; the
        // authority is not used, only the path and query.
        let target = absolute_form_path(target).unwrap_or(target);
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if !path.starts_with('/') {
            // The target is not repeated back: it may carry a session id in its query.
            return Err(HttpError::BadHead(
                "the request target must be a path starting with / (or an absolute http URL)"
                    .into(),
            ));
        }
        self.version = req.version.unwrap_or(1);
        self.line.clear();
        for (part, range) in [
            (method, &mut self.method),
            (path, &mut self.path),
            (query, &mut self.query),
        ] {
            *range = self.line.len()..self.line.len() + part.len();
            self.line.push_str(part);
        }
        self.fields.clear();
        self.spans.clear();
        for h in req.headers.iter() {
            let name = self.fields.len()..self.fields.len() + h.name.len();
            self.fields
                .extend(h.name.bytes().map(|b| b.to_ascii_lowercase()));
            let value = self.fields.len()..self.fields.len() + h.value.len();
            self.fields.extend_from_slice(h.value);
            self.spans.push((name, value));
        }
        Ok(())
    }
}

/// The origin-form part of an absolute-form target, `/` when it has no path.
fn absolute_form_path(target: &str) -> Option<&str> {
    let bytes = target.as_bytes();
    let scheme_len = if bytes.len() >= 8 && bytes[..8].eq_ignore_ascii_case(b"https://") {
        8
    } else if bytes.len() >= 7 && bytes[..7].eq_ignore_ascii_case(b"http://") {
        7
    } else {
        return None;
    };
    let rest = &target[scheme_len..];
    Some(match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
        _ => "/",
    })
}

/// How a request's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
}

impl Framing {
    /// RFC 9112 §6.3, strictly: both headers at once, repeated or non-numeric lengths, and
    /// codings other than `chunked` are refused rather than guessed at (request smuggling).
    fn of(head: &Head) -> Result<Framing, HttpError> {
        // The first two values of each are enough to tell one from many.
        let two = |name| {
            let mut values = head.all(name);
            [values.next(), values.next()]
        };
        match (two("content-length"), two("transfer-encoding")) {
            ([None, _], [None, _]) => Ok(Framing::Length(0)),
            ([Some(_), _], [Some(_), _]) => Err(HttpError::BadFraming(
                "Content-Length and Transfer-Encoding together",
            )),
            ([Some(len), None], [None, _]) => {
                let text = std::str::from_utf8(len).unwrap_or("");
                if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(HttpError::BadFraming("Content-Length is not a number"));
                }
                text.parse()
                    .map(Framing::Length)
                    .map_err(|_| HttpError::BadFraming("Content-Length is not a number"))
            }
            ([Some(_), Some(_)], [None, _]) => {
                Err(HttpError::BadFraming("more than one Content-Length"))
            }
            ([None, _], [Some(coding), None]) if head.version == 1 => {
                if std::str::from_utf8(coding)
                    .is_ok_and(|c| c.trim().eq_ignore_ascii_case("chunked"))
                {
                    Ok(Framing::Chunked)
                } else {
                    Err(HttpError::UnsupportedCoding)
                }
            }
            ([None, _], [Some(_), Some(_)]) if head.version == 1 => {
                Err(HttpError::UnsupportedCoding)
            }
            ([None, _], [Some(_), _]) => Err(HttpError::BadFraming(
                "Transfer-Encoding in an HTTP/1.0 request",
            )),
        }
    }
}

/// Why a request could not be read. Each maps to one status code.
#[derive(Debug)]
pub enum HttpError {
    /// The request line or a header is malformed (`400`).
    BadHead(String),
    /// More than `MAX_HEAD_BYTES` of head (`431`).
    HeadTooLarge,
    /// More than `MAX_HEADERS` header fields (`431`).
    TooManyHeaders,
    /// Contradictory or malformed body framing (`400`).
    BadFraming(&'static str),
    /// A transfer coding other than `chunked` (`501`).
    UnsupportedCoding,
    /// A malformed chunk in a chunked body (`400`).
    BadChunk,
    /// The body exceeds `MAX_BODY_BYTES` (`413`); holds the limit.
    BodyTooLarge(usize),
    /// The client did not send the request within `REQUEST_TIMEOUT_SECS` (`408`).
    Timeout,
    /// The connection failed; nothing can be sent.
    Io(io::Error),
}

impl HttpError {
    /// The status to answer with, or `None` when the connection is beyond answering.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::BadHead(_) | HttpError::BadFraming(_) | HttpError::BadChunk => Some(400),
            HttpError::HeadTooLarge | HttpError::TooManyHeaders => Some(431),
            HttpError::UnsupportedCoding => Some(501),
            HttpError::BodyTooLarge(_) => Some(413),
            HttpError::Timeout => Some(408),
            HttpError::Io(_) => None,
        }
    }

    /// The short machine-readable code in the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            HttpError::BadHead(_) => "bad_request",
            HttpError::HeadTooLarge | HttpError::TooManyHeaders => "headers_too_large",
            HttpError::BadFraming(_) | HttpError::BadChunk => "bad_body_framing",
            HttpError::UnsupportedCoding => "unsupported_transfer_encoding",
            HttpError::BodyTooLarge(_) => "body_too_large",
            HttpError::Timeout => "request_timeout",
            HttpError::Io(_) => "io",
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::BadHead(why) => write!(f, "malformed request head: {why}"),
            HttpError::HeadTooLarge => write!(
                f,
                "request head is larger than {MAX_HEAD_BYTES} bytes; send fewer or shorter headers"
            ),
            HttpError::TooManyHeaders => write!(
                f,
                "request has more than {MAX_HEADERS} header fields; send fewer headers"
            ),
            HttpError::BadFraming(why) => write!(f, "cannot tell where the body ends: {why}"),
            HttpError::UnsupportedCoding => {
                write!(f, "only Transfer-Encoding: chunked is supported")
            }
            HttpError::BadChunk => write!(f, "malformed chunk in a chunked body"),
            HttpError::BodyTooLarge(max) => write!(
                f,
                "request body is larger than {max} bytes (MAX_BODY_BYTES); send a smaller message"
            ),
            HttpError::Timeout => write!(
                f,
                "the request did not arrive in full in time (REQUEST_TIMEOUT_SECS)"
            ),
            HttpError::Io(e) => write!(f, "connection failed: {e}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// A complete response with a sized body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    close: bool,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            close: false,
        }
    }

    /// `{"error": code, "message": message}` with `status`.
    pub fn error(status: u16, code: &str, message: &str) -> Response {
        Response::json(status, &json!({ "error": code, "message": message }))
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::new(status)
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(value).unwrap_or_default())
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: Vec<u8>) -> Response {
        self.body = body;
        self
    }

    /// Marks the response as the connection's last.
    pub fn closing(mut self) -> Response {
        self.close = true;
        self
    }

    pub fn is_closing(&self) -> bool {
        self.close
    }

    /// The response on the wire, with a `Connection` header when `connection` is given
    /// and `extra_headers` (lines ending in CRLF). `Conn::send` is the usual way; this is
    /// for a response written from another thread (the watchdog's).
    pub fn to_bytes(&self, connection: Option<&str>, extra_headers: &str) -> Vec<u8> {
        // One buffer, written in place: no intermediate strings per line.
        let mut out = Vec::with_capacity(160 + extra_headers.len() + self.body.len());
        let _ = write!(out, "HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        out.extend_from_slice(extra_headers.as_bytes());
        // A 204 has no body and says no length (RFC 9110 §8.6).
        if self.status != 204 {
            let _ = write!(out, "Content-Length: {}\r\n", self.body.len());
        }
        if let Some(connection) = connection {
            let _ = write!(out, "Connection: {connection}\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// The reason phrase for each status this server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        408 => "Request Timeout",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Polls `cond` until it holds, for at most 10 s.
    fn eventually(mut cond: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if cond() {
                return true;
            }
            thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn a_thread_whose_job_ended_takes_the_next_and_a_busy_one_never_delays_it() {
        let workers = Workers::default();
        let (tx, rx) = mpsc::channel();
        let (release, blocked) = mpsc::channel::<()>();
        // A long-lived job (a stream) holds its thread...
        let tx1 = tx.clone();
        workers
            .run(Box::new(move || {
                tx1.send(("stream", thread::current().id())).unwrap();
                blocked.recv().unwrap();
            }))
            .unwrap();
        assert_eq!(rx.recv().unwrap().0, "stream");
        // ...so the next job gets a new thread at once, not a place behind it.
        let tx2 = tx.clone();
        workers
            .run(Box::new(move || {
                tx2.send(("short", thread::current().id())).unwrap()
            }))
            .unwrap();
        let (_, short) = rx.recv().unwrap();
        // Once that thread waits for work, the next job runs on it.
        assert!(eventually(|| workers.0.state().idle == 1));
        let tx3 = tx.clone();
        workers
            .run(Box::new(move || {
                tx3.send(("again", thread::current().id())).unwrap()
            }))
            .unwrap();
        assert_eq!(rx.recv().unwrap(), ("again", short));
        release.send(()).unwrap();
        // Threads without work exit after WORKER_LINGER: only `workers` holds the state.
        assert!(eventually(|| Arc::strong_count(&workers.0) == 1));
        assert_eq!(workers.0.state().idle, 0);
    }
}
