//! The built binary with authentication on: start-up refusals (exit status and the one line
//! that says why), the start-up summary, and logs that never hold a token.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};

use common::issuer::{self, Issuer, plural_claims};
use common::jwks_server::{self, JwksServer};
use common::{ServerProcess, SseClient, request_with};

fn command(env: &[(&str, &str)]) -> Command {
    let mut cmd = common::warden_command();
    cmd.envs(env.iter().copied());
    cmd.stdout(Stdio::null());
    cmd
}

/// Runs the binary with `env` to its end; returns exit code and stderr.
fn run_to_exit(env: &[(&str, &str)]) -> (i32, String) {
    let out = common::run_to_exit(command(env));
    (out.code(), out.stderr)
}

fn auth_env<'a>(uri: &'a str, groups: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("JWT_AUTH_ENABLED", "true"),
        ("JWKS_URI", uri),
        ("REQUIRED_GROUPS", groups),
    ]
}

fn assert_one_line_naming_jwks_uri(code: i32, stderr: &str, cause: &str) {
    assert_ne!(code, 0, "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("JWKS_URI="), "{stderr}");
    assert!(errors[0].contains(cause), "wanted {cause:?}: {stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
}

#[test]
fn an_empty_jwks_stops_the_binary_with_one_line_naming_jwks_uri() {
    let jwks = JwksServer::start(r#"{"keys":[]}"#);
    let (code, stderr) = run_to_exit(&auth_env(&jwks.url(), "sre"));
    assert_one_line_naming_jwks_uri(code, &stderr, "no usable signing key");
}

#[test]
fn an_unreachable_jwks_stops_the_binary_with_one_line_naming_jwks_uri() {
    let url = jwks_server::unreachable_url();
    let (code, stderr) = run_to_exit(&auth_env(&url, "sre"));
    assert_one_line_naming_jwks_uri(code, &stderr, "cannot fetch");
}

#[test]
fn a_jwks_that_is_not_json_stops_the_binary() {
    let jwks = JwksServer::start("<html>sign in</html>");
    let (code, stderr) = run_to_exit(&auth_env(&jwks.url(), "sre"));
    assert_one_line_naming_jwks_uri(code, &stderr, "not JSON");
}

#[test]
fn auth_settings_that_cannot_work_exit_2_naming_the_variable() {
    for (env, var) in [
        (vec![("JWT_AUTH_ENABLED", "ture")], "JWT_AUTH_ENABLED"),
        (vec![("JWT_AUTH_ENABLED", "true")], "JWKS_URI"),
        (
            vec![
                ("JWT_AUTH_ENABLED", "true"),
                ("JWKS_URI", "https://idp.example.com/jwks.json"),
            ],
            "REQUIRED_GROUPS",
        ),
    ] {
        let (code, stderr) = run_to_exit(&env);
        assert_eq!(code, 2, "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(&format!("{var}=")), "{stderr}");
    }
    let (_, stderr) = run_to_exit(&[("JWT_AUTH_ENABLED", "yes"), ("JWKS_URI", "x")]);
    assert!(stderr.contains("http(s) URL"), "{stderr}");
    let (_, stderr) = run_to_exit(&[
        ("JWT_AUTH_ENABLED", "1"),
        ("JWKS_URI", "http://127.0.0.1:9/jwks"),
    ]);
    assert!(stderr.contains("* for any authenticated user"), "{stderr}");
}

#[test]
fn starts_with_a_summary_and_never_logs_a_token() {
    let rsa = Issuer::rsa(Some("main-key"));
    let jwks = JwksServer::start(issuer::jwks(&[rsa.jwk()]));
    let url = jwks.url();
    let mut env = auth_env(&url, "sre, devops");
    env.push(("RUST_LOG", "trace"));
    let mut server = ServerProcess::start(command(&env));
    let log = server.log().join("\n");
    assert!(log.contains("1 key(s)"), "{log}");
    assert!(log.contains("main-key"), "{log}");
    assert!(log.contains("required groups: sre,devops"), "{log}");
    assert!(!log.contains("authentication is off"), "{log}");

    let good = rsa.token(&plural_claims("alice", "a@example.com", &["sre"], 600));
    let wrong_group = rsa.token(&plural_claims("bob", "b@example.com", &["x"], 600));
    let forged = Issuer::rsa(Some("main-key")).token(&plural_claims(
        "mallory",
        "m@example.com",
        &["sre"],
        600,
    ));
    let client = SseClient::initialized_authed(server.addr, &good);
    for token in [&wrong_group, &forged] {
        let r = request_with(
            server.addr,
            "GET",
            "/sse",
            &format!("Authorization: Bearer {token}\r\n"),
            b"",
        );
        assert_eq!(r.status, 401);
    }
    server.wait_for_all(&[
        "sub=alice",
        "sub=bob",
        "user does not belong to any required group",
        "does not verify with key \"main-key\"",
    ]);
    // The whole log, to the last line: the server is stopped and its stderr read to EOF.
    server.signal("TERM");
    assert_eq!(server.exit_code(), Some(0));
    let log = server.log_to_end().join("\n");
    assert!(log.contains("shut down cleanly"), "{log}");
    for token in [&good, &wrong_group, &forged] {
        for part in token.split('.') {
            assert!(!log.contains(part), "a token part reached the log:\n{log}");
        }
    }
    assert!(
        !log.contains(client.session_id()),
        "a session id reached the log"
    );
}
