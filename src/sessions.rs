//! The session registry: session id → the session's state and the channel to its SSE
//! stream's thread. A stream's thread opens its session and closes it when it ends.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::identity::Caller;
use crate::mcp::SessionState;
use crate::outbox::{self, Receiver, SendError};

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

/// Every open session, at most `max`.
pub struct Sessions {
    map: Mutex<Registry>,
    max: usize,
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
        });
        let mut map = self.map();
        if map.closed {
            return Err(OpenError::ShuttingDown);
        }
        if map.open.len() >= self.max {
            return Err(OpenError::Full { max: self.max });
        }
        map.open.insert(session.id.clone(), Arc::clone(&session));
        Ok((session, rx))
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
        self.map().open.remove(id).is_some()
    }

    pub fn len(&self) -> usize {
        self.map().open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
