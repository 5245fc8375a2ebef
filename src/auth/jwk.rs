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
    // After stripping, a non-empty `n` starts with a non-zero byte; an empty one is 0 bits.
    let bits = n
        .first()
        .map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A well-formed 2048-bit modulus value (odd, top bit set); never used to verify.
    fn n2048() -> Vec<u8> {
        let mut n = vec![0xc5u8; 256];
        n[255] |= 1;
        n
    }

    /// The P-256 generator point: a valid public key.
    fn p256_g() -> (Vec<u8>, Vec<u8>) {
        let hex = |s: &str| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect::<Vec<u8>>()
        };
        (
            hex("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"),
            hex("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"),
        )
    }

    fn rsa_jwk() -> Value {
        json!({"kty": "RSA", "kid": "r", "n": b64(&n2048()), "e": "AQAB"})
    }

    fn ec_jwk() -> Value {
        let (x, y) = p256_g();
        json!({"kty": "EC", "crv": "P-256", "kid": "e", "x": b64(&x), "y": b64(&y)})
    }

    fn parse_one(jwk: Value) -> KeySet {
        parse(json!({ "keys": [jwk] }).to_string().as_bytes()).unwrap()
    }

    fn with(mut jwk: Value, name: &str, value: Value) -> Value {
        jwk[name] = value;
        jwk
    }

    #[test]
    fn keeps_rsa_and_p256_signing_keys() {
        let set = parse(
            json!({"keys": [rsa_jwk(), ec_jwk()]})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.kids(), vec!["r", "e"]);
        assert_eq!(set.keys[0].alg(), "RS256");
        assert_eq!(set.keys[1].alg(), "ES256");
        let set = parse_one(with(
            with(ec_jwk(), "use", json!("sig")),
            "alg",
            json!("ES256"),
        ));
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn refuses_a_document_that_is_not_a_jwks() {
        assert!(matches!(parse(b"<html>"), Err(JwksFormatError::NotJson(_))));
        assert_eq!(parse(b"{\"keys\": {}}"), Err(JwksFormatError::NoKeysArray));
        assert_eq!(parse(b"[]"), Err(JwksFormatError::NoKeysArray));
        assert!(parse(b"{\"keys\": []}").unwrap().is_empty());
    }

    #[test]
    fn skips_keys_not_for_signing() {
        assert!(parse_one(with(rsa_jwk(), "use", json!("enc"))).is_empty());
        assert!(parse_one(with(rsa_jwk(), "key_ops", json!(["encrypt"]))).is_empty());
        assert_eq!(
            parse_one(with(rsa_jwk(), "key_ops", json!(["verify"]))).len(),
            1
        );
    }

    #[test]
    fn skips_keys_whose_alg_contradicts_their_type() {
        for alg in ["ES256", "PS256", "RS512", "HS256", "none"] {
            assert!(
                parse_one(with(rsa_jwk(), "alg", json!(alg))).is_empty(),
                "{alg}"
            );
        }
        assert!(parse_one(with(ec_jwk(), "alg", json!("RS256"))).is_empty());
    }

    #[test]
    fn skips_rsa_moduli_under_2048_bits() {
        let n = &n2048()[1..]; // 2040 bits
        assert!(parse_one(with(rsa_jwk(), "n", json!(b64(n)))).is_empty());
        assert_eq!(
            rsa_key(&[0x80; 128], &[1, 0, 1]),
            Err("RSA modulus is shorter than 2048 bits")
        );
        // Leading zero bytes do not count towards the size.
        let padded = [vec![0u8; 8], n.to_vec()].concat();
        assert!(rsa_key(&padded, &[1, 0, 1]).is_err());
        assert!(rsa_key(&[vec![0u8; 8], n2048()].concat(), &[1, 0, 1]).is_ok());
    }

    #[test]
    fn skips_an_empty_or_all_zero_modulus_without_panicking() {
        // Found by fuzz/fuzz_targets/jwks.rs (fuzz/regressions/jwks/): 0 - 8 overflowed.
        for n in ["", "AA", "AAAA"] {
            assert!(
                parse_one(with(rsa_jwk(), "n", json!(n))).is_empty(),
                "{n:?}"
            );
        }
        assert_eq!(
            rsa_key(&[], &[1, 0, 1]),
            Err("RSA modulus is shorter than 2048 bits")
        );
        assert_eq!(
            rsa_key(&[0, 0], &[1, 0, 1]),
            Err("RSA modulus is shorter than 2048 bits")
        );
        let doc = br#"{"keys":[{"e":"AQ","kty":"RSA","n":""},null]}"#;
        assert!(parse(doc).unwrap().is_empty());
    }

    #[test]
    fn skips_rsa_keys_with_a_bad_exponent() {
        for e in [json!(""), json!("AA"), json!(b64(&[0xff; 9])), json!(3)] {
            assert!(parse_one(with(rsa_jwk(), "e", e.clone())).is_empty(), "{e}");
        }
    }

    #[test]
    fn skips_symmetric_and_unsupported_keys() {
        assert!(parse_one(json!({"kty": "oct", "k": "c2VjcmV0"})).is_empty());
        assert!(parse_one(json!({"kty": "OKP", "crv": "Ed25519", "x": "AA"})).is_empty());
        assert!(parse_one(with(ec_jwk(), "crv", json!("P-384"))).is_empty());
        assert!(parse_one(with(ec_jwk(), "crv", json!("secp256k1"))).is_empty());
        let mut no_kty = rsa_jwk();
        no_kty.as_object_mut().unwrap().remove("kty");
        assert!(parse_one(no_kty).is_empty());
        assert!(parse(b"{\"keys\": [1, \"x\", null]}").unwrap().is_empty());
    }

    #[test]
    fn skips_malformed_members() {
        assert!(parse_one(with(rsa_jwk(), "n", json!(b64(&n2048()) + "=="))).is_empty());
        assert!(parse_one(with(rsa_jwk(), "n", json!("not base64!"))).is_empty());
        assert!(parse_one(with(rsa_jwk(), "kid", json!(7))).is_empty());
        let (x, _) = p256_g();
        assert!(parse_one(with(ec_jwk(), "x", json!(b64(&x[1..])))).is_empty());
        // (x, x) is not on the curve.
        assert!(parse_one(with(ec_jwk(), "y", json!(b64(&x)))).is_empty());
    }

    #[test]
    fn keeps_at_most_max_keys() {
        let keys: Vec<Value> = (0..MAX_KEYS + 5).map(|_| ec_jwk()).collect();
        let set = parse(json!({ "keys": keys }).to_string().as_bytes()).unwrap();
        assert_eq!(set.len(), MAX_KEYS);
    }

    #[test]
    fn debug_never_shows_key_material() {
        let set = parse_one(rsa_jwk());
        let shown = format!("{set:?}");
        assert!(
            shown.contains("kid=Some(\"r\")") && shown.contains("RS256"),
            "{shown}"
        );
        assert!(!shown.contains(&b64(&n2048())[..16]), "{shown}");
        assert!(!shown.contains("197"), "{shown}"); // 0xc5 as a decimal limb byte
    }
}
