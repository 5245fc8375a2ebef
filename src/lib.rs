//! mcp-warden: a small, auditable MCP server over HTTP.
//!
//! Layers, outside in: `http` (connections, request heads and bodies) → `transport` (the
//! routes, the checks every MCP endpoint shares, and the two transports: `legacy` for
//! HTTP+SSE, `streamable` for Streamable HTTP on `/mcp`; `sse` holds a stream, `hangup`
//! notices a client leaving) → `mcp`, the one core both share (dispatch over `rpc`
//! envelopes, `session`s, the `call` a tool sees, the `watchdog` that answers for calls
//! past `TOOL_TIMEOUT_SECS`, and the catalog: `tools`, `prompts`, `resources`). `auth`
//! verifies tokens and knows no HTTP; `config` reads the environment.
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod http;
pub mod identity;
pub mod logsink;
pub mod mcp;
pub mod transport;

pub use mcp::{rpc, tools};

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use std::{fmt, io};

use auth::Authenticator;
use config::Config;
use transport::App;

/// A running server: its address, its live state, and the handle that stops it.
pub struct Server {
    addr: SocketAddr,
    app: Arc<App>,
    shared: Arc<http::Shared>,
    accept: Option<JoinHandle<()>>,
    /// Answers for tool calls past `TOOL_TIMEOUT_SECS` (`mcp/watchdog.rs`).
    watchdog: mcp::watchdog::Watchdog,
}

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    /// The listener or the accept thread failed.
    Io(io::Error),
    /// Authentication is on and the JWKS could not be used.
    Jwks(auth::jwks::JwksError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Io(e) => write!(f, "{e}"),
            StartError::Jwks(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {}

impl From<io::Error> for StartError {
    fn from(e: io::Error) -> Self {
        StartError::Io(e)
    }
}

/// Starts serving on `listener` (already bound) on a background thread, with the built-in
/// tools. With auth on, the JWKS is fetched first: no key, no server.
pub fn start(config: Config, listener: TcpListener) -> Result<Server, StartError> {
    start_with_tools(config, listener, tools::TOOLS)
}

/// `start` with another tool catalog (for embedding, and for tests).
pub fn start_with_tools(
    config: Config,
    listener: TcpListener,
    tools: &'static [tools::Tool],
) -> Result<Server, StartError> {
    let addr = listener.local_addr()?;
    let auth = match &config.auth {
        None => None,
        Some(auth) => Some(Authenticator::start(auth).map_err(StartError::Jwks)?),
    };
    let app = App::new(config, auth, tools, addr);
    transport::hangup::start();
    let watchdog = mcp::watchdog::Watchdog::start(Arc::clone(&app.sessions))?;
    let shared = Arc::new(http::Shared::default());
    let limits = http::Limits {
        request_timeout: app.config.request_timeout,
        max_body_bytes: app.config.max_body_bytes,
        max_connections: app.config.max_connections,
    };
    let handler: Arc<dyn http::Handler> = app.clone();
    let accept = thread::Builder::new().name("accept".into()).spawn({
        let shared = Arc::clone(&shared);
        move || http::serve(listener, handler, limits, shared)
    })?;
    Ok(Server {
        addr,
        app,
        shared,
        accept: Some(accept),
        watchdog,
    })
}

impl Server {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many SSE sessions are open.
    pub fn session_count(&self) -> usize {
        self.app.sessions.len()
    }

    /// One line for the startup log: the keys and who is let in. `None` with auth off.
    pub fn auth_summary(&self) -> Option<String> {
        let auth = self.app.auth.as_ref()?;
        let keys = auth.keys().current();
        Some(format!(
            "authentication on: {} key(s) from {}, kids {:?}; required groups: {}; tokens checked at every request to /mcp, /sse and /messages",
            keys.set.len(),
            auth.keys().uri(),
            keys.set.kids(),
            auth.required_groups()
        ))
    }

    /// Blocks until the accept loop ends.
    pub fn wait(mut self) {
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }

    /// Open TCP connections (each SSE stream holds one).
    pub fn open_connections(&self) -> usize {
        self.shared.open_connections()
    }

    /// Stops accepting connections; idle keep-alive connections close, busy ones after
    /// their current request. Streams already open run until their clients go. The
    /// watchdog stops too: a tool still running past `TOOL_TIMEOUT_SECS` gets no answer in
    /// its place from now on.
    pub fn stop(&mut self) {
        self.watchdog.stop();
        self.shared.begin_shutdown();
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }

    /// Graceful shutdown: stop accepting, end every SSE stream (a clean close, after the
    /// replies already queued for it), let in-flight requests finish, and wait up to
    /// `grace` for every connection to close. Returns whether all did.
    pub fn shutdown(&mut self, grace: Duration) -> bool {
        let deadline = Instant::now() + grace;
        self.stop();
        let streams = self.app.sessions.close_all();
        log::info!(
            "shutting down: ending {streams} stream(s), waiting up to {grace:?} for in-flight requests"
        );
        while self.shared.open_connections() > 0 {
            if Instant::now() >= deadline {
                log::warn!(
                    "shutdown grace ({grace:?}, SHUTDOWN_GRACE_SECS) is over with {} connection(s) still open",
                    self.shared.open_connections()
                );
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.stop();
        }
    }
}
