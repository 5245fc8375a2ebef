//! Resumption of Streamable HTTP event streams (SEP-1699, MCP 2025-11-25), per session.
//!
//! A tool may end its `POST /mcp` event stream before its result (`Call::close_stream`).
//! Every event of such a stream has an id naming the stream (the transport's business, see
//! `transport/sse.rs`), and the client comes back with `GET /mcp` and `Last-Event-ID`. What
//! the call sends after the close (progress, log messages, questions, its result) waits
//! here, in order, for that `GET`, and goes straight to it once it is attached. The
//! resuming `GET` is a stream of its own, beside the session's `GET` stream (a client may
//! hold both): it carries only its call's messages and ends after the call's last one.
//!
//! Bounds: at most `BACKLOG_CAPACITY` messages wait per session (the oldest are dropped
//! first); everything here is freed when the session ends. Nothing here is used by a call
//! that never closes its stream.

use std::collections::VecDeque;

use crate::mcp::outbox::{self, Receiver};

/// Messages that may wait per session for their stream to be resumed. Past it the oldest
/// is dropped: a client that never comes back must not make a session grow.
pub const BACKLOG_CAPACITY: usize = 64;

/// The event streams of one session that their calls closed early, and what waits for them.
#[derive(Default)]
pub struct Resumable {
    /// Streams closed while their call still runs, each with the `GET` resuming it, if any.
    closed: Vec<Closed>,
    /// Messages no `GET` has taken yet, oldest first: (stream, the message as the transport
    /// will write it).
    backlog: VecDeque<(u64, String)>,
}

struct Closed {
    stream: u64,
    resumer: Option<Resumer>,
}

/// A `GET` stream resuming a closed stream.
struct Resumer {
    outbox: outbox::Sender,
    ticket: u64,
}

impl Resumable {
    /// The call behind `stream` closed it: its next messages wait for a `GET`.
    pub fn close(&mut self, stream: u64) {
        if !self.closed.iter().any(|c| c.stream == stream) {
            self.closed.push(Closed {
                stream,
                resumer: None,
            });
        }
    }

    /// A message for closed `stream`: to the `GET` resuming it, or to the backlog.
    pub fn push(&mut self, stream: u64, message: String) {
        let closed = self.closed.iter_mut().find(|c| c.stream == stream);
        let message = match closed.and_then(|c| c.resumer.take().map(|r| (c, r))) {
            Some((closed, resumer)) => match resumer.outbox.try_send_back(message) {
                Ok(()) => {
                    closed.resumer = Some(resumer);
                    return;
                }
                // The resuming stream has ended, or its client stopped reading: the next
                // `GET` gets this (and what follows) from the backlog.
                Err((_, message)) => message,
            },
            None => message,
        };
        if self.backlog.len() >= BACKLOG_CAPACITY {
            self.backlog.pop_front();
            log::debug!(
                "a message for a closed event stream was dropped: {BACKLOG_CAPACITY} wait already and no GET resumed them"
            );
        }
        self.backlog.push_back((stream, message));
    }

    /// The call behind `stream` has sent its last message: a `GET` resuming it ends once
    /// it has sent what it holds (one resuming later gets what is left in the backlog).
    pub fn finish(&mut self, stream: u64) {
        self.closed.retain(|c| c.stream != stream);
    }

    /// A `GET` resumes `stream`: its messages waiting in the backlog, in order, then (while
    /// its call runs) the ones that follow. A `GET` resuming the same stream before it
    /// takes its place (that one's stream ends). `None` when there is nothing to resume: no
    /// message waits and no call runs behind a closed `stream`.
    pub fn resume(&mut self, stream: u64, ticket: u64) -> Option<Receiver> {
        let closed = self.closed.iter_mut().find(|c| c.stream == stream);
        let waiting = self.backlog.iter().any(|(s, _)| *s == stream);
        if closed.is_none() && !waiting {
            return None;
        }
        let (tx, rx) = outbox::bounded(crate::mcp::session::OUTBOX_CAPACITY);
        let mut kept = VecDeque::new();
        for (s, message) in self.backlog.drain(..) {
            if s != stream {
                kept.push_back((s, message));
            } else if let Err((_, message)) = tx.try_send_back(message) {
                // Cannot happen (the outbox holds more than the backlog), but keep it.
                kept.push_back((s, message));
            }
        }
        self.backlog = kept;
        if let Some(closed) = closed {
            closed.resumer = Some(Resumer { outbox: tx, ticket });
        }
        // Otherwise the call has finished: `tx` drops here, and the stream ends once it
        // has sent what was waiting.
        Some(rx)
    }

    /// The `GET` holding `ticket` for `stream` has ended: later messages wait again.
    pub fn detach(&mut self, stream: u64, ticket: u64) {
        if let Some(closed) = self.closed.iter_mut().find(|c| c.stream == stream)
            && closed.resumer.as_ref().is_some_and(|r| r.ticket == ticket)
        {
            closed.resumer = None;
        }
    }

    /// Whether a `GET` is resuming some stream (the session is in use).
    pub fn resumed(&self) -> bool {
        self.closed.iter().any(|c| c.resumer.is_some())
    }

    /// Forgets everything: resuming streams end, waiting messages are freed.
    pub fn clear(&mut self) {
        *self = Resumable::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::outbox::RecvError;
    use std::time::Duration;

    fn drain(rx: &Receiver) -> (Vec<String>, RecvError) {
        let mut got = Vec::new();
        loop {
            match rx.recv_timeout(Duration::ZERO) {
                Ok(m) => got.push(m),
                Err(e) => return (got, e),
            }
        }
    }

    #[test]
    fn a_closed_stream_keeps_its_messages_for_the_get_that_resumes_it() {
        let mut r = Resumable::default();
        r.close(1);
        r.close(2);
        r.push(1, "1a".into());
        r.push(2, "2a".into());
        r.push(1, "1b".into());
        assert!(r.resume(3, 0).is_none(), "nothing to resume");
        let rx = r.resume(1, 7).unwrap();
        assert!(r.resumed());
        r.push(1, "1c".into());
        assert_eq!(
            drain(&rx),
            (
                vec!["1a".into(), "1b".into(), "1c".into()],
                RecvError::Timeout
            )
        );
        r.finish(1);
        assert_eq!(drain(&rx), (vec![], RecvError::Closed));
        // The other stream's message still waits; its call has finished meanwhile.
        r.finish(2);
        let rx = r.resume(2, 8).unwrap();
        assert_eq!(drain(&rx), (vec!["2a".into()], RecvError::Closed));
        assert!(r.resume(2, 9).is_none());
        assert!(!r.resumed());
    }

    #[test]
    fn a_gone_get_leaves_later_messages_to_the_next_one() {
        let mut r = Resumable::default();
        r.close(4);
        let first = r.resume(4, 1).unwrap();
        r.detach(4, 0); // another ticket's end: this one stays
        assert!(r.resumed());
        drop(first);
        r.push(4, "lost to nobody".into());
        r.detach(4, 1);
        let second = r.resume(4, 2).unwrap();
        assert_eq!(
            drain(&second),
            (vec!["lost to nobody".into()], RecvError::Timeout)
        );
        // A third GET takes the second's place, whose stream ends.
        let third = r.resume(4, 3).unwrap();
        assert_eq!(drain(&second), (vec![], RecvError::Closed));
        r.push(4, "x".into());
        assert_eq!(drain(&third), (vec!["x".into()], RecvError::Timeout));
    }

    #[test]
    fn the_backlog_drops_its_oldest_past_capacity_and_clear_frees_it() {
        let mut r = Resumable::default();
        r.close(1);
        for i in 0..BACKLOG_CAPACITY + 3 {
            r.push(1, i.to_string());
        }
        let rx = r.resume(1, 1).unwrap();
        let (got, _) = drain(&rx);
        assert_eq!(got.len(), BACKLOG_CAPACITY);
        assert_eq!(got[0], "3");
        r.clear();
        assert_eq!(drain(&rx), (vec![], RecvError::Closed));
        assert!(r.backlog.is_empty() && r.closed.is_empty());
    }
}
