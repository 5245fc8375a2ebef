//! CRYPTO PATH 1/3 — from an `Authorization` header to a verified, authorized caller.
//!
//! Here: Bearer extraction, the verified-token cache, the one retry after a key refetch,
//! the `REQUIRED_GROUPS` check, and `AuthError` (every reason a request is refused, and its
//! `401`). The token itself is verified in `jwt.rs`; keys are parsed in `jwk.rs`. Fetching
//! the JWKS (`jwks.rs`) is network code, kept off the crypto path on purpose.

pub mod jwk;
pub mod jwks;
pub mod jwt;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::identity::{Caller, Identity};
use jwks::{JwksError, KeyStore};
use jwt::{Claims, Policy};

/// Verified tokens remembered at once. When full, expired entries go; if none has, the
/// cache starts over (a flood of distinct valid tokens costs verifications, not memory).
pub const TOKEN_CACHE_CAPACITY: usize = 4096;

/// Everything authentication needs, read from the environment by `config.rs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthConfig {
    /// `JWKS_URI`: where the signing keys are fetched from.
    pub jwks_uri: String,
    /// `REQUIRED_GROUPS`.
    pub required_groups: RequiredGroups,
    /// `JWT_LEEWAY_SECS`, `JWT_ISSUER`, `JWT_AUDIENCE`.
    pub policy: Policy,
    /// `JWKS_REFRESH_SECS`: how often the JWKS is fetched again in the background.
    /// Defaults to 600 s.
    pub refresh: Duration,
    /// The least time between two refetches caused by tokens (an unknown `kid`, no key
    /// verifying). Defaults to `jwks::MIN_REFETCH_INTERVAL`; not an environment variable.
    pub min_refetch: Duration,
    /// `JWKS_MAX_AGE_SECS`: `/readyz` answers `503` once the last successful fetch is
    /// older than this. Defaults to 3600 s; at least `refresh`.
    pub max_age: Duration,
    /// `RESOURCE_URL`, `AUTHORIZATION_SERVERS`, `SCOPES_SUPPORTED`: the OAuth protected
    /// resource metadata (RFC 9728) served for clients that discover their issuer.
    /// Defaults to none (Plural's contract unchanged).
    pub metadata: Option<ProtectedResource>,
}

/// What this server tells OAuth clients about itself (RFC 9728): its resource identifier,
/// the authorization servers that issue its tokens, and the scopes it knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtectedResource {
    /// `RESOURCE_URL`, e.g. `https://mcp.example.com/mcp`.
    pub resource: String,
    /// `AUTHORIZATION_SERVERS`: issuer URLs.
    pub authorization_servers: Vec<String>,
    /// `SCOPES_SUPPORTED`, if any.
    pub scopes: Vec<String>,
}

impl ProtectedResource {
    /// The metadata document (RFC 9728 §2).
    pub fn document(&self) -> serde_json::Value {
        let mut doc = serde_json::json!({
            "resource": self.resource,
            "authorization_servers": self.authorization_servers,
            "bearer_methods_supported": ["header"],
        });
        if !self.scopes.is_empty() {
            doc["scopes_supported"] = serde_json::json!(self.scopes);
        }
        doc
    }

    /// The resource's path (`/mcp` for `https://host/mcp`; empty for a bare origin).
    fn resource_path(&self) -> &str {
        let rest = self.resource.split_once("://").map_or("", |(_, rest)| rest);
        rest.find('/')
            .map_or("", |i| rest[i..].trim_end_matches('/'))
    }

    /// Where the document is served (RFC 9728 §3.1: the well-known prefix between the
    /// resource's origin and its path).
    pub fn url(&self) -> String {
        let path = self.resource_path();
        let trimmed = self.resource.trim_end_matches('/');
        let origin = &trimmed[..trimmed.len() - path.len()];
        format!("{origin}{WELL_KNOWN}{path}")
    }

    /// Whether `path` (of a request to this server) asks for the document: the well-known
    /// path itself, or with the resource's path after it.
    pub fn serves(&self, path: &str) -> bool {
        path.strip_prefix(WELL_KNOWN)
            .is_some_and(|rest| rest.is_empty() || rest == self.resource_path())
    }
}

/// The well-known path of protected resource metadata (RFC 9728 §3).
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

impl AuthConfig {
    /// Refuses a `max_age` shorter than `refresh`: readiness would flap between refreshes.
    pub fn checked(self) -> Result<AuthConfig, crate::config::ConfigError> {
        if self.max_age < self.refresh {
            return Err(crate::config::ConfigError {
                var: "JWKS_MAX_AGE_SECS",
                value: self.max_age.as_secs().to_string(),
                expected: format!(
                    "at least JWKS_REFRESH_SECS ({}), or readiness would flap between refreshes",
                    self.refresh.as_secs()
                ),
            });
        }
        Ok(self)
    }
}

/// `REQUIRED_GROUPS`: whose tokens are let in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequiredGroups {
    /// `*`: any holder of a valid token.
    Any,
    /// The token's `groups` must hold at least one of these exact, case-sensitive names.
    OneOf(Vec<String>),
}

impl RequiredGroups {
    /// Comma-separated names, spaces trimmed, empties dropped; `*` alone means anyone.
    /// `None` when no name remains.
    pub fn parse(value: &str) -> Option<RequiredGroups> {
        let names: Vec<String> = value
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
        match names.as_slice() {
            [] => None,
            [star] if star == "*" => Some(RequiredGroups::Any),
            _ => Some(RequiredGroups::OneOf(names)),
        }
    }

    fn admits(&self, claims: &Claims) -> Result<(), AuthError> {
        let sub = || claims.subject.clone();
        match (self, &claims.groups) {
            (RequiredGroups::Any, _) => Ok(()),
            (RequiredGroups::OneOf(_), None) => Err(AuthError::NoGroups { sub: sub() }),
            (RequiredGroups::OneOf(required), Some(groups)) => {
                if groups.iter().any(|g| required.contains(g)) {
                    Ok(())
                } else {
                    Err(AuthError::NoSharedGroup { sub: sub() })
                }
            }
        }
    }
}

impl fmt::Display for RequiredGroups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequiredGroups::Any => f.write_str("* (any authenticated user)"),
            RequiredGroups::OneOf(names) => f.write_str(&names.join(",")),
        }
    }
}

/// Why a request was refused. Every variant becomes a `401`; none carries the token.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthError {
    /// No `Authorization` header.
    MissingToken,
    /// More than one `Authorization` header: which one would count is ambiguous.
    MultipleAuthorization,
    /// The `Authorization` scheme is not `Bearer`, or the header is not text.
    NotBearer,
    /// Longer than `jwt::MAX_TOKEN_BYTES`.
    TokenTooLarge { bytes: usize },
    /// Not a well-formed compact JWS / JWT; says which part.
    Malformed(String),
    /// `alg` is not `RS256` or `ES256`.
    AlgorithmNotAllowed(String),
    /// The header has `crit`: no extension is implemented, so none can be honoured.
    CritPresent,
    /// `typ` is neither `JWT` nor `…+jwt`.
    WrongType(String),
    /// The header's `kid` is not in the JWKS (even after a refetch).
    UnknownKey { kid: String },
    /// The key named by `kid` is of another type than `alg` needs.
    KeyTypeMismatch { kid: String, alg: String },
    /// The JWKS has no key for this `alg` at all.
    NoKeyForAlgorithm(String),
    /// The signature does not verify (with the `kid`'s key, or with any key of the type).
    BadSignature { kid: Option<String> },
    /// No `exp` claim: tokens that never expire are refused.
    MissingExpiry,
    /// `exp` (plus `JWT_LEEWAY_SECS`) has passed.
    Expired { exp: f64, now: f64 },
    /// `nbf` (minus `JWT_LEEWAY_SECS`) is still ahead.
    NotYetValid { nbf: f64, now: f64 },
    /// `iat` is further ahead than `JWT_LEEWAY_SECS`.
    IssuedInFuture { iat: f64, now: f64 },
    /// A registered claim has the wrong JSON type.
    BadClaim(&'static str),
    /// `iss` is not `JWT_ISSUER`.
    WrongIssuer {
        found: Option<String>,
        expected: String,
    },
    /// `aud` does not name `JWT_AUDIENCE`.
    WrongAudience { expected: String },
    /// No `sub`: there is nobody to name.
    MissingSubject,
    /// `REQUIRED_GROUPS` names groups but the token of `sub` has no `groups` claim.
    NoGroups { sub: String },
    /// The groups of `sub`'s token share none with `REQUIRED_GROUPS`.
    NoSharedGroup { sub: String },
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values that came from the token are shortened and quoted with escapes.
        let q = |s: &str| format!("{:?}", s.chars().take(64).collect::<String>());
        match self {
            AuthError::MissingToken => {
                f.write_str("no bearer token: send \"Authorization: Bearer <token>\"")
            }
            AuthError::MultipleAuthorization => {
                f.write_str("more than one Authorization header: send exactly one")
            }
            AuthError::NotBearer => {
                f.write_str("the Authorization header is not \"Bearer <token>\"")
            }
            AuthError::TokenTooLarge { bytes } => write!(
                f,
                "the token is {bytes} bytes, more than the {} accepted",
                jwt::MAX_TOKEN_BYTES
            ),
            AuthError::Malformed(what) => write!(f, "malformed token: {what}"),
            AuthError::AlgorithmNotAllowed(alg) => write!(
                f,
                "token algorithm {} is not allowed: only RS256 and ES256 are accepted",
                q(alg)
            ),
            AuthError::CritPresent => f.write_str(
                "the token header has \"crit\" extensions, which this server does not implement",
            ),
            AuthError::WrongType(typ) => {
                write!(f, "token type {} is not JWT", q(typ))
            }
            AuthError::UnknownKey { kid } => write!(
                f,
                "the token was signed with key {}, which is not in the JWKS",
                q(kid)
            ),
            AuthError::KeyTypeMismatch { kid, alg } => {
                write!(f, "key {} cannot verify {alg} tokens", q(kid))
            }
            AuthError::NoKeyForAlgorithm(alg) => {
                write!(f, "the JWKS has no key for {alg} tokens")
            }
            AuthError::BadSignature { kid: Some(kid) } => {
                write!(f, "the token signature does not verify with key {}", q(kid))
            }
            AuthError::BadSignature { kid: None } => {
                f.write_str("the token signature does not verify with any key in the JWKS")
            }
            AuthError::MissingExpiry => f.write_str("the token has no \"exp\" claim"),
            AuthError::Expired { exp, now } => {
                write!(f, "the token expired (exp={exp}, now={now})")
            }
            AuthError::NotYetValid { nbf, now } => {
                write!(f, "the token is not valid yet (nbf={nbf}, now={now})")
            }
            AuthError::IssuedInFuture { iat, now } => {
                write!(
                    f,
                    "the token was issued in the future (iat={iat}, now={now})"
                )
            }
            AuthError::BadClaim(what) => write!(f, "invalid claim: {what}"),
            AuthError::WrongIssuer { found, expected } => match found {
                Some(found) => write!(f, "issuer {} is not {}", q(found), q(expected)),
                None => write!(f, "the token has no \"iss\"; {} is required", q(expected)),
            },
            AuthError::WrongAudience { expected } => {
                write!(f, "the token's audience does not include {}", q(expected))
            }
            AuthError::MissingSubject => f.write_str("the token has no \"sub\" claim"),
            AuthError::NoGroups { .. } => f.write_str(
                "user does not belong to any required group (the token has no \"groups\" claim)",
            ),
            AuthError::NoSharedGroup { .. } => {
                f.write_str("user does not belong to any required group")
            }
        }
    }
}

impl std::error::Error for AuthError {}

impl AuthError {
    /// The subject, when the token verified but was refused for its groups.
    pub fn subject(&self) -> Option<&str> {
        match self {
            AuthError::NoGroups { sub } | AuthError::NoSharedGroup { sub } => Some(sub),
            _ => None,
        }
    }

    /// Whether fresher keys could change the outcome: the key is unknown, or no key of
    /// the type verified. (A `kid` whose key exists but disagrees is not retried.)
    fn wants_fresh_keys(&self) -> bool {
        matches!(
            self,
            AuthError::UnknownKey { .. }
                | AuthError::NoKeyForAlgorithm(_)
                | AuthError::BadSignature { kid: None }
        )
    }
}

/// A caller whose token verified and whose groups are admitted.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    /// The verified claims, shared with the token cache (a cached token costs no copies).
    pub claims: Arc<Claims>,
    /// When the token stops being accepted (`exp` + leeway; it is good while the time is
    /// before this), as seconds since the epoch.
    pub valid_until: f64,
}

impl Verified {
    /// The caller this token makes.
    pub fn caller(&self) -> Caller {
        Caller::User(self.identity())
    }

    /// Who this is, for a session to keep.
    pub fn identity(&self) -> Identity {
        let c = &self.claims;
        Identity {
            issuer: c.issuer.clone(),
            subject: c.subject.clone(),
            email: c.email.clone(),
            name: c.name.clone(),
            groups: c.groups.clone().unwrap_or_default(),
        }
    }

    /// `valid_until` as an `Instant`, or `None` if it is too far ahead to matter.
    pub fn deadline(&self) -> Option<Instant> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(f64::MAX, |d| d.as_secs_f64());
        let left = self.valid_until - now;
        let left = Duration::try_from_secs_f64(left.max(0.0)).ok()?;
        Instant::now().checked_add(left)
    }
}

/// Verifies tokens: the keys, the policy, the groups, and the cache.
pub struct Authenticator {
    keys: Arc<KeyStore>,
    policy: Policy,
    required: RequiredGroups,
    max_age: Duration,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
}

struct Cached {
    claims: Arc<Claims>,
    generation: u64,
}

impl Authenticator {
    /// Fetches the JWKS (failing if it cannot be used) and starts the background refresh.
    pub fn start(config: &AuthConfig) -> Result<Authenticator, JwksError> {
        let keys = Arc::new(KeyStore::load_with(&config.jwks_uri, config.min_refetch)?);
        jwks::spawn_refresh(Arc::downgrade(&keys), config.refresh);
        Ok(Authenticator::new(keys, config))
    }

    pub fn new(keys: Arc<KeyStore>, config: &AuthConfig) -> Authenticator {
        Authenticator {
            keys,
            policy: config.policy.clone(),
            required: config.required_groups.clone(),
            max_age: config.max_age,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the keys were fetched successfully within `JWKS_MAX_AGE_SECS`.
    pub fn keys_fresh(&self) -> bool {
        self.keys.age() <= self.max_age
    }

    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    pub fn required_groups(&self) -> &RequiredGroups {
        &self.required
    }

    /// Checks a request's `Authorization` header values (all of them: more than one is
    /// refused) at the current time.
    pub fn authenticate<'a>(
        &self,
        authorization: impl Iterator<Item = &'a [u8]>,
    ) -> Result<Verified, AuthError> {
        let token = bearer(authorization)?;
        self.check(token, unix_now())
    }

    /// Checks one token at time `now`.
    pub fn check(&self, token: &str, now: u64) -> Result<Verified, AuthError> {
        let claims = self.verified_claims(token, now)?;
        self.required.admits(&claims)?;
        Ok(Verified {
            valid_until: claims.expires_at + self.policy.leeway_secs as f64,
            claims,
        })
    }

    /// The claims of a token that verifies with the current keys: from the cache when it
    /// was verified before with the same keys and has not expired, else verified now.
    fn verified_claims(&self, token: &str, now: u64) -> Result<Arc<Claims>, AuthError> {
        if token.len() > jwt::MAX_TOKEN_BYTES {
            return Err(AuthError::TokenTooLarge { bytes: token.len() });
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let keys = self.keys.current();
        let leeway = self.policy.leeway_secs as f64;
        if let Some(hit) = self.cache().get(&digest)
            && hit.generation == keys.generation
            && (now as f64) < hit.claims.expires_at + leeway
        {
            return Ok(Arc::clone(&hit.claims));
        }
        let (claims, generation) = match jwt::verify(token, &keys.set, &self.policy, now) {
            Ok(claims) => (claims, keys.generation),
            Err(e) if e.wants_fresh_keys() => {
                // One more try, only if the rate-limited refetch brought different keys.
                let Some(fresh) = self.keys.refetch(keys.generation) else {
                    return Err(e);
                };
                let claims = jwt::verify(token, &fresh.set, &self.policy, now)?;
                (claims, fresh.generation)
            }
            Err(e) => return Err(e),
        };
        let claims = Arc::new(claims);
        let mut cache = self.cache();
        if cache.len() >= TOKEN_CACHE_CAPACITY {
            cache.retain(|_, c| (now as f64) < c.claims.expires_at + leeway);
            if cache.len() >= TOKEN_CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(
            digest,
            Cached {
                claims: Arc::clone(&claims),
                generation,
            },
        );
        Ok(claims)
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<[u8; 32], Cached>> {
        // Inserts and lookups only; a panic elsewhere cannot leave an entry half-made.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The token from the `Authorization` header values: exactly one header, scheme `Bearer`
/// (any case, RFC 7235 §2.1), then the token.
pub fn bearer<'a>(mut values: impl Iterator<Item = &'a [u8]>) -> Result<&'a str, AuthError> {
    let value = values.next().ok_or(AuthError::MissingToken)?;
    if values.next().is_some() {
        return Err(AuthError::MultipleAuthorization);
    }
    let value = std::str::from_utf8(value).map_err(|_| AuthError::NotBearer)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(AuthError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::NotBearer);
    }
    let token = token.trim_start_matches(' ');
    if token.is_empty() {
        return Err(AuthError::MissingToken);
    }
    Ok(token)
}

/// Seconds since the Unix epoch. A clock set before 1970 reads as the far future, so
/// every token counts as expired: fail closed.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(u64::MAX, |d| d.as_secs())
}

#[cfg(test)]
mod tests {

    #[test]
    fn protected_resource_metadata_lives_beside_the_resource_path() {
        let m = |resource: &str| ProtectedResource {
            resource: resource.into(),
            authorization_servers: vec!["https://auth.example.com".into()],
            scopes: vec![],
        };
        let mcp = m("https://mcp.example.com/mcp");
        assert_eq!(
            mcp.url(),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert!(mcp.serves("/.well-known/oauth-protected-resource/mcp"));
        assert!(mcp.serves("/.well-known/oauth-protected-resource"));
        assert!(!mcp.serves("/.well-known/oauth-protected-resource/other"));
        let root = m("https://mcp.example.com/");
        assert_eq!(
            root.url(),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            mcp.document(),
            serde_json::json!({"resource": "https://mcp.example.com/mcp",
                "authorization_servers": ["https://auth.example.com"],
                "bearer_methods_supported": ["header"]})
        );
    }
    use super::*;

    fn headers<'a>(values: &'a [&'a str]) -> impl Iterator<Item = &'a [u8]> {
        values.iter().map(|v| v.as_bytes())
    }

    #[test]
    fn takes_the_token_from_one_bearer_header_in_any_case() {
        assert_eq!(bearer(headers(&["Bearer abc.def.ghi"])), Ok("abc.def.ghi"));
        assert_eq!(bearer(headers(&["bearer abc"])), Ok("abc"));
        assert_eq!(bearer(headers(&["BEARER  abc "])), Ok("abc"));
    }

    #[test]
    fn refuses_a_missing_or_empty_token() {
        assert_eq!(bearer(headers(&[])), Err(AuthError::MissingToken));
        assert_eq!(bearer(headers(&["Bearer "])), Err(AuthError::NotBearer));
        assert_eq!(bearer(headers(&["Bearer  "])), Err(AuthError::NotBearer));
    }

    #[test]
    fn refuses_two_authorization_headers() {
        assert_eq!(
            bearer(headers(&["Bearer a", "Bearer a"])),
            Err(AuthError::MultipleAuthorization)
        );
    }

    #[test]
    fn refuses_other_schemes() {
        for value in [
            "Basic dXNlcjpwYXNz",
            "Token abc",
            "Bearerabc",
            "abc.def.ghi",
        ] {
            assert_eq!(
                bearer(headers(&[value])),
                Err(AuthError::NotBearer),
                "{value}"
            );
        }
        assert_eq!(
            bearer([&b"Bearer \xff"[..]].into_iter()),
            Err(AuthError::NotBearer)
        );
    }

    #[test]
    fn required_groups_trim_and_drop_empties() {
        assert_eq!(
            RequiredGroups::parse(" sre, devops ,,"),
            Some(RequiredGroups::OneOf(vec!["sre".into(), "devops".into()]))
        );
        assert_eq!(RequiredGroups::parse("*"), Some(RequiredGroups::Any));
        assert_eq!(RequiredGroups::parse(" * "), Some(RequiredGroups::Any));
        assert_eq!(RequiredGroups::parse(" , ,"), None);
        assert_eq!(RequiredGroups::parse(""), None);
    }

    fn claims(groups: Option<&[&str]>) -> Claims {
        Claims {
            issuer: None,
            subject: "alice".into(),
            email: None,
            name: None,
            groups: groups.map(|g| g.iter().map(|s| s.to_string()).collect()),
            expires_at: 0.0,
        }
    }

    #[test]
    fn admits_only_a_shared_exact_group() {
        let required = RequiredGroups::parse("sre,devops").unwrap();
        assert_eq!(required.admits(&claims(Some(&["dev", "sre"]))), Ok(()));
        let sub = "alice".to_string();
        for groups in [&["SRE"][..], &["sre "], &["dev"], &[]] {
            assert_eq!(
                required.admits(&claims(Some(groups))),
                Err(AuthError::NoSharedGroup { sub: sub.clone() }),
                "{groups:?}"
            );
        }
        assert_eq!(
            required.admits(&claims(None)),
            Err(AuthError::NoGroups { sub: sub.clone() })
        );
    }

    #[test]
    fn star_admits_any_valid_token_even_without_groups() {
        assert_eq!(RequiredGroups::Any.admits(&claims(None)), Ok(()));
        assert_eq!(RequiredGroups::Any.admits(&claims(Some(&[]))), Ok(()));
    }
}
