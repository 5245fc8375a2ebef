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
//!  6. Only now are the claims decoded: a JSON object. `exp` is required and numeric (the
//!     token is good while `now < exp + leeway`, RFC 7519 §4.1.4); `exp`,
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
    if exp.is_nan() || now >= exp + leeway {
        return Err(AuthError::Expired { exp, now });
    }
    if let Some(nbf) = numeric_claim(claims, "nbf")?
        && now + leeway < nbf
    {
        return Err(AuthError::NotYetValid { nbf, now });
    }
    if let Some(iat) = numeric_claim(claims, "iat")?
        && iat > now + leeway
    {
        return Err(AuthError::IssuedInFuture { iat, now });
    }
    let issuer = string_claim(claims, "iss")?;
    if let Some(expected) = &policy.issuer
        && issuer.as_deref() != Some(expected.as_str())
    {
        return Err(AuthError::WrongIssuer {
            found: issuer,
            expected: expected.clone(),
        });
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

#[cfg(test)]
#[path = "../../tests/common/issuer.rs"]
mod issuer;

#[cfg(test)]
mod tests {
    use super::issuer::{self, Issuer, b64, b64_json};
    use super::*;
    use crate::auth::jwk;
    use serde_json::json;
    use std::sync::OnceLock;

    const NOW: u64 = 1_800_000_000;

    // Key generation is the slow part: one key of each kind for the whole module.
    fn rsa() -> &'static Issuer {
        static KEY: OnceLock<Issuer> = OnceLock::new();
        KEY.get_or_init(|| Issuer::rsa(Some("r1")))
    }
    fn ec() -> &'static Issuer {
        static KEY: OnceLock<Issuer> = OnceLock::new();
        KEY.get_or_init(|| Issuer::es256(None))
    }
    fn keys() -> KeySet {
        jwk::parse(issuer::jwks(&[rsa().jwk(), ec().jwk()]).as_bytes()).unwrap()
    }
    fn claims() -> Value {
        json!({
            "sub": "alice", "email": "alice@example.com", "name": "Alice",
            "iss": "Joken", "aud": "Joken", "groups": ["sre", "dev"],
            "exp": NOW + 3600, "nbf": NOW, "iat": NOW,
        })
    }
    fn check(token: &str) -> Result<Claims, AuthError> {
        verify(token, &keys(), &Policy::default(), NOW)
    }
    fn with(mut claims: Value, name: &str, value: Value) -> Value {
        claims[name] = value;
        claims
    }
    fn without(mut claims: Value, name: &str) -> Value {
        claims.as_object_mut().unwrap().remove(name);
        claims
    }

    // RFC 7515 A.2 and A.3: published tokens and public keys. Their claims have no `sub`,
    // so reaching `MissingSubject` proves the signature verified (claims come after it).
    const RFC_CLAIMS: &str = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
    const RFC_NOW: u64 = 1_300_819_000;
    fn rfc_rsa() -> KeySet {
        let n = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
        jwk::parse(
            json!({"keys":[{"kty":"RSA","n":n,"e":"AQAB"}]})
                .to_string()
                .as_bytes(),
        )
        .unwrap()
    }
    fn rfc_ec() -> KeySet {
        let jwk = json!({"kty":"EC","crv":"P-256",
            "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        jwk::parse(json!({ "keys": [jwk] }).to_string().as_bytes()).unwrap()
    }
    const RFC_RS256_SIG: &str = "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
    const RFC_ES256_SIG: &str =
        "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

    #[test]
    fn verifies_the_rfc7515_a2_rs256_example() {
        let token = format!("eyJhbGciOiJSUzI1NiJ9.{RFC_CLAIMS}.{RFC_RS256_SIG}");
        let policy = Policy::default();
        assert_eq!(
            verify(&token, &rfc_rsa(), &policy, RFC_NOW),
            Err(AuthError::MissingSubject)
        );
        // One changed claims byte: the same signature no longer verifies.
        let tampered = token.replacen("eyJpc3MiOiJqb2Ui", "eyJpc3MiOiJqb2Ul", 1);
        assert_eq!(
            verify(&tampered, &rfc_rsa(), &policy, RFC_NOW),
            Err(AuthError::BadSignature { kid: None })
        );
    }

    #[test]
    fn verifies_the_rfc7515_a3_es256_example() {
        let token = format!("eyJhbGciOiJFUzI1NiJ9.{RFC_CLAIMS}.{RFC_ES256_SIG}");
        let policy = Policy::default();
        assert_eq!(
            verify(&token, &rfc_ec(), &policy, RFC_NOW),
            Err(AuthError::MissingSubject)
        );
        let tampered = token.replacen("eyJpc3MiOiJqb2Ui", "eyJpc3MiOiJqb2Ul", 1);
        assert_eq!(
            verify(&tampered, &rfc_ec(), &policy, RFC_NOW),
            Err(AuthError::BadSignature { kid: None })
        );
        // The RS256 key cannot verify an ES256 token at all.
        assert_eq!(
            verify(&token, &rfc_rsa(), &policy, RFC_NOW),
            Err(AuthError::NoKeyForAlgorithm("ES256".into()))
        );
    }

    #[test]
    fn accepts_rs256_with_header_kid() {
        let got = check(&rsa().token(&claims())).unwrap();
        assert_eq!(got.subject, "alice");
        assert_eq!(got.issuer.as_deref(), Some("Joken"));
        assert_eq!(got.email.as_deref(), Some("alice@example.com"));
        assert_eq!(got.name.as_deref(), Some("Alice"));
        assert_eq!(got.groups, Some(vec!["sre".to_string(), "dev".to_string()]));
        assert_eq!(got.expires_at, (NOW + 3600) as f64);
    }

    #[test]
    fn accepts_plural_shaped_es256_without_header_kid() {
        let claims = with(claims(), "kid", json!("in-the-claims-not-trusted"));
        let token = ec().sign(&json!({"alg": "ES256", "typ": "JWT"}), &claims);
        assert_eq!(check(&token).unwrap().subject, "alice");
    }

    #[test]
    fn refuses_an_oversized_token_before_parsing() {
        let token = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(
            check(&token),
            Err(AuthError::TokenTooLarge {
                bytes: MAX_TOKEN_BYTES + 1
            })
        );
    }

    #[test]
    fn refuses_two_four_and_five_segments() {
        let token = rsa().token(&claims());
        let (head, _) = token.rsplit_once('.').unwrap();
        for bad in [
            head.to_string(),
            format!("{token}.x"),
            format!("{token}.x.y"),
        ] {
            assert!(
                matches!(check(&bad), Err(AuthError::Malformed(m)) if m.contains("3 dot-separated")),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_empty_segments() {
        let token = rsa().token(&claims());
        let (head, _) = token.rsplit_once('.').unwrap();
        assert!(matches!(
            check(&format!("{head}.")),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(check(".."), Err(AuthError::Malformed(_))));
    }

    #[test]
    fn refuses_padding_whitespace_and_non_canonical_base64() {
        let token = rsa().token(&claims());
        let (head, sig) = token.rsplit_once('.').unwrap();
        for bad in [
            format!("{head}.{sig}="),
            format!("{head}.{sig}=="),
            format!("{head} .{sig}"),
            format!("{head}.{sig}\n"),
            format!("{head}.{}", sig.replace('-', "+").replace('_', "/")),
        ] {
            if bad == token {
                continue; // the signature happened to hold neither '-' nor '_'
            }
            assert!(
                matches!(
                    check(&bad),
                    Err(AuthError::Malformed(_)) | Err(AuthError::BadSignature { .. })
                ),
                "{bad:?}"
            );
        }
        // "Ag" decodes to one byte; "Ah" has non-zero trailing bits and must be refused.
        assert!(URL_SAFE_NO_PAD.decode("Ag").is_ok());
        let header = b64_json(&json!({"alg": "RS256", "kid": "r1"}));
        let odd = format!("{header}.{}.Ah", b64_json(&claims()));
        assert!(matches!(check(&odd), Err(AuthError::Malformed(m)) if m.contains("signature")));
    }

    #[test]
    fn refuses_a_header_that_is_not_a_json_object() {
        for header in [
            b64(b"[1,2]"),
            b64(b"\"RS256\""),
            b64(b"{not json"),
            b64(&[0xff, 0xfe]),
        ] {
            let token = rsa().sign_raw(&header, &b64_json(&claims()));
            assert!(
                matches!(check(&token), Err(AuthError::Malformed(m)) if m.contains("header")),
                "{header}"
            );
        }
    }

    #[test]
    fn refuses_claims_that_are_not_a_json_object() {
        let header = b64_json(&rsa().header());
        let token = rsa().sign_raw(&header, &b64(b"[\"sub\"]"));
        assert!(matches!(check(&token), Err(AuthError::Malformed(m)) if m.contains("claims")));
    }

    #[test]
    fn refuses_alg_none() {
        for alg in ["none", "None", "NONE"] {
            let token = issuer::unsigned(&json!({ "alg": alg }), &claims());
            // The empty signature segment is malformed; with any signature, none is refused.
            assert!(matches!(check(&token), Err(AuthError::Malformed(_))));
            let token = format!("{}AAAA", token);
            assert_eq!(
                check(&token),
                Err(AuthError::AlgorithmNotAllowed(alg.into()))
            );
        }
    }

    #[test]
    fn refuses_hs256_signed_with_the_rsa_public_key_as_secret() {
        for secret in [
            rsa().public_pem().into_bytes(),
            rsa().rsa_modulus().unwrap(),
        ] {
            for header in [
                json!({"alg": "HS256"}),
                json!({"alg": "HS256", "kid": "r1"}),
            ] {
                let token = issuer::hs256(&secret, &header, &claims());
                assert_eq!(
                    check(&token),
                    Err(AuthError::AlgorithmNotAllowed("HS256".into()))
                );
            }
        }
    }

    #[test]
    fn refuses_every_other_algorithm() {
        for alg in [
            "PS256", "RS384", "RS512", "ES384", "ES512", "EdDSA", "HS512", "rs256", "es256",
        ] {
            let token = rsa().sign(&json!({ "alg": alg, "kid": "r1" }), &claims());
            assert_eq!(
                check(&token),
                Err(AuthError::AlgorithmNotAllowed(alg.into())),
                "{alg}"
            );
        }
        for alg in [json!(null), json!(256), json!(["RS256"])] {
            let token = rsa().sign(&json!({ "alg": alg, "kid": "r1" }), &claims());
            assert!(
                matches!(check(&token), Err(AuthError::Malformed(_))),
                "{alg}"
            );
        }
        let token = rsa().sign(&json!({ "kid": "r1" }), &claims());
        assert!(matches!(check(&token), Err(AuthError::Malformed(_))));
    }

    #[test]
    fn refuses_crit() {
        for crit in [json!(["exp"]), json!([]), json!("b64")] {
            let header = json!({"alg": "RS256", "kid": "r1", "crit": crit, "exp": 1});
            assert_eq!(
                check(&rsa().sign(&header, &claims())),
                Err(AuthError::CritPresent)
            );
        }
    }

    #[test]
    fn never_uses_a_key_embedded_in_the_header() {
        let attacker = Issuer::es256(None);
        for member in ["jwk", "jku", "x5u", "x5c"] {
            let value = match member {
                "jwk" => attacker.jwk(),
                "x5c" => json!(["MIIB"]),
                _ => json!("http://127.0.0.1:1/keys"),
            };
            let header = json!({ "alg": "ES256", member: value });
            assert_eq!(
                check(&attacker.sign(&header, &claims())),
                Err(AuthError::BadSignature { kid: None }),
                "{member}"
            );
        }
    }

    #[test]
    fn refuses_a_typ_other_than_jwt() {
        for typ in [json!("JWE"), json!("application/json"), json!(1)] {
            let header = json!({"alg": "RS256", "kid": "r1", "typ": typ});
            assert!(matches!(
                check(&rsa().sign(&header, &claims())),
                Err(AuthError::WrongType(_))
            ));
        }
        for typ in ["JWT", "jwt", "at+jwt", "application/at+JWT"] {
            let header = json!({"alg": "RS256", "kid": "r1", "typ": typ});
            assert!(check(&rsa().sign(&header, &claims())).is_ok(), "{typ}");
        }
        // A multi-byte character where "+jwt" would start must not panic.
        let header = json!({"alg": "RS256", "kid": "r1", "typ": "ééé"});
        assert!(matches!(
            check(&rsa().sign(&header, &claims())),
            Err(AuthError::WrongType(_))
        ));
    }

    #[test]
    fn refuses_an_unknown_kid() {
        let header = json!({"alg": "RS256", "kid": "r2"});
        assert_eq!(
            check(&rsa().sign(&header, &claims())),
            Err(AuthError::UnknownKey { kid: "r2".into() })
        );
    }

    #[test]
    fn refuses_a_kid_whose_key_is_of_another_type() {
        let header = json!({"alg": "ES256", "kid": "r1"});
        assert_eq!(
            check(&ec().sign(&header, &claims())),
            Err(AuthError::KeyTypeMismatch {
                kid: "r1".into(),
                alg: "ES256".into()
            })
        );
    }

    #[test]
    fn refuses_a_kid_that_is_not_a_string() {
        let header = json!({"alg": "RS256", "kid": 1});
        assert!(matches!(
            check(&rsa().sign(&header, &claims())),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn refuses_an_algorithm_the_key_set_has_no_key_for() {
        let only_rsa = jwk::parse(issuer::jwks(&[rsa().jwk()]).as_bytes()).unwrap();
        let token = ec().sign(&json!({"alg": "ES256"}), &claims());
        assert_eq!(
            verify(&token, &only_rsa, &Policy::default(), NOW),
            Err(AuthError::NoKeyForAlgorithm("ES256".into()))
        );
    }

    #[test]
    fn refuses_a_signature_by_another_key() {
        let other = Issuer::es256(None);
        let token = other.sign(&json!({"alg": "ES256"}), &claims());
        assert_eq!(check(&token), Err(AuthError::BadSignature { kid: None }));
        let other_rsa = Issuer::rsa(Some("r1"));
        assert_eq!(
            check(&other_rsa.token(&claims())),
            Err(AuthError::BadSignature {
                kid: Some("r1".into())
            })
        );
    }

    #[test]
    fn refuses_an_rs256_signature_not_exactly_the_modulus_length() {
        let key = rsa().rsa_public_key().unwrap();
        let input = b"header.claims";
        let sig = rsa().signature(input);
        assert!(verify_rs256(&key, input, &sig));
        let mut longer = vec![0u8];
        longer.extend_from_slice(&sig);
        assert!(!verify_rs256(&key, input, &longer));
        assert!(!verify_rs256(&key, input, &sig[1..]));
        assert!(!verify_rs256(&key, input, &[]));
    }

    #[test]
    fn refuses_es256_signatures_in_der_or_with_zero_or_oversized_r_s() {
        let key = ec().ec_verifying_key().unwrap();
        let input = b"header.claims";
        let sig = ec().signature(input);
        assert!(verify_es256(&key, input, &sig));
        // DER: SEQUENCE { INTEGER r, INTEGER s }, each with a leading 0 when its top bit is set.
        let int = |v: &[u8]| {
            let mut out = vec![0x02];
            let pad = v[0] & 0x80 != 0;
            out.push((v.len() + pad as usize) as u8);
            if pad {
                out.push(0);
            }
            out.extend_from_slice(v);
            out
        };
        let body = [int(&sig[..32]), int(&sig[32..])].concat();
        let der = [vec![0x30, body.len() as u8], body].concat();
        assert!(!verify_es256(&key, input, &der));
        // CVE-2022-21449: r = s = 0 must never verify.
        assert!(!verify_es256(&key, input, &[0u8; 64]));
        let mut r_zero = sig.clone();
        r_zero[..32].fill(0);
        assert!(!verify_es256(&key, input, &r_zero));
        // r or s >= n (all ones is above the P-256 group order).
        let mut s_big = sig.clone();
        s_big[32..].fill(0xff);
        assert!(!verify_es256(&key, input, &s_big));
        assert!(!verify_es256(&key, input, &sig[..63]));
        // Through the token path too: an all-zero signature.
        let header = b64_json(&json!({"alg": "ES256"}));
        let token = format!("{header}.{}.{}", b64_json(&claims()), b64(&[0u8; 64]));
        assert_eq!(check(&token), Err(AuthError::BadSignature { kid: None }));
    }

    #[test]
    fn refuses_a_token_without_exp() {
        let token = rsa().token(&without(claims(), "exp"));
        assert_eq!(check(&token), Err(AuthError::MissingExpiry));
    }

    #[test]
    fn refuses_an_exp_that_is_not_a_number() {
        let token = rsa().token(&with(claims(), "exp", json!("1900000000")));
        assert!(matches!(check(&token), Err(AuthError::BadClaim(_))));
    }

    #[test]
    fn refuses_an_expired_token_after_the_leeway() {
        let policy = Policy::default();
        let exp = NOW - policy.leeway_secs;
        assert!(check(&rsa().token(&with(claims(), "exp", json!(exp + 1)))).is_ok());
        let token = rsa().token(&with(claims(), "exp", json!(exp)));
        assert!(matches!(check(&token), Err(AuthError::Expired { .. })));
        let strict = Policy {
            leeway_secs: 0,
            ..Policy::default()
        };
        let token = rsa().token(&with(claims(), "exp", json!(NOW - 1)));
        assert!(matches!(
            verify(&token, &keys(), &strict, NOW),
            Err(AuthError::Expired { .. })
        ));
    }

    #[test]
    fn refuses_nbf_in_the_future() {
        let token = rsa().token(&with(claims(), "nbf", json!(NOW + 61)));
        assert!(matches!(check(&token), Err(AuthError::NotYetValid { .. })));
        assert!(check(&rsa().token(&with(claims(), "nbf", json!(NOW + 60)))).is_ok());
        let token = rsa().token(&with(claims(), "nbf", json!("soon")));
        assert!(matches!(check(&token), Err(AuthError::BadClaim(_))));
    }

    #[test]
    fn refuses_iat_in_the_future() {
        let token = rsa().token(&with(claims(), "iat", json!(NOW + 3000)));
        assert!(matches!(
            check(&token),
            Err(AuthError::IssuedInFuture { .. })
        ));
    }

    #[test]
    fn refuses_the_wrong_issuer_when_one_is_required() {
        let policy = Policy {
            issuer: Some("Joken".into()),
            ..Policy::default()
        };
        let check = |claims: &Value| verify(&rsa().token(claims), &keys(), &policy, NOW);
        assert!(check(&claims()).is_ok());
        assert!(matches!(
            check(&with(claims(), "iss", json!("joken"))),
            Err(AuthError::WrongIssuer { .. })
        ));
        assert!(matches!(
            check(&without(claims(), "iss")),
            Err(AuthError::WrongIssuer { found: None, .. })
        ));
    }

    #[test]
    fn refuses_the_wrong_audience_when_one_is_required() {
        let policy = Policy {
            audience: Some("Joken".into()),
            ..Policy::default()
        };
        let check = |claims: &Value| verify(&rsa().token(claims), &keys(), &policy, NOW);
        assert!(check(&claims()).is_ok());
        assert!(check(&with(claims(), "aud", json!(["other", "Joken"]))).is_ok());
        for aud in [json!("other"), json!(["other"]), json!([]), json!(7)] {
            assert!(matches!(
                check(&with(claims(), "aud", aud)),
                Err(AuthError::WrongAudience { .. })
            ));
        }
        assert!(matches!(
            check(&without(claims(), "aud")),
            Err(AuthError::WrongAudience { .. })
        ));
    }

    #[test]
    fn refuses_a_missing_or_empty_sub() {
        assert_eq!(
            check(&rsa().token(&without(claims(), "sub"))),
            Err(AuthError::MissingSubject)
        );
        assert_eq!(
            check(&rsa().token(&with(claims(), "sub", json!("")))),
            Err(AuthError::MissingSubject)
        );
        assert!(matches!(
            check(&rsa().token(&with(claims(), "sub", json!(5)))),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn refuses_groups_that_are_not_an_array_of_strings() {
        for groups in [
            json!("sre"),
            json!(["sre", 1]),
            json!([null]),
            json!({"sre": true}),
        ] {
            let token = rsa().token(&with(claims(), "groups", groups.clone()));
            assert!(
                matches!(check(&token), Err(AuthError::BadClaim(_))),
                "{groups}"
            );
        }
        let token = rsa().token(&without(claims(), "groups"));
        assert_eq!(check(&token).unwrap().groups, None);
    }
}
