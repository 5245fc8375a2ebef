//! Checks the test-side signing helpers against the crates directly, so a failing auth test
//! can be blamed on the server rather than on the token factory.

#[path = "common/issuer.rs"]
mod issuer;
#[path = "common/jwks_server.rs"]
mod jwks_server;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use issuer::{Issuer, b64, hmac_sha256, hs256, jwks, plural_claims};
use jwks_server::{JwksServer, Mode, unreachable_url};
use p256::ecdsa::signature::Verifier as _;
use rsa::BoxedUint;
use rsa::pkcs8::DecodePublicKey as _;
use serde_json::{Value, json};
use sha2::Sha256;

fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).expect("base64url")
}

/// Splits a compact JWS into (signing input, header, claims, signature bytes).
fn split(token: &str) -> (String, Value, Value, Vec<u8>) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let header = serde_json::from_slice(&unb64(parts[0])).expect("header JSON");
    let claims = serde_json::from_slice(&unb64(parts[1])).expect("claims JSON");
    (
        format!("{}.{}", parts[0], parts[1]),
        header,
        claims,
        unb64(parts[2]),
    )
}

fn rsa_key_from_jwk(jwk: &Value) -> rsa::PublicKey {
    let n = unb64(jwk["n"].as_str().expect("n"));
    let e = unb64(jwk["e"].as_str().expect("e"));
    rsa::PublicKey::new(
        BoxedUint::from_be_slice_vartime(&n),
        BoxedUint::from_be_slice_vartime(&e),
    )
    .expect("valid RSA public key")
}

fn ec_key_from_jwk(jwk: &Value) -> p256::ecdsa::VerifyingKey {
    let mut point = vec![0x04];
    point.extend(unb64(jwk["x"].as_str().expect("x")));
    point.extend(unb64(jwk["y"].as_str().expect("y")));
    p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).expect("valid P-256 point")
}

#[test]
fn rs256_token_verifies_with_the_crate_and_the_jwk_round_trips() {
    let started = Instant::now();
    let issuer = Issuer::rsa(Some("rsa-1"));
    eprintln!("RSA-2048 key generation took {:?}", started.elapsed());

    let claims = plural_claims("alice", "alice@example.com", &["admins", "dev"], 3600);
    let token = issuer.token(&claims);
    let (input, header, got_claims, sig) = split(&token);
    assert_eq!(
        header,
        json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"})
    );
    assert_eq!(got_claims, claims);
    assert_eq!(sig.len(), 256);

    let public = issuer.rsa_public_key().expect("RSA issuer");
    public
        .pkcs1v15_verify::<Sha256>(input.as_bytes(), &sig)
        .expect("signature verifies");
    assert!(
        public
            .pkcs1v15_verify::<Sha256>(b"something else", &sig)
            .is_err()
    );

    let jwk = issuer.jwk();
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(jwk["kid"], "rsa-1");
    assert_eq!(jwk["e"], "AQAB");
    let from_jwk = rsa_key_from_jwk(&jwk);
    assert!(from_jwk == public, "n/e round-trip");
    from_jwk
        .pkcs1v15_verify::<Sha256>(input.as_bytes(), &sig)
        .expect("verifies with the JWK's key");

    let pem = issuer.public_pem();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    assert!(rsa::PublicKey::from_public_key_pem(&pem).expect("PEM parses") == public);
    assert_eq!(
        issuer.rsa_modulus().expect("RSA"),
        unb64(jwk["n"].as_str().expect("n"))
    );
}

#[test]
fn es256_token_verifies_with_the_crate_and_the_jwk_round_trips() {
    let issuer = Issuer::es256(None);
    let claims = plural_claims("bob", "bob@example.com", &[], 60);
    let token = issuer.token(&claims);
    let (input, header, _, sig) = split(&token);
    assert_eq!(header, json!({"alg": "ES256", "typ": "JWT"}), "no kid");
    assert_eq!(sig.len(), 64, "raw r||s");

    let key = issuer.ec_verifying_key().expect("EC issuer");
    let sig = p256::ecdsa::Signature::from_slice(&sig).expect("r||s");
    key.verify(input.as_bytes(), &sig).expect("verifies");
    assert!(key.verify(b"something else", &sig).is_err());

    let jwk = issuer.jwk();
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-256");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["alg"], "ES256");
    assert!(jwk.get("kid").is_none());
    assert_eq!(unb64(jwk["x"].as_str().expect("x")).len(), 32);
    assert_eq!(unb64(jwk["y"].as_str().expect("y")).len(), 32);
    let from_jwk = ec_key_from_jwk(&jwk);
    assert_eq!(from_jwk, key, "x/y round-trip");
    from_jwk
        .verify(input.as_bytes(), &sig)
        .expect("verifies with the JWK's key");
    assert!(
        issuer
            .public_pem()
            .starts_with("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE")
    );
}

#[test]
fn sign_raw_keeps_the_bytes_and_sign_ignores_the_header_alg() {
    let issuer = Issuer::es256(Some("ec-1"));
    let header_b64 = b64(br#"{"alg":"ES256", "crit":["exp"], "kid":"ec-1"}"#);
    let claims_b64 = b64(b"{}");
    let token = issuer.sign_raw(&header_b64, &claims_b64);
    assert!(token.starts_with(&format!("{header_b64}.{claims_b64}.")));
    let (input, _, _, sig) = split(&token);
    let sig = p256::ecdsa::Signature::from_slice(&sig).expect("r||s");
    issuer
        .ec_verifying_key()
        .expect("EC")
        .verify(input.as_bytes(), &sig)
        .expect("verifies");

    // A header that lies about alg is still signed with the issuer's own key.
    let lying = issuer.sign(&json!({"alg": "RS256"}), &json!({}));
    let (_, header, _, sig) = split(&lying);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(sig.len(), 64);
}

#[test]
fn plural_claims_have_the_plural_shape() {
    let claims = plural_claims("carol", "carol@example.com", &["a", "b"], 100);
    for name in [
        "sub", "email", "name", "admin", "groups", "kid", "iss", "aud", "exp", "nbf", "iat", "jti",
    ] {
        assert!(claims.get(name).is_some(), "missing {name}");
    }
    assert_eq!(claims["iss"], "Joken");
    assert_eq!(claims["aud"], "Joken");
    assert_eq!(claims["groups"], json!(["a", "b"]));
    let iat = claims["iat"].as_i64().expect("iat");
    assert_eq!(claims["exp"].as_i64().expect("exp"), iat + 100);
    assert!((iat - issuer::now()).abs() <= 5);
    let other = plural_claims("carol", "carol@example.com", &[], 100);
    assert_ne!(claims["jti"], other["jti"], "jti is random");
}

#[test]
fn hs256_token_carries_the_hmac_of_its_signing_input() {
    let issuer = Issuer::es256(None);
    let secret = issuer.public_pem();
    let token = hs256(
        secret.as_bytes(),
        &json!({"alg": "HS256", "typ": "JWT"}),
        &json!({"sub": "mallory"}),
    );
    let (input, header, _, sig) = split(&token);
    assert_eq!(header["alg"], "HS256");
    assert_eq!(sig, hmac_sha256(secret.as_bytes(), input.as_bytes()));
}

/// A minimal HTTP/1.1 GET: (status, body).
fn get(url: &str) -> std::io::Result<(u16, String)> {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').expect("path"));
    let mut s = TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw);
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[test]
fn jwks_server_serves_counts_and_follows_set_body() {
    let a = Issuer::es256(Some("a"));
    let doc = jwks(&[a.jwk()]);
    let server = JwksServer::start(doc.clone());
    assert!(server.url().starts_with("http://127.0.0.1:"));
    assert!(server.url().ends_with("/jwks.json"));
    assert_eq!(server.hits(), 0);

    let (status, body) = get(&server.url()).expect("GET");
    assert_eq!(status, 200);
    assert_eq!(body, doc);
    let parsed: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(parsed["keys"][0]["kid"], "a");
    assert_eq!(server.hits(), 1);
    assert!(
        server
            .last_request()
            .expect("a request")
            .starts_with("GET /jwks.json HTTP/1.1\r\n")
    );

    let b = Issuer::es256(Some("b"));
    let doc2 = jwks(&[a.jwk(), b.jwk()]);
    server.set_body(doc2.clone());
    assert_eq!(get(&server.url()).expect("GET"), (200, doc2.clone()));
    assert_eq!(server.hits(), 2);

    server.set_status(500);
    assert_eq!(get(&server.url()).expect("GET").0, 500);
    server.set_garbage();
    assert_eq!(get(&server.url()).expect("GET").0, 0, "not HTTP");
    server.set_mode(Mode::Close);
    assert_eq!(get(&server.url()).expect("GET"), (0, String::new()));
    server.set_normal();
    assert_eq!(get(&server.url()).expect("GET"), (200, doc2));
    let other = server.url().replace("/jwks.json", "/other");
    assert_eq!(get(&other).expect("GET").0, 404);
    assert_eq!(server.hits(), 7);
}

#[test]
fn jwks_server_stops_on_drop_even_while_hanging() {
    let server = JwksServer::start("{}");
    let url = server.url();
    server.set_mode(Mode::Hang);
    let client = std::thread::spawn(move || get(&url));
    let end = Instant::now() + Duration::from_secs(10);
    while server.hits() == 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.hits(), 1);
    let started = Instant::now();
    let addr = server.addr();
    drop(server);
    // A drop that waited for the hang would take an hour; 10 s only bounds a failure.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "drop did not stop the hanging server"
    );
    assert_eq!(client.join().expect("client").expect("GET").0, 0);
    let refused = TcpStream::connect(addr).expect_err("nothing listens after drop");
    assert_eq!(
        refused.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "{refused}"
    );
}

#[test]
fn unreachable_url_refuses_connections() {
    let url = unreachable_url();
    assert!(url.starts_with("http://127.0.0.1:"));
    // Refused, not merely failing: a timeout or a reset would be another story.
    let err = get(&url).expect_err("nothing may answer at the unreachable URL");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
}

/// Run with `--ignored --nocapture` to time key generation in this profile.
#[test]
#[ignore]
fn time_rsa_key_generation() {
    for _ in 0..10 {
        let started = Instant::now();
        let _ = Issuer::rsa(None);
        eprintln!("RSA-2048 key generation: {:?}", started.elapsed());
    }
}
