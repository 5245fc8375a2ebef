//! Fetching the JWKS and keeping it current: the first fetch at start (any failure stops
//! the server), the background refresh every `JWKS_REFRESH_SECS`, and the rate-limited
//! refetch when a token names a key we do not have. Network code: not on the crypto path;
//! the JSON is turned into keys by `jwk.rs`.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::thread;
use std::time::{Duration, Instant};

use super::jwk::{self, JwksFormatError, KeySet};

/// How long one JWKS fetch may take, connection to last byte (ureq sets no timeout itself).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest JWKS body read. Real ones are a few KiB.
pub const MAX_JWKS_BYTES: u64 = 1024 * 1024;
/// Refetches on behalf of tokens (unknown `kid`, no key verified) happen at most this often,
/// for all threads together, so forged tokens cannot make us hammer the identity provider.
/// Defaults to 30 s.
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// Why the JWKS could not be used. At start, any of these stops the server.
#[derive(Debug)]
pub enum JwksError {
    /// No answer: DNS, connection, TLS, timeout (`FETCH_TIMEOUT`), or a non-2xx status.
    Fetch { uri: String, cause: String },
    /// An answer, but not a JWKS.
    Format { uri: String, cause: JwksFormatError },
    /// A JWKS without a single RS256 or ES256 key this server can use.
    NoUsableKey { uri: String },
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwksError::Fetch { uri, cause } => write!(f, "JWKS_URI={uri}: cannot fetch: {cause}"),
            JwksError::Format { uri, cause } => write!(f, "JWKS_URI={uri}: {cause}"),
            JwksError::NoUsableKey { uri } => write!(
                f,
                "JWKS_URI={uri}: no usable signing key (need kty RSA of at least 2048 bits, or EC P-256, with use \"sig\"; RUST_LOG=debug shows why each key was skipped)"
            ),
        }
    }
}

impl std::error::Error for JwksError {}

/// One version of the key set. `generation` changes exactly when the set does, so the
/// token cache can tell keys it was verified with from newer ones.
#[derive(Debug)]
pub struct Keys {
    pub set: KeySet,
    pub generation: u64,
}

/// The current keys and the means to fetch them again.
pub struct KeyStore {
    uri: String,
    agent: ureq::Agent,
    current: RwLock<Arc<Keys>>,
    /// When the last fetch started; held while fetching, so concurrent refetches queue
    /// behind one and then see its result.
    last_fetch: Mutex<Instant>,
    /// When a fetch last succeeded (whether or not the keys changed).
    last_success: Mutex<Instant>,
    min_refetch: Duration,
}

impl KeyStore {
    /// Fetches `uri` once; the set must hold at least one usable key.
    pub fn load(uri: &str) -> Result<KeyStore, JwksError> {
        KeyStore::load_with(uri, MIN_REFETCH_INTERVAL)
    }

    /// `load` with another refetch interval (tests use a short one).
    pub fn load_with(uri: &str, min_refetch: Duration) -> Result<KeyStore, JwksError> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(FETCH_TIMEOUT))
            .user_agent(concat!("mcp-warden/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let started = Instant::now();
        let set = fetch(&agent, uri)?;
        Ok(KeyStore {
            uri: uri.to_string(),
            agent,
            current: RwLock::new(Arc::new(Keys { set, generation: 0 })),
            last_fetch: Mutex::new(started),
            last_success: Mutex::new(Instant::now()),
            min_refetch,
        })
    }

    /// Time since the last successful fetch.
    pub fn age(&self) -> Duration {
        self.last_success
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The keys in use now.
    pub fn current(&self) -> Arc<Keys> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// For a token that no current key verifies: fetches the JWKS again unless that
    /// happened less than the refetch interval ago. Returns the keys to retry with, or
    /// `None` when there are none newer than generation `seen`.
    pub fn refetch(&self, seen: u64) -> Option<Arc<Keys>> {
        let mut last = self.last_fetch();
        let current = self.current();
        if current.generation != seen {
            return Some(current); // another thread refetched while we waited
        }
        if last.elapsed() < self.min_refetch {
            log::debug!(
                "JWKS refetch skipped: the last fetch was under {:?} ago",
                self.min_refetch
            );
            return None;
        }
        *last = Instant::now();
        self.fetch_and_install();
        let fresh = self.current();
        (fresh.generation != seen).then_some(fresh)
    }

    /// The background refresh: fetches now, whatever the interval.
    pub fn refresh(&self) {
        let mut last = self.last_fetch();
        *last = Instant::now();
        self.fetch_and_install();
    }

    /// Fetches and, when the set differs, installs it as a new generation. A failed fetch
    /// or a set with no usable key keeps the last good keys and warns.
    fn fetch_and_install(&self) {
        let set = match fetch(&self.agent, &self.uri) {
            Ok(set) => set,
            Err(e) => {
                log::warn!("JWKS refresh failed, keeping the last good keys: {e}");
                return;
            }
        };
        *self.last_success.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if current.set == set {
            return;
        }
        log::info!("JWKS changed: {} key(s), kids {:?}", set.len(), set.kids());
        *current = Arc::new(Keys {
            set,
            generation: current.generation + 1,
        });
    }

    fn last_fetch(&self) -> MutexGuard<'_, Instant> {
        self.last_fetch.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Refreshes the store every `every` until it is dropped.
pub fn spawn_refresh(store: Weak<KeyStore>, every: Duration) {
    let spawned = thread::Builder::new()
        .name("jwks-refresh".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            loop {
                thread::sleep(every);
                let Some(store) = store.upgrade() else { return };
                // A bug in one refresh must not end refreshing for good.
                let refreshed = panic::catch_unwind(AssertUnwindSafe(|| store.refresh()));
                if refreshed.is_err() {
                    log::error!("JWKS refresh panicked; keeping the last good keys");
                }
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot start the JWKS refresh thread ({e}); keys refresh only on demand");
    }
}

fn fetch(agent: &ureq::Agent, uri: &str) -> Result<KeySet, JwksError> {
    let fetch_error = |cause: String| JwksError::Fetch {
        uri: uri.to_string(),
        cause,
    };
    let mut response = agent
        .get(uri)
        .call()
        .map_err(|e| fetch_error(e.to_string()))?;
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_JWKS_BYTES)
        .read_to_vec()
        .map_err(|e| fetch_error(e.to_string()))?;
    let set = jwk::parse(&body).map_err(|cause| JwksError::Format {
        uri: uri.to_string(),
        cause,
    })?;
    if set.is_empty() {
        return Err(JwksError::NoUsableKey {
            uri: uri.to_string(),
        });
    }
    Ok(set)
}
