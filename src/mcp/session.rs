//! The session registry: session id → the session's state and the channel to its SSE
//! stream's thread. A stream's thread opens its session and closes it when it ends.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::http::stream_client_gone;
use crate::identity::Caller;
use crate::mcp::SessionState;
use crate::mcp::outbox::{self, Hangup, Receiver, SendError};

/// Messages that may wait for one session's stream. A client that lets this many pile up
/// has stopped reading: its session is closed rather than allowed to grow.
pub const OUTBOX_CAPACITY: usize = 256;

/// One MCP session over the HTTP+SSE transport.
pub struct Session {
    /// 128 random bits, as 32 lower-case hex digits. A capability: never logged.
    pub id: String,
    /// Who opened the session.
    pub caller: Caller,
    pub state: Mutex<SessionState>,
    outbox: outbox::Sender,
    /// A handle on the stream's socket, to cut a client that stopped reading.
    socket: Option<TcpStream>,
    /// Ends the stream's wait for messages when its client is found gone.
    hangup: Hangup,
}

/// Why a message could not be queued for a session's stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Undeliverable {
    /// The client is not reading its stream (`OUTBOX_CAPACITY` messages wait).
    Full,
    /// The stream has ended.
    Closed,
}

impl Session {
    /// Cuts the stream's connection: a write blocked on a client that stopped reading
    /// fails at once, and the stream's thread ends, dropping what was queued for it.
    pub fn disconnect(&self) {
        if let Some(socket) = &self.socket {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    /// Whether the stream's client has gone (`http::stream_client_gone`).
    fn client_gone(&self) -> bool {
        self.socket.as_ref().is_some_and(stream_client_gone)
    }

    /// Queues one serialized JSON-RPC message for the stream, without blocking.
    pub fn deliver(&self, message: String) -> Result<(), Undeliverable> {
        self.outbox.try_send(message).map_err(|e| match e {
            SendError::Full => Undeliverable::Full,
            SendError::Closed => Undeliverable::Closed,
        })
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

/// How often, at most, a full registry is swept for sessions whose clients have gone.
const REAP_INTERVAL: Duration = Duration::from_millis(10);

/// Every open session, at most `max`.
pub struct Sessions {
    map: Mutex<Registry>,
    max: usize,
    /// Held by the one thread sweeping the registry (see `reap`); holds when it last did.
    reaping: Mutex<Option<Instant>>,
    /// Sweeps finished so far: a thread that waited for another's sweep does not repeat it.
    reaps: AtomicU64,
}

struct Registry {
    open: HashMap<String, Arc<Session>>,
    /// Set by `close_all`: from then on no session opens.
    closed: bool,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new(usize::MAX)
    }
}

impl Sessions {
    pub fn new(max: usize) -> Sessions {
        Sessions {
            map: Mutex::new(Registry {
                open: HashMap::new(),
                closed: false,
            }),
            max,
            reaping: Mutex::new(None),
            reaps: AtomicU64::new(0),
        }
    }

    fn map(&self) -> MutexGuard<'_, Registry> {
        // Only insert/remove/get run under this lock; none can leave the map half-changed.
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Opens a session for `caller`; the receiver is the stream's end of its outbox.
    /// `socket` (the stream's connection) is what `Session::disconnect` cuts.
    pub fn open(
        &self,
        caller: Caller,
        socket: Option<TcpStream>,
    ) -> Result<(Arc<Session>, Receiver), OpenError> {
        let (outbox, rx) = outbox::bounded(OUTBOX_CAPACITY);
        let session = Arc::new(Session {
            id: new_id().map_err(OpenError::Random)?,
            caller,
            state: Mutex::new(SessionState::default()),
            outbox,
            socket,
            hangup: rx.hangup(),
        });
        let mut map = self.map();
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
        Ok((session, rx))
    }

    /// Closes the sessions whose clients have gone but whose streams have not ended yet
    /// (the watcher in `hangup.rs` has not reported them, or their threads have not run
    /// since), so a slot freed a moment ago is not refused. Runs only when the registry is
    /// full, one sweep at a time and at most once per `REAP_INTERVAL`, outside the
    /// registry's lock: a flood of refused opens cannot make it a cost for everyone.
    fn reap(&self, seen: u64) {
        let mut last = self
            .reaping
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.reaps.load(Ordering::Acquire) != seen
            || last.is_some_and(|at| at.elapsed() < REAP_INTERVAL)
        {
            return; // another sweep ran meanwhile, or just now
        }
        let open: Vec<Arc<Session>> = self.map().open.values().cloned().collect();
        let gone: Vec<&Arc<Session>> = open.iter().filter(|s| s.client_gone()).collect();
        {
            let mut map = self.map();
            for session in &gone {
                map.open.remove(&session.id);
            }
        }
        for session in &gone {
            session.hangup.hang_up();
        }
        if !gone.is_empty() {
            log::debug!("closed {} sessions whose clients had gone", gone.len());
        }
        *last = Some(Instant::now());
        self.reaps.fetch_add(1, Ordering::Release);
    }

    /// Closes every session, and refuses new ones from now on: each stream ends once
    /// in-flight replies are delivered.
    pub fn close_all(&self) -> usize {
        let mut map = self.map();
        map.closed = true;
        let n = map.open.len();
        map.open.clear();
        n
    }

    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.map().open.get(id).cloned()
    }

    /// Removes the session; its stream ends once the last message sender is gone.
    pub fn close(&self, id: &str) -> bool {
        let mut map = self.map();
        let closed = map.open.remove(id).is_some();
        shrink_after_burst(&mut map.open);
        closed
    }

    pub fn len(&self) -> usize {
        self.map().open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Gives back most of a map's table once it is at most an eighth full, so that a server
/// back to idle after a burst is back to its idle size. Halving at an eighth, not at a
/// half, keeps a map near a boundary from growing and shrinking on every change.
pub fn shrink_after_burst<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    const SMALL: usize = 64;
    if map.capacity() > SMALL && map.len() <= map.capacity() / 8 {
        map.shrink_to((map.len() * 2).max(SMALL));
    }
}

/// 128 bits from the OS CSPRNG, hex-encoded.
fn new_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_128_bit_hex_and_distinct() {
        let sessions = Sessions::default();
        let (a, _rx_a) = sessions.open(Caller::Anonymous, None).unwrap();
        let (b, _rx_b) = sessions.open(Caller::Anonymous, None).unwrap();
        assert_eq!(a.id.len(), 32);
        assert!(
            a.id.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a.id, b.id);
        assert_eq!(sessions.len(), 2);
        assert!(sessions.close(&a.id));
        assert!(!sessions.close(&a.id));
        assert!(sessions.get(&a.id).is_none());
        assert!(sessions.get(&b.id).is_some());
    }

    #[test]
    fn refuses_more_than_max_sessions() {
        let sessions = Sessions::new(2);
        let (a, _ra) = sessions.open(Caller::Anonymous, None).unwrap();
        let _b = sessions.open(Caller::Anonymous, None).unwrap();
        assert!(matches!(
            sessions.open(Caller::Anonymous, None),
            Err(OpenError::Full { max: 2 })
        ));
        sessions.close(&a.id);
        assert!(sessions.open(Caller::Anonymous, None).is_ok());
        assert_eq!(sessions.close_all(), 2);
        assert!(sessions.is_empty());
    }

    #[test]
    fn no_session_opens_after_close_all() {
        let sessions = Sessions::new(10);
        let _a = sessions.open(Caller::Anonymous, None).unwrap();
        assert_eq!(sessions.close_all(), 1);
        assert!(matches!(
            sessions.open(Caller::Anonymous, None),
            Err(OpenError::ShuttingDown)
        ));
        assert!(sessions.is_empty());
    }

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
    fn a_full_registry_makes_room_from_sessions_whose_clients_have_gone() {
        let sessions = Sessions::new(2);
        let mut pairs = streams(3);
        let (third_client, third_server) = pairs.pop().unwrap();
        let mut rxs = Vec::new();
        let mut clients = Vec::new();
        for (client, server) in pairs {
            rxs.push(sessions.open(Caller::Anonymous, Some(server)).unwrap().1);
            clients.push(client);
        }
        // Full, and both clients still there: refused.
        assert!(matches!(
            sessions.open(Caller::Anonymous, None),
            Err(OpenError::Full { max: 2 })
        ));
        // One client closes: the next open takes its slot at once, and that stream is told.
        drop(clients.remove(0));
        std::thread::sleep(REAP_INTERVAL); // the sweep is rate-limited; this is that limit
        let (_third, _rx) = sessions
            .open(Caller::Anonymous, Some(third_server))
            .expect("the gone client's slot is free");
        assert_eq!(sessions.len(), 2);
        assert_eq!(
            rxs[0].recv_timeout(std::time::Duration::ZERO),
            Err(outbox::RecvError::PeerGone)
        );
        assert_eq!(
            rxs[1].recv_timeout(std::time::Duration::ZERO),
            Err(outbox::RecvError::Timeout)
        );
        drop(third_client);
    }

    #[test]
    fn a_full_outbox_says_so_and_a_dropped_stream_is_closed() {
        let sessions = Sessions::default();
        let (s, rx) = sessions.open(Caller::Anonymous, None).unwrap();
        for _ in 0..OUTBOX_CAPACITY {
            s.deliver("{}".into()).unwrap();
        }
        assert_eq!(s.deliver("{}".into()), Err(Undeliverable::Full));
        drop(rx);
        assert_eq!(s.deliver("{}".into()), Err(Undeliverable::Closed));
    }
}
