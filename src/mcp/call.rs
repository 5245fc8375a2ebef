//! What a tool sees of the request it serves: who is calling, and the way back to the
//! client while it runs. It can report progress (when the request carried
//! `_meta.progressToken`), send log messages (at or above the session's
//! `logging/setLevel`), and see that the request was cancelled (the client's
//! `notifications/cancelled`, its session ending, or, on Streamable HTTP, the client gone
//! from the POST).
//!
//! It can also ask the client something (`ask`: `roots/list`, `sampling/createMessage`,
//! `elicitation/create`) and wait, with a timeout, for the answer, which arrives as another
//! POST and is routed back by the session's table of outstanding requests.
//!
//! A call runs at most `TOOL_TIMEOUT_SECS`, with or without the tool's help: past it the
//! watchdog (`watchdog.rs`) cancels the call and answers the client with an error result
//! through the call's `Answerer`, and the tool's own result, whenever it comes, is dropped.
//!
//! Messages a tool sends before its result go out through the transport's `Outlet`: on
//! `/sse` they join the session's stream; on `/mcp` they turn the POST's response into an
//! event stream that ends with the result. On `/mcp` a tool may also end that stream early
//! (`close_stream`, SEP-1699): the client then resumes it with `GET` and `Last-Event-ID`
//! and receives the rest there.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::identity::Caller;
use crate::mcp::rpc::RpcError;
use crate::mcp::session::Session;

/// Where a transport sends the messages a request emits before its result (one line of
/// JSON each).
pub trait Outlet {
    fn send(&self, line: String);

    /// Ends the request's own event stream now, if it has one (see `Call::close_stream`).
    fn close_stream(&self) {}

    /// Frees the connection the request came on for the client's next requests, if the
    /// handler still holds it (the legacy transport, whose answer travels on the stream):
    /// called before the handler waits on the client, who may send its answer on that
    /// very connection.
    fn free_connection(&self) {}

    /// The way the watchdog can answer this request in its handler's place, if the
    /// transport offers one; `None` leaves the deadline to the handler's cooperation.
    fn answerer(&self) -> Option<Arc<dyn Answerer>> {
        None
    }
}

/// The answer to one request, shared by the thread that handles it and the watchdog:
/// whoever settles it first gives it, and the other's answer is dropped. Also its outlet:
/// what the handler sends after the watchdog has answered is dropped too.
pub trait Answerer: Outlet + Send + Sync {
    /// The handler is about to answer: from now on the watchdog leaves the request alone.
    /// `false` when the watchdog has answered already (the handler's answer is dropped).
    fn settle(&self) -> bool;

    /// Answers with `line` (a whole JSON-RPC response) in the handler's place, unless the
    /// handler has settled first. Returns whether it did.
    fn answer_instead(&self, line: String) -> bool;
}

/// Who gives a request's answer, as an `Answerer` keeps track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Nobody yet.
    Open,
    /// The handler: its reply is coming.
    Handler,
    /// The watchdog has answered: whatever the handler still sends is dropped.
    Watchdog,
}

/// Whether, and why, a running call was cancelled. Set once: the first reason stays.
#[derive(Debug, Default)]
pub struct Cancellation(AtomicU8);

/// Why a call was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancelled {
    /// The client cancelled it (`notifications/cancelled`), or its session ended: nobody
    /// wants the answer.
    ByClient,
    /// It ran past `TOOL_TIMEOUT_SECS` and the watchdog gave up on it.
    TimedOut,
}

impl Cancellation {
    const RUNNING: u8 = 0;
    const BY_CLIENT: u8 = 1;
    const TIMED_OUT: u8 = 2;

    /// Cancels for `why`, unless already cancelled. Returns whether this did.
    pub fn cancel(&self, why: Cancelled) -> bool {
        let to = match why {
            Cancelled::ByClient => Self::BY_CLIENT,
            Cancelled::TimedOut => Self::TIMED_OUT,
        };
        self.0
            .compare_exchange(Self::RUNNING, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Why it was cancelled; `None` while it was not.
    pub fn reason(&self) -> Option<Cancelled> {
        match self.0.load(Ordering::Acquire) {
            Self::RUNNING => None,
            Self::BY_CLIENT => Some(Cancelled::ByClient),
            _ => Some(Cancelled::TimedOut),
        }
    }
}

/// An outlet that drops what it is given (a request whose client cannot hear it).
pub struct Nowhere;

impl Outlet for Nowhere {
    fn send(&self, _line: String) {}
}

/// Log levels of `logging/setLevel` (RFC 5424 names), least severe first.
pub const LOG_LEVELS: &[&str] = &[
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// How often a tool waiting for the client's answer looks whether it was cancelled.
const CANCEL_CHECK: Duration = Duration::from_millis(50);

/// Why a request to the client brought no answer.
#[derive(Debug, PartialEq)]
pub enum AskError {
    /// The client did not declare the capability the request needs in `initialize`.
    NotDeclared(&'static str),
    /// No answer within the timeout.
    Timeout(Duration),
    /// The client answered with an error (or the session ended first).
    Refused(RpcError),
    /// This tool's own request was cancelled while it waited.
    Cancelled,
    /// A 2026-07-28 request: the question goes to the client as this request's answer
    /// (`input_required`); the tool runs again, with the answer, when the client retries.
    /// Whatever the tool does with this error is not sent.
    InputRequired,
}

impl fmt::Display for AskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AskError::NotDeclared(capability) => write!(
                f,
                "the client did not declare the \"{capability}\" capability, so it cannot be asked"
            ),
            AskError::Timeout(t) => write!(f, "the client gave no answer within {t:?}"),
            AskError::Refused(e) => write!(f, "the client answered with an error: {}", e.message),
            AskError::Cancelled => {
                f.write_str("the request was cancelled while waiting for the client")
            }
            AskError::InputRequired => f.write_str(
                "the client is asked in this request's answer and retries with its reply",
            ),
        }
    }
}

impl std::error::Error for AskError {}

/// One request in progress, as its handler sees it: a tool's call, a prompt's rendering
/// or a resource's reading.
pub struct Call<'a> {
    pub(crate) session: &'a Session,
    pub(crate) caller: &'a Caller,
    pub(crate) progress_token: Option<&'a Value>,
    pub(crate) outlet: &'a dyn Outlet,
    /// Set by the client's `notifications/cancelled` for this request, its session's end,
    /// or the watchdog.
    pub(crate) cancelled: &'a Cancellation,
    /// Asks the transport whether the client has gone (looked at only when asked).
    pub(crate) client_gone: &'a dyn Fn() -> bool,
    /// The session's `logging/setLevel`; `None` sends no log messages.
    pub(crate) log_level: Option<&'static str>,
    /// `TOOL_TIMEOUT_SECS` from the call's start: past it the call counts as cancelled.
    pub(crate) deadline: Instant,
}

impl Call<'_> {
    /// Who is calling (`Caller::Anonymous` while authentication is off).
    pub fn caller(&self) -> &Caller {
        self.caller
    }

    /// Whether the client declared `capability` (`"sampling"`, `"elicitation"`, `"roots"`,
    /// …): in `initialize` for a 2025 session, in the request's own `_meta` in 2026-07-28.
    /// A tool that can do without an answer asks only what the client can give.
    pub fn client_supports(&self, capability: &str) -> bool {
        self.session
            .state()
            .client_capabilities
            .contains_key(capability)
    }

    /// Whether the client cancelled this request or went away, or the call ran past
    /// `TOOL_TIMEOUT_SECS`: the result will not be read, so a long tool should stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.reason().is_some() || Instant::now() >= self.deadline || (self.client_gone)()
    }

    /// Reports progress (`notifications/progress`), if the client asked for it with a
    /// `progressToken`. `progress` should grow with every call.
    pub fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let Some(token) = self.progress_token else {
            return;
        };
        let mut params = json!({ "progressToken": token, "progress": progress });
        if let Some(total) = total {
            params["total"] = json!(total);
        }
        if let Some(message) = message {
            params["message"] = json!(message);
        }
        self.notify("notifications/progress", params);
    }

    /// Sends a log message (`notifications/message`) if `level` is at or above the level
    /// the client set with `logging/setLevel`. Unknown levels are sent as `info`.
    pub fn log(&self, level: &str, data: Value) {
        let rank = |l: &str| LOG_LEVELS.iter().position(|x| *x == l);
        let Some(threshold) = self.log_level.and_then(rank) else {
            return;
        };
        let level = if rank(level).is_some() { level } else { "info" };
        if rank(level).is_some_and(|r| r >= threshold) {
            self.notify(
                "notifications/message",
                json!({ "level": level, "logger": "mcp-warden", "data": data }),
            );
        }
    }

    /// Asks the client (`roots/list`, `sampling/createMessage`, `elicitation/create`, …)
    /// and waits up to `timeout` for its answer, which it sends as a separate message.
    /// Other sessions, and this session's other requests, go on meanwhile.
    ///
    /// In a 2026-07-28 request the question goes out as this request's `input_required`
    /// answer instead, keyed by its place in the run (`q0`, `q1`, …; see `mcp/mrtr.rs`),
    /// and the tool runs again with the answer when the client retries.
    pub fn ask(&self, method: &str, params: Value, timeout: Duration) -> Result<Value, AskError> {
        self.ask_keyed(None, method, params, timeout)
    }

    /// `ask`, with the key the question carries in a 2026-07-28 `input_required` answer
    /// (`inputRequests`) chosen by the tool instead of numbered. Keys must be unique
    /// within the call. Over 2025-era sessions the key is not used.
    pub fn ask_as(
        &self,
        key: &str,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, AskError> {
        self.ask_keyed(Some(key), method, params, timeout)
    }

    fn ask_keyed(
        &self,
        key: Option<&str>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, AskError> {
        let needs = match method {
            "sampling/createMessage" => Some("sampling"),
            "elicitation/create" => Some("elicitation"),
            "roots/list" => Some("roots"),
            _ => None,
        };
        if self.silenced() {
            return Err(AskError::Cancelled);
        }
        {
            let mut state = self.session.state();
            if state.stateless {
                let declared = needs.is_none_or(|c| state.client_capabilities.contains_key(c));
                let rounds = &mut state.rounds;
                if !declared {
                    rounds.missing = needs;
                    return Err(AskError::NotDeclared(needs.unwrap_or_default()));
                }
                let key = key.map_or_else(|| rounds.next_key(), str::to_string);
                if let Some(answer) = rounds.answers.get(&key) {
                    return Ok(answer.clone());
                }
                rounds
                    .asked
                    .insert(key, json!({ "method": method, "params": params }));
                return Err(AskError::InputRequired);
            }
        }
        if let Some(capability) = needs
            && !self
                .session
                .state()
                .client_capabilities
                .contains_key(capability)
        {
            return Err(AskError::NotDeclared(capability));
        }
        let (id, answer) = self.session.expect_reply();
        self.outlet.free_connection();
        let request = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":{},"params":{params}}}"#,
            json!(method)
        );
        self.outlet.send(request);
        let end = (Instant::now() + timeout).min(self.deadline);
        let outcome = loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Err(AskError::Timeout(timeout));
            }
            match answer.recv_timeout(left.min(CANCEL_CHECK)) {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) => return Err(AskError::Refused(error)),
                Err(RecvTimeoutError::Timeout) if self.is_cancelled() => {
                    break Err(AskError::Cancelled);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break Err(AskError::Cancelled),
            }
        };
        self.session.forget_reply(&id);
        outcome
    }

    /// Asks the client's model for a completion (`sampling/createMessage`; `params` as the
    /// spec gives them: `messages`, `maxTokens`, …), waiting until the call's deadline.
    pub fn create_message(&self, params: Value) -> Result<Value, AskError> {
        self.ask("sampling/createMessage", params, self.time_left())
    }

    /// Asks the user for input in a form (`elicitation/create`, form mode): `message` and
    /// the flat JSON Schema of the fields, waiting until the call's deadline. The answer
    /// has `action` (`accept`, `decline` or `cancel`) and, when accepted, `content`.
    pub fn elicit(&self, message: &str, requested_schema: Value) -> Result<Value, AskError> {
        let params = json!({ "message": message, "requestedSchema": requested_schema });
        self.ask("elicitation/create", params, self.time_left())
    }

    /// The client's roots (`roots/list`), waiting until the call's deadline.
    pub fn list_roots(&self) -> Result<Value, AskError> {
        self.ask("roots/list", json!({}), self.time_left())
    }

    /// Whether this run of a 2026-07-28 request resumes from a `requestState` this server
    /// sealed and has verified (the client's retry after an `input_required` answer).
    pub fn resumed(&self) -> bool {
        self.session.state().rounds.resumed
    }

    /// How long the call may still run (`TOOL_TIMEOUT_SECS` from its start).
    pub fn time_left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Whether this call may no longer reach its client: cancelled, or past its deadline.
    /// A handler that carries on regardless sends nothing more (its progress, log
    /// messages and questions are dropped), so nothing of it lands among later messages.
    fn silenced(&self) -> bool {
        self.cancelled.reason().is_some() || Instant::now() >= self.deadline
    }

    /// Ends this request's event stream now (Streamable HTTP, SEP-1699): the client
    /// reconnects with `GET` and `Last-Event-ID` and receives what the call sends
    /// afterwards, its result included, on that `GET`'s stream. On the legacy `/sse`
    /// transport, whose stream is the session's, it does nothing.
    ///
    /// For a call that will run long: no connection is held open for it meanwhile, and a
    /// proxy's idle timeout cannot cut it off. Whatever the call sends before this goes out
    /// on the `POST`'s stream first.
    pub fn close_stream(&self) {
        self.outlet.close_stream();
    }

    fn notify(&self, method: &str, params: Value) {
        if self.silenced() {
            return;
        }
        let message = json!({ "jsonrpc": "2.0", "method": method, "params": params });
        self.outlet.send(message.to_string());
    }
}
