//! Authentication over real HTTP: the server in this process with auth on, a JWKS served by
//! a loopback server inside the test, keys generated here, and tokens sent the way MCP
//! clients send them.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::issuer::{self, Issuer, b64, b64_json, plural_claims};
use common::jwks_server::{self, JwksServer};
use common::{
    HttpResponse, McpClient, SseClient, auth_settings, eventually, request_with, spawn, try_start,
    with_auth,
};
use mcp_warden::auth::AuthConfig;
use mcp_warden::auth::jwks::JwksError;
use mcp_warden::config::Config;
use mcp_warden::{Server, StartError};
use serde_json::{Value, json};

/// One RSA key (kid `rsa-1`) and one P-256 key (no kid, like Plural's) for the whole file.
fn rsa() -> &'static Issuer {
    static KEY: OnceLock<Issuer> = OnceLock::new();
    KEY.get_or_init(|| Issuer::rsa(Some("rsa-1")))
}
fn ec() -> &'static Issuer {
    static KEY: OnceLock<Issuer> = OnceLock::new();
    KEY.get_or_init(|| Issuer::es256(None))
}

/// A JWKS with both test keys and a server requiring group `sre`.
fn setup() -> (JwksServer, Server) {
    let jwks = JwksServer::start(issuer::jwks(&[rsa().jwk(), ec().jwk()]));
    let server = spawn(with_auth(auth_settings(jwks.url(), "sre,devops")));
    (jwks, server)
}

fn alice() -> String {
    rsa().token(&plural_claims("alice", "alice@example.com", &["sre"], 3600))
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

fn get_sse(addr: SocketAddr, headers: &str) -> HttpResponse {
    request_with(addr, "GET", "/sse", headers, b"")
}

/// Asserts a `401` with a Bearer challenge and a JSON body whose message contains `reason`,
/// and that nothing of `token` is echoed.
fn assert_refused(response: &HttpResponse, reason: &str, token: &str) {
    let body = String::from_utf8_lossy(&response.body).to_string();
    assert_eq!(response.status, 401, "{body}");
    let challenge = response.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("Bearer realm=\"mcp-warden\""),
        "{challenge}"
    );
    let message = response.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains(reason), "wanted {reason:?} in {message:?}");
    for part in token.split('.').filter(|p| p.len() > 8) {
        assert!(!body.contains(part), "the body echoes the token: {body}");
        assert!(!challenge.contains(part), "the challenge echoes the token");
    }
}

#[test]
fn an_rs256_token_opens_a_session_and_whoami_reports_the_verified_identity() {
    let (_jwks, server) = setup();
    let mut client = SseClient::initialized_authed(server.local_addr(), &alice());
    let reply = client.call(1, "tools/call", json!({"name": "whoami", "arguments": {}}));
    let text = reply["result"]["content"][0]["text"].as_str().unwrap();
    let who: Value = serde_json::from_str(text).unwrap();
    assert_eq!(who["subject"], "alice");
    assert_eq!(who["authenticated"], true);
    assert_eq!(who["issuer"], "Joken");
    assert_eq!(who["email"], "alice@example.com");
    assert_eq!(who["groups"], json!(["sre"]));
    let echo = client.call(
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "hi"}}),
    );
    assert_eq!(echo["result"]["content"][0]["text"], "Tool echo: hi");
}

#[test]
fn a_plural_shaped_es256_token_without_header_kid_is_accepted() {
    let (_jwks, server) = setup();
    let claims = plural_claims("bob", "bob@example.com", &["devops", "other"], 600);
    assert!(claims.get("kid").is_some(), "Plural puts kid in the claims");
    let token = ec().sign(&json!({"alg": "ES256", "typ": "JWT"}), &claims);
    let mut client = SseClient::open_authed(server.local_addr(), &token);
    client.initialize("2024-11-05");
    let reply = client.call(1, "tools/call", json!({"name": "whoami", "arguments": {}}));
    assert!(
        reply["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("\"subject\":\"bob\"")
    );
}

#[test]
fn bearer_in_lower_case_is_accepted() {
    let (_jwks, server) = setup();
    let headers = format!("authorization: bearer {}\r\n", alice());
    let mut client = SseClient::open_with(server.local_addr(), &headers);
    client.initialize("2025-06-18");
}

#[test]
fn a_missing_token_gets_401_on_both_endpoints() {
    let (_jwks, server) = setup();
    let addr = server.local_addr();
    let r = get_sse(addr, "");
    assert_refused(&r, "no bearer token", "");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"mcp-warden\"")
    );
    assert_eq!(r.json()["error"], "missing_token");
    let r = request_with(addr, "POST", "/messages?sessionId=00", "", b"{}");
    assert_refused(&r, "no bearer token", "");
    // Refused before the session is even looked up: no hint whether it exists.
    let r = request_with(addr, "POST", "/messages", "", b"{}");
    assert_eq!(r.status, 401);
    let r = get_sse(addr, "Authorization: Basic YWxpY2U6c2VjcmV0\r\n");
    assert_refused(&r, "not \"Bearer <token>\"", "");
}

#[test]
fn two_authorization_headers_are_refused() {
    let (_jwks, server) = setup();
    let token = alice();
    let r = get_sse(
        server.local_addr(),
        &format!("{}{}", bearer(&token), bearer(&token)),
    );
    assert_refused(&r, "more than one Authorization header", &token);
}

#[test]
fn every_bad_token_gets_401_saying_why_without_echoing_it() {
    let (_jwks, server) = setup();
    let addr = server.local_addr();
    let good = plural_claims("alice", "a@example.com", &["sre"], 3600);
    let with = |name: &str, value: Value| {
        let mut claims = good.clone();
        claims[name] = value;
        claims
    };
    let without = |name: &str| {
        let mut claims = good.clone();
        claims.as_object_mut().unwrap().remove(name);
        claims
    };
    let valid = rsa().token(&good);
    let (head, sig) = valid.rsplit_once('.').unwrap();
    let attacker = Issuer::es256(None);
    let stranger = Issuer::rsa(Some("rsa-9"));
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong group",
            rsa().token(&with("groups", json!(["dev", "SRE"]))),
            "user does not belong to any required group",
        ),
        (
            "groups missing",
            rsa().token(&without("groups")),
            "user does not belong to any required group",
        ),
        (
            "groups a string",
            rsa().token(&with("groups", json!("sre"))),
            "\"groups\" is not an array",
        ),
        (
            "groups holding non-strings",
            rsa().token(&with("groups", json!(["sre", 7]))),
            "other than strings",
        ),
        (
            "expired",
            rsa().token(&with("exp", json!(issuer::now() - 120))),
            "expired",
        ),
        (
            "nbf in the future",
            rsa().token(&with("nbf", json!(issuer::now() + 600))),
            "not valid yet",
        ),
        ("no exp", rsa().token(&without("exp")), "no \"exp\""),
        (
            "unknown key",
            stranger.token(&good),
            "key \"rsa-9\", which is not in the JWKS",
        ),
        (
            "alg none",
            format!("{}.{}.", b64_json(&json!({"alg": "none"})), b64_json(&good)),
            "malformed token",
        ),
        (
            "alg none with a signature",
            format!(
                "{}.{}.AAAA",
                b64_json(&json!({"alg": "none"})),
                b64_json(&good)
            ),
            "\"none\" is not allowed",
        ),
        (
            "HS256 with the RSA public key as secret",
            issuer::hs256(
                rsa().public_pem().as_bytes(),
                &json!({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}),
                &good,
            ),
            "\"HS256\" is not allowed",
        ),
        (
            "crit",
            rsa().sign(
                &json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"]}),
                &good,
            ),
            "\"crit\"",
        ),
        (
            "embedded jwk",
            attacker.sign(&json!({"alg": "ES256", "jwk": attacker.jwk()}), &good),
            "does not verify with any key",
        ),
        ("two parts", head.to_string(), "has 2"),
        ("four parts", format!("{valid}.{sig}"), "has 4"),
        ("five parts", format!("{valid}.{sig}.{sig}"), "has 5"),
        (
            "a flipped signature byte",
            format!("{head}.{}", flip_first(sig)),
            "does not verify",
        ),
        (
            "padding",
            format!("{valid}="),
            "not base64url without padding",
        ),
        (
            "an oversized token",
            format!("{head}.{}", b64(&vec![7u8; 20_000])),
            "more than the 16384 accepted",
        ),
    ];
    for (name, token, reason) in cases {
        let r = get_sse(addr, &bearer(&token));
        assert_refused(&r, reason, &token);
        let code = r.json()["error"].as_str().unwrap().to_string();
        let expected = if reason.contains("required group") {
            "insufficient_group"
        } else {
            "invalid_token"
        };
        assert_eq!(code, expected, "{name}");
        assert!(
            r.header("www-authenticate")
                .unwrap()
                .contains("error=\"invalid_token\""),
            "{name}"
        );
    }
    assert_eq!(server.session_count(), 0);
}

fn flip_first(segment: &str) -> String {
    let mut chars: Vec<char> = segment.chars().collect();
    chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[test]
fn any_authenticated_user_passes_when_required_groups_is_star() {
    let jwks = JwksServer::start(issuer::jwks(&[rsa().jwk()]));
    let server = spawn(with_auth(auth_settings(jwks.url(), "*")));
    let mut claims = plural_claims("carol", "c@example.com", &[], 600);
    claims.as_object_mut().unwrap().remove("groups");
    SseClient::initialized_authed(server.local_addr(), &rsa().token(&claims));
    let other = rsa().token(&plural_claims("dan", "d@example.com", &["x"], 600));
    SseClient::initialized_authed(server.local_addr(), &other);
    // Still a valid token is needed.
    let r = get_sse(server.local_addr(), "");
    assert_eq!(r.status, 401);
}

/// A session used without `initialize` (a client that reconnected after a restart) is
/// served, but only to its owner: adoption changes nothing of authentication.
#[test]
fn a_session_used_without_initialize_keeps_its_owner_and_its_token_check() {
    let (_jwks, server) = setup();
    let addr = server.local_addr();
    let mut alice = SseClient::open_authed(addr, &alice());
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "whoami", "arguments": {}}});
    let mallory = rsa().token(&plural_claims("mallory", "m@example.com", &["sre"], 600));
    let r = request_with(
        addr,
        "POST",
        &alice.endpoint,
        &bearer(&mallory),
        call.to_string().as_bytes(),
    );
    assert_eq!(r.status, 404, "another subject's first request");
    let r = request_with(
        addr,
        "POST",
        &alice.endpoint,
        "",
        call.to_string().as_bytes(),
    );
    assert_eq!(r.status, 401, "no token");
    alice.post(&call);
    let reply = alice.next_message();
    assert_eq!(
        reply["id"], 1,
        "only alice's request reached the stream: {reply}"
    );
    let text = reply["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("alice"), "{text}");
}

#[test]
fn another_subject_cannot_post_into_a_session() {
    let (_jwks, server) = setup();
    let addr = server.local_addr();
    let mut alice = SseClient::initialized_authed(addr, &alice());
    let mallory = rsa().token(&plural_claims("mallory", "m@example.com", &["sre"], 600));
    let ping = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "from mallory"}}});
    let hijack = request_with(
        addr,
        "POST",
        &alice.endpoint,
        &bearer(&mallory),
        ping.to_string().as_bytes(),
    );
    let unknown = request_with(
        addr,
        "POST",
        "/messages?sessionId=00000000000000000000000000000000",
        &bearer(&mallory),
        ping.to_string().as_bytes(),
    );
    assert_eq!(hijack.status, 404);
    assert_eq!(
        hijack.body, unknown.body,
        "a hijack looks exactly like an unknown session"
    );
    // Alice's own requests still work, and Mallory's never reached her stream.
    let reply = alice.call(3, "ping", json!({}));
    assert_eq!(reply["result"], json!({}));
    // Alice with a fresh token (other groups) is the same principal.
    let fresh = rsa().token(&plural_claims(
        "alice",
        "alice@example.com",
        &["devops"],
        900,
    ));
    let r = request_with(
        addr,
        "POST",
        &alice.endpoint,
        &bearer(&fresh),
        br#"{"jsonrpc":"2.0","id":4,"method":"ping"}"#,
    );
    assert_eq!(r.status, 202);
    assert_eq!(alice.next_message()["id"], 4);
}

/// Seconds since the Unix epoch, with the fraction.
fn unix_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// A server whose streams only a token can end, and its leeway in seconds.
fn expiry_server() -> (JwksServer, Server, f64) {
    let jwks = JwksServer::start(issuer::jwks(&[rsa().jwk()]));
    let auth = auth_settings(jwks.url(), "sre");
    let leeway = auth.policy.leeway_secs as f64;
    assert!(leeway > 1.0, "the test needs a leeway; the default is 60 s");
    let server = spawn(Config {
        // No keep-alive in the test's time: nothing but the token can end the stream.
        sse_keepalive: Duration::from_secs(3600),
        ..with_auth(auth)
    });
    (jwks, server, leeway)
}

/// Opens a stream (with `open`) on a token whose `exp` is past but within the leeway, so
/// that it is accepted until `exp + leeway`, minted so that this moment is the next whole
/// second: a test then waits for the stream to end (an event), never for a lifetime of
/// its own choosing. Returns the token, `exp + leeway` and what `open` gave.
fn open_with_expiring_token<R>(
    leeway: f64,
    mut open: impl FnMut(&str) -> Result<R, HttpResponse>,
) -> (String, f64, R) {
    // The server checks `exp` against whole seconds: a token minted late in a second may
    // reach the next one before its request is checked, and is then refused as expired.
    // Such a refusal is the clock, not the server; mint again (the next try has a new
    // second).
    let mut tries = Vec::new();
    loop {
        assert!(tries.len() < 10, "never opened a stream: {tries:#?}");
        let valid_until = unix_time().floor() + 1.0;
        let mut claims = plural_claims("alice", "a@example.com", &["sre"], 0);
        claims["exp"] = json!(valid_until - leeway);
        let token = rsa().token(&claims);
        match open(&token) {
            Ok(opened) => return (token, valid_until, opened),
            Err(refused) => {
                assert_refused(&refused, "expired", &token);
                tries.push(String::from_utf8_lossy(&refused.body).into_owned());
            }
        }
    }
}

fn assert_ended_not_before(valid_until: f64) {
    let ended = unix_time();
    assert!(
        ended >= valid_until,
        "the stream ended {:.3} s before exp + leeway",
        valid_until - ended
    );
}

#[test]
fn a_stream_ends_when_the_token_that_opened_it_expires() {
    let (_jwks, server, leeway) = expiry_server();
    let addr = server.local_addr();
    let (token, valid_until, mut client) = open_with_expiring_token(leeway, |token| {
        SseClient::try_open_with(addr, &bearer(token))
    });
    // The read timeout (10 s) bounds the wait; the token leaves the stream at most 1 s.
    assert_eq!(
        client.try_next_event(),
        None,
        "the stream ends at exp + leeway"
    );
    assert_ended_not_before(valid_until);
    assert!(eventually(Duration::from_secs(5), || server
        .session_count()
        == 0));
    // And the same token is refused now.
    let r = get_sse(addr, &bearer(&token));
    assert_refused(&r, "expired", &token);
}

#[test]
fn a_get_mcp_stream_ends_when_its_token_expires_and_the_session_carries_on() {
    let (_jwks, server, leeway) = expiry_server();
    let addr = server.local_addr();
    let (token, valid_until, (client, mut stream)) = open_with_expiring_token(leeway, |token| {
        let mut client = McpClient::authed(addr, token);
        let r = client.post(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}}}));
        if r.status != 200 {
            return Err(r);
        }
        client.session = r.header("mcp-session-id").map(str::to_string);
        client.open_stream().map(|stream| (client, stream))
    });
    common::read_to_eof(&mut stream, "the GET /mcp stream until exp + leeway");
    assert_ended_not_before(valid_until);
    // The session outlives the token's stream: the same subject goes on with a new token.
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    assert_refused(&client.post(&ping), "expired", &token);
    let mut fresh = McpClient::authed(addr, &alice());
    fresh.session = client.session.clone();
    assert_eq!(fresh.call(1, "ping", json!({}))["result"], json!({}));
}

#[test]
fn a_new_key_with_a_kid_is_picked_up_by_a_refetch() {
    let jwks = JwksServer::start(issuer::jwks(&[rsa().jwk()]));
    let server = spawn(with_auth(AuthConfig {
        min_refetch: Duration::ZERO,
        ..auth_settings(jwks.url(), "sre")
    }));
    assert_eq!(jwks.hits(), 1);
    let rotated = Issuer::rsa(Some("rsa-2"));
    let token = rotated.token(&plural_claims("alice", "a@example.com", &["sre"], 600));
    // Not published yet: refused, after one refetch.
    let r = get_sse(server.local_addr(), &bearer(&token));
    assert_refused(&r, "\"rsa-2\", which is not in the JWKS", &token);
    assert_eq!(jwks.hits(), 2);
    // Published: accepted without a restart.
    jwks.set_body(issuer::jwks(&[rsa().jwk(), rotated.jwk()]));
    SseClient::initialized_authed(server.local_addr(), &token);
    assert_eq!(jwks.hits(), 3);
}

#[test]
fn a_new_key_without_a_kid_is_picked_up_by_a_refetch() {
    let jwks = JwksServer::start(issuer::jwks(&[ec().jwk()]));
    let server = spawn(with_auth(AuthConfig {
        min_refetch: Duration::ZERO,
        ..auth_settings(jwks.url(), "sre")
    }));
    let rotated = Issuer::es256(None);
    let token = rotated.sign(
        &json!({"alg": "ES256", "typ": "JWT"}),
        &plural_claims("alice", "a@example.com", &["sre"], 600),
    );
    jwks.set_body(issuer::jwks(&[rotated.jwk()]));
    SseClient::initialized_authed(server.local_addr(), &token);
    assert_eq!(jwks.hits(), 2);
    // The old key is gone with that refetch.
    let old = ec().sign(
        &json!({"alg": "ES256"}),
        &plural_claims("alice", "a@example.com", &["sre"], 600),
    );
    let r = get_sse(server.local_addr(), &bearer(&old));
    assert_refused(&r, "does not verify with any key", &old);
}

#[test]
fn refetches_for_unknown_keys_are_rate_limited() {
    let (jwks, server) = setup(); // the default 30 s interval
    for i in 0..20 {
        let token = Issuer::es256(None).sign(
            &json!({"alg": "ES256", "kid": format!("forged-{i}")}),
            &plural_claims("eve", "e@example.com", &["sre"], 600),
        );
        assert_eq!(get_sse(server.local_addr(), &bearer(&token)).status, 401);
    }
    assert_eq!(
        jwks.hits(),
        1,
        "forged tokens must not hammer the identity provider"
    );
}

#[test]
fn a_key_dropped_from_the_jwks_stops_verifying_at_the_next_refresh() {
    let other = Issuer::rsa(Some("rsa-2"));
    let jwks = JwksServer::start(issuer::jwks(&[rsa().jwk(), other.jwk()]));
    let server = spawn(with_auth(AuthConfig {
        refresh: Duration::from_millis(200),
        ..auth_settings(jwks.url(), "sre")
    }));
    let token = alice();
    let addr = server.local_addr();
    let post = |token: &str| {
        request_with(
            addr,
            "POST",
            "/messages?sessionId=00",
            &bearer(token),
            b"{}",
        )
        .status
    };
    assert_eq!(post(&token), 404, "valid token, unknown session"); // now cached
    jwks.set_body(issuer::jwks(&[other.jwk()]));
    assert!(
        eventually(Duration::from_secs(5), || post(&token) == 401),
        "the cached token of a dropped key must stop passing"
    );
    let r = request_with(addr, "GET", "/sse", &bearer(&token), b"");
    assert_refused(&r, "\"rsa-1\", which is not in the JWKS", &token);
    // A failed refresh keeps the last good keys.
    jwks.set_status(500);
    let hits = jwks.hits();
    assert!(eventually(Duration::from_secs(5), || jwks.hits() >= hits + 2));
    let token2 = other.token(&plural_claims("bob", "b@example.com", &["sre"], 600));
    assert_eq!(post(&token2), 404);
}

#[test]
fn an_empty_jwks_at_start_refuses_to_start() {
    let jwks = JwksServer::start(r#"{"keys": []}"#);
    match try_start(with_auth(auth_settings(jwks.url(), "sre"))) {
        Err(StartError::Jwks(e @ JwksError::NoUsableKey { .. })) => {
            assert!(e.to_string().starts_with("JWKS_URI="), "{e}")
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("started without keys"),
    }
    // Only unusable keys is the same as none.
    let weak = issuer::jwks(&[json!({"kty": "oct", "k": "c2VjcmV0"}), {
        let mut jwk = rsa().jwk();
        jwk["use"] = json!("enc");
        jwk
    }]);
    jwks.set_body(weak);
    assert!(matches!(
        try_start(with_auth(auth_settings(jwks.url(), "sre"))),
        Err(StartError::Jwks(JwksError::NoUsableKey { .. }))
    ));
}

#[test]
fn an_unreachable_or_broken_jwks_refuses_to_start() {
    let start = |uri: String| try_start(with_auth(auth_settings(uri, "sre"))).err();
    // Refused, not merely failing (an address ureq would not even try is another Fetch).
    match start(jwks_server::unreachable_url()) {
        Some(StartError::Jwks(JwksError::Fetch { cause, .. })) => {
            assert!(cause.contains("refused"), "{cause}")
        }
        Some(e) => panic!("wrong error: {e}"),
        None => panic!("started without keys"),
    }
    let jwks = JwksServer::start("");
    jwks.set_status(503);
    assert!(matches!(
        start(jwks.url()),
        Some(StartError::Jwks(JwksError::Fetch { .. }))
    ));
    jwks.set_garbage();
    assert!(matches!(start(jwks.url()), Some(StartError::Jwks(_))));
    jwks.set_normal();
    jwks.set_body("<html>login</html>");
    assert!(matches!(
        start(jwks.url()),
        Some(StartError::Jwks(JwksError::Format { .. }))
    ));
}

#[test]
fn a_2026_07_28_request_is_authenticated_on_its_own() {
    let (_jwks, server) = setup();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "whoami", "arguments": {},
                   "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                             "io.modelcontextprotocol/clientCapabilities": {}}}});
    let headers = "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: whoami\r\n";
    let refused = request_with(
        server.local_addr(),
        "POST",
        "/mcp",
        headers,
        body.to_string().as_bytes(),
    );
    assert_eq!(
        refused.status, 401,
        "no token, no answer: no session carries one"
    );
    let with_token = format!("{headers}{}", bearer(&alice()));
    let r = request_with(
        server.local_addr(),
        "POST",
        "/mcp",
        &with_token,
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200);
    let result = r.json()["result"].clone();
    let who: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(who["subject"], "alice");
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list",
        "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                             "io.modelcontextprotocol/clientCapabilities": {}}}});
    let headers = format!(
        "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/list\r\n{}",
        bearer(&alice())
    );
    let listed = request_with(
        server.local_addr(),
        "POST",
        "/mcp",
        &headers,
        list.to_string().as_bytes(),
    );
    assert_eq!(
        listed.json()["result"]["cacheScope"],
        "private",
        "with auth on, nothing is shared"
    );
}

#[test]
fn protected_resource_metadata_is_served_named_in_every_challenge_and_sets_the_audience() {
    let jwks = JwksServer::start(issuer::jwks(&[rsa().jwk(), ec().jwk()]));
    let resource = "https://mcp.example.com/mcp";
    let mut auth = auth_settings(jwks.url(), "sre,devops");
    auth.metadata = Some(mcp_warden::auth::ProtectedResource {
        resource: resource.into(),
        authorization_servers: vec!["https://auth.example.com".into()],
        scopes: vec!["mcp:tools".into()],
    });
    // What config.rs does with RESOURCE_URL and no JWT_AUDIENCE (tested there).
    auth.policy.audience = Some(resource.into());
    let server = spawn(with_auth(auth));
    let addr = server.local_addr();
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let r = request_with(addr, "GET", path, "", b"");
        assert_eq!(r.status, 200, "{path}: no token needed");
        assert_eq!(
            r.json(),
            json!({"resource": resource, "authorization_servers": ["https://auth.example.com"],
                   "bearer_methods_supported": ["header"], "scopes_supported": ["mcp:tools"]})
        );
    }
    assert_eq!(
        request_with(
            addr,
            "GET",
            "/.well-known/oauth-protected-resource/other",
            "",
            b""
        )
        .status,
        404
    );
    let metadata = "scope=\"mcp:tools\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\"";
    let refused = get_sse(addr, "");
    assert_eq!(refused.status, 401);
    assert!(
        refused
            .header("www-authenticate")
            .unwrap()
            .contains(metadata),
        "{:?}",
        refused.header("www-authenticate")
    );
    // A Plural token is for "Joken", not for this resource (RFC 8707): refused, and the
    // challenge still says where to look.
    let joken = get_sse(addr, &bearer(&alice()));
    assert_eq!(joken.status, 401);
    assert!(joken.header("www-authenticate").unwrap().contains(metadata));
    let mut claims = plural_claims("alice", "alice@example.com", &["sre"], 3600);
    claims["aud"] = json!(resource);
    let mut c = SseClient::initialized_authed(addr, &rsa().token(&claims));
    assert_eq!(c.call(1, "ping", json!({}))["result"], json!({}));
}

#[test]
fn without_resource_metadata_the_well_known_path_is_not_found_and_challenges_are_unchanged() {
    let (_jwks, server) = setup();
    let addr = server.local_addr();
    let r = request_with(
        addr,
        "GET",
        "/.well-known/oauth-protected-resource",
        "",
        b"",
    );
    assert_eq!(r.status, 404);
    let refused = get_sse(addr, "");
    assert_eq!(
        refused.header("www-authenticate"),
        Some("Bearer realm=\"mcp-warden\"")
    );
}

#[test]
fn a_subscription_stream_ends_at_its_tokens_expiry_with_a_closing_result() {
    let (_jwks, server, leeway) = expiry_server();
    let addr = server.local_addr();
    let listen = json!({"jsonrpc": "2.0", "id": 5, "method": "subscriptions/listen",
        "params": {"notifications": {"toolsListChanged": true}, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}}}});
    let headers = "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: subscriptions/listen\r\n";
    let (_token, valid_until, mut stream) = open_with_expiring_token(leeway, |token| {
        let client = McpClient::authed(addr, token);
        let (head, stream) = client.post_open(headers, &listen);
        if head.status != 200 {
            return Err(head);
        }
        Ok(stream)
    });
    let text = String::from_utf8(common::read_to_eof(
        &mut stream,
        "the subscription stream until exp + leeway",
    ))
    .unwrap();
    assert_ended_not_before(valid_until);
    let messages: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(messages.len(), 2, "{text}");
    assert_eq!(
        messages[0]["method"],
        "notifications/subscriptions/acknowledged"
    );
    assert_eq!(messages[1]["id"], 5);
    assert_eq!(
        messages[1]["result"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        5
    );
    assert!(eventually(Duration::from_secs(5), || server
        .session_count()
        == 0));
}

#[test]
fn a_request_state_is_refused_to_another_subject() {
    let (_jwks, server) = setup();
    let addr = server.local_addr();
    let ask = |token: &str, extra: Value| {
        let mut body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "ask", "arguments": {"question": "Colour?"},
                       "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                 "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}}}});
        for (k, v) in extra.as_object().unwrap() {
            body["params"][k] = v.clone();
        }
        let headers = format!(
            "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: ask\r\n{}",
            bearer(token)
        );
        request_with(addr, "POST", "/mcp", &headers, body.to_string().as_bytes()).json()
    };
    let first = ask(&alice(), json!({}))["result"].clone();
    assert_eq!(first["resultType"], "input_required", "{first}");
    let retry = json!({"requestState": first["requestState"],
        "inputResponses": {"q0": {"action": "accept", "content": {"answer": "teal"}}}});
    // Bob presents Alice's state: refused, and nothing of Alice's answers reaches him.
    let bob = ec().token(&plural_claims("bob", "bob@example.com", &["sre"], 3600));
    let refused = ask(&bob, retry.clone());
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another request or another caller"),
        "{refused}"
    );
    // Alice herself goes on.
    let done = ask(&alice(), retry);
    assert_eq!(
        done["result"]["content"][0]["text"],
        "The user answered: teal"
    );
}
