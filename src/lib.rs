//! mcp-warden: a small, auditable MCP server over HTTP, guarded by JWTs. Use it as the
//! `mcp-warden` binary, or build your own server on it: add tools (and prompts, resources,
//! resource templates), then `serve` with every setting the binary reads from the
//! environment (`JWT_AUTH_ENABLED`, `JWKS_URI`, `REQUIRED_GROUPS`, `PORT`, …; `--help`
//! lists them), on both transports (HTTP+SSE on `/sse`, Streamable HTTP on `/mcp`).
//!
//! ```no_run
//! use mcp_warden::{Server, Tool};
//! use serde::Deserialize;
//! use serde_json::json;
//!
//! #[derive(Deserialize)]
//! struct Add {
//!     a: f64,
//!     b: f64,
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let schema = json!({
//!         "type": "object",
//!         "properties": { "a": { "type": "number" }, "b": { "type": "number" } },
//!         "required": ["a", "b"]
//!     });
//!     let add = Tool::new("add", "Adds two numbers.", schema, |args: Add, call| {
//!         call.log("info", json!(format!("{} asked", call.caller().subject())));
//!         Ok(format!("{}", args.a + args.b))
//!     });
//!     Server::builder().name("calculator", "1.0.0").tool(add).serve()
//! }
//! ```
//!
//! Arguments that do not fit the schema never reach the handler: the client gets an
//! `isError` result naming the field. Mid-call, the `Call` reports progress, sends log
//! messages, sees cancellation and the call's deadline (`TOOL_TIMEOUT_SECS`), and asks the
//! client (`create_message`, `elicit`, `list_roots`). A handler returns text, any
//! `Content` (images, audio, embedded resources, links, several at once) or a
//! `ToolResult` with `structuredContent`. `examples/conformance.rs` shows every feature.
//!
//! Layers, outside in: `http` (connections, request heads and bodies) → `transport` (the
//! routes, the checks every MCP endpoint shares, and the two transports: `legacy` for
//! HTTP+SSE, `streamable` for Streamable HTTP on `/mcp`; `sse` holds a stream, `hangup`
//! notices a client leaving) → `mcp`, the one core both share (dispatch over `rpc`
//! envelopes, `session`s, the `call` a tool sees, the `watchdog` that answers for calls
//! past `TOOL_TIMEOUT_SECS`, the `catalog` of what is offered and the `content` handlers
//! return). `auth` verifies tokens and knows no HTTP; `policy` decides which groups may
//! use which tools, prompts and resources, and `audit` writes each tool call's line;
//! `config` reads the environment; `builtin` is what the binary offers.
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod builtin;
pub mod config;
pub mod gateway;
pub mod http;
pub mod identity;
pub mod logsink;
pub mod mcp;
pub mod policy;
mod serve;
pub mod transport;

pub use config::Config;
pub use identity::{Caller, Identity};
pub use mcp::call::{AskError, Call};
pub use mcp::catalog::{
    Catalog, CatalogError, Completing, NoArgs, Prompt, PromptArgs, Resource, ResourceTemplate,
    Tool, ToolHandler, Vars,
};
pub use mcp::content::{Content, HandlerError, PromptMessage, ResourceContents, Role, ToolResult};
pub use mcp::rpc;
pub use policy::{Policy, PolicyError};

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use std::{fmt, io};

use auth::Authenticator;
use mcp::catalog::Live;
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
    /// The catalog cannot be served (two tools of one name, …).
    Catalog(CatalogError),
    /// The per-tool rules cannot be served: a rule given to `Builder::policy` is
    /// malformed, or there are rules and an upstream server (not supported yet).
    Policy(PolicyError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Io(e) => write!(f, "{e}"),
            StartError::Jwks(e) => write!(f, "{e}"),
            StartError::Catalog(e) => write!(f, "{e}"),
            StartError::Policy(e) => write!(f, "per-tool authorization: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

impl From<io::Error> for StartError {
    fn from(e: io::Error) -> Self {
        StartError::Io(e)
    }
}

/// Starts the binary's server (the built-in tools, see `builtin`) on `listener`.
pub fn start(config: Config, listener: TcpListener) -> Result<Server, StartError> {
    builtin::add(Server::builder()).start(config, listener)
}

/// Builds a server: what it offers (tools, prompts, resources, resource templates), then
/// `serve` (the whole program: configuration from the environment, logging, signals) or
/// `start` (on a listener of yours, with a `Config` of yours: for embedding and tests).
pub struct Builder {
    catalog: Catalog,
    live: Option<Arc<Live>>,
}

impl Builder {
    /// The name and version clients see (`serverInfo`).
    pub fn name(mut self, name: impl Into<String>, version: impl Into<String>) -> Builder {
        self.catalog.info.name = name.into();
        self.catalog.info.version = version.into();
        self
    }

    /// Guidance for the model on how to use this server (`instructions`).
    pub fn instructions(mut self, text: impl Into<String>) -> Builder {
        self.catalog.info.instructions = Some(text.into());
        self
    }

    pub fn tool(mut self, tool: Tool) -> Builder {
        self.catalog.tools.push(tool);
        self
    }

    pub fn prompt(mut self, prompt: Prompt) -> Builder {
        self.catalog.prompts.push(prompt);
        self
    }

    pub fn resource(mut self, resource: Resource) -> Builder {
        self.catalog.resources.push(resource);
        self
    }

    pub fn template(mut self, template: ResourceTemplate) -> Builder {
        self.catalog.templates.push(template);
        self
    }

    /// Puts another MCP server behind the gate: each session is relayed to a child
    /// process of its own running `upstream` over stdio (see `gateway`), instead of the
    /// tools, prompts and resources added here.
    pub fn upstream(mut self, upstream: gateway::Upstream) -> Builder {
        self.catalog.upstream = Some(Arc::new(gateway::Gateway::new(upstream)));
        self
    }

    /// Who may use what, on top of `REQUIRED_GROUPS`: per-tool (and per-prompt,
    /// per-resource) group rules. Lists show each caller only what it may use, and a call
    /// to anything else is answered as an unknown name is. A `TOOL_POLICY_FILE` applies
    /// too: then an item must pass both. Given again, the last one counts.
    ///
    /// ```no_run
    /// use mcp_warden::{Policy, Server};
    ///
    /// let policy = Policy::new()
    ///     .tool("write_file", ["sre"])
    ///     .tool("admin_*", ["sre", "admin"])
    ///     .resource("file:///secrets/", ["sre"]);
    /// // … .tool(write_file) and the rest, then:
    /// Server::builder().policy(policy).serve();
    /// ```
    pub fn policy(mut self, policy: Policy) -> Builder {
        self.catalog.policy = Arc::new(policy);
        self
    }

    /// A handle on the catalog the server will serve, for handlers (or anyone) to change
    /// it or announce a resource's change once it runs. Everything added to the builder
    /// before `start` is in it; later changes go through the handle.
    pub fn handle(&mut self) -> Handle {
        let live = self
            .live
            .get_or_insert_with(|| Arc::new(Live::new(Catalog::new())));
        Handle(Arc::clone(live))
    }

    /// Serves on `listener` (already bound) on background threads. With auth on, the JWKS
    /// is fetched first: no key, no server.
    pub fn start(mut self, config: Config, listener: TcpListener) -> Result<Server, StartError> {
        self.catalog.check().map_err(StartError::Catalog)?;
        policy::prepare(&mut self.catalog, &config).map_err(StartError::Policy)?;
        let live = match self.live {
            Some(live) => {
                let catalog = self.catalog;
                live.update(move |c| *c = catalog)
                    .map_err(StartError::Catalog)?;
                live
            }
            None => Arc::new(Live::new(self.catalog)),
        };
        let addr = listener.local_addr()?;
        mcp::mrtr::set_key(config.state_secret.as_ref().map(|s| s.0.as_slice()));
        let auth = match &config.auth {
            None => None,
            Some(auth) => Some(Authenticator::start(auth).map_err(StartError::Jwks)?),
        };
        let app = App::new(config, auth, live, addr);
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

    /// Runs the program: reads the configuration from the environment (every setting of
    /// the `mcp-warden` binary; `--help` lists them), sets up logging, binds `HOST:PORT`,
    /// serves, and shuts down gracefully on SIGTERM/SIGINT. Exit status 2 for bad
    /// configuration, 1 when the server cannot start, 0 after a shutdown.
    pub fn serve(self) -> std::process::ExitCode {
        serve::run(self)
    }

    /// What the server will offer, as added so far.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn info(&self) -> &mcp::catalog::ServerInfo {
        &self.catalog.info
    }
}

/// A handle on a server's catalog: change what it offers while it runs, or tell the
/// clients subscribed to a resource that it changed.
#[derive(Clone)]
pub struct Handle(Arc<Live>);

impl Handle {
    /// Changes the catalog (add or remove tools, prompts, resources, templates); every
    /// session is sent the `list_changed` notification of each list that changed. A
    /// change that leaves two entries of one name is refused, and nothing changes. The
    /// policy and the audit settings stay as the server started with them.
    pub fn update(&self, change: impl FnOnce(&mut Catalog)) -> Result<(), CatalogError> {
        self.0.update(|catalog| {
            let (policy, audit) = (Arc::clone(&catalog.policy), catalog.audit);
            change(catalog);
            catalog.policy = policy;
            catalog.audit = audit;
        })
    }

    /// Sends `notifications/resources/updated` to the sessions subscribed to `uri`.
    pub fn resource_updated(&self, uri: &str) {
        self.0.resource_updated(uri);
    }

    /// The catalog as it is now.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.0.current()
    }
}

impl Server {
    /// A server with nothing to offer yet: add tools, prompts and resources, then `serve`.
    pub fn builder() -> Builder {
        Builder {
            catalog: Catalog::new(),
            live: None,
        }
    }

    /// A handle on the catalog being served.
    pub fn handle(&self) -> Handle {
        Handle(Arc::clone(&self.app.catalog))
    }

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
        let gateway = self.app.catalog.current().upstream.clone();
        if let Some(gateway) = &gateway {
            gateway.stop();
        }
        if let Some(gateway) = gateway
            && !gateway.wait_children(deadline)
        {
            log::warn!(
                "shutdown grace ({grace:?}) is over with {} upstream server(s) not yet ended",
                gateway.live_children()
            );
        }
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
