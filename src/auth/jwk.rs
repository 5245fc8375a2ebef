//! CRYPTO PATH 3/3 — JWKS JSON → a `KeySet` of typed verification keys (RFC 7517, 7518 §6).
//!
//! Pure: bytes in, keys out, no I/O (fetching is `jwks.rs`). Only two kinds of key are kept:
//! `kty: RSA` with a modulus of at least `MIN_RSA_BITS` (for RS256) and `kty: EC` on
//! `crv: P-256` (for ES256). Every other key is skipped with its reason logged at debug.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::BoxedUint;
use serde_json::{Map, Value};

/// The smallest RSA modulus accepted, in bits (RFC 7518 §3.3 requires 2048).
pub const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits: bounds the cost of one verification.
pub const MAX_RSA_BITS: usize = 8192;
/// At most this many usable keys are kept from one JWKS; a token without `kid` is tried
/// against each key of its type, so this bounds the work one token can cause.
pub const MAX_KEYS: usize = 32;

/// A verification key of a supported type.
#[derive(Clone, PartialEq)]
pub enum PublicKey {
    Rsa(rsa::PublicKey),
    P256(p256::ecdsa::VerifyingKey),
}

/// One usable key from the JWKS.
#[derive(Clone, PartialEq)]
pub struct Key {
    pub kid: Option<String>,
    pub key: PublicKey,
}

impl Key {
    /// `RS256` or `ES256`: the one algorithm this key verifies.
    pub fn alg(&self) -> &'static str {
        match self.key {
            PublicKey::Rsa(_) => "RS256",
            PublicKey::P256(_) => "ES256",
        }
    }
}

// Key material never reaches a log line: `{:?}` shows only the kid and the type.
impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(kid={:?}, {})", self.kid, self.alg())
    }
}

/// The usable keys of one JWKS, in document order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeySet {
    pub keys: Vec<Key>,
}

impl KeySet {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The kids, for the startup summary (`-` for a key without one).
    pub fn kids(&self) -> Vec<&str> {
        self.keys
            .iter()
            .map(|k| k.kid.as_deref().unwrap_or("-"))
            .collect()
    }
}

/// Why a JWKS document could not be read at all. (Single unusable keys are skipped.)
#[derive(Debug, PartialEq, Eq)]
pub enum JwksFormatError {
    /// The body is not JSON.
    NotJson(String),
    /// The body is JSON but has no `keys` array.
    NoKeysArray,
}

impl fmt::Display for JwksFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwksFormatError::NotJson(e) => write!(f, "the response is not JSON ({e})"),
            JwksFormatError::NoKeysArray => {
                write!(f, "the response is JSON but has no \"keys\" array")
            }
        }
    }
}

/// Parses a JWKS document, keeping the usable signing keys.
pub fn parse(json: &[u8]) -> Result<KeySet, JwksFormatError> {
    let doc: Value =
        serde_json::from_slice(json).map_err(|e| JwksFormatError::NotJson(e.to_string()))?;
    let Some(Value::Array(entries)) = doc.get("keys") else {
        return Err(JwksFormatError::NoKeysArray);
    };
    let mut set = KeySet::default();
    for entry in entries {
        let kid = entry.get("kid").and_then(Value::as_str).unwrap_or("-");
        match entry
            .as_object()
            .ok_or("not a JSON object")
            .and_then(parse_key)
        {
            Ok(_) if set.len() == MAX_KEYS => {
                log::warn!("skipping key kid={kid}: the JWKS has more than {MAX_KEYS} usable keys");
            }
            Ok(key) => set.keys.push(key),
            Err(reason) => log::debug!("skipping key kid={kid}: {reason}"),
        }
    }
    Ok(set)
}

/// One JWK → a usable key, or the reason it is not one.
fn parse_key(jwk: &Map<String, Value>) -> Result<Key, &'static str> {
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err("\"kid\" is not a string"),
    };
    match jwk.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(_) => return Err("\"use\" is not \"sig\""),
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op == "verify"));
        if !verifies {
            return Err("\"key_ops\" does not include \"verify\"");
        }
    }
    let (key, alg) = match jwk.get("kty").and_then(Value::as_str) {
        Some("RSA") => {
            let n = b64_member(jwk, "n")?;
            let e = b64_member(jwk, "e")?;
            (PublicKey::Rsa(rsa_key(&n, &e)?), "RS256")
        }
        Some("EC") => {
            if jwk.get("crv").and_then(Value::as_str) != Some("P-256") {
                return Err("EC key is not on curve P-256");
            }
            let x = b64_member(jwk, "x")?;
            let y = b64_member(jwk, "y")?;
            (PublicKey::P256(p256_key(&x, &y)?), "ES256")
        }
        Some("oct") => return Err("symmetric (oct) keys are never used"),
        Some(_) => return Err("unsupported \"kty\" (only RSA and EC P-256)"),
        None => return Err("missing \"kty\""),
    };
    match jwk.get("alg") {
        None => {}
        Some(Value::String(a)) if a == alg => {}
        Some(_) => {
            return Err(
                "\"alg\" contradicts the key type (RSA keys are for RS256, P-256 keys for ES256)",
            );
        }
    }
    Ok(Key { kid, key })
}

/// A base64url (no padding) member, decoded.
fn b64_member(jwk: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, &'static str> {
    let text = jwk
        .get(name)
        .and_then(Value::as_str)
        .ok_or("a required key member (n, e, x or y) is missing or not a string")?;
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| "a key member is not base64url without padding")
}

/// An RSA public key from big-endian modulus and exponent bytes (leading zeros allowed),
/// with a modulus of `MIN_RSA_BITS` to `MAX_RSA_BITS` bits.
pub fn rsa_key(n: &[u8], e: &[u8]) -> Result<rsa::PublicKey, &'static str> {
    let n = strip_leading_zeros(n);
    let e = strip_leading_zeros(e);
    let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
    if bits < MIN_RSA_BITS {
        return Err("RSA modulus is shorter than 2048 bits");
    }
    if bits > MAX_RSA_BITS {
        return Err("RSA modulus is longer than 8192 bits");
    }
    if e.is_empty() || e.len() > 8 {
        return Err("RSA exponent is out of range");
    }
    rsa::PublicKey::new_with_size_limits(
        BoxedUint::from_be_slice_vartime(n),
        BoxedUint::from_be_slice_vartime(e),
        MIN_RSA_BITS..=MAX_RSA_BITS,
    )
    .map_err(|_| "RSA modulus or exponent is invalid")
}

/// A P-256 public key from its 32-byte affine coordinates (RFC 7518 §6.2.1: full size).
pub fn p256_key(x: &[u8], y: &[u8]) -> Result<p256::ecdsa::VerifyingKey, &'static str> {
    if x.len() != 32 || y.len() != 32 {
        return Err("P-256 coordinates must be 32 bytes each");
    }
    let mut sec1 = [0u8; 65];
    sec1[0] = 0x04;
    sec1[1..33].copy_from_slice(x);
    sec1[33..].copy_from_slice(y);
    p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| "the point is not on curve P-256")
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}
