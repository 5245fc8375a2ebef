//! The `mcp-warden` binary: reads the environment, binds, serves. Exit status 2 for bad
//! configuration, 1 when the server cannot start.
#![forbid(unsafe_code)]

use std::net::TcpListener;
use std::process::ExitCode;

use mcp_warden::config::{self, Config};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (None, _) => {}
        (Some("-h" | "--help"), None) => {
            print!("{}", config::HELP);
            return ExitCode::SUCCESS;
        }
        (Some("-V" | "--version"), None) => {
            println!("mcp-warden {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        (Some(arg), _) => {
            eprintln!(
                "mcp-warden: unexpected argument {arg:?}; configuration is by environment, see --help"
            );
            return ExitCode::from(2);
        }
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("mcp-warden: {e}");
            return ExitCode::from(2);
        }
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

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
            for var in ["JWKS_URI", "REQUIRED_GROUPS"] {
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
    let server = match mcp_warden::start(config, listener) {
        Ok(server) => server,
        Err(e) => {
            log::error!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(summary) = server.auth_summary() {
        log::info!("{summary}");
    }
    log::info!("listening on http://{}", server.local_addr());
    server.wait();
    ExitCode::SUCCESS
}
