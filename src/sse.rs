//! The SSE wire format and the loop that holds one stream: headers, the `endpoint` event,
//! `message` events from the session's outbox, and keep-alive comments. Each event is
//! written and flushed on its own: a client or proxy must see it before the next exists.

use crate::outbox::{Receiver, RecvError};
use std::io::{self, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The response head of a stream. The body runs until the connection closes, so there is
/// no length and no chunking; `X-Accel-Buffering` asks nginx-style proxies not to buffer.
const HEAD: &str = "HTTP/1.1 200 OK\r\n\
Content-Type: text/event-stream\r\n\
Cache-Control: no-cache\r\n\
X-Accel-Buffering: no\r\n\
Connection: close\r\n\r\n";

/// One event. `data` must be a single line (serialized JSON always is).
pub fn event(name: &str, data: &str) -> String {
    debug_assert!(!data.contains(['\n', '\r']));
    let mut event = String::with_capacity(name.len() + data.len() + 16);
    for part in ["event: ", name, "\ndata: ", data, "\n\n"] {
        event.push_str(part);
    }
    event
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
    let first = format!("{HEAD}{}", event("endpoint", endpoint));
    if send(stream, first.as_bytes()).is_err() {
        return End::ClientGone;
    }
    loop {
        let wait = match deadline.map(|d| d.checked_duration_since(Instant::now())) {
            None => keepalive,
            Some(None) => return End::TokenExpired,
            Some(Some(left)) => left.min(keepalive),
        };
        let chunk = match outbox.recv_timeout(wait) {
            Ok(message) => event("message", &message),
            Err(RecvError::Timeout) if deadline.is_some_and(|d| Instant::now() >= d) => {
                return End::TokenExpired;
            }
            Err(RecvError::Timeout) => {
                if client_closed(stream) {
                    return End::ClientGone;
                }
                ": keep-alive\n\n".to_string()
            }
            Err(RecvError::Closed) => return End::Closed,
        };
        if send(stream, chunk.as_bytes()).is_err() {
            return End::ClientGone;
        }
    }
}

fn send(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes)?;
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
