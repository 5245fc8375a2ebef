//! What a tool sees of the request it serves: who is calling, and the way back to the
//! client while it runs. It can report progress (when the request carried
//! `_meta.progressToken`), send log messages (at or above the session's
//! `logging/setLevel`), and see that the request was cancelled (the client's
//! `notifications/cancelled`, or, on Streamable HTTP, the client gone from the POST).
//!
//! Messages a tool sends before its result go out through the transport's `Outlet`: on
//! `/sse` they join the session's stream; on `/mcp` they turn the POST's response into an
//! event stream that ends with the result.

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use crate::identity::Caller;

/// Where a transport sends the messages a request emits before its result (one line of
/// JSON each).
pub trait Outlet {
    fn send(&self, line: String);
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

/// One tool call in progress.
pub struct Call<'a> {
    pub(crate) caller: &'a Caller,
    pub(crate) progress_token: Option<&'a Value>,
    pub(crate) outlet: &'a dyn Outlet,
    /// Set by the client's `notifications/cancelled` for this request.
    pub(crate) cancelled: &'a AtomicBool,
    /// Asks the transport whether the client has gone (looked at only when asked).
    pub(crate) client_gone: &'a dyn Fn() -> bool,
    /// The session's `logging/setLevel`; `None` sends no log messages.
    pub(crate) log_level: Option<&'static str>,
}

impl Call<'_> {
    /// Who is calling (`Caller::Anonymous` while authentication is off).
    pub fn caller(&self) -> &Caller {
        self.caller
    }

    /// Whether the client cancelled this request or went away: the result will not be
    /// read, so a long tool should stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire) || (self.client_gone)()
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

    fn notify(&self, method: &str, params: Value) {
        let message = json!({ "jsonrpc": "2.0", "method": method, "params": params });
        self.outlet.send(message.to_string());
    }
}
