//! Notices the moment a client closes a held SSE stream, with no write needed to find out.
//!
//! A client sends nothing on `GET /sse` after its request, so any readable byte, end of
//! file, reset or error on that socket means the stream is over. One thread for the whole
//! process waits in `epoll_wait` on the socket of every held stream, each registered
//! one-shot (it reports once, then never again), and on a report it tells the stream's
//! outbox, which wakes the stream's thread. The stream's thread keeps waiting for messages
//! on its outbox's condition variable as before, so a message costs nothing more, and the
//! watcher holds no descriptor of its own per stream (the kernel drops a registration when
//! the socket closes).
//!
//! Chosen over: `poll(2)` on the socket and an eventfd from each stream's own thread (a
//! second descriptor per session, and a write and a read system call per message); a
//! blocking read on the stream's thread (it could then not wait for messages); and the
//! keep-alive check alone (a gone client noticed one or two `SSE_KEEPALIVE_SECS` late,
//! its `MAX_SESSIONS` slot held meanwhile). The keep-alive check stays as a fallback: on
//! systems without epoll, or if the watcher failed, a gone client is noticed there.

use std::net::TcpStream;

use crate::mcp::outbox::Receiver;

/// A stream being watched: dropping it stops watching (the stream has ended otherwise).
pub struct Watch {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    token: u64,
}

/// Starts the process's watcher thread, if it is not running yet. The server calls it at
/// start, so the thread exists before the first stream (and thread counts stay flat).
pub fn start() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    linux::watcher();
}

/// Watches `socket` (a held stream's connection) and hangs up `outbox` once its client
/// goes. `None` where no watcher runs: the stream then relies on its keep-alive check.
pub fn watch(socket: &TcpStream, outbox: &Receiver) -> Option<Watch> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    return linux::watcher()?.watch(socket, outbox);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (socket, outbox);
        None
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(watcher) = linux::watcher() {
            watcher.forget(self.token);
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux {
    use std::collections::HashMap;
    use std::io;
    use std::net::TcpStream;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
    use std::thread;

    use rustix::buffer::spare_capacity;
    use rustix::event::epoll::{self, CreateFlags, EventData, EventFlags};
    use rustix::fd::OwnedFd;

    use super::Watch;
    use crate::mcp::outbox::{Hangup, Receiver};
    use crate::mcp::session::shrink_after_burst;

    /// Reports taken from the kernel per `epoll_wait`.
    const BATCH: usize = 256;

    pub struct Watcher {
        epoll: OwnedFd,
        /// Token → the outbox to hang up. Tokens are never reused, so a late report for a
        /// stream that has already ended finds nothing here and is ignored.
        watched: Mutex<HashMap<u64, Hangup>>,
        next: AtomicU64,
        /// Cleared if `epoll_wait` fails for good: from then on `watch` says `None`.
        running: AtomicBool,
    }

    /// The process's watcher, started on first use; `None` if it could not be.
    pub fn watcher() -> Option<&'static Arc<Watcher>> {
        static WATCHER: OnceLock<Option<Arc<Watcher>>> = OnceLock::new();
        WATCHER
            .get_or_init(|| match Watcher::start() {
                Ok(watcher) => Some(watcher),
                Err(e) => {
                    log::warn!(
                        "cannot watch streams for closed connections ({e}); a gone client is noticed at its next keep-alive"
                    );
                    None
                }
            })
            .as_ref()
            .filter(|w| w.running.load(Ordering::Relaxed))
    }

    impl Watcher {
        fn start() -> io::Result<Arc<Watcher>> {
            let watcher = Arc::new(Watcher {
                epoll: epoll::create(CreateFlags::CLOEXEC)?,
                watched: Mutex::new(HashMap::new()),
                next: AtomicU64::new(0),
                running: AtomicBool::new(true),
            });
            let w = Arc::clone(&watcher);
            thread::Builder::new()
                .name("hangup".into())
                .spawn(move || w.run())?;
            Ok(watcher)
        }

        fn watched(&self) -> MutexGuard<'_, HashMap<u64, Hangup>> {
            // Each critical section is one insert or remove: never left half-done.
            self.watched.lock().unwrap_or_else(|p| p.into_inner())
        }

        pub fn watch(&self, socket: &TcpStream, outbox: &Receiver) -> Option<Watch> {
            let token = self.next.fetch_add(1, Ordering::Relaxed);
            self.watched().insert(token, outbox.hangup());
            // Level state is checked at registration: a client already gone is reported
            // at once. RDHUP: the peer's FIN; ERR and HUP are always reported.
            let flags = EventFlags::IN | EventFlags::RDHUP | EventFlags::ONESHOT;
            match epoll::add(&self.epoll, socket, EventData::new_u64(token), flags) {
                Ok(()) => Some(Watch { token }),
                Err(e) => {
                    self.forget(token);
                    log::warn!("cannot watch a stream for its client closing: {e}");
                    None
                }
            }
        }

        pub fn forget(&self, token: u64) {
            let mut watched = self.watched();
            watched.remove(&token);
            shrink_after_burst(&mut watched);
        }

        fn run(&self) {
            let mut events = Vec::with_capacity(BATCH);
            loop {
                events.clear();
                match epoll::wait(&self.epoll, spare_capacity(&mut events), None) {
                    Ok(_) => {}
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => {
                        self.running.store(false, Ordering::Relaxed);
                        log::error!(
                            "watching streams for closed connections failed ({e}); a gone client is now noticed at its next keep-alive"
                        );
                        return;
                    }
                }
                for event in &events {
                    let hangup = {
                        let mut watched = self.watched();
                        let hangup = watched.remove(&event.data.u64());
                        shrink_after_burst(&mut watched);
                        hangup
                    };
                    if let Some(hangup) = hangup {
                        hangup.hang_up();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::outbox::{self, RecvError};
    use std::io::Write;
    use std::net::{Shutdown, TcpListener};
    use std::time::Duration;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    /// Waits on the outbox the way a stream does (a keep-alive far longer than any test).
    fn wait(rx: &outbox::Receiver) -> Result<String, RecvError> {
        rx.recv_timeout(Duration::from_secs(10))
    }

    #[test]
    fn a_closed_or_reset_or_talking_client_wakes_its_stream_and_no_other() {
        type End = fn(TcpStream, &mut TcpStream);
        let ends: [End; 4] = [
            |c, _| drop(c),                              // FIN
            |c, _| c.shutdown(Shutdown::Write).unwrap(), // FIN, still reading
            |mut c, _| c.write_all(b"x").unwrap(),       // a byte, never sent on a stream
            |c, server| {
                // Gone with data unread: a reset.
                server.write_all(b"unread").unwrap();
                let mut byte = [0u8; 1];
                c.peek(&mut byte).unwrap();
                drop(c);
            },
        ];
        for end in ends {
            let (client, mut server) = pair();
            let (other_client, other_server) = pair();
            let (_tx, rx) = outbox::bounded(4);
            let (other_tx, other_rx) = outbox::bounded(4);
            let _watch = watch(&server, &rx).expect("a watcher runs on Linux");
            let _other = watch(&other_server, &other_rx).unwrap();
            end(client, &mut server);
            assert_eq!(wait(&rx), Err(RecvError::PeerGone));
            // The other stream still waits for, and gets, its messages.
            other_tx.try_send("still here".into()).unwrap();
            assert_eq!(
                other_rx.recv_timeout(Duration::ZERO),
                Ok("still here".into())
            );
            drop(other_client);
        }
    }

    #[test]
    fn a_client_gone_before_the_watch_began_is_reported_at_once() {
        let (client, server) = pair();
        drop(client);
        let (_tx, rx) = outbox::bounded(4);
        let _watch = watch(&server, &rx).unwrap();
        assert_eq!(wait(&rx), Err(RecvError::PeerGone));
    }

    #[test]
    fn a_stream_that_stopped_watching_is_not_hung_up() {
        let (client, server) = pair();
        let (tx, rx) = outbox::bounded(4);
        drop(watch(&server, &rx).unwrap());
        drop(client);
        // A second stream whose client goes after the first: once it is reported, the
        // watcher has seen the first one's close as well.
        let (later_client, later_server) = pair();
        let (_later_tx, later_rx) = outbox::bounded(4);
        let _later = watch(&later_server, &later_rx).unwrap();
        drop(later_client);
        assert_eq!(wait(&later_rx), Err(RecvError::PeerGone));
        tx.try_send("delivered".into()).unwrap();
        assert_eq!(rx.recv_timeout(Duration::ZERO), Ok("delivered".into()));
    }
}
