//! The SSE wire format and the loop that holds one stream: headers, the `endpoint` event,
//! `message` events from the session's outbox, and keep-alive comments. Each event is
//! written and flushed on its own: a client or proxy must see it before the next exists.

use crate::http::stream_client_gone;
use crate::mcp::outbox::{Receiver, RecvError};
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

/// The `retry` field sent after the `endpoint` event (milliseconds).
const RETRY: &str = "retry: 1000\n\n";

/// Bytes kept in a stream's event buffer between events; a larger one (after a big reply)
/// is given back, so an idle session stays cheap.
const KEEP_BUFFER: usize = 4096;

/// Appends one event to `out`. `data` must be a single line (serialized JSON always is).
fn event(out: &mut Vec<u8>, name: &str, data: &str) {
    debug_assert!(!data.contains(['\n', '\r']));
    out.reserve(name.len() + data.len() + 16);
    for part in ["event: ", name, "\ndata: ", data, "\n\n"] {
        out.extend_from_slice(part.as_bytes());
    }
}

/// An event stream that answers one request (a Streamable HTTP `POST` whose handler sent
/// something before its result): the head goes out with the first event, then each event
/// as it comes; the connection closes after the last (the body is close-delimited).
pub struct ResponseStream<'a> {
    stream: &'a TcpStream,
    extra_headers: &'a str,
    out: std::cell::RefCell<Vec<u8>>,
    started: std::cell::Cell<bool>,
}

impl<'a> ResponseStream<'a> {
    pub fn new(stream: &'a TcpStream, extra_headers: &'a str) -> ResponseStream<'a> {
        ResponseStream {
            stream,
            extra_headers,
            out: std::cell::RefCell::new(Vec::new()),
            started: std::cell::Cell::new(false),
        }
    }

    /// Whether the head has gone out (the answer must then be an event too).
    pub fn started(&self) -> bool {
        self.started.get()
    }

    /// Writes one `message` event (and the head first, if not yet sent).
    pub fn message(&self, line: &str) -> io::Result<()> {
        let mut out = self.out.borrow_mut();
        if !self.started.replace(true) {
            out.extend_from_slice(HEAD.as_bytes());
            out.extend_from_slice(self.extra_headers.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        event(&mut out, "message", line);
        let mut stream = self.stream;
        let sent = stream.write_all(&out).and_then(|()| stream.flush());
        out.clear();
        out.shrink_to(KEEP_BUFFER);
        sent
    }
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
        event(&mut out, "endpoint", endpoint);
        // How soon a client's EventSource reopens the stream after it ends (a restart, a
        // rollout): its default is 3 s, during which every call fails.
        out.extend_from_slice(RETRY.as_bytes());
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
            Ok(message) => event(&mut out, "message", &message),
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
        event(&mut out, "message", &data);
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
