//! CRYPTO PATH 2/3 — a compact JWS (RFC 7515) → verified claims (RFC 7519).
//!
//! Pure: a token, the current key set, the policy and `now` in; claims or the reason out.
//! Keys come from `jwk.rs`; Bearer extraction, groups and caching are `mod.rs`'s.
//!
//! The checks, in this order (each refusal is an `AuthError` variant):
//!  1. At most `MAX_TOKEN_BYTES` (checked before anything else is looked at).
//!  2. Exactly three non-empty segments, each base64url without padding (RFC 7515 §7.1);
//!     whitespace, padding and non-canonical trailing bits are refused by the decoder.
//!  3. The header is a JSON object. `alg` is `RS256` or `ES256`: `none`, `HS*`, `PS*` and all
//!     else are refused before any key is touched. Any `crit` is refused (we implement no
//!     extensions). `typ`, if present, is `JWT` or ends in `+jwt`. `jwk`, `jku`, `x5u` and
//!     `x5c` are never read: keys come only from the configured JWKS.
//!  4. Key choice. A header `kid` selects that key only, and its type must match `alg`.
//!     Without a header `kid` (Plural puts `kid` in the claims, which cannot be trusted before
//!     the signature is), each key of `alg`'s type is tried, at most `jwk::MAX_KEYS`.
//!  5. The signature is checked over the received bytes `seg1.seg2`, never re-encoded.
//!     RS256: RSASSA-PKCS1-v1_5 with SHA-256; the signature is exactly as long as the modulus.
//!     ES256: exactly 64 raw bytes `r || s` (not DER); `r` or `s` zero or ≥ n is refused
//!     (CVE-2022-21449).
//!  6. Only now are the claims decoded: a JSON object. `exp` is required and numeric; `exp`,
//!     `nbf` and `iat` are compared with `now` allowing `Policy::leeway`. `iss` and `aud` are
//!     compared exactly when the policy names them (`aud` may be a string or an array).
//!     `sub` must be a non-empty string. `groups`, when present, must be an array of strings.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Verifier;
use rsa::traits::PublicKeyParts;
use serde_json::{Map, Value};
use sha2::Sha256;

use super::AuthError;
use super::jwk::{Key, KeySet, PublicKey};

/// The longest token accepted, in bytes. Plural's tokens are under 1 KiB; the cap bounds
/// the work a request can cause before its signature is checked.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// What a valid token must also satisfy besides its signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// `JWT_LEEWAY_SECS`: clock skew allowed on `exp`, `nbf` and `iat`. Defaults to 60 s.
    pub leeway_secs: u64,
    /// `JWT_ISSUER`: when set, `iss` must equal it. Defaults to unset (not checked).
    pub issuer: Option<String>,
    /// `JWT_AUDIENCE`: when set, `aud` must be or contain it. Defaults to unset.
    pub audience: Option<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            leeway_secs: 60,
            issuer: None,
            audience: None,
        }
    }
}

/// The claims of a verified token that the server uses.
#[derive(Clone, Debug, PartialEq)]
pub struct Claims {
    pub issuer: Option<String>,
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// `None` when the token has no `groups` claim.
    pub groups: Option<Vec<String>>,
    /// `exp`, in seconds since the Unix epoch.
    pub expires_at: f64,
}

/// Verifies `token` against `keys` and `policy` at time `now` (seconds since the epoch).
pub fn verify(token: &str, keys: &KeySet, policy: &Policy, now: u64) -> Result<Claims, AuthError> {
    // 1.
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::TokenTooLarge { bytes: token.len() });
    }
    // 2.
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        let segments = token.split('.').count();
        return Err(AuthError::Malformed(format!(
            "a JWT has 3 dot-separated segments, this one has {segments}"
        )));
    };
    let header = decode_object(header_b64, "header")?;
    let signature = decode_segment(signature_b64, "signature")?;
    let signing_input = &token.as_bytes()[..header_b64.len() + 1 + claims_b64.len()];

    // 3.
    let alg = match header.get("alg") {
        Some(Value::String(alg)) if alg == "RS256" || alg == "ES256" => alg.as_str(),
        Some(Value::String(alg)) => return Err(AuthError::AlgorithmNotAllowed(alg.clone())),
        _ => return Err(AuthError::Malformed("the header has no \"alg\"".into())),
    };
    if header.contains_key("crit") {
        return Err(AuthError::CritPresent);
    }
    match header.get("typ") {
        None => {}
        Some(Value::String(t)) if t.eq_ignore_ascii_case("JWT") || ends_with_jwt(t) => {}
        Some(other) => return Err(AuthError::WrongType(other.to_string())),
    }

    // 4. and 5.
    match header.get("kid") {
        Some(Value::String(kid)) => {
            let key = keys
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .ok_or_else(|| AuthError::UnknownKey { kid: kid.clone() })?;
            if key.alg() != alg {
                return Err(AuthError::KeyTypeMismatch {
                    kid: kid.clone(),
                    alg: alg.to_string(),
                });
            }
            if !verify_with(key, signing_input, &signature) {
                return Err(AuthError::BadSignature {
                    kid: Some(kid.clone()),
                });
            }
        }
        Some(_) => {
            return Err(AuthError::Malformed(
                "the header's \"kid\" is not a string".into(),
            ));
        }
        None => {
            let mut candidates = keys.keys.iter().filter(|k| k.alg() == alg).peekable();
            if candidates.peek().is_none() {
                return Err(AuthError::NoKeyForAlgorithm(alg.to_string()));
            }
            if !candidates.any(|key| verify_with(key, signing_input, &signature)) {
                return Err(AuthError::BadSignature { kid: None });
            }
        }
    }

    // 6.
    let claims = decode_object(claims_b64, "claims")?;
    check_claims(&claims, policy, now)
}

/// RS256: RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3) over `message`.
pub fn verify_rs256(key: &rsa::PublicKey, message: &[u8], signature: &[u8]) -> bool {
    signature.len() == key.size() && key.pkcs1v15_verify::<Sha256>(message, signature).is_ok()
}

/// ES256: ECDSA on P-256 with SHA-256 (RFC 7518 §3.4), signature as 64 raw bytes `r || s`.
/// `Signature::from_slice` refuses `r` or `s` that is zero or not below the group order.
pub fn verify_es256(key: &p256::ecdsa::VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    if signature.len() != 64 {
        return false;
    }
    match p256::ecdsa::Signature::from_slice(signature) {
        Ok(sig) => key.verify(message, &sig).is_ok(),
        Err(_) => false,
    }
}

fn verify_with(key: &Key, message: &[u8], signature: &[u8]) -> bool {
    match &key.key {
        PublicKey::Rsa(rsa) => verify_rs256(rsa, message, signature),
        PublicKey::P256(ec) => verify_es256(ec, message, signature),
    }
}

fn check_claims(
    claims: &Map<String, Value>,
    policy: &Policy,
    now: u64,
) -> Result<Claims, AuthError> {
    let now = now as f64;
    let leeway = policy.leeway_secs as f64;
    let exp = match claims.get("exp") {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(_) => return Err(AuthError::BadClaim("\"exp\" is not a number")),
        None => return Err(AuthError::MissingExpiry),
    };
    if exp.is_nan() || now > exp + leeway {
        return Err(AuthError::Expired { exp, now });
    }
    if let Some(nbf) = numeric_claim(claims, "nbf")? {
        if now + leeway < nbf {
            return Err(AuthError::NotYetValid { nbf, now });
        }
    }
    if let Some(iat) = numeric_claim(claims, "iat")? {
        if iat > now + leeway {
            return Err(AuthError::IssuedInFuture { iat, now });
        }
    }
    let issuer = string_claim(claims, "iss")?;
    if let Some(expected) = &policy.issuer {
        if issuer.as_deref() != Some(expected.as_str()) {
            return Err(AuthError::WrongIssuer {
                found: issuer,
                expected: expected.clone(),
            });
        }
    }
    if let Some(expected) = &policy.audience {
        let matches = match claims.get("aud") {
            Some(Value::String(aud)) => aud == expected,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(expected)),
            _ => false,
        };
        if !matches {
            return Err(AuthError::WrongAudience {
                expected: expected.clone(),
            });
        }
    }
    let subject = match string_claim(claims, "sub")? {
        Some(sub) if !sub.is_empty() => sub,
        _ => return Err(AuthError::MissingSubject),
    };
    let groups = match claims.get("groups") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|g| g.as_str().map(str::to_string))
                .collect::<Option<Vec<String>>>()
                .ok_or(AuthError::BadClaim(
                    "\"groups\" holds something other than strings",
                ))?,
        ),
        Some(_) => return Err(AuthError::BadClaim("\"groups\" is not an array of strings")),
    };
    Ok(Claims {
        issuer,
        subject,
        email: string_claim(claims, "email")?,
        name: string_claim(claims, "name")?,
        groups,
        expires_at: exp,
    })
}

fn numeric_claim(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<f64>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(AuthError::BadClaim(match name {
            "nbf" => "\"nbf\" is not a number",
            _ => "\"iat\" is not a number",
        })),
    }
}

fn string_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(AuthError::Malformed(format!(
            "the \"{name}\" claim is not a string"
        ))),
    }
}

fn ends_with_jwt(typ: &str) -> bool {
    typ.len() >= 4 && typ.as_bytes()[typ.len() - 4..].eq_ignore_ascii_case(b"+jwt")
}

fn decode_segment(segment: &str, what: &str) -> Result<Vec<u8>, AuthError> {
    if segment.is_empty() {
        return Err(AuthError::Malformed(format!("the {what} segment is empty")));
    }
    URL_SAFE_NO_PAD.decode(segment).map_err(|_| {
        AuthError::Malformed(format!(
            "the {what} segment is not base64url without padding"
        ))
    })
}

fn decode_object(segment: &str, what: &str) -> Result<Map<String, Value>, AuthError> {
    let bytes = decode_segment(segment, what)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(AuthError::Malformed(format!(
            "the {what} is not a JSON object"
        ))),
    }
}
