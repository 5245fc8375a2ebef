//! Sessions, whatever transport carries them: who opened each one, what it negotiated, when
//! it was last used, the stream attached to it (if any), and the server→client requests it
//! is waiting on. The registry caps how many there are (`MAX_SESSIONS`, both transports
//! together) and ends the idle ones (`SESSION_IDLE_SECS`).
//!
//! A stream is attached to a session, not the session itself: the legacy transport opens a
//! session with its stream and ends it when the stream ends; Streamable HTTP opens one at
//! `initialize` and may attach a stream later (`GET /mcp`), one at a time. A stream's
//! thread holds its session only weakly: when the registry and the requests in flight have
//! let go of a session, its outbox's sender goes with it and the stream ends, after
//! delivering what was queued (shutdown lets in-flight replies out this way).
//!
//! A Streamable HTTP session also numbers the event streams its `POST`s turn into, and
//! keeps what calls that closed theirs early send until a `GET` resumes them (`resume.rs`).
//!
//! Each tool call running for a session is in its table (`RunningCall`): what the client's
//! `notifications/cancelled` and the session's end set, and what the watchdog
//! (`watchdog.rs`) needs to answer for the call past its deadline.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::hash::Hash;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http::stream_client_gone;
use crate::identity::Caller;
use crate::mcp::SessionState;
use crate::mcp::call::{Answerer, Cancellation, Cancelled};
use crate::mcp::outbox::{self, Receiver, SendError};
use crate::mcp::resume::Resumable;
use crate::mcp::rpc::RpcError;

/// Messages that may wait for one session's stream. A client that lets this many pile up
/// has stopped reading: its stream is cut rather than allowed to grow.
pub const OUTBOX_CAPACITY: usize = 256;

/// How often, at most, a full registry is swept for sessions whose clients have gone.
const REAP_INTERVAL: Duration = Duration::from_millis(10);
/// How often, at most, opening a session also ends the sessions idle for too long.
const EXPIRE_INTERVAL: Duration = Duration::from_secs(10);
/// When `MAX_SESSIONS` are open, a Streamable HTTP session with no stream that has gone
/// unused this long may be ended to make room (its client, if it ever returns, gets `404`
/// and initializes again, as the specification asks). Clients that never `DELETE` their
/// sessions would otherwise lock new ones out for `SESSION_IDLE_SECS`.
const EVICT_AFTER: Duration = Duration::from_secs(60);
/// Sessions ended at most per sweep to make room.
const EVICT_AT_ONCE: usize = 16;

/// 128 random bits as 32 lower-case hex digits. A capability: never logged (its `Debug`
/// says so instead).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    /// A new id from the OS CSPRNG.
    fn new() -> Result<SessionId, getrandom::Error> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)?;
        Ok(SessionId(bytes.iter().fold(
            String::with_capacity(32),
            |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            },
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lets the registry be searched by the id's text, without building a `SessionId`.
impl std::borrow::Borrow<str> for SessionId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(…)")
    }
}

/// Which transport a session was opened on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `GET /sse` + `POST /messages`: the session lives as long as its stream.
    Legacy,
    /// Streamable HTTP on `/mcp`: the session lives until `DELETE`, expiry or shutdown.
    Streamable,
    /// A 2026-07-28 `subscriptions/listen` stream on `/mcp`: the session lives as long as
    /// its stream, and no request can name it.
    Listen,
}

/// A client's answer to a request of ours: its `result`, or its `error`.
pub type ClientReply = Result<Value, RpcError>;

/// One MCP session.
pub struct Session {
    pub id: SessionId,
    /// Who opened the session; only they may use it.
    pub caller: Caller,
    pub transport: Transport,
    state: Mutex<SessionState>,
    last_used: Mutex<Instant>,
    stream: Mutex<Option<Attached>>,
    /// Requests we sent the client that await its answer: our id → the waiting handler.
    pending: Mutex<HashMap<String, mpsc::SyncSender<ClientReply>>>,
    next_request: AtomicU64,
    /// Tool calls of the client's still running: their id (normalized JSON) → what their
    /// cancellation and the watchdog need.
    running: Mutex<HashMap<Arc<str>, Arc<RunningCall>>>,
    /// Event streams numbered so far (`POST /mcp` answers that became event streams).
    event_streams: AtomicU64,
    /// Streams closed early by their calls, and what waits for a `GET` to resume them.
    resumable: Mutex<Resumable>,
}

/// A tool call while it runs: what its handler, its cancellation (the client's
/// `notifications/cancelled`, the session's end) and the watchdog share.
pub struct RunningCall {
    pub cancelled: Cancellation,
    /// `TOOL_TIMEOUT_SECS` from the call's start.
    pub deadline: Instant,
    /// `TOOL_TIMEOUT_SECS` itself, and the tool's name: for the watchdog's error result.
    pub timeout: Duration,
    pub tool: Arc<str>,
    /// How the watchdog answers in the handler's place; `None` (a batch) leaves the
    /// deadline to the handler's cooperation.
    pub answerer: Option<Arc<dyn Answerer>>,
    /// A 2026-07-28 request's call: the watchdog's answer says `resultType` too.
    pub stateless: bool,
    /// Set once the watchdog has seen the call past its deadline.
    overdue: AtomicBool,
    /// When it started; once it has run `LONG_CALL`, the watchdog frees the connection it
    /// came on (`Outlet::free_connection`), once (`freed`).
    started: Instant,
    freed: AtomicBool,
}

/// How long a call runs before the connection it came on is freed for the client's next
/// requests (on the legacy transport, where the handler's thread holds it): a
/// `notifications/cancelled` sent on it then reaches the call.
pub const LONG_CALL: Duration = Duration::from_secs(1);

impl RunningCall {
    pub fn new(
        timeout: Duration,
        tool: Arc<str>,
        answerer: Option<Arc<dyn Answerer>>,
    ) -> RunningCall {
        RunningCall {
            cancelled: Cancellation::default(),
            deadline: Instant::now() + timeout,
            timeout,
            tool,
            answerer,
            stateless: false,
            overdue: AtomicBool::new(false),
            started: Instant::now(),
            freed: AtomicBool::new(false),
        }
    }
}

/// A request registered as running; dropping it deregisters it.
pub struct Running<'a> {
    session: &'a Session,
    key: Arc<str>,
    pub call: Arc<RunningCall>,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut running = lock(&self.session.running);
        // Only our own entry (a reused id may have registered anew meanwhile).
        if running
            .get(&self.key)
            .is_some_and(|c| Arc::ptr_eq(c, &self.call))
        {
            running.remove(&self.key);
        }
    }
}

/// The session of one 2026-07-28 request (`Sessions::passing`); dropping it ends it.
pub struct Passing<'a> {
    sessions: &'a Sessions,
    key: u64,
    session: Arc<Session>,
}

impl std::ops::Deref for Passing<'_> {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

impl Drop for Passing<'_> {
    fn drop(&mut self) {
        let mut passing = lock(&self.sessions.passing);
        passing.remove(&self.key);
        shrink_after_burst(&mut passing);
    }
}

/// A running call past its deadline, found by `Sessions::overdue`: its id (normalized
/// JSON) and its entry.
pub type Overdue = (Arc<str>, Arc<RunningCall>);

/// The stream attached to a session.
struct Attached {
    outbox: outbox::Sender,
    /// A handle on the stream's socket, to cut a client that stopped reading.
    socket: Option<Arc<TcpStream>>,
    ticket: u64,
}

/// Proof of which attachment a stream holds: `detach` with it removes only that one.
#[derive(Debug, PartialEq, Eq)]
pub struct Ticket(u64);

/// Why a message could not be queued for a session's stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Undeliverable {
    /// The client is not reading its stream (`OUTBOX_CAPACITY` messages wait).
    Full,
    /// The stream has ended, or none is attached.
    NoStream,
}

/// Numbers every attachment, so a late `detach` can tell its own from a newer one.
static TICKETS: AtomicU64 = AtomicU64::new(0);

/// A stream is already attached (Streamable HTTP allows one `GET` stream per session).
#[derive(Debug, PartialEq, Eq)]
pub struct AlreadyAttached;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here assigns whole values or pushes/pops: a panic elsewhere
    // cannot leave one half-written, so a poisoned lock is still sound to use.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Session {
    fn new(caller: Caller, transport: Transport) -> Result<Session, getrandom::Error> {
        Ok(Session::with_id(SessionId::new()?, caller, transport))
    }

    /// A session outside any registry (for tests and fuzzing of dispatch).
    pub fn detached(caller: Caller) -> Session {
        Session::with_id(SessionId(String::new()), caller, Transport::Legacy)
    }

    fn with_id(id: SessionId, caller: Caller, transport: Transport) -> Session {
        Session {
            id,
            caller,
            transport,
            state: Mutex::new(SessionState::default()),
            last_used: Mutex::new(Instant::now()),
            stream: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
            running: Mutex::new(HashMap::new()),
            event_streams: AtomicU64::new(0),
            resumable: Mutex::new(Resumable::default()),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, SessionState> {
        lock(&self.state)
    }

    /// Marks the session used now (it is not idle).
    pub fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    /// Attaches a stream; the receiver is the stream's end of its outbox. `socket` (the
    /// stream's connection) is what `disconnect` cuts.
    pub fn attach(
        &self,
        socket: Option<Arc<TcpStream>>,
    ) -> Result<(Receiver, Ticket), AlreadyAttached> {
        let mut stream = lock(&self.stream);
        if stream.is_some() {
            return Err(AlreadyAttached);
        }
        let (outbox, rx) = outbox::bounded(OUTBOX_CAPACITY);
        let ticket = TICKETS.fetch_add(1, Ordering::Relaxed);
        *stream = Some(Attached {
            outbox,
            socket,
            ticket,
        });
        Ok((rx, Ticket(ticket)))
    }

    /// Detaches the stream that holds `ticket` (a newer one stays), and counts as a use.
    pub fn detach(&self, ticket: &Ticket) {
        let mut stream = lock(&self.stream);
        if stream.as_ref().is_some_and(|a| a.ticket == ticket.0) {
            *stream = None;
        }
        drop(stream);
        self.touch();
    }

    pub fn has_stream(&self) -> bool {
        lock(&self.stream).is_some()
    }

    /// Whether a client holds a stream of this session: its own, or one resuming a call's.
    fn streaming(&self) -> bool {
        self.has_stream() || lock(&self.resumable).resumed()
    }

    /// A number for a `POST`'s event stream, unique within the session (from 1).
    pub fn number_event_stream(&self) -> u64 {
        self.event_streams.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The call behind event stream `stream` closed it early: what it sends from now on
    /// (`park`) waits for a `GET` that resumes the stream.
    pub fn close_event_stream(&self, stream: u64) {
        lock(&self.resumable).close(stream);
    }

    /// A message (as the transport will write it) of a call whose event stream `stream` is
    /// closed: to the `GET` resuming it, or kept until one does.
    pub fn park(&self, stream: u64, message: String) {
        lock(&self.resumable).push(stream, message);
    }

    /// The call behind closed event stream `stream` has sent its last message.
    pub fn finish_event_stream(&self, stream: u64) {
        lock(&self.resumable).finish(stream);
    }

    /// A `GET` resumes event stream `stream`: the receiver of what waits for it and of what
    /// its call sends next. `None` when there is nothing to resume.
    pub fn resume(&self, stream: u64) -> Option<(Receiver, Ticket)> {
        if stream == 0 || stream > self.event_streams.load(Ordering::Relaxed) {
            return None;
        }
        let ticket = TICKETS.fetch_add(1, Ordering::Relaxed);
        let rx = lock(&self.resumable).resume(stream, ticket)?;
        Some((rx, Ticket(ticket)))
    }

    /// The `GET` resuming `stream` with `ticket` has ended; counts as a use.
    pub fn detach_resumed(&self, stream: u64, ticket: &Ticket) {
        lock(&self.resumable).detach(stream, ticket.0);
        self.touch();
    }

    /// Queues one serialized JSON-RPC message for the attached stream, without blocking.
    pub fn deliver(&self, message: String) -> Result<(), Undeliverable> {
        let stream = lock(&self.stream);
        let Some(attached) = stream.as_ref() else {
            return Err(Undeliverable::NoStream);
        };
        attached.outbox.try_send(message).map_err(|e| match e {
            SendError::Full => Undeliverable::Full,
            SendError::Closed => Undeliverable::NoStream,
        })
    }

    /// Cuts the stream's connection: a write blocked on a client that stopped reading
    /// fails at once, and the stream's thread ends, dropping what was queued for it.
    pub fn disconnect(&self) {
        if let Some(Attached {
            socket: Some(socket),
            ..
        }) = lock(&self.stream).as_ref()
        {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    /// Ends the session: with `cancel_running`, the client's requests still running are
    /// cancelled (their tools see `is_cancelled`: nobody will read their answers); every
    /// request of ours still waiting for the client fails. The attached stream ends when
    /// the session itself goes: once the registry and every request in flight have let go
    /// of it, and what they queued is sent. A shutdown does not cancel: its grace period
    /// lets requests in flight finish and their answers go out.
    fn end(&self, cancel_running: bool) {
        if cancel_running {
            for call in lock(&self.running).values() {
                call.cancelled.cancel(Cancelled::ByClient);
            }
            lock(&self.resumable).clear();
        }
        for (_, waiting) in lock(&self.pending).drain() {
            let _ = waiting.try_send(Err(RpcError::new(
                crate::mcp::rpc::INTERNAL_ERROR,
                "the session ended before the client answered",
            )));
        }
    }

    /// Whether the attached stream's client has gone (`http::stream_client_gone`). The
    /// watcher in `transport/hangup.rs` usually tells the stream first.
    fn client_gone(&self) -> bool {
        lock(&self.stream)
            .as_ref()
            .and_then(|a| a.socket.as_deref())
            .is_some_and(stream_client_gone)
    }

    /// Whether the session has gone unused, with no stream attached, for `idle`.
    fn expired(&self, idle: Duration, now: Instant) -> bool {
        !self.streaming() && now.saturating_duration_since(*lock(&self.last_used)) >= idle
    }

    /// Registers a tool call of the client's as running, under its id (normalized JSON).
    pub fn begin(&self, key: &str, call: RunningCall) -> Running<'_> {
        let key: Arc<str> = Arc::from(key);
        let call = Arc::new(call);
        lock(&self.running).insert(Arc::clone(&key), Arc::clone(&call));
        Running {
            session: self,
            key,
            call,
        }
    }

    /// The client cancelled its request `key` (normalized JSON): a tool still running for
    /// it sees so. Returns whether one was running.
    pub fn cancel(&self, key: &str) -> bool {
        let running = lock(&self.running);
        let call = running.get(key);
        if let Some(call) = call {
            call.cancelled.cancel(Cancelled::ByClient);
        }
        call.is_some()
    }

    /// Adds to `due` the running calls past their deadline at `now` that no earlier look
    /// found; returns the earliest deadline still ahead, if any.
    fn overdue(
        &self,
        now: Instant,
        due: &mut Vec<Overdue>,
        long: &mut Vec<Arc<RunningCall>>,
    ) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for (key, call) in lock(&self.running).iter() {
            if call.deadline > now {
                next = Some(next.map_or(call.deadline, |n| n.min(call.deadline)));
            } else if !call.overdue.swap(true, Ordering::AcqRel) {
                due.push((Arc::clone(key), Arc::clone(call)));
            }
            if now.saturating_duration_since(call.started) >= LONG_CALL
                && !call.freed.swap(true, Ordering::AcqRel)
            {
                long.push(Arc::clone(call));
            }
        }
        next
    }

    /// Registers a request to the client; returns its id (a JSON string, unlike any id a
    /// client's own requests could make us answer) and where its answer will arrive.
    pub fn expect_reply(&self) -> (String, mpsc::Receiver<ClientReply>) {
        let n = self.next_request.fetch_add(1, Ordering::Relaxed);
        let id = format!("\"mcp-warden-{n}\"");
        let (tx, rx) = mpsc::sync_channel(1);
        lock(&self.pending).insert(id.clone(), tx);
        (id, rx)
    }

    /// Stops waiting for the answer to `id` (its handler gave up).
    pub fn forget_reply(&self, id: &str) {
        lock(&self.pending).remove(id);
    }

    /// Hands a client's answer to the handler waiting for it. `id` is the answer's id as
    /// its exact JSON text. Returns whether one was waiting.
    pub fn route_reply(&self, id: &str, reply: ClientReply) -> bool {
        let waiting = lock(&self.pending).remove(id);
        waiting.is_some_and(|tx| tx.try_send(reply).is_ok())
    }
}

/// Why a session could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// `MAX_SESSIONS` sessions are open.
    Full { max: usize },
    /// The server is shutting down (`close_all` has run).
    ShuttingDown,
    /// The OS random source failed.
    Random(getrandom::Error),
}

/// Every open session, at most `max`.
pub struct Sessions {
    map: Mutex<Registry>,
    /// The sessions of 2026-07-28 requests while they are served (`passing`): never
    /// named by a client nor counted, only for the watchdog to see their calls.
    passing: Mutex<HashMap<u64, Arc<Session>>>,
    next_passing: AtomicU64,
    max: usize,
    /// `SESSION_IDLE_SECS`: a session unused this long, with no stream, ends.
    idle: Duration,
    /// Unused this long (and no stream), a Streamable session may be ended to make room.
    evict_after: Duration,
    /// Held by the one thread sweeping the registry (see `reap`); holds when it last did.
    reaping: Mutex<Option<Instant>>,
    /// Sweeps finished so far: a thread that waited for another's sweep does not repeat it.
    reaps: AtomicU64,
}

struct Registry {
    open: HashMap<SessionId, Arc<Session>>,
    /// Set by `close_all`: from then on no session opens.
    closed: bool,
    /// When idle sessions were last looked for.
    expired_at: Instant,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new(usize::MAX, Duration::MAX)
    }
}

impl Sessions {
    pub fn new(max: usize, idle: Duration) -> Sessions {
        Sessions {
            map: Mutex::new(Registry {
                open: HashMap::new(),
                closed: false,
                expired_at: Instant::now(),
            }),
            passing: Mutex::new(HashMap::new()),
            next_passing: AtomicU64::new(0),
            max,
            idle,
            evict_after: EVICT_AFTER.min(idle),
            reaping: Mutex::new(None),
            reaps: AtomicU64::new(0),
        }
    }

    fn map(&self) -> MutexGuard<'_, Registry> {
        lock(&self.map)
    }

    /// Opens a session for `caller`.
    pub fn open(&self, caller: Caller, transport: Transport) -> Result<Arc<Session>, OpenError> {
        let session = Arc::new(Session::new(caller, transport).map_err(OpenError::Random)?);
        let mut map = self.map();
        if map.expired_at.elapsed() >= EXPIRE_INTERVAL {
            let ended = self.remove_expired(&mut map);
            end_all(ended);
        }
        if !map.closed && map.open.len() >= self.max {
            let seen = self.reaps.load(Ordering::Acquire);
            drop(map);
            self.reap(seen);
            map = self.map();
        }
        if map.closed {
            return Err(OpenError::ShuttingDown);
        }
        if map.open.len() >= self.max {
            return Err(OpenError::Full { max: self.max });
        }
        map.open.insert(session.id.clone(), Arc::clone(&session));
        Ok(session)
    }

    /// Removes (and returns) the sessions idle for `SESSION_IDLE_SECS`.
    fn remove_expired(&self, map: &mut Registry) -> Vec<Arc<Session>> {
        let now = Instant::now();
        map.expired_at = now;
        let ids: Vec<SessionId> = map
            .open
            .values()
            .filter(|s| s.expired(self.idle, now))
            .map(|s| s.id.clone())
            .collect();
        let ended: Vec<Arc<Session>> = ids.iter().filter_map(|id| map.open.remove(id)).collect();
        if !ended.is_empty() {
            log::info!("{} idle sessions expired (SESSION_IDLE_SECS)", ended.len());
        }
        shrink_after_burst(&mut map.open);
        ended
    }

    /// Ends the sessions whose clients have gone but whose streams have not ended yet
    /// (the watcher in `transport/hangup.rs` has not reported them, or their threads have
    /// not run since), and the idle ones, so a slot freed a moment ago is not refused.
    /// Runs only when the registry is full, one sweep at a time and at most once per
    /// `REAP_INTERVAL`, outside the registry's lock: a flood of refused opens cannot make
    /// it a cost for everyone.
    fn reap(&self, seen: u64) {
        let mut last = lock(&self.reaping);
        if self.reaps.load(Ordering::Acquire) != seen
            || last.is_some_and(|at| at.elapsed() < REAP_INTERVAL)
        {
            return; // another sweep ran meanwhile, or just now
        }
        let open: Vec<Arc<Session>> = self.map().open.values().cloned().collect();
        let gone: Vec<&Arc<Session>> = open.iter().filter(|s| s.client_gone()).collect();
        let mut ended = {
            let mut map = self.map();
            for session in &gone {
                map.open.remove(&session.id);
            }
            let mut ended = self.remove_expired(&mut map);
            if map.open.len() >= self.max {
                ended.extend(self.evict_longest_idle(&mut map));
            }
            ended
        };
        if !gone.is_empty() {
            log::debug!("closed {} sessions whose clients had gone", gone.len());
        }
        ended.extend(gone.into_iter().cloned());
        end_all(ended);
        *last = Some(Instant::now());
        self.reaps.fetch_add(1, Ordering::Release);
    }

    /// Removes (and returns) up to `EVICT_AT_ONCE` Streamable sessions with no stream that
    /// have gone unused for `evict_after`, the longest unused first.
    fn evict_longest_idle(&self, map: &mut Registry) -> Vec<Arc<Session>> {
        let now = Instant::now();
        let mut idle: Vec<(Duration, SessionId)> = map
            .open
            .values()
            .filter(|s| s.transport == Transport::Streamable && !s.streaming())
            .map(|s| {
                (
                    now.saturating_duration_since(*lock(&s.last_used)),
                    s.id.clone(),
                )
            })
            .filter(|(unused, _)| *unused >= self.evict_after)
            .collect();
        idle.sort_unstable_by_key(|(unused, _)| std::cmp::Reverse(*unused));
        let evicted: Vec<Arc<Session>> = idle
            .into_iter()
            .take(EVICT_AT_ONCE)
            .filter_map(|(_, id)| map.open.remove(&id))
            .collect();
        if !evicted.is_empty() {
            log::info!(
                "ended {} Streamable HTTP sessions unused the longest, to make room (MAX_SESSIONS)",
                evicted.len()
            );
        }
        evicted
    }

    /// Ends every session, and refuses new ones from now on: each stream ends once
    /// in-flight replies are delivered.
    pub fn close_all(&self) -> usize {
        let ended: Vec<Arc<Session>> = {
            let mut map = self.map();
            map.closed = true;
            map.open.drain().map(|(_, s)| s).collect()
        };
        let n = ended.len();
        for session in ended {
            session.end(false);
        }
        n
    }

    /// The session `id`, unless it has ended or expired.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        let mut map = self.map();
        let session = map.open.get(id)?;
        if session.transport == Transport::Streamable && session.expired(self.idle, Instant::now())
        {
            let ended = map.open.remove(id);
            drop(map);
            end_all(ended);
            return None;
        }
        Some(Arc::clone(session))
    }

    /// Ends the session: its stream ends once the requests in flight are answered and
    /// what is queued is sent.
    pub fn close(&self, id: &SessionId) -> bool {
        let removed = {
            let mut map = self.map();
            let removed = map.open.remove(id);
            shrink_after_burst(&mut map.open);
            removed
        };
        let closed = removed.is_some();
        end_all(removed);
        closed
    }

    pub fn len(&self) -> usize {
        self.map().open.len()
    }

    /// A session for one 2026-07-28 request, for `caller`: outside the registry (no client
    /// can name it, it takes no `MAX_SESSIONS` slot), but its calls are watched for their
    /// deadline like any session's while the returned guard lives.
    pub fn passing(&self, caller: Caller) -> Passing<'_> {
        let key = self.next_passing.fetch_add(1, Ordering::Relaxed);
        let session = Arc::new(Session::detached(caller));
        lock(&self.passing).insert(key, Arc::clone(&session));
        Passing {
            sessions: self,
            key,
            session,
        }
    }

    /// Every open session (a snapshot: the registry's lock is not held while it is used).
    pub fn all(&self) -> Vec<Arc<Session>> {
        self.map().open.values().cloned().collect()
    }

    /// The running tool calls of every open session that are past their deadline at `now`
    /// and were not found before (see `watchdog.rs`), and the earliest deadline still ahead.
    /// Also the calls that have run `LONG_CALL` and were not found so before.
    pub fn overdue(&self, now: Instant) -> (Vec<Overdue>, Vec<Arc<RunningCall>>, Option<Instant>) {
        let mut due = Vec::new();
        let mut long = Vec::new();
        let mut next: Option<Instant> = None;
        let mut look = |session: &Session| {
            if let Some(deadline) = session.overdue(now, &mut due, &mut long) {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
        };
        for session in self.map().open.values() {
            look(session);
        }
        for session in lock(&self.passing).values() {
            look(session);
        }
        (due, long, next)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Ends `sessions`, cancelling what runs for them.
fn end_all(sessions: impl IntoIterator<Item = Arc<Session>>) {
    for session in sessions {
        session.end(true);
    }
}

/// Gives back most of a map's table once it is at most an eighth full, so that a server
/// back to idle after a burst is back to its idle size. Halving at an eighth, not at a
/// half, keeps a map near a boundary from growing and shrinking on every change.
pub fn shrink_after_burst<K: Hash + Eq, V>(map: &mut HashMap<K, V>) {
    const SMALL: usize = 64;
    if map.capacity() > SMALL && map.len() <= map.capacity() / 8 {
        map.shrink_to((map.len() * 2).max(SMALL));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::outbox::RecvError;
    use serde_json::json;

    const LEGACY: Transport = Transport::Legacy;

    /// `n` held streams on real sockets: (client side, server side).
    fn streams(n: usize) -> Vec<(TcpStream, TcpStream)> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        (0..n)
            .map(|_| {
                let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
                (client, listener.accept().unwrap().0)
            })
            .collect()
    }

    #[test]
    fn ids_are_128_bit_hex_distinct_and_never_printed() {
        let sessions = Sessions::default();
        let a = sessions.open(Caller::Anonymous, LEGACY).unwrap();
        let b = sessions.open(Caller::Anonymous, LEGACY).unwrap();
        assert_eq!(a.id.as_str().len(), 32);
        assert!(
            a.id.as_str()
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a.id, b.id);
        assert!(!format!("{:?}", a.id).contains(a.id.as_str()));
        assert_eq!(sessions.len(), 2);
        assert!(sessions.close(&a.id));
        assert!(!sessions.close(&a.id));
        assert!(sessions.get(a.id.as_str()).is_none());
        assert!(sessions.get(b.id.as_str()).is_some());
    }

    #[test]
    fn refuses_more_than_max_sessions() {
        let sessions = Sessions::new(2, Duration::MAX);
        let a = sessions.open(Caller::Anonymous, LEGACY).unwrap();
        let _b = sessions
            .open(Caller::Anonymous, Transport::Streamable)
            .unwrap();
        assert!(matches!(
            sessions.open(Caller::Anonymous, LEGACY),
            Err(OpenError::Full { max: 2 })
        ));
        sessions.close(&a.id);
        assert!(sessions.open(Caller::Anonymous, LEGACY).is_ok());
        assert_eq!(sessions.close_all(), 2);
        assert!(sessions.is_empty());
    }

    #[test]
    fn no_session_opens_after_close_all_and_their_streams_end() {
        let sessions = Sessions::new(10, Duration::MAX);
        let a = sessions.open(Caller::Anonymous, LEGACY).unwrap();
        let (rx, _ticket) = a.attach(None).unwrap();
        assert_eq!(sessions.close_all(), 1);
        // A request in flight (holding the session) still gets its reply out.
        a.deliver("last".into()).unwrap();
        drop(a);
        assert!(matches!(
            sessions.open(Caller::Anonymous, LEGACY),
            Err(OpenError::ShuttingDown)
        ));
        assert!(sessions.is_empty());
        assert_eq!(rx.recv_timeout(Duration::ZERO), Ok("last".into()));
        assert_eq!(rx.recv_timeout(Duration::ZERO), Err(RecvError::Closed));
    }

    #[test]
    fn one_stream_at_a_time_and_a_stale_detach_keeps_the_new_one() {
        let s = Session::detached(Caller::Anonymous);
        assert_eq!(s.deliver("x".into()), Err(Undeliverable::NoStream));
        let (first_rx, first) = s.attach(None).unwrap();
        assert!(matches!(s.attach(None), Err(AlreadyAttached)));
        s.detach(&first);
        assert_eq!(
            first_rx.recv_timeout(Duration::ZERO),
            Err(RecvError::Closed)
        );
        let (rx, second) = s.attach(None).unwrap();
        s.detach(&first); // the first stream's late end
        s.deliver("for the second".into()).unwrap();
        assert_eq!(rx.recv_timeout(Duration::ZERO), Ok("for the second".into()));
        s.detach(&second);
        assert!(!s.has_stream());
    }

    #[test]
    fn a_full_outbox_says_so() {
        let s = Session::detached(Caller::Anonymous);
        let (rx, _ticket) = s.attach(None).unwrap();
        for _ in 0..OUTBOX_CAPACITY {
            s.deliver("{}".into()).unwrap();
        }
        assert_eq!(s.deliver("{}".into()), Err(Undeliverable::Full));
        drop(rx);
        assert_eq!(s.deliver("{}".into()), Err(Undeliverable::NoStream));
    }

    #[test]
    fn a_full_registry_makes_room_from_sessions_whose_clients_have_gone() {
        let sessions = Sessions::new(2, Duration::MAX);
        let mut pairs = streams(3);
        let (third_client, third_server) = pairs.pop().unwrap();
        let mut rxs = Vec::new();
        let mut clients = Vec::new();
        for (client, server) in pairs {
            let s = sessions.open(Caller::Anonymous, LEGACY).unwrap();
            rxs.push(s.attach(Some(Arc::new(server))).unwrap().0);
            clients.push(client);
        }
        // Full, and both clients still there: refused.
        assert!(matches!(
            sessions.open(Caller::Anonymous, LEGACY),
            Err(OpenError::Full { max: 2 })
        ));
        // One client closes: the next open takes its slot at once, and that stream ends.
        drop(clients.remove(0));
        std::thread::sleep(REAP_INTERVAL); // the sweep is rate-limited; this is that limit
        let third = sessions
            .open(Caller::Anonymous, LEGACY)
            .expect("the gone client's slot is free");
        // Nothing else holds the gone client's session: its stream has ended.
        let _third = third.attach(Some(Arc::new(third_server))).unwrap();
        assert_eq!(sessions.len(), 2);
        assert_eq!(rxs[0].recv_timeout(Duration::ZERO), Err(RecvError::Closed));
        assert_eq!(rxs[1].recv_timeout(Duration::ZERO), Err(RecvError::Timeout));
        drop(third_client);
    }

    #[test]
    fn an_idle_streamable_session_expires_unless_a_stream_is_attached() {
        let idle = Duration::from_millis(30);
        let sessions = Sessions::new(2, idle);
        let quiet = sessions
            .open(Caller::Anonymous, Transport::Streamable)
            .unwrap();
        let streaming = sessions
            .open(Caller::Anonymous, Transport::Streamable)
            .unwrap();
        let (_rx, ticket) = streaming.attach(None).unwrap();
        std::thread::sleep(idle); // the idle time itself is what is tested
        assert!(sessions.get(quiet.id.as_str()).is_none(), "expired");
        assert!(
            sessions.get(streaming.id.as_str()).is_some(),
            "a stream keeps it"
        );
        // Its slot is free again.
        let _third = sessions
            .open(Caller::Anonymous, Transport::Streamable)
            .unwrap();
        // Once its stream ends, the other session's idle time starts from then.
        streaming.detach(&ticket);
        assert!(sessions.get(streaming.id.as_str()).is_some());
    }

    #[test]
    fn a_full_registry_ends_the_streamable_session_unused_longest_but_no_busy_one() {
        let mut sessions = Sessions::new(3, Duration::MAX);
        sessions.evict_after = Duration::from_millis(200);
        let oldest = sessions
            .open(Caller::Anonymous, Transport::Streamable)
            .unwrap();
        let streaming = sessions
            .open(Caller::Anonymous, Transport::Streamable)
            .unwrap();
        let (_rx, _ticket) = streaming.attach(None).unwrap();
        let legacy = sessions.open(Caller::Anonymous, LEGACY).unwrap();
        let (_legacy_rx, _legacy_ticket) = legacy.attach(None).unwrap();
        // Nobody has been unused long enough: refused.
        assert!(matches!(
            sessions.open(Caller::Anonymous, Transport::Streamable),
            Err(OpenError::Full { .. })
        ));
        std::thread::sleep(Duration::from_millis(250)); // the unused time is what is tested
        let newcomer = sessions
            .open(Caller::Anonymous, Transport::Streamable)
            .expect("the session unused longest made room");
        assert!(sessions.get(oldest.id.as_str()).is_none());
        for kept in [&streaming, &legacy, &newcomer] {
            assert!(sessions.get(kept.id.as_str()).is_some());
        }
        // Now the only candidate is the newcomer, used just now: refused again (after the
        // sweep's rate limit, so that a sweep does run).
        std::thread::sleep(REAP_INTERVAL);
        assert!(matches!(
            sessions.open(Caller::Anonymous, Transport::Streamable),
            Err(OpenError::Full { .. })
        ));
    }

    #[test]
    fn a_clients_answer_reaches_the_request_waiting_for_it() {
        let s = Session::detached(Caller::Anonymous);
        let (first, first_rx) = s.expect_reply();
        let (second, second_rx) = s.expect_reply();
        assert_ne!(first, second);
        assert!(
            first.starts_with('"') && first.ends_with('"'),
            "a JSON string: {first}"
        );
        assert!(s.route_reply(&second, Ok(json!({"n": 2}))));
        assert!(!s.route_reply(&second, Ok(json!({}))), "answered once");
        assert!(!s.route_reply("\"unknown\"", Ok(json!({}))));
        assert_eq!(second_rx.try_recv().unwrap(), Ok(json!({"n": 2})));
        assert!(first_rx.try_recv().is_err(), "still waiting");
        s.end(true);
        assert!(
            first_rx.try_recv().unwrap().is_err(),
            "the session's end fails it"
        );
        let (third, _third_rx) = s.expect_reply();
        s.forget_reply(&third);
        assert!(!s.route_reply(&third, Ok(json!({}))));
    }
}
