//! The tool-call deadline (`TOOL_TIMEOUT_SECS`) that needs no cooperation from the tool.
//!
//! A tool runs on the thread of the request that called it (no hand-off to another thread:
//! the common call, which finishes in microseconds, pays nothing for the deadline). Each
//! running call is registered in its session's table (`Session::begin`, `RunningCall`)
//! with its deadline and its `Answerer`, the shared answer slot its transport provides. One
//! thread per server, this one, looks at every session's table about once a second, or at
//! the next deadline if that is sooner (never busier), and for each call past its deadline:
//! cancels it (`Call::is_cancelled` turns true, as `TimedOut`), and answers the client in
//! its place with an error result naming `TOOL_TIMEOUT_SECS` through the slot. The slot
//! decides who answers: the handler settles it when its tool returns, the watchdog when it
//! gives up, and whoever comes first wins; the other's answer is dropped, so a late result
//! is never written to the client's stream nor into a later call's reply. The session and
//! its other requests carry on meanwhile; the handler's thread stays busy until its tool
//! returns.
//!
//! The same look frees the connection of a call that has run for `LONG_CALL` (1 s) for
//! the client's next requests (`Outlet::free_connection`; on the legacy transport the
//! handler's thread holds it): a `notifications/cancelled` the client sends on it reaches
//! the call within about two seconds instead of waiting for the call to end. A call that
//! asks its client something frees it at once (`Call::ask`).
//!
//! The sessions of 2026-07-28 requests, which live for one request outside the registry,
//! are looked at too (`Sessions::passing`).
//!
//! Not covered: a call the client cancelled (it wants no answer), the calls of a batch (one
//! reply for the whole batch: the cooperative deadline applies, as before), and sessions
//! already ended (their calls are cancelled by the end, and nobody is left to answer).
//! Chosen over a thread per call (a hand-off on every call) and a timer per call (a thread
//! or a wheel of its own for what one sweep a second does). Its cost: an answer written
//! to a client that has stopped reading can hold the watchdog up to the write timeout
//! (`http::WRITE_TIMEOUT`), delaying the other answers due meanwhile; a JSON answer fits
//! in the socket's buffer, so only a stream already backed up can do that.

use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::json;
use serde_json::value::RawValue;

use crate::mcp::call::Cancelled;
use crate::mcp::rpc;
use crate::mcp::session::{Overdue, Sessions};

/// The longest the watchdog sleeps when no deadline is nearer: a call registered just
/// after a look has at least 1 s (`TOOL_TIMEOUT_SECS` ≥ 1) before its deadline, so the
/// next look finds it in time.
const NAP: Duration = Duration::from_secs(1);

/// The watchdog thread; dropping it (or `stop`) ends it.
pub struct Watchdog {
    stop: Arc<Stop>,
    thread: Option<JoinHandle<()>>,
}

struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    fn stopped(&self) -> MutexGuard<'_, bool> {
        // A flag: never left half-written.
        self.stopped.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Watchdog {
    /// Starts watching the running calls of `sessions`.
    pub fn start(sessions: Arc<Sessions>) -> io::Result<Watchdog> {
        let stop = Arc::new(Stop {
            stopped: Mutex::new(false),
            wake: Condvar::new(),
        });
        let thread = thread::Builder::new()
            .name("watchdog".into())
            .stack_size(crate::http::CONNECTION_STACK_BYTES)
            .spawn({
                let stop = Arc::clone(&stop);
                move || run(&sessions, &stop)
            })?;
        Ok(Watchdog {
            stop,
            thread: Some(thread),
        })
    }

    /// Ends the thread and waits for it.
    pub fn stop(&mut self) {
        *self.stop.stopped() = true;
        self.stop.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(sessions: &Sessions, stop: &Stop) {
    loop {
        let (due, long, next) = sessions.overdue(Instant::now());
        for call in long {
            // The client's next requests on the call's connection (a cancellation) must
            // not wait for the call.
            if let Some(answerer) = &call.answerer {
                answerer.free_connection();
            }
        }
        for call in due {
            expire(call);
        }
        let nap = next.map_or(NAP, |at| {
            at.saturating_duration_since(Instant::now()).min(NAP)
        });
        let stopped = stop.stopped();
        if *stopped {
            return;
        }
        let (stopped, _) = stop
            .wake
            .wait_timeout(stopped, nap)
            .unwrap_or_else(|p| p.into_inner());
        if *stopped {
            return;
        }
    }
}

/// Gives up on a call past its deadline: cancels it and answers in its place.
fn expire((id, call): Overdue) {
    if !call.cancelled.cancel(Cancelled::TimedOut) {
        return; // the client cancelled it first: it wants no answer
    }
    let secs = call.timeout.as_secs();
    let Some(answerer) = &call.answerer else {
        log::warn!(
            "tool {} ran past TOOL_TIMEOUT_SECS ({secs} s) in a batch: cancelled; its batch is answered when it returns",
            call.tool
        );
        return;
    };
    if answerer.answer_instead(timed_out_line(
        &id,
        &call.tool,
        call.timeout,
        call.stateless,
    )) {
        log::warn!(
            "tool {} ran past TOOL_TIMEOUT_SECS ({secs} s): cancelled, and answered with an error in its place",
            call.tool
        );
    }
}

/// What a client reads when its call ran past `TOOL_TIMEOUT_SECS`.
pub fn timed_out_text(tool: &str, timeout: Duration) -> String {
    format!(
        "the tool {tool} did not finish within {} s (TOOL_TIMEOUT_SECS); its result was dropped",
        timeout.as_secs()
    )
}

/// The error result of call `id` (its normalized JSON) that ran past `TOOL_TIMEOUT_SECS`,
/// as a whole JSON-RPC response (with `resultType` for a 2026-07-28 request).
fn timed_out_line(id: &str, tool: &str, timeout: Duration, stateless: bool) -> String {
    let id = RawValue::from_string(id.to_string()).ok();
    let mut result = json!({
        "content": [{ "type": "text", "text": timed_out_text(tool, timeout) }],
        "isError": true,
    });
    if stateless {
        result["resultType"] = json!("complete");
    }
    rpc::reply(id.as_deref(), Ok::<_, &rpc::RpcError>(&result))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_result_names_the_setting_and_carries_the_id_as_sent() {
        for id in ["7", "\"call-1\"", "-3"] {
            let line = timed_out_line(id, "slow", Duration::from_secs(2), false);
            let reply: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(
                reply["id"],
                serde_json::from_str::<serde_json::Value>(id).unwrap()
            );
            assert_eq!(reply["result"]["isError"], true);
            let text = reply["result"]["content"][0]["text"].as_str().unwrap();
            assert!(
                text.contains("slow") && text.contains("TOOL_TIMEOUT_SECS"),
                "{text}"
            );
            assert!(text.contains("2 s"), "{text}");
            assert_eq!(reply["result"].get("resultType"), None);
        }
        let modern: serde_json::Value =
            serde_json::from_str(&timed_out_line("7", "slow", Duration::from_secs(2), true))
                .unwrap();
        assert_eq!(modern["result"]["resultType"], "complete");
    }
}
