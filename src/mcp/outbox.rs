//! A session's outbox: a bounded queue of serialized messages from the threads that handle
//! its POSTs to the one thread that holds its SSE stream.
//!
//! Why not `std::sync::mpsc::sync_channel`: it allocates all its slots up front (about
//! 8 KiB for 256), and an idle session holds its outbox for hours. This queue allocates
//! only for messages actually waiting, so a thousand idle sessions cost next to nothing.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

/// Why a message was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// `capacity` messages are waiting already: the reader has stopped reading.
    Full,
    /// The receiving end is gone.
    Closed,
}

/// Why nothing was received.
#[derive(Debug, PartialEq, Eq)]
pub enum RecvError {
    /// Nothing arrived within the timeout.
    Timeout,
    /// The sending end is gone and nothing is left.
    Closed,
    /// The reader's client has gone (`Hangup::hang_up`): what waits is not worth sending.
    PeerGone,
}

struct State {
    queue: VecDeque<String>,
    sender_gone: bool,
    receiver_gone: bool,
    peer_gone: bool,
}

struct Shared {
    state: Mutex<State>,
    arrived: Condvar,
    capacity: usize,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Each critical section is a push, a pop or a flag: never left half-done.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The sending end (one per session; dropping it ends the stream after what is queued).
pub struct Sender(Arc<Shared>);

/// The receiving end, held by the stream's thread.
pub struct Receiver(Arc<Shared>);

/// Tells the receiving end that its client has gone, without keeping the outbox alive.
pub struct Hangup(Weak<Shared>);

impl Hangup {
    /// Wakes the receiver, whose waits answer `PeerGone` from now on.
    pub fn hang_up(&self) {
        if let Some(shared) = self.0.upgrade() {
            shared.state().peer_gone = true;
            shared.arrived.notify_all();
        }
    }
}

/// A new outbox holding at most `capacity` waiting messages.
pub fn bounded(capacity: usize) -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            sender_gone: false,
            receiver_gone: false,
            peer_gone: false,
        }),
        arrived: Condvar::new(),
        capacity,
    });
    (Sender(Arc::clone(&shared)), Receiver(shared))
}

impl Sender {
    /// Queues `message` without blocking.
    pub fn try_send(&self, message: String) -> Result<(), SendError> {
        self.try_send_back(message).map_err(|(e, _)| e)
    }

    /// Like `try_send`, giving `message` back when it was not queued.
    pub fn try_send_back(&self, message: String) -> Result<(), (SendError, String)> {
        let mut state = self.0.state();
        if state.receiver_gone {
            return Err((SendError::Closed, message));
        }
        if state.queue.len() >= self.0.capacity {
            return Err((SendError::Full, message));
        }
        state.queue.push_back(message);
        drop(state);
        self.0.arrived.notify_one();
        Ok(())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.0.state().sender_gone = true;
        self.0.arrived.notify_one();
    }
}

impl Receiver {
    /// A handle that ends this receiver's waits when its client goes (see `hangup.rs`).
    pub fn hangup(&self) -> Hangup {
        Hangup(Arc::downgrade(&self.0))
    }

    /// A message already waiting, without waiting, even once the client has gone: what a
    /// stream's first write carries along with its head.
    pub fn queued(&self) -> Option<String> {
        self.0.state().queue.pop_front()
    }

    /// The next message, waiting up to `timeout`. Messages queued before the sender went
    /// are still delivered; only then does this say `Closed`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<String, RecvError> {
        let mut state = self.0.state();
        let mut waited = false;
        loop {
            if state.peer_gone {
                return Err(RecvError::PeerGone);
            }
            if let Some(message) = state.queue.pop_front() {
                if state.queue.is_empty() && state.queue.capacity() > 16 {
                    // A burst is over: give its memory back.
                    state.queue = VecDeque::new();
                }
                return Ok(message);
            }
            if state.sender_gone {
                return Err(RecvError::Closed);
            }
            if waited {
                return Err(RecvError::Timeout);
            }
            let (next, result) = self
                .0
                .arrived
                .wait_timeout(state, timeout)
                .unwrap_or_else(|p| p.into_inner());
            state = next;
            // A spurious or early wake-up just gives up the rest of this timeout: the
            // caller loops anyway (keep-alive ticks).
            waited = result.timed_out() || state.queue.is_empty();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.receiver_gone = true;
        state.queue = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    const SHORT: Duration = Duration::from_millis(20);

    #[test]
    fn delivers_in_order_and_refuses_past_capacity() {
        let (tx, rx) = bounded(2);
        tx.try_send("a".into()).unwrap();
        tx.try_send("b".into()).unwrap();
        assert_eq!(tx.try_send("c".into()), Err(SendError::Full));
        assert_eq!(rx.recv_timeout(SHORT), Ok("a".into()));
        tx.try_send("c".into()).unwrap();
        assert_eq!(rx.recv_timeout(SHORT), Ok("b".into()));
        assert_eq!(rx.recv_timeout(SHORT), Ok("c".into()));
        assert_eq!(rx.recv_timeout(SHORT), Err(RecvError::Timeout));
    }

    #[test]
    fn a_gone_sender_ends_after_what_was_queued() {
        let (tx, rx) = bounded(4);
        tx.try_send("last".into()).unwrap();
        drop(tx);
        assert_eq!(rx.recv_timeout(SHORT), Ok("last".into()));
        assert_eq!(rx.recv_timeout(SHORT), Err(RecvError::Closed));
    }

    #[test]
    fn a_gone_receiver_refuses_more() {
        let (tx, rx) = bounded(4);
        drop(rx);
        assert_eq!(tx.try_send("x".into()), Err(SendError::Closed));
    }

    #[test]
    fn a_hang_up_wakes_the_receiver_and_outranks_what_waits() {
        let (tx, rx) = bounded(4);
        let hangup = rx.hangup();
        let waiter = thread::spawn(move || {
            let first = rx.recv_timeout(Duration::from_secs(10));
            (first, rx)
        });
        thread::sleep(SHORT);
        hangup.hang_up();
        let (first, rx) = waiter.join().unwrap();
        assert_eq!(first, Err(RecvError::PeerGone));
        tx.try_send("unsent".into()).unwrap();
        assert_eq!(rx.recv_timeout(SHORT), Err(RecvError::PeerGone));
        drop(rx);
        hangup.hang_up(); // on a gone outbox: nothing
    }

    #[test]
    fn a_waiting_receiver_wakes_for_a_message_and_for_the_end() {
        let (tx, rx) = bounded(4);
        let waiter = thread::spawn(move || {
            let first = rx.recv_timeout(Duration::from_secs(10));
            let second = rx.recv_timeout(Duration::from_secs(10));
            (first, second)
        });
        thread::sleep(SHORT);
        tx.try_send("hello".into()).unwrap();
        thread::sleep(SHORT);
        drop(tx);
        let (first, second) = waiter.join().unwrap();
        assert_eq!(first, Ok("hello".into()));
        assert_eq!(second, Err(RecvError::Closed));
    }
}
