//! `token`: `auth::jwt::verify` and `auth::bearer` on hostile input.
//!
//! The first input byte picks how the rest is used (see `Mode`), the policy and `now`:
//! - raw: the rest is the token string (seeds include valid RS256 and ES256 tokens);
//! - bearer: the rest is an `Authorization` header value, through `auth::bearer` first;
//! - parts: the rest is `header JSON \0 claims JSON`, base64url-encoded and signed with a
//!   fixed key, so the fuzzer gets past the signature into the claim checks;
//! - signing input: the rest is `header_b64.claims_b64` as text, signed byte for byte, so
//!   odd base64 (whitespace, padding, non-canonical bits) meets a valid signature.
//!
//! Asserts: no panic; every refusal has a `Display` and a `401` whose `WWW-Authenticate`
//! is printable ASCII; an accepted token names a subject, is unexpired at `now`, matches the
//! policy's issuer and audience, consists of canonical base64url segments, and (for the
//! signed modes) claims the `alg` of the key that signed it.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use mcp_warden::auth::jwt::{self, Claims, Policy};
use mcp_warden::auth::{self, AuthError};
use serde_json::Value;
use warden_fuzz::{Alg, NOW, abort_on_panic, keyset, sign_parts, sign_raw};

fuzz_target!(|data: &[u8]| {
    abort_on_panic();
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let policy = match (control >> 4) & 3 {
        0 => Policy::default(),
        1 => Policy {
            issuer: Some("Joken".into()),
            ..Policy::default()
        },
        2 => Policy {
            audience: Some("Joken".into()),
            ..Policy::default()
        },
        _ => Policy {
            leeway_secs: 0,
            issuer: Some("Joken".into()),
            audience: Some("Joken".into()),
        },
    };
    let now = match control >> 6 {
        0 => NOW,
        1 => 0,
        2 => u64::MAX,
        _ => 4_100_000_000,
    };
    let alg = if control & 4 == 0 {
        Alg::Es256
    } else {
        Alg::Rs256
    };
    match control & 3 {
        0 => {
            let token = String::from_utf8_lossy(rest);
            check(&token, &policy, now, None);
        }
        1 => bearer(rest, &policy, now),
        2 => {
            let (header, claims) = match rest.iter().position(|&b| b == 0) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (&b"{\"alg\":\"ES256\"}"[..], rest),
            };
            let token = sign_parts(alg, header, claims);
            check(&token, &policy, now, Some(alg));
        }
        _ => {
            let input = String::from_utf8_lossy(rest);
            // More dots would only make a token with too many segments; keep it cheap.
            if input.len() > jwt::MAX_TOKEN_BYTES {
                return;
            }
            let token = sign_raw(alg, &input);
            check(&token, &policy, now, Some(alg));
        }
    }
});

fn bearer(value: &[u8], policy: &Policy, now: u64) {
    let once = auth::bearer(std::iter::once(value));
    let twice = auth::bearer([value, value].into_iter());
    assert_eq!(twice, Err(AuthError::MultipleAuthorization));
    match once {
        Ok(token) => {
            assert!(!token.is_empty() && !token.starts_with(' '), "{token:?}");
            // The token is a slice of the header value, not a copy or a rewrite.
            let start = token.as_ptr() as usize - value.as_ptr() as usize;
            assert!(start + token.len() <= value.len());
            check(token, policy, now, None);
        }
        Err(e) => refusal(&e),
    }
}

/// Verifies `token` and checks what came out. `signed_as`: the key the target signed with.
fn check(token: &str, policy: &Policy, now: u64, signed_as: Option<Alg>) {
    match jwt::verify(token, keyset(), policy, now) {
        Ok(claims) => accepted(token, &claims, policy, now, signed_as),
        Err(e) => refusal(&e),
    }
}

fn accepted(token: &str, claims: &Claims, policy: &Policy, now: u64, signed_as: Option<Alg>) {
    assert!(!claims.subject.is_empty());
    assert!(
        (now as f64) < claims.expires_at + policy.leeway_secs as f64,
        "accepted an expired token: exp={} now={now}",
        claims.expires_at
    );
    if let Some(issuer) = &policy.issuer {
        assert_eq!(claims.issuer.as_ref(), Some(issuer));
    }
    let segments: Vec<&str> = token.split('.').collect();
    assert_eq!(segments.len(), 3, "{token:?}");
    for segment in &segments {
        let bytes = URL_SAFE_NO_PAD
            .decode(segment)
            .expect("accepted token has base64url segments");
        assert_eq!(
            &URL_SAFE_NO_PAD.encode(&bytes),
            segment,
            "accepted a non-canonical base64url segment"
        );
    }
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segments[0]).expect("header b64"))
            .expect("accepted header is JSON");
    let alg = header["alg"].as_str().expect("accepted header has alg");
    if let Some(signed_as) = signed_as {
        assert_eq!(alg, signed_as.name(), "alg confusion: {header}");
    }
    let body: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segments[1]).expect("claims b64"))
            .expect("accepted claims are JSON");
    if let Some(audience) = &policy.audience {
        let ok = match &body["aud"] {
            Value::String(a) => a == audience,
            Value::Array(a) => a.iter().any(|v| v.as_str() == Some(audience)),
            _ => false,
        };
        assert!(ok, "accepted a token for another audience: {body}");
    }
    assert_eq!(body["sub"].as_str(), Some(claims.subject.as_str()));
}

fn refusal(e: &AuthError) {
    let _ = e.to_string();
    let _ = e.subject();
    let response = mcp_warden::transport::auth::unauthorized(e, None);
    assert_eq!(response.status, 401);
    for (name, value) in &response.headers {
        assert!(
            value.chars().all(|c| (' '..='~').contains(&c)),
            "{name} is not printable ASCII: {value:?}"
        );
    }
    let challenge = response
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("www-authenticate"))
        .map(|(_, v)| v.as_str())
        .expect("a 401 has a challenge");
    if let Some(i) = challenge.find("error_description=\"") {
        let description = &challenge[i + "error_description=\"".len()..];
        assert!(
            description.ends_with('"') && description.matches('"').count() == 1,
            "{challenge:?}"
        );
        assert!(!description.contains('\\'), "{challenge:?}");
    }
}
