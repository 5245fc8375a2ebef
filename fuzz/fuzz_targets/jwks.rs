//! `jwks`: `auth::jwk::parse` on hostile JWKS documents.
//!
//! Asserts: no panic; at most `MAX_KEYS` keys; each key's `Debug` is exactly
//! `Key(kid=…, RS256|ES256)` (no key material), and the set's `Debug` and `kids()` work.
//! Then every key the parser accepted is used: a valid RS256 and ES256 token (signed by the
//! fuzz crate's fixed keys) go through `jwt::verify` with the parsed set, and each key
//! checks a signature of the right length made from the input bytes. A key the parser lets
//! through must be safe to verify with, however odd its numbers are.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mcp_warden::auth::jwk::{self, MAX_KEYS, PublicKey};
use mcp_warden::auth::jwt::{self, Policy};
use rsa::traits::PublicKeyParts as _;
use warden_fuzz::{Alg, NOW, abort_on_panic, good_claims, token};

fn tokens() -> &'static [String; 2] {
    static TOKENS: OnceLock<[String; 2]> = OnceLock::new();
    TOKENS.get_or_init(|| {
        [
            token(Alg::Rs256, &good_claims()),
            token(Alg::Es256, &good_claims()),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    abort_on_panic();
    let Ok(set) = jwk::parse(data) else {
        return;
    };
    assert!(set.len() <= MAX_KEYS);
    let shown = format!("{set:?}");
    assert_eq!(set.kids().len(), set.len());
    for key in &set.keys {
        let debug = format!("{key:?}");
        assert_eq!(debug, format!("Key(kid={:?}, {})", key.kid, key.alg()));
        assert!(shown.contains(&debug));
        // A signature of the key's length, from the input (zeros when it is short).
        let len = match &key.key {
            PublicKey::Rsa(k) => k.size(),
            PublicKey::P256(_) => 64,
        };
        let signature: Vec<u8> = data.iter().copied().cycle().take(len).collect();
        let signature = if signature.len() == len {
            signature
        } else {
            vec![0; len]
        };
        let _ = match &key.key {
            PublicKey::Rsa(k) => jwt::verify_rs256(k, b"e30.e30", &signature),
            PublicKey::P256(k) => jwt::verify_es256(k, b"e30.e30", &signature),
        };
    }
    for token in tokens() {
        if let Err(e) = jwt::verify(token, &set, &Policy::default(), NOW) {
            let _ = e.to_string();
        }
    }
});
