//! Multi-round-trip requests (MCP 2026-07-28): how a tool asks its client something when
//! no request may travel to the client. The tool's `Call::ask` (and `elicit`,
//! `create_message`, `list_roots`) is the same in both eras. In a 2026-07-28 request the
//! first time a question is asked it is recorded here and the call is answered with
//! `resultType: "input_required"`, the question in `inputRequests`, and a `requestState`;
//! the client answers and retries the request with `inputResponses` and that state; the
//! tool runs again from the start and, asked the same question (by its place in the run:
//! `q0`, `q1`, …), now gets the answer.
//!
//! `requestState` carries the answers of earlier rounds, bound to the caller, the request
//! (method, tool or prompt name, a digest of the arguments) and an expiry, and is
//! integrity-protected with HMAC-SHA-256 under `STATE_SECRET` (one key for every replica,
//! so a retry may land on any) or a random key per process. State that fails any check is
//! refused.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// How long a `requestState` may be brought back.
pub const STATE_TTL: Duration = Duration::from_secs(600);

/// The questions and answers of one modern request's run.
#[derive(Debug, Default)]
pub struct Rounds {
    /// Answers known: from earlier rounds (in the state) and this retry's `inputResponses`.
    pub answers: Map<String, Value>,
    /// Questions asked this run that have no answer yet: key → `{method, params}`.
    pub asked: Map<String, Value>,
    /// The next question's place in the run.
    pub next: usize,
    /// A capability a question needs that the client did not declare.
    pub missing: Option<&'static str>,
    /// Whether this run resumes from a `requestState` that passed verification.
    pub resumed: bool,
}

impl Rounds {
    /// The key of the next question.
    pub fn next_key(&mut self) -> String {
        let key = format!("q{}", self.next);
        self.next += 1;
        key
    }
}

/// What a `requestState` is bound to.
pub struct Binding<'a> {
    pub subject: &'a str,
    pub method: &'a str,
    /// The tool's or prompt's name, or the resource's URI.
    pub name: &'a str,
    pub arguments: &'a Value,
}

impl Binding<'_> {
    fn digest(&self) -> String {
        let mut hash = Sha256::new();
        for part in [
            self.subject,
            self.method,
            self.name,
            &self.arguments.to_string(),
        ] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        URL_SAFE_NO_PAD.encode(hash.finalize())
    }
}

/// The key in use: `STATE_SECRET`, or one drawn at start.
static KEY: OnceLock<Vec<u8>> = OnceLock::new();

/// Sets the key from `STATE_SECRET` (once, at start); without it a random one is drawn on
/// first use.
pub fn set_key(secret: Option<&[u8]>) {
    if let Some(secret) = secret {
        let _ = KEY.set(secret.to_vec());
    }
}

fn key() -> &'static [u8] {
    KEY.get_or_init(|| {
        let mut key = vec![0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // No randomness: every state will fail verification rather than be forgeable.
            log::error!("cannot draw a requestState key; set STATE_SECRET");
        }
        key
    })
}

/// HMAC-SHA-256 (RFC 2104) of `message` under `key`.
fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `requestState` carrying `answers`, bound to `binding`, valid for `STATE_TTL`.
pub fn seal(answers: &Map<String, Value>, binding: &Binding<'_>) -> String {
    seal_at(answers, binding, now_secs() + STATE_TTL.as_secs())
}

fn seal_at(answers: &Map<String, Value>, binding: &Binding<'_>, expires: u64) -> String {
    let payload = json!({ "v": 1, "exp": expires, "for": binding.digest(), "answers": answers });
    let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
    let mac = URL_SAFE_NO_PAD.encode(hmac(key(), payload.as_bytes()));
    format!("{payload}.{mac}")
}

/// The answers a `requestState` carries, if it is ours, unexpired, and bound to this very
/// request and caller; otherwise why not.
pub fn open(state: &str, binding: &Binding<'_>) -> Result<Map<String, Value>, &'static str> {
    let (payload, mac) = state
        .split_once('.')
        .ok_or("it is not a requestState of this server")?;
    let mac = URL_SAFE_NO_PAD
        .decode(mac)
        .map_err(|_| "it is not a requestState of this server")?;
    let expected = hmac(key(), payload.as_bytes());
    // Compared in full, whatever the first difference.
    let same = mac.len() == expected.len()
        && mac
            .iter()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return Err(
            "it was altered, or made with another key (STATE_SECRET differs between replicas?)",
        );
    }
    let payload: Value = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or("it is not a requestState of this server")?;
    if payload["exp"].as_u64().is_none_or(|exp| exp < now_secs()) {
        return Err("it has expired; start the request again");
    }
    if payload["for"].as_str() != Some(binding.digest().as_str()) {
        return Err("it belongs to another request or another caller");
    }
    match payload.get("answers") {
        Some(Value::Object(answers)) => Ok(answers.clone()),
        _ => Err("it is not a requestState of this server"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding<'a>(subject: &'a str, arguments: &'a Value) -> Binding<'a> {
        Binding {
            subject,
            method: "tools/call",
            name: "ask",
            arguments,
        }
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_state_opens_only_for_its_request_and_caller_and_only_unaltered_and_in_time() {
        let args = json!({"x": 1});
        let mut answers = Map::new();
        answers.insert("q0".into(), json!({"action": "accept"}));
        let state = seal(&answers, &binding("alice", &args));
        assert_eq!(open(&state, &binding("alice", &args)), Ok(answers.clone()));
        assert!(open(&state, &binding("bob", &args)).is_err());
        assert!(open(&state, &binding("alice", &json!({"x": 2}))).is_err());
        let mut altered = state.clone().into_bytes();
        altered[3] ^= 1;
        assert!(
            open(
                &String::from_utf8(altered).unwrap(),
                &binding("alice", &args)
            )
            .is_err()
        );
        let stale = seal_at(&answers, &binding("alice", &args), now_secs() - 1);
        assert_eq!(
            open(&stale, &binding("alice", &args)),
            Err("it has expired; start the request again")
        );
        assert!(open("garbage", &binding("alice", &args)).is_err());
    }
}
