//! Token verifications per second: RS256 (RSA-2048) and ES256 (P-256), with and without
//! the verified-token cache. Run with `cargo bench --bench auth` (or `scripts/bench-auth`).
//!
//! Figures only, no timed assertions: the numbers depend on the machine. Each row is one
//! thread running one bounded loop (about `BENCH_SECS` seconds, default 1.5) after a short
//! warm-up. The `bench` profile inherits `release` (opt-level "s", LTO), so this is the
//! speed of the shipped binary.
//!
//! Rows:
//! - `jwt::verify`: the pure crypto path (base64, JSON, signature, claims) on one token.
//!   It has no cache, so every call is a full verification.
//! - `check, cache miss`: `Authenticator::check` on distinct pre-signed tokens (a fresh
//!   `Authenticator` per pass over them), so each call also hashes the token and inserts
//!   into the cache: the cost of a token seen for the first time.
//! - `check, cache hit`: `Authenticator::check` on one token again and again: SHA-256 of
//!   the token, a locked map lookup, building the `Verified`.
//!
//! The JWKS is served by the test-side loopback server and loaded by the real `KeyStore`;
//! tokens are signed by the test-side issuer (`tests/common/`).

// The helper's own `#[cfg(test)]` unit tests are not run in a bench build, which leaves
// their `use super::*` unused.
#[allow(unused_imports)]
#[path = "../tests/common/issuer.rs"]
mod issuer;
#[path = "../tests/common/jwks_server.rs"]
mod jwks_server;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use issuer::{Issuer, jwks, plural_claims};
use jwks_server::JwksServer;
use mcp_warden::auth::jwks::{KeyStore, MIN_REFETCH_INTERVAL};
use mcp_warden::auth::jwt::{self, Policy};
use mcp_warden::auth::{AuthConfig, Authenticator, RequiredGroups};

/// Distinct tokens signed per algorithm for the cache-miss rows. RSA signing is the slow
/// part of the set-up (a few ms per token), so the pool is modest and cycled through.
const DISTINCT_TOKENS: usize = 256;

/// One measured row.
struct Row {
    name: String,
    ops: u64,
    elapsed: Duration,
}

impl Row {
    fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn micros_per_op(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1e6 / self.ops as f64
    }
}

/// Runs `op` in a loop for about `budget` (checking the clock every `batch` calls) after
/// `batch` warm-up calls. `op` returns the time it wants counted (so set-up it does
/// between calls can be left out) and the number of operations that time covers.
fn measure(
    name: &str,
    budget: Duration,
    batch: u32,
    mut op: impl FnMut() -> (Duration, u64),
) -> Row {
    for _ in 0..batch {
        op();
    }
    let mut elapsed = Duration::ZERO;
    let mut ops = 0;
    while elapsed < budget {
        for _ in 0..batch {
            let (spent, n) = op();
            elapsed += spent;
            ops += n;
        }
    }
    let row = Row {
        name: name.to_string(),
        ops,
        elapsed,
    };
    eprintln!(
        "  measured {:<34} {:>9} ops in {:.2?}",
        row.name, row.ops, row.elapsed
    );
    row
}

/// Times one call of `f`, counting it as one operation.
fn timed<T>(f: impl FnOnce() -> T) -> (Duration, u64) {
    let start = Instant::now();
    black_box(f());
    (start.elapsed(), 1)
}

fn budget() -> Duration {
    let secs = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(1.5);
    Duration::from_secs_f64(secs)
}

fn main() {
    let budget = budget();
    eprintln!("auth bench: {budget:?} per row, one thread; setting up keys and tokens...");

    let rs = Issuer::rsa(Some("bench-rsa"));
    let es = Issuer::es256(Some("bench-ec"));
    let server = JwksServer::start(jwks(&[rs.jwk(), es.jwk()]));
    let store = Arc::new(KeyStore::load(&server.url()).expect("the loopback JWKS loads"));
    let config = AuthConfig {
        jwks_uri: server.url(),
        required_groups: RequiredGroups::Any,
        policy: Policy::default(),
        refresh: Duration::from_secs(600),
        min_refetch: MIN_REFETCH_INTERVAL,
        max_age: Duration::from_secs(3600),
        metadata: None,
    };
    let keys = store.current();
    assert_eq!(keys.set.len(), 2, "both bench keys are usable");
    let now = u64::try_from(issuer::now()).expect("time after 1970");

    let token = |issuer: &Issuer| {
        issuer.token(&plural_claims(
            "bench-user",
            "bench@example.com",
            &["bench"],
            3600,
        ))
    };

    let mut rows = Vec::new();
    for (alg, signer) in [("RS256 (RSA-2048)", &rs), ("ES256 (P-256)", &es)] {
        let one = token(signer);
        let distinct: Vec<String> = (0..DISTINCT_TOKENS).map(|_| token(signer)).collect();

        // Each path must succeed before its speed means anything.
        jwt::verify(&one, &keys.set, &config.policy, now).expect("the bench token verifies");
        let auth = Authenticator::new(Arc::clone(&store), &config);
        auth.check(&one, now).expect("the bench token is admitted");

        rows.push(measure(
            &format!("{alg}  jwt::verify (uncached)"),
            budget,
            16,
            || {
                timed(|| {
                    jwt::verify(&one, &keys.set, &config.policy, now).expect("verifies");
                })
            },
        ));

        let mut miss_auth = Authenticator::new(Arc::clone(&store), &config);
        let mut next = 0;
        rows.push(measure(
            &format!("{alg}  check, cache miss"),
            budget,
            16,
            || {
                if next == distinct.len() {
                    // A fresh, empty cache for the next pass; not timed.
                    miss_auth = Authenticator::new(Arc::clone(&store), &config);
                    next = 0;
                }
                let t = &distinct[next];
                next += 1;
                timed(|| miss_auth.check(t, now).expect("admitted"))
            },
        ));

        rows.push(measure(
            &format!("{alg}  check, cache hit"),
            budget,
            256,
            || {
                // Timed per batch of 64: one hit is too short to time alone.
                let start = Instant::now();
                for _ in 0..64 {
                    black_box(auth.check(black_box(&one), now).expect("admitted"));
                }
                (start.elapsed(), 64)
            },
        ));
    }
    drop(server);

    println!();
    println!("{:<40} {:>14} {:>10}", "name", "ops/s", "µs/op");
    println!("{}", "-".repeat(66));
    for row in &rows {
        println!(
            "{:<40} {:>14.0} {:>10.2}",
            row.name,
            row.ops_per_sec(),
            row.micros_per_op()
        );
    }
}
