//! Shared by the fuzz targets: the abort-on-panic hook, two fixed signing keys (RSA-2048 for
//! RS256, P-256 for ES256) with their JWKS, and token building.
//!
//! The keys are fixed (not generated per run) so that a token in a seed or a corpus signed
//! by them stays valid from one run to the next. They are test keys: trust them nowhere.

use std::sync::{Once, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_warden::auth::jwk::{self, KeySet};
use p256::ecdsa::signature::Signer as _;
use rsa::BoxedUint;
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The `now` (seconds since the epoch) the pure targets verify tokens at.
pub const NOW: u64 = 1_800_000_000;
/// `kid` of the RSA key in the JWKS.
pub const RSA_KID: &str = "r1";
/// `kid` of the P-256 key in the JWKS.
pub const EC_KID: &str = "e1";

/// The RSA key's primes (hex, 1024 bits each; generated once with `openssl genrsa 2048`).
const RSA_P: &[&str] = &[
    "f3d8a9c3110d0b3cb592a5a0b2020fe1923a7e22321bd355f8615bd67304cb45",
    "695fe12ad4c565cd5ef7891528a91e58802c175ecceb079e4ec56e5324848b09",
    "27720f555be3eadc3dd68311de8ef86e8d573316346342f155556fe688876863",
    "985d4e551307b6228359140771e3b6e1936a34386589cd662661c9cc5f9bb037",
];
const RSA_Q: &[&str] = &[
    "dde6875f6502795ca51c44916d700c9b0fcef3005bb4d10fd32ae42bb29533d8",
    "2852df80b2d5c0e8e99abf9bcffc25eeee815f9950afce7ae12171a747adff44",
    "1673c43919a2635e4ca68dbff80388646772283bc2ae5d4e27cd903fd0950d7a",
    "fb386b57e20b4c83c952eb89cadb3df43a39e37255e2bd5d2a0cb47b7cf290f1",
];
/// The P-256 private scalar (hex; generated once with `openssl ecparam -genkey`).
const EC_D: &str = "910deac0c562148b38b9640a1e37d57414ef65706a208c17395b294e8572844c";

/// Makes every panic, on any thread, abort the process, so that libFuzzer records it as a
/// crash even where the server would catch it (`catch_unwind` in `mcp.rs`) or where it
/// happens on a thread nobody joins (the HTTP server's connection threads).
pub fn abort_on_panic() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            eprintln!("{info}");
            eprintln!("{}", std::backtrace::Backtrace::force_capture());
            std::process::abort();
        }));
    });
}

/// The two fixed private keys.
pub struct Keys {
    pub rsa: rsa::PrivateKey,
    pub ec: p256::ecdsa::SigningKey,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The fixed keys, built once.
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let p = BoxedUint::from_be_slice_vartime(&unhex(&RSA_P.concat()));
        let q = BoxedUint::from_be_slice_vartime(&unhex(&RSA_Q.concat()));
        let rsa = rsa::PrivateKey::from_p_q(p, q, BoxedUint::from(65537u64)).expect("RSA key");
        let ec = p256::ecdsa::SigningKey::from_slice(&unhex(EC_D)).expect("P-256 key");
        Keys { rsa, ec }
    })
}

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The public halves as JWKs: RSA with `kid` `r1`, P-256 with `kid` `e1`.
pub fn jwks_json() -> String {
    let k = keys();
    let point = k.ec.verifying_key().to_sec1_point(false);
    json!({ "keys": [
        {
            "kty": "RSA", "kid": RSA_KID, "use": "sig", "alg": "RS256",
            "n": b64(&k.rsa.n_bytes()), "e": b64(&k.rsa.e_bytes()),
        },
        {
            "kty": "EC", "crv": "P-256", "kid": EC_KID, "use": "sig", "alg": "ES256",
            "x": b64(point.x().expect("x")), "y": b64(point.y().expect("y")),
        },
    ]})
    .to_string()
}

/// The JWKS parsed by the server's own parser (two keys, or a panic).
pub fn keyset() -> &'static KeySet {
    static SET: OnceLock<KeySet> = OnceLock::new();
    SET.get_or_init(|| {
        let set = jwk::parse(jwks_json().as_bytes()).expect("fixed JWKS parses");
        assert_eq!(set.len(), 2, "both fixed keys are usable");
        set
    })
}

/// Which fixed key signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Es256,
}

impl Alg {
    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }
}

/// The JWS signature over `input` with the fixed key for `alg`.
pub fn signature(alg: Alg, input: &[u8]) -> Vec<u8> {
    match alg {
        Alg::Rs256 => {
            let digest = Sha256::digest(input);
            keys()
                .rsa
                .sign(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest)
                .expect("RSA signing")
        }
        Alg::Es256 => {
            let sig: p256::ecdsa::Signature = keys().ec.sign(input);
            sig.to_bytes().to_vec()
        }
    }
}

/// `signing_input` (`header_b64.claims_b64`, used byte for byte) with its signature
/// appended as the third segment.
pub fn sign_raw(alg: Alg, signing_input: &str) -> String {
    let sig = signature(alg, signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&sig))
}

/// A compact JWS of the given header and claims bytes (base64url-encoded as given).
pub fn sign_parts(alg: Alg, header: &[u8], claims: &[u8]) -> String {
    sign_raw(alg, &format!("{}.{}", b64(header), b64(claims)))
}

/// A normal token: header `{"alg","typ":"JWT","kid"}` and the given claims.
pub fn token(alg: Alg, claims: &Value) -> String {
    let kid = match alg {
        Alg::Rs256 => RSA_KID,
        Alg::Es256 => EC_KID,
    };
    let header = json!({ "alg": alg.name(), "typ": "JWT", "kid": kid });
    sign_parts(
        alg,
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
    )
}

/// Claims that pass every check at `NOW` (and until 2096 for the live server), with the
/// group `sre`.
pub fn good_claims() -> Value {
    json!({
        "sub": "fuzz", "email": "fuzz@example.com", "name": "Fuzz",
        "iss": "Joken", "aud": "Joken", "groups": ["sre"],
        "exp": 4_000_000_000u64, "nbf": NOW - 10, "iat": NOW - 10,
    })
}
