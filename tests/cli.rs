//! The `mcp-warden` binary as an operator meets it: `--help` and `--version`, exit status 2
//! for a bad argument or a bad variable (with one stderr line naming it), and a real start
//! on an OS-chosen port that logs where it listens and serves an SSE stream there.
//!
//! Every child gets a clean environment for the server's variables, is waited for with a
//! deadline, and is killed by its guard if a test fails while it runs.
#![allow(clippy::unwrap_used)]

mod common;

use common::{
    Exited, ServerProcess, SseClient, documented_vars, is_help_entry, is_var_name, run_to_exit,
    warden_command,
};
use mcp_warden::config::HELP;
use serde_json::json;

fn with_args(args: &[&str]) -> Exited {
    let mut cmd = warden_command();
    cmd.args(args);
    run_to_exit(cmd)
}

#[test]
fn help_exits_0_and_lists_every_variable_with_its_default() {
    for flag in ["--help", "-h"] {
        let out = with_args(&[flag]);
        assert_eq!(out.status.code(), Some(0), "{flag}: {}", out.stderr);
        assert_eq!(out.stdout, HELP, "{flag}");
        assert!(out.stderr.is_empty(), "{flag}: {}", out.stderr);
    }
    let help = with_args(&["--help"]).stdout;
    // Each entry runs from its name to the next entry; its default is somewhere in it.
    let entry = |var: &str| {
        let lines: Vec<&str> = help.lines().collect();
        let start = lines
            .iter()
            .position(|l| is_help_entry(l) && l.split_whitespace().next() == Some(var))
            .unwrap_or_else(|| panic!("--help does not list {var}"));
        let more = lines[start + 1..]
            .iter()
            .take_while(|l| l.starts_with("     "));
        std::iter::once(&lines[start])
            .chain(more)
            .copied()
            .collect::<String>()
    };
    for (var, default) in [
        ("HOST", "127.0.0.1"),
        ("PORT", "3000"),
        ("SSE_KEEPALIVE_SECS", "15"),
        ("MAX_BODY_BYTES", "1048576"),
        ("REQUEST_TIMEOUT_SECS", "10"),
        ("RUST_LOG", "info"),
    ] {
        let text = entry(var);
        assert!(
            text.contains(&format!("[default: {default}]")),
            "{var} should default to {default}: {text}"
        );
    }
    for var in documented_vars() {
        assert!(entry(var).contains("[default: "), "{var} has no default");
    }
}

#[test]
fn help_documents_every_variable_the_configuration_reads() {
    // Every string literal in the non-test part of config.rs that is an upper-case name,
    // such as "PORT", names a variable it reads.
    let source = include_str!("../src/config.rs");
    let code = source.split("#[cfg(test)]").next().unwrap();
    let read: Vec<&str> = code
        .match_indices('"')
        .filter_map(|(i, _)| {
            let rest = &code[i + 1..];
            let name = &rest[..rest.find('"')?];
            is_var_name(name).then_some(name)
        })
        .collect();
    assert!(read.contains(&"PORT"), "found {read:?}");
    let documented = documented_vars();
    for var in read {
        assert!(documented.contains(&var), "{var} is read but not in --help");
    }
}

#[test]
fn version_prints_the_crate_version() {
    for flag in ["--version", "-V"] {
        let out = with_args(&[flag]);
        assert_eq!(out.status.code(), Some(0), "{flag}: {}", out.stderr);
        assert_eq!(
            out.stdout,
            format!("mcp-warden {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn unknown_argument_exits_2_naming_it() {
    for args in [&["--port=1"][..], &["serve"], &["--help", "extra"], &["-x"]] {
        let out = with_args(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!("{:?}", args[0])),
            "{args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn bad_variable_exits_2_with_one_stderr_line_naming_it() {
    for (var, value) in [
        ("PORT", "abc"),
        ("PORT", "65536"),
        ("HOST", "example.com"),
        ("SSE_KEEPALIVE_SECS", "0"),
        ("MAX_BODY_BYTES", "12"),
        ("REQUEST_TIMEOUT_SECS", "1.5"),
        ("JWT_AUTH_ENABLED", "maybe"),
    ] {
        // warden_command sets PORT=0: should the value be wrongly accepted, the server
        // takes no fixed port.
        let mut cmd = warden_command();
        cmd.env(var, value);
        let out = run_to_exit(cmd);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {}", out.stderr);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{var}={value}: {}", out.stderr);
        assert!(
            lines[0].starts_with(&format!("mcp-warden: {var}={value:?}")),
            "{var}={value}: {}",
            lines[0]
        );
    }
}

#[test]
fn starts_on_an_os_chosen_port_warns_that_auth_is_off_and_serves_sse() {
    let mut cmd = warden_command();
    cmd.env("RUST_LOG", "info");
    let mut child = ServerProcess::start(cmd);
    let seen = child.log();
    assert!(
        seen.iter()
            .any(|l| l.contains("WARN") && l.contains("authentication is off")),
        "no WARN line about authentication: {seen:#?}"
    );
    assert_eq!(child.addr.ip().to_string(), "127.0.0.1");
    assert_ne!(child.addr.port(), 0);

    let mut c = SseClient::open(child.addr);
    assert!(
        c.endpoint.starts_with("/messages?sessionId="),
        "{}",
        c.endpoint
    );
    assert_eq!(c.call(1, "ping", json!({}))["result"], json!({}));
}
