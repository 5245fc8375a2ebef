//! The `mcp-warden` binary: the built-in tools (`builtin`), served with every setting the
//! environment gives (see `Builder::serve`, and `--help`).
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    mcp_warden::builtin::add(mcp_warden::Server::builder()).serve()
}
