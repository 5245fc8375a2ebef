//! The program behind `Builder::serve` (and so the `mcp-warden` binary): reads the
//! environment, raises the open-file limit, binds, serves, and shuts down gracefully on
//! SIGTERM/SIGINT. Exit status 2 for bad configuration, 1 when the server cannot start, 0
//! after a shutdown.

use std::io::Write;
use std::net::TcpListener;
use std::process::ExitCode;

use crate::config::{self, Config};
use crate::{Builder, logsink};
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// File descriptors needed besides one per connection: stdio, the listener, the signal
/// pipe, JWKS fetches, and room for the unexpected.
const SPARE_FILES: u64 = 64;

/// The program `Builder::serve` runs.
pub(crate) fn run(builder: Builder) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match args.first().map(String::as_str) {
        None => None,
        Some("-h" | "--help") if args.len() == 1 => {
            print!("{}", config::HELP);
            return ExitCode::SUCCESS;
        }
        Some("-V" | "--version") if args.len() == 1 => {
            let info = builder.info();
            println!("{} {}", info.name, info.version);
            return ExitCode::SUCCESS;
        }
        Some("--") if args.len() > 1 => Some(args[1..].to_vec()),
        Some(first) if !first.starts_with('-') => Some(args.clone()),
        Some(arg) => {
            eprintln!(
                "{}: unexpected argument {arg:?}; configuration is by environment (see --help), and an upstream MCP server is given as `-- COMMAND [ARGS...]`",
                builder.info().name
            );
            return ExitCode::from(2);
        }
    };
    let mut config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{}: {e}", builder.info().name);
            return ExitCode::from(2);
        }
    };
    if let Some(argv) = command {
        if config.upstream.is_some() {
            // UPSTREAM_COMMAND or UPSTREAM_URL
            eprintln!(
                "{}: the upstream MCP server is given twice, on the command line and in UPSTREAM_COMMAND or UPSTREAM_URL: give it once",
                builder.info().name
            );
            return ExitCode::from(2);
        }
        match config::UpstreamCommand::with_env(argv, |name| std::env::var(name).ok()) {
            Ok(upstream) => config.upstream = Some(upstream),
            Err(e) => {
                eprintln!("{}: {e}", builder.info().name);
                return ExitCode::from(2);
            }
        }
    }
    if let Some(upstream) = &config.upstream
        && upstream.url.is_none()
        && crate::gateway::child::find_program(&upstream.argv[0]).is_none()
    {
        eprintln!(
            "{}: the upstream command {:?} was not found (neither a path to an executable nor a program in PATH); configuration is by environment, see --help",
            builder.info().name,
            upstream.argv[0]
        );
        return ExitCode::from(2);
    }
    let builder = match &config.upstream {
        None => builder,
        Some(upstream) if upstream.url.is_some() => builder.upstream(
            crate::gateway::Upstream::url(upstream.url.clone().unwrap_or_default())
                .identity_headers(upstream.identity_headers)
                .forward_token(upstream.forward_token),
        ),
        Some(upstream) => builder.upstream(
            crate::gateway::Upstream::command(upstream.argv.clone())
                .env(upstream.env.clone())
                .shared(upstream.shared)
                .grace(config.shutdown_grace),
        ),
    };
    let log = init_logging(config.log_json);
    // Whatever way main returns, pending log lines go out first.
    let _written = SyncOnDrop(log);

    let open_files = match raise_open_files(config.max_connections as u64 + SPARE_FILES) {
        Ok(n) => n,
        Err(message) => {
            log::error!("{message}");
            return ExitCode::FAILURE;
        }
    };
    // Installed before anything slow (the JWKS fetch), so a SIGTERM during start-up is
    // handled too; as PID 1 in a container, SIGTERM without a handler would be ignored.
    let mut signals = match Signals::new([SIGTERM, SIGINT]) {
        Ok(signals) => signals,
        Err(e) => {
            log::error!("cannot install the SIGTERM/SIGINT handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match TcpListener::bind((config.host, config.port)) {
        Ok(listener) => listener,
        Err(e) => {
            log::error!(
                "cannot listen on {}:{}: {e} (set HOST and PORT)",
                config.host,
                config.port
            );
            return ExitCode::FAILURE;
        }
    };
    match &config.auth {
        None => {
            log::warn!(
                "authentication is off: every client may call every tool (set JWT_AUTH_ENABLED=true to require tokens)"
            );
            for var in [
                "JWKS_URI",
                "REQUIRED_GROUPS",
                "RESOURCE_URL",
                "AUTHORIZATION_SERVERS",
                "SCOPES_SUPPORTED",
                "JWT_AUDIENCE",
            ] {
                if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
                    log::warn!("{var} is set but ignored: JWT_AUTH_ENABLED is not true");
                }
            }
        }
        Some(auth) => log::info!(
            "authentication on: fetching keys from JWKS_URI={}",
            auth.jwks_uri
        ),
    }
    log::info!(
        "limits: MAX_SESSIONS={} MAX_CONNECTIONS={} MAX_BODY_BYTES={} REQUEST_TIMEOUT_SECS={} SSE_KEEPALIVE_SECS={} SHUTDOWN_GRACE_SECS={} open files={open_files}",
        config.max_sessions,
        config.max_connections,
        config.max_body_bytes,
        config.request_timeout.as_secs(),
        config.sse_keepalive.as_secs(),
        config.shutdown_grace.as_secs(),
    );
    let grace = config.shutdown_grace;
    let upstream = config
        .upstream
        .as_ref()
        .map(|u| (u.argv.clone(), u.shared, u.url.clone()));
    let mut server = match builder.start(config, listener) {
        Ok(server) => server,
        Err(e) => {
            log::error!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(summary) = server.auth_summary() {
        log::info!("{summary}");
    }
    match &upstream {
        Some((_, _, Some(url))) => log::info!(
            "gateway: each session is relayed to a session of its own at {url} (Streamable HTTP); the built-in tools are not offered"
        ),
        Some((argv, false, None)) => log::info!(
            "gateway: each session is relayed to its own {argv:?} (stdio); the built-in tools are not offered"
        ),
        Some((argv, true, None)) => log::info!(
            "gateway: every session is relayed to one shared {argv:?} (stdio, UPSTREAM_SHARED); the built-in tools are not offered"
        ),
        None => {}
    }
    log::info!("listening on http://{}", server.local_addr());

    let signal = signals.forever().next();
    let name = match signal {
        Some(SIGTERM) => "SIGTERM",
        Some(SIGINT) => "SIGINT",
        _ => "the end of the signal stream",
    };
    log::info!("{name} received: shutting down");
    if server.shutdown(grace) {
        log::info!("shut down cleanly");
    }
    ExitCode::SUCCESS
}

/// Writes the log lines still pending when dropped.
struct SyncOnDrop(logsink::Sink);

impl Drop for SyncOnDrop {
    fn drop(&mut self) {
        self.0.sync();
    }
}

/// `RUST_LOG` filters (default `info`); `LOG_FORMAT=json` writes one JSON object per line.
/// Lines reach stderr through `logsink` (one writer thread, no stderr lock per request).
fn init_logging(json: bool) -> logsink::Sink {
    let sink = logsink::start();
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    builder.target(env_logger::Target::Pipe(Box::new(sink.clone())));
    if json {
        builder.format(|buf, record| {
            let line = serde_json::json!({
                "ts": buf.timestamp_millis().to_string(),
                "level": record.level().as_str(),
                "target": record.target(),
                "msg": record.args().to_string(),
            });
            writeln!(buf, "{line}")
        });
    }
    builder.init();
    sink
}

/// Raises the soft `RLIMIT_NOFILE` to `needed` when it is lower (up to the hard limit), or
/// says why the server cannot have enough. Returns the soft limit in force.
fn raise_open_files(needed: u64) -> Result<u64, String> {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let soft = current.unwrap_or(u64::MAX);
    if soft >= needed {
        return Ok(soft);
    }
    let hard = maximum.unwrap_or(u64::MAX);
    if hard < needed {
        return Err(format!(
            "MAX_CONNECTIONS needs {needed} open files but the hard limit (RLIMIT_NOFILE) is {hard}: lower MAX_CONNECTIONS or raise the limit (ulimit -Hn, or the container runtime's nofile setting)"
        ));
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(needed),
            maximum,
        },
    )
    .map_err(|e| {
        format!("cannot raise the open-file limit from {soft} to {needed} for MAX_CONNECTIONS: {e}")
    })?;
    Ok(needed)
}
