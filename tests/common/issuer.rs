//! The signing side, for tests and for `examples/dev-issuer.rs` only: the server never signs.
//!
//! An [`Issuer`] holds a fresh private key (RSA-2048 for RS256, P-256 for ES256) and an
//! optional `kid`; it publishes its public half as a JWK and signs compact JWS tokens.
//! The free functions build Plural-shaped claims, JWKS documents, base64url pieces, and
//! HS256 tokens (HMAC-SHA256 written out by hand on `sha2`, for key-confusion tests).
//!
//! Self-contained on purpose (std, serde_json, base64, sha2, rsa, p256, getrandom): it is
//! included both as `tests/common/issuer.rs` and, through `#[path]`, by the example.
#![allow(dead_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use getrandom::SysRng;
use getrandom::rand_core::UnwrapErr;
use p256::ecdsa::signature::Signer as _;
use p256::elliptic_curve::Generate as _;
use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// A signing key and its `kid`.
pub struct Issuer {
    kid: Option<String>,
    key: Key,
}

enum Key {
    Rsa(Box<rsa::PrivateKey>),
    Ec(p256::ecdsa::SigningKey),
}

impl Issuer {
    /// An RS256 issuer with a fresh 2048-bit RSA key (exponent 65537).
    pub fn rsa(kid: Option<&str>) -> Issuer {
        Issuer::rsa_bits(kid, 2048)
    }

    /// An RS256 issuer with a fresh RSA key of `bits` bits (at least 1024, the `rsa`
    /// crate's floor), for key-size tests.
    pub fn rsa_bits(kid: Option<&str>, bits: usize) -> Issuer {
        let key = rsa::PrivateKey::new(&mut SysRng, bits).expect("RSA key generation");
        Issuer {
            kid: kid.map(str::to_owned),
            key: Key::Rsa(Box::new(key)),
        }
    }

    /// An ES256 issuer with a fresh P-256 key.
    pub fn es256(kid: Option<&str>) -> Issuer {
        let key = p256::ecdsa::SigningKey::generate_from_rng(&mut UnwrapErr(SysRng));
        Issuer {
            kid: kid.map(str::to_owned),
            key: Key::Ec(key),
        }
    }

    /// The JWS `alg` this key signs with: `"RS256"` or `"ES256"`.
    pub fn alg(&self) -> &'static str {
        match self.key {
            Key::Rsa(_) => "RS256",
            Key::Ec(_) => "ES256",
        }
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The public key as a JWK: `kty`, `n`/`e` or `crv`/`x`/`y`, `use: "sig"`, `alg`, and
    /// `kid` when there is one. Edit the returned value to make odd or broken keys.
    pub fn jwk(&self) -> Value {
        let mut jwk = match &self.key {
            Key::Rsa(k) => json!({
                "kty": "RSA",
                "n": b64(&k.n_bytes()),
                "e": b64(&k.e_bytes()),
            }),
            Key::Ec(k) => {
                let point = k.verifying_key().to_sec1_point(false);
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": b64(point.x().expect("uncompressed point has x")),
                    "y": b64(point.y().expect("uncompressed point has y")),
                })
            }
        };
        jwk["use"] = json!("sig");
        jwk["alg"] = json!(self.alg());
        if let Some(kid) = &self.kid {
            jwk["kid"] = json!(kid);
        }
        jwk
    }

    /// The standard header: `{"alg":…,"typ":"JWT","kid":…}`, `kid` left out when `None`.
    pub fn header(&self) -> Value {
        let mut header = json!({ "alg": self.alg(), "typ": "JWT" });
        if let Some(kid) = &self.kid {
            header["kid"] = json!(kid);
        }
        header
    }

    /// A token with the standard header.
    pub fn token(&self, claims: &Value) -> String {
        self.sign(&self.header(), claims)
    }

    /// A compact JWS of `header` and `claims`, signed with this key whatever the header says
    /// (so a test can claim one `alg` and sign with another).
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sign_raw(&b64_json(header), &b64_json(claims))
    }

    /// Signs `header_b64.claims_b64` exactly as given (no re-encoding: odd whitespace, `crit`,
    /// embedded `jwk`, duplicate members, invalid base64 all survive) and returns the token.
    pub fn sign_raw(&self, header_b64: &str, claims_b64: &str) -> String {
        let input = format!("{header_b64}.{claims_b64}");
        let sig = self.signature(input.as_bytes());
        format!("{input}.{}", b64(&sig))
    }

    /// The raw JWS signature over `signing_input`: PKCS#1 v1.5 with SHA-256 for RSA, the
    /// 64-byte big-endian `r || s` for P-256.
    pub fn signature(&self, signing_input: &[u8]) -> Vec<u8> {
        match &self.key {
            Key::Rsa(k) => {
                let digest = Sha256::digest(signing_input);
                k.sign_with_rng(&mut SysRng, rsa::Pkcs1v15Sign::new::<Sha256>(), &digest)
                    .expect("RSA signing")
            }
            Key::Ec(k) => {
                let sig: p256::ecdsa::Signature = k.sign(signing_input);
                sig.to_bytes().to_vec()
            }
        }
    }

    /// The RSA public key (None for an EC issuer), for verifying with the crate directly.
    pub fn rsa_public_key(&self) -> Option<rsa::PublicKey> {
        match &self.key {
            Key::Rsa(k) => Some(k.to_public_key()),
            Key::Ec(_) => None,
        }
    }

    /// The P-256 public key (None for an RSA issuer).
    pub fn ec_verifying_key(&self) -> Option<p256::ecdsa::VerifyingKey> {
        match &self.key {
            Key::Rsa(_) => None,
            Key::Ec(k) => Some(*k.verifying_key()),
        }
    }

    /// The RSA modulus, big-endian without leading zeros (None for EC): one of the "secrets"
    /// an HS256 key-confusion attacker tries.
    pub fn rsa_modulus(&self) -> Option<Vec<u8>> {
        match &self.key {
            Key::Rsa(k) => Some(k.n_bytes().to_vec()),
            Key::Ec(_) => None,
        }
    }

    /// The public key as SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`, LF line
    /// endings, trailing newline): the classic HS256 key-confusion "secret".
    pub fn public_pem(&self) -> String {
        match &self.key {
            Key::Rsa(k) => k
                .to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("RSA public key PEM"),
            Key::Ec(k) => {
                // SPKI for id-ecPublicKey / prime256v1 is a fixed 26-byte prefix before the
                // 65-byte uncompressed point.
                const PREFIX: [u8; 26] = [
                    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
                    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
                ];
                let mut der = PREFIX.to_vec();
                der.extend_from_slice(k.verifying_key().to_sec1_point(false).as_bytes());
                pem("PUBLIC KEY", &der)
            }
        }
    }
}

/// A JWKS document: `{"keys":[…]}`.
pub fn jwks(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// base64url without padding, as JWS uses it.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// base64url of a value's compact JSON.
pub fn b64_json(value: &Value) -> String {
    b64(value.to_string().as_bytes())
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    i64::try_from(secs).expect("time fits in i64")
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("OS random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Claims shaped like a Plural (Joken) access token, valid from now for `lifetime_secs`
/// (negative: already expired). `nbf`/`iat` are now; `jti` is random; `kid` sits in the
/// claims, as Plural puts it. Edit the returned value for other cases.
pub fn plural_claims(sub: &str, email: &str, groups: &[&str], lifetime_secs: i64) -> Value {
    let now = now();
    json!({
        "sub": sub,
        "email": email,
        "name": sub,
        "admin": false,
        "groups": groups,
        "kid": random_hex(8),
        "iss": "Joken",
        "aud": "Joken",
        "exp": now + lifetime_secs,
        "nbf": now,
        "iat": now,
        "jti": random_hex(16),
    })
}

/// A token with no signature (`header.claims.`), e.g. for `"alg":"none"`.
pub fn unsigned(header: &Value, claims: &Value) -> String {
    format!("{}.{}.", b64_json(header), b64_json(claims))
}

/// An HS256 token: HMAC-SHA256 under `secret` over `header.claims`. The header is used as
/// given, so pass `{"alg":"HS256",…}` (or anything else) yourself.
pub fn hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64_json(header), b64_json(claims));
    let mac = hmac_sha256(secret, input.as_bytes());
    format!("{input}.{}", b64(&mac))
}

/// HMAC-SHA256 (RFC 2104): H((K ^ opad) || H((K ^ ipad) || m)), with K hashed first when it
/// is longer than the 64-byte block and zero-padded to the block.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();

    let mut inner = Sha256::new();
    inner.update(&ipad);
    inner.update(message);
    let inner = inner.finalize();

    let mut outer = Sha256::new();
    outer.update(&opad);
    outer.update(inner);
    let mut out = [0u8; 32];
    out.copy_from_slice(&outer.finalize());
    out
}

/// PEM armour: standard base64 in 64-character lines, LF endings.
fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_sha256_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hmac_sha256_rfc4231_case_6_key_longer_than_block() {
        let key = [0xaau8; 131];
        let mac = hmac_sha256(
            &key,
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex(&mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn b64_is_url_safe_without_padding() {
        assert_eq!(b64(&[0xfb, 0xff]), "-_8");
    }
}
