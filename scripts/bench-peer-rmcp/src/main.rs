//! Benchmark peer for `scripts/bench` (streamable phase): the official MCP Rust SDK, rmcp,
//! serving Streamable HTTP on `/mcp` (`StreamableHttpService` on axum) with its default
//! configuration: stateful sessions (`Mcp-Session-Id`), the local session manager, and
//! every request answered as a `text/event-stream` response (a priming event, then the
//! answer). The same `echo` tool as mcp-warden (`Tool echo: <message>`). No
//! authentication, nothing logged per request.
//!
//! Accepted sockets get `TCP_NODELAY` (axum's `serve` leaves Nagle on): the SSE response
//! is several small writes (the priming event, the answer, the last chunk), and with Nagle
//! each call waits ~40 ms for the client's delayed ACK, which would measure the kernel, not
//! the SDK. `TCP_NODELAY=0` keeps axum's default, to see that.
//!
//! Env: PORT (default 0: any free port), HOST (default 127.0.0.1), TCP_NODELAY (default 1).
//! Prints `listening on http://HOST:PORT` once it accepts connections.

use axum::serve::ListenerExt;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// The text to send back.
    message: String,
}

#[derive(Clone)]
struct Bench {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Bench {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Echoes the message back.")]
    fn echo(&self, Parameters(EchoArgs { message }): Parameters<EchoArgs>) -> String {
        format!("Tool echo: {message}")
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Bench {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".to_string());
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| std::io::Error::other(format!("PORT: not a port: {p:?}")))?,
        Err(_) => 0,
    };
    let service: StreamableHttpService<Bench, LocalSessionManager> = StreamableHttpService::new(
        || Ok(Bench::new()),
        Default::default(),
        StreamableHttpServerConfig::default(),
    );
    let nodelay = std::env::var("TCP_NODELAY").map_or(true, |v| v != "0");
    let router = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind((host.as_str(), port)).await?;
    let addr = listener.local_addr()?;
    let listener = listener.tap_io(move |tcp| {
        if nodelay {
            let _ = tcp.set_nodelay(true);
        }
    });
    println!("listening on http://{addr}");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        })
        .await
}
