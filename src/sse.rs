//! The SSE wire format and the loop that holds one stream: headers, the `endpoint` event,
//! `message` events from the session's outbox, and keep-alive comments. Each event is
//! written and flushed on its own: a client or proxy must see it before the next exists.

use crate::outbox::{Receiver, RecvError};
use std::io::{self, IoSlice, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The response head of a stream. The body runs until the connection closes, so there is
/// no length and no chunking; `X-Accel-Buffering` asks nginx-style proxies not to buffer.
const HEAD: &str = "HTTP/1.1 200 OK\r\n\
Content-Type: text/event-stream\r\n\
Cache-Control: no-cache\r\n\
X-Accel-Buffering: no\r\n\
Connection: close\r\n\r\n";

/// One event's bytes, in the order they go on the wire: no copy into one buffer, but one
/// `writev`, so an event still leaves in one segment. `data` must be a single line
/// (serialized JSON always is).
fn event<'a>(name: &'a str, data: &'a str) -> [IoSlice<'a>; 5] {
    debug_assert!(!data.contains(['\n', '\r']));
    [
        IoSlice::new(b"event: "),
        IoSlice::new(name.as_bytes()),
        IoSlice::new(b"\ndata: "),
        IoSlice::new(data.as_bytes()),
        IoSlice::new(b"\n\n"),
    ]
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

/// Holds the stream: sends the head and the `endpoint` event, then every message from
/// `outbox`, with a keep-alive comment after each `keepalive` of quiet, until `deadline`.
pub fn run(
    stream: &mut TcpStream,
    endpoint: &str,
    outbox: &Receiver,
    keepalive: Duration,
    deadline: Option<Instant>,
) -> End {
    let [a, b, c, d, e] = event("endpoint", endpoint);
    let mut first = [IoSlice::new(HEAD.as_bytes()), a, b, c, d, e];
    if send(stream, &mut first).is_err() {
        return End::ClientGone;
    }
    loop {
        let wait = match deadline.map(|d| d.checked_duration_since(Instant::now())) {
            None => keepalive,
            Some(None) => return End::TokenExpired,
            Some(Some(left)) => left.min(keepalive),
        };
        let sent = match outbox.recv_timeout(wait) {
            Ok(message) => send(stream, &mut event("message", &message)),
            Err(RecvError::Timeout) if deadline.is_some_and(|d| Instant::now() >= d) => {
                return End::TokenExpired;
            }
            Err(RecvError::Timeout) => {
                if client_closed(stream) {
                    return End::ClientGone;
                }
                send(stream, &mut [IoSlice::new(b": keep-alive\n\n")])
            }
            Err(RecvError::Closed) => return End::Closed,
        };
        if sent.is_err() {
            return End::ClientGone;
        }
    }
}

/// Writes all of `parts` with as few `writev` calls as the socket allows (one, unless its
/// send buffer is full), then flushes.
fn send(stream: &mut TcpStream, mut parts: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !parts.is_empty() {
        match stream.write_vectored(parts) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            // `n` never exceeds what was offered, as `advance_slices` requires.
            Ok(n) => IoSlice::advance_slices(&mut parts, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    stream.flush()
}

/// Whether the client has closed its side. A client sends nothing on an SSE stream after
/// its request, so readable-with-EOF (or an error) means it is gone. Without this a write
/// into a half-closed socket can still succeed once, and the session would outlive its
/// client by a second keep-alive interval.
fn client_closed(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let mut byte = [0u8; 1];
    let closed = match stream.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    };
    closed || stream.set_nonblocking(false).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;
    use std::thread;

    /// An event far larger than the socket buffers goes out in several partial `writev`s;
    /// the bytes that arrive are exactly the event, in order.
    #[test]
    fn a_large_event_survives_partial_writes_intact() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut writer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut reader, _) = listener.accept().unwrap();
        let data: String = (0..4 << 20)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let received = thread::spawn(move || {
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes).unwrap();
            bytes
        });
        send(&mut writer, &mut event("message", &data)).unwrap();
        drop(writer);
        let bytes = received.join().unwrap();
        assert_eq!(bytes.len(), data.len() + "event: message\ndata: \n\n".len());
        assert!(bytes.starts_with(b"event: message\ndata: abc"));
        assert!(bytes.ends_with(b"\n\n"));
        assert!(bytes[21..bytes.len() - 2] == *data.as_bytes());
    }
}
