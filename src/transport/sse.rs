//! The SSE wire format and the loop that holds one stream: headers, the `endpoint` event,
//! `message` events from the session's outbox, and keep-alive comments. Each event is
//! written and flushed on its own: a client or proxy must see it before the next exists.
//!
//! Event ids (SEP-1699) name the event stream a `POST /mcp` answer became, within its
//! session, and the event's place in it: `<stream>-<event>`, the priming event being `0`.
//! They are opaque to clients; a client resuming a stream sends the last one it saw back in
//! `Last-Event-ID`. The session's own `GET` stream and the legacy stream carry none.

use crate::http::stream_client_gone;
use crate::mcp::outbox::{Receiver, RecvError};
use std::fmt;
use std::io::{self, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The response head of a stream, up to the lines a request adds (CORS answers). The body
/// runs until the connection closes, so there is no length and no chunking;
/// `X-Accel-Buffering` asks nginx-style proxies not to buffer.
const HEAD: &str = "HTTP/1.1 200 OK\r\n\
Content-Type: text/event-stream\r\n\
Cache-Control: no-cache\r\n\
X-Accel-Buffering: no\r\n\
Connection: close\r\n";

/// The `retry` field: how soon a client reconnects after a stream ends (milliseconds).
const RETRY: &str = "retry: 1000\n";

/// Bytes kept in a stream's event buffer between events; a larger one (after a big reply)
/// is given back, so an idle session stays cheap.
const KEEP_BUFFER: usize = 4096;

/// The id of one event of a `POST /mcp` answer's event stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventId {
    /// The stream's number within its session (`Session::number_event_stream`).
    pub stream: u64,
    /// The event's place in the stream; the priming event is 0.
    pub event: u64,
}

impl EventId {
    /// The id as a client sends it back in `Last-Event-ID`; `None` if it is not one of ours.
    pub fn parse(text: &str) -> Option<EventId> {
        let (stream, event) = text.trim().split_once('-')?;
        let number = |s: &str| {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse::<u64>().ok()
        };
        Some(EventId {
            stream: number(stream)?,
            event: number(event)?,
        })
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.stream, self.event)
    }
}

/// Appends one event to `out`, with its id if it has one. `data` must be a single line
/// (serialized JSON always is).
fn event(out: &mut Vec<u8>, id: Option<EventId>, name: &str, data: &str) {
    debug_assert!(!data.contains(['\n', '\r']));
    out.reserve(name.len() + data.len() + 48);
    if let Some(id) = id {
        let _ = writeln!(out, "id: {id}");
    }
    for part in ["event: ", name, "\ndata: ", data, "\n\n"] {
        out.extend_from_slice(part.as_bytes());
    }
}

/// Appends a `message` event with id `id` to `out`.
pub fn message(out: &mut Vec<u8>, id: EventId, data: &str) {
    event(out, Some(id), "message", data);
}

/// A `message` event without an id (a 2026-07-28 answer: that revision resumes nothing).
pub fn plain_message(out: &mut Vec<u8>, data: &str) {
    event(out, None, "message", data);
}

/// The head of an event stream answering a 2026-07-28 request: no priming event, no ids.
pub fn plain_opening(out: &mut Vec<u8>, extra_headers: &str) {
    out.extend_from_slice(HEAD.as_bytes());
    out.extend_from_slice(extra_headers.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A `message` event with id `id`, as text (what waits for a resuming stream).
pub fn message_text(id: EventId, data: &str) -> String {
    let mut out = Vec::new();
    message(&mut out, id, data);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends the head of an event stream answering a request (`extra_headers`: lines the
/// request adds, each ending in CRLF), then its priming event: id `id`, the `retry` field
/// and empty data, so a client holds an id to resume with before anything else arrives.
pub fn opening(out: &mut Vec<u8>, extra_headers: &str, id: EventId) {
    out.extend_from_slice(HEAD.as_bytes());
    out.extend_from_slice(extra_headers.as_bytes());
    out.extend_from_slice(b"\r\n");
    let _ = write!(out, "id: {id}\n{RETRY}data: \n\n");
}

/// Why a stream ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The client closed the connection or stopped accepting writes.
    ClientGone,
    /// The session was closed from our side (every sender dropped).
    Closed,
    /// The token that opened the stream expired; the client reconnects with a fresh one.
    TokenExpired,
}

/// How a stream begins: header lines its request adds (each ending in CRLF) and, on the
/// legacy transport, the `endpoint` event.
pub struct Opening<'a> {
    pub extra_headers: &'a str,
    pub endpoint: Option<&'a str>,
    /// The stream resumes a `POST`'s (SEP-1699): it starts with the `retry` field, and its
    /// outbox holds whole events (`message_text`, ids included) rather than messages.
    pub resumed: bool,
}

/// Holds the stream: sends the head (and the `endpoint` event, if any), then every
/// message from `outbox`, with a keep-alive comment after each `keepalive` of quiet,
/// until `deadline`.
pub fn run(
    stream: &TcpStream,
    opening: Opening<'_>,
    outbox: &Receiver,
    keepalive: Duration,
    deadline: Option<Instant>,
) -> End {
    // Each event is built whole in this buffer and written with one `write_all` (one
    // segment on a `TCP_NODELAY` socket). Not `writev` of the parts: std sends with
    // `MSG_NOSIGNAL`, but `writev` to a closed peer raises SIGPIPE wherever the process
    // has not ignored it (a host embedding the library, a fuzzer).
    let mut out = Vec::with_capacity(HEAD.len() + opening.extra_headers.len() + 128);
    out.extend_from_slice(HEAD.as_bytes());
    out.extend_from_slice(opening.extra_headers.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(endpoint) = opening.endpoint {
        event(&mut out, None, "endpoint", endpoint);
    }
    if opening.endpoint.is_some() || opening.resumed {
        // How soon a client's EventSource reopens the stream after it ends (a restart, a
        // rollout): its default is 3 s, during which every call fails.
        out.extend_from_slice(RETRY.as_bytes());
        out.push(b'\n');
    }
    // What already waits (a subscription's acknowledgement, a resumed stream's backlog)
    // goes out with the head, in the same write, even if the client has just half-closed.
    while let Some(message) = outbox.queued() {
        append(&mut out, opening.resumed, &message);
    }
    if send(stream, &mut out).is_err() {
        return End::ClientGone;
    }
    loop {
        let wait = match deadline.map(|d| d.checked_duration_since(Instant::now())) {
            None => keepalive,
            Some(None) => return End::TokenExpired,
            Some(Some(left)) => left.min(keepalive),
        };
        match outbox.recv_timeout(wait) {
            Ok(message) => append(&mut out, opening.resumed, &message),
            Err(RecvError::Timeout) if deadline.is_some_and(|d| Instant::now() >= d) => {
                return End::TokenExpired;
            }
            Err(RecvError::Timeout) => {
                if stream_client_gone(stream) {
                    return End::ClientGone;
                }
                out.extend_from_slice(b": keep-alive\n\n");
            }
            Err(RecvError::Closed) => return End::Closed,
            Err(RecvError::PeerGone) => return End::ClientGone,
        };
        if send(stream, &mut out).is_err() {
            return End::ClientGone;
        }
    }
}

/// Appends an outbox's message: a whole event on a resumed stream, a message otherwise.
fn append(out: &mut Vec<u8>, resumed: bool, message: &str) {
    if resumed {
        out.extend_from_slice(message.as_bytes());
    } else {
        event(out, None, "message", message);
    }
}

/// Writes and flushes `out`, then empties it (keeping up to `KEEP_BUFFER` of capacity).
fn send(stream: &TcpStream, out: &mut Vec<u8>) -> io::Result<()> {
    let mut stream = stream;
    let sent = stream.write_all(out).and_then(|()| stream.flush());
    out.clear();
    out.shrink_to(KEEP_BUFFER);
    sent
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;
    use std::thread;

    #[test]
    fn event_ids_read_back_as_written_and_nothing_else_passes() {
        let id = EventId {
            stream: 12,
            event: 0,
        };
        assert_eq!(id.to_string(), "12-0");
        assert_eq!(EventId::parse(" 12-0 "), Some(id));
        assert_eq!(
            EventId::parse("3-18446744073709551615"),
            Some(EventId {
                stream: 3,
                event: u64::MAX
            })
        );
        for bad in [
            "",
            "12",
            "12-",
            "-0",
            "+1-2",
            "1-2-3",
            "a-1",
            "1-18446744073709551616",
        ] {
            assert_eq!(EventId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_answer_stream_opens_with_its_priming_event() {
        let mut out = Vec::new();
        let id = |event| EventId { stream: 4, event };
        opening(&mut out, "Vary: Origin\r\n", id(0));
        message(&mut out, id(1), "{}");
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(head.contains("Content-Type: text/event-stream"));
        assert!(head.ends_with("Vary: Origin"));
        assert_eq!(
            body,
            "id: 4-0\nretry: 1000\ndata: \n\nid: 4-1\nevent: message\ndata: {}\n\n"
        );
        assert_eq!(
            message_text(id(2), "[]"),
            "id: 4-2\nevent: message\ndata: []\n\n"
        );
    }

    /// Messages queued before the stream starts go out in the head's write, even when the
    /// client has already half-closed (its hang-up noticed first); then the stream ends.
    #[test]
    fn what_waits_goes_out_with_the_head_even_to_a_client_that_half_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let (tx, rx) = crate::mcp::outbox::bounded(4);
        tx.try_send("{\"first\":1}".into()).unwrap();
        tx.try_send("{\"second\":2}".into()).unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        rx.hangup().hang_up();
        let opening = Opening {
            extra_headers: "",
            endpoint: None,
            resumed: false,
        };
        let end = run(&server, opening, &rx, Duration::from_secs(60), None);
        assert_eq!(end, End::ClientGone);
        drop(server);
        let mut text = String::new();
        client.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(
            body,
            "event: message\ndata: {\"first\":1}\n\nevent: message\ndata: {\"second\":2}\n\n"
        );
        drop(tx);
    }

    /// An event far larger than the socket buffers arrives exactly, in order, and the
    /// buffer that carried it is given back down to `KEEP_BUFFER`.
    #[test]
    fn a_large_event_arrives_intact_and_its_buffer_is_given_back() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let writer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut reader, _) = listener.accept().unwrap();
        let data: String = (0..4 << 20)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let received = thread::spawn(move || {
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes).unwrap();
            bytes
        });
        let mut out = Vec::new();
        event(&mut out, None, "message", &data);
        send(&writer, &mut out).unwrap();
        assert!(out.is_empty() && out.capacity() <= KEEP_BUFFER);
        drop(writer);
        let bytes = received.join().unwrap();
        assert_eq!(bytes.len(), data.len() + "event: message\ndata: \n\n".len());
        assert!(bytes.starts_with(b"event: message\ndata: abc"));
        assert!(bytes.ends_with(b"\n\n"));
        assert!(bytes[21..bytes.len() - 2] == *data.as_bytes());
    }
}
