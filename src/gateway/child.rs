//! One upstream MCP server run over stdio: the child process and the three threads that
//! serve it (one writes its stdin, one reads its stdout, one forwards its stderr to the
//! log).
//!
//! - **Writing** goes through a bounded queue to the writer thread, so a child that stops
//!   reading its stdin makes `send` fail at once ("not reading its input") instead of
//!   blocking the request's thread.
//! - **Reading**: every stdout line is one JSON-RPC message (the stdio transport). A
//!   response goes to the request waiting for its id; anything else the child sends (a
//!   notification, or a request of its own such as `elicitation/create`) goes to the
//!   waiting request whose progress token it names, else to the latest waiting request,
//!   else to `unclaimed` (the session's stream). A line longer than `MAX_LINE` ends the
//!   child (a flood is not buffered); a line that is not JSON is logged and skipped.
//! - **stderr** lines are logged with the caller's subject, at most `STDERR_LINES_PER_SEC`
//!   a second (the rest are counted and the count logged); the last `STDERR_TAIL` lines
//!   are kept for the log line that reports the child's exit.
//! - **Ending**: when the child's stdout ends, every waiting request gets an error naming
//!   the exit status, one warning says so with the tail of stderr, and `on_exit` runs (it
//!   ends the session). Dropping the `Child` (its session ended) sends SIGTERM, waits up to
//!   the grace period, then SIGKILL; the process is always waited for (no zombie).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The longest line (one JSON-RPC message) read from a child: 16 MiB. Longer, and the
/// child is ended: it floods, or it does not speak MCP.
pub const MAX_LINE: usize = 16 << 20;
/// How many lines may wait for a child that is slow to read its stdin.
const STDIN_QUEUE: usize = 64;
/// At most this many stderr lines a second reach the log.
const STDERR_LINES_PER_SEC: u32 = 20;
/// stderr lines kept for the exit report.
const STDERR_TAIL: usize = 5;
/// The longest stderr line logged (the rest is cut).
const STDERR_LINE_CHARS: usize = 500;
/// Stack of each helper thread (they only move lines).
const THREAD_STACK: usize = 128 << 10;

/// What a waiting request receives.
pub enum Incoming {
    /// The child's response to it (the whole message).
    Reply(Value),
    /// Something else the child sent while it waited (a notification or a request of its
    /// own), to pass on to the client.
    Message(String),
    /// The child is gone: why.
    Ended(String),
}

/// A request waiting for the child's response.
struct Waiter {
    /// Its id, as JSON text.
    id: String,
    /// Its `_meta.progressToken`, as JSON text, if any.
    progress: Option<String>,
    to: SyncSender<Incoming>,
}

/// How the child is started.
pub struct Spawn<'a> {
    pub argv: &'a [String],
    /// The whole environment of the child.
    pub env: Vec<(String, String)>,
    /// For log lines: the caller's subject.
    pub subject: String,
    /// SIGTERM, then this long before SIGKILL.
    pub grace: Duration,
    /// Where what the child sends outside any request goes (the session's stream).
    pub unclaimed: Box<dyn Fn(String) + Send + Sync>,
    /// Runs once when the child has exited by itself (not when it was ended).
    pub on_exit: Box<dyn FnOnce() + Send>,
    /// Children not yet waited for, of the whole gateway: this one too while it lives.
    pub live: Arc<Live>,
    /// Whether a message that names no waiting request (by its progress token) goes to
    /// the latest waiting request: true for a child of one client; a shared child's
    /// messages go to `unclaimed` instead, never to a guess at its client.
    pub to_latest: bool,
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Child(pid {})", self.pid)
    }
}

/// A running child.
pub struct Child {
    pid: u32,
    subject: String,
    grace: Duration,
    stdin: SyncSender<String>,
    shared: Arc<Shared>,
}

/// What the child's threads and its requests share.
struct Shared {
    waiting: Mutex<Vec<Waiter>>,
    /// The process, until someone has waited for it.
    process: Mutex<Option<std::process::Child>>,
    /// Why it ended, once it has.
    ended: Mutex<Option<String>>,
    /// Set when we end it: its exit is then not reported as a failure.
    ending: AtomicBool,
    tail: Mutex<VecDeque<String>>,
    live: Arc<Live>,
    to_latest: bool,
}

/// The children of a gateway not yet waited for, by pid.
#[derive(Default)]
pub struct Live(Mutex<std::collections::HashSet<u32>>);

impl Live {
    pub fn count(&self) -> usize {
        lock(&self.0).len()
    }

    /// Whether `pid` is one of these children (its owner waits for it).
    pub fn has(&self, pid: u32) -> bool {
        lock(&self.0).contains(&pid)
    }
}

impl Shared {
    /// Takes the process for the one who will wait for it.
    fn take_process(&self) -> Option<Reaped<'_>> {
        lock(&self.process).take().map(|process| Reaped {
            process,
            live: &self.live,
        })
    }
}

/// The process, taken to be waited for: out of `live` once dropped.
struct Reaped<'a> {
    process: std::process::Child,
    live: &'a Live,
}

impl Drop for Reaped<'_> {
    fn drop(&mut self) {
        // Whoever took it has waited for it (or killed and waited).
        lock(&self.live.0).remove(&self.process.id());
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why a message could not be sent.
#[derive(Debug)]
pub enum SendError {
    /// The child has ended (why).
    Ended(String),
    /// Its stdin queue is full: it has stopped reading.
    NotReading,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Ended(why) => f.write_str(why),
            SendError::NotReading => f.write_str(
                "the upstream server is not reading its input (its stdin queue is full)",
            ),
        }
    }
}

impl Child {
    /// Starts the child (never through a shell: `argv[0]` is looked up in this process's
    /// `PATH` when it has no `/`) and its threads.
    pub fn spawn(spec: Spawn<'_>) -> std::io::Result<Child> {
        let program = resolve(&spec.argv[0]);
        let mut process = Command::new(program)
            .args(&spec.argv[1..])
            .env_clear()
            .envs(spec.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A process group of its own: what it starts (npx starts node) ends with it.
            .process_group(0)
            .spawn()?;
        let pid = process.id();
        let (stdin, stdout, stderr) = match (
            process.stdin.take(),
            process.stdout.take(),
            process.stderr.take(),
        ) {
            (Some(i), Some(o), Some(e)) => (i, o, e),
            _ => {
                let _ = process.kill();
                let _ = process.wait();
                return Err(std::io::Error::other("the child's pipes were not opened"));
            }
        };
        lock(&spec.live.0).insert(pid);
        let shared = Arc::new(Shared {
            waiting: Mutex::new(Vec::new()),
            process: Mutex::new(Some(process)),
            ended: Mutex::new(None),
            ending: AtomicBool::new(false),
            tail: Mutex::new(VecDeque::new()),
            live: spec.live,
            to_latest: spec.to_latest,
        });
        let (queue, lines) = mpsc::sync_channel::<String>(STDIN_QUEUE);
        let subject = spec.subject;
        helper("upstream-stdin", move || write_stdin(stdin, &lines))?;
        helper("upstream-stderr", {
            let shared = Arc::clone(&shared);
            let subject = subject.clone();
            move || read_stderr(stderr, &shared, &subject, pid)
        })?;
        helper("upstream-stdout", {
            let shared = Arc::clone(&shared);
            let subject = subject.clone();
            let unclaimed = spec.unclaimed;
            let on_exit = spec.on_exit;
            move || {
                let why = read_stdout(stdout, &shared, &*unclaimed);
                finish(&shared, &subject, pid, &why, on_exit);
            }
        })?;
        log::info!("upstream started pid={pid} sub={subject}");
        Ok(Child {
            pid,
            subject,
            grace: spec.grace,
            stdin: queue,
            shared,
        })
    }

    /// Queues one message (a line without its newline) for the child's stdin.
    pub fn send(&self, line: String) -> Result<(), SendError> {
        if let Some(why) = lock(&self.shared.ended).clone() {
            return Err(SendError::Ended(why));
        }
        self.stdin.try_send(line).map_err(|e| match e {
            TrySendError::Full(_) => SendError::NotReading,
            TrySendError::Disconnected(_) => SendError::Ended(
                lock(&self.shared.ended)
                    .clone()
                    .unwrap_or_else(|| "the upstream server's input is closed".into()),
            ),
        })
    }

    /// Registers a request (`id` and progress token as JSON text) as waiting for the
    /// child's response; what arrives for it comes on the receiver. Registered before the
    /// request is sent, so that no answer can come first.
    pub fn wait_for(&self, id: String, progress: Option<String>) -> Receiver<Incoming> {
        let (to, from) = mpsc::sync_channel(STDIN_QUEUE);
        if let Some(why) = lock(&self.shared.ended).clone() {
            let _ = to.try_send(Incoming::Ended(why));
            return from;
        }
        lock(&self.shared.waiting).push(Waiter { id, progress, to });
        from
    }

    /// The request `id` no longer waits (answered, cancelled or timed out).
    pub fn forget(&self, id: &str) {
        lock(&self.shared.waiting).retain(|w| w.id != id);
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the child has ended.
    pub fn ended(&self) -> bool {
        lock(&self.shared.ended).is_some()
    }
}

impl Drop for Child {
    /// Ends the child: SIGTERM, up to the grace period, SIGKILL; waited for in any case.
    /// Runs on a thread of its own, so that whoever drops the last handle (a request's
    /// thread, the session sweeper) does not wait.
    fn drop(&mut self) {
        self.shared.ending.store(true, Ordering::Release);
        let shared = Arc::clone(&self.shared);
        let (pid, grace, subject) = (self.pid, self.grace, self.subject.clone());
        let end = move || terminate(&shared, pid, grace, &subject);
        if thread::Builder::new()
            .name("upstream-end".into())
            .stack_size(THREAD_STACK)
            .spawn(end)
            .is_err()
        {
            // No thread to spare: end it at once rather than leave it running.
            if let Some(mut reaped) = self.shared.take_process() {
                let _ = reaped.process.kill();
                let _ = reaped.process.wait();
            }
        }
    }
}

/// Ends the process `pid` (if nobody has waited for it yet): SIGTERM, then SIGKILL after
/// `grace`; waits for it.
fn terminate(shared: &Shared, pid: u32, grace: Duration, subject: &str) {
    let Some(mut reaped) = shared.take_process() else {
        return; // it exited, and was waited for
    };
    let process = &mut reaped.process;
    if let Ok(Some(_)) = process.try_wait() {
        return;
    }
    signal_group(pid, rustix::process::Signal::TERM);
    let deadline = Instant::now() + grace;
    loop {
        match process.try_wait() {
            Ok(Some(status)) => {
                log::info!("upstream ended pid={pid} sub={subject} ({status})");
                return;
            }
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => break,
        }
    }
    signal_group(pid, rustix::process::Signal::KILL);
    let _ = process.kill();
    let status = process.wait();
    log::warn!(
        "upstream pid={pid} sub={subject} did not end within {grace:?} of SIGTERM (SHUTDOWN_GRACE_SECS): killed ({})",
        status.map_or_else(|e| e.to_string(), |s| s.to_string())
    );
}

/// Sends `signal` to the child's process group (its pid: it leads the group).
fn signal_group(pid: u32, signal: rustix::process::Signal) {
    if let Some(group) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(group, signal);
    }
}

fn helper(name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    thread::Builder::new()
        .name(name.into())
        .stack_size(THREAD_STACK)
        .spawn(f)
        .map(drop)
}

/// `program` as given when it names a path, else the first executable file of that name
/// in this process's `PATH` (the child's own environment may have none).
fn resolve(program: &str) -> std::path::PathBuf {
    find_program(program).unwrap_or_else(|| program.into())
}

/// The executable file `program` names: itself when it is a path, else the first of that
/// name in this process's `PATH`; `None` when there is none.
pub fn find_program(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &std::path::Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = std::path::PathBuf::from(program);
        return runnable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| runnable(p))
}

fn write_stdin(mut stdin: ChildStdin, lines: &Receiver<String>) {
    for line in lines {
        let written = stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.write_all(b"\n"))
            .and_then(|()| stdin.flush());
        if written.is_err() {
            return; // the child closed its stdin: the stdout reader reports its end
        }
    }
}

/// Reads messages until the child's stdout ends; returns why it did.
fn read_stdout(
    stdout: std::process::ChildStdout,
    shared: &Shared,
    unclaimed: &(dyn Fn(String) + Send + Sync),
) -> Option<String> {
    let mut reader = BufReader::with_capacity(64 << 10, stdout);
    let mut line = Vec::new();
    let mut skipped = 0u64;
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => return Some(format!("reading its output failed: {e}")),
        }
        if line.len() > MAX_LINE {
            return Some(format!(
                "it wrote a line longer than {} MiB: not an MCP message",
                MAX_LINE >> 20
            ));
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            skipped += 1;
            if skipped.is_power_of_two() {
                log::warn!(
                    "upstream wrote {skipped} line(s) that are not JSON-RPC on stdout (skipped); the first characters: {:?}",
                    text.chars().take(80).collect::<String>()
                );
            }
            continue;
        };
        route(shared, message, text, unclaimed);
    }
}

/// Passes one message of the child's to whoever it is for.
fn route(shared: &Shared, message: Value, text: &str, unclaimed: &(dyn Fn(String) + Send + Sync)) {
    let is_response = message.get("method").is_none()
        && (message.get("result").is_some() || message.get("error").is_some());
    let mut waiting = lock(&shared.waiting);
    if is_response {
        let id = message.get("id").map(Value::to_string).unwrap_or_default();
        match waiting.iter().position(|w| w.id == id) {
            Some(i) => {
                let waiter = waiting.swap_remove(i);
                let _ = waiter.to.try_send(Incoming::Reply(message));
            }
            None => log::debug!("upstream answered a request nobody waits for (dropped)"),
        }
        return;
    }
    let token = message
        .pointer("/params/progressToken")
        .map(Value::to_string);
    let target = token
        .and_then(|t| {
            waiting
                .iter()
                .position(|w| w.progress.as_deref() == Some(&t))
        })
        .or_else(|| {
            if shared.to_latest {
                waiting.len().checked_sub(1)
            } else {
                None
            }
        });
    match target {
        Some(i) => {
            if waiting[i]
                .to
                .try_send(Incoming::Message(text.to_string()))
                .is_err()
            {
                log::debug!("a request's queue of upstream messages is full: one dropped");
            }
        }
        None => {
            drop(waiting);
            unclaimed(text.to_string());
        }
    }
}

/// Logs stderr, rate-limited, keeping its tail.
fn read_stderr(stderr: std::process::ChildStderr, shared: &Shared, subject: &str, pid: u32) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    let mut window = Instant::now();
    let (mut logged, mut dropped) = (0u32, 0u64);
    loop {
        line.clear();
        match (&mut reader).take(64 << 10).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text: String = String::from_utf8_lossy(&line)
            .trim_end()
            .chars()
            .take(STDERR_LINE_CHARS)
            .collect();
        {
            let mut tail = lock(&shared.tail);
            if tail.len() == STDERR_TAIL {
                tail.pop_front();
            }
            tail.push_back(text.clone());
        }
        if window.elapsed() >= Duration::from_secs(1) {
            if dropped > 0 {
                log::info!(target: "upstream", "stderr pid={pid} sub={subject}: ({dropped} line(s) not logged: more than {STDERR_LINES_PER_SEC} a second)");
            }
            window = Instant::now();
            (logged, dropped) = (0, 0);
        }
        if logged < STDERR_LINES_PER_SEC {
            logged += 1;
            log::info!(target: "upstream", "stderr pid={pid} sub={subject}: {text}");
        } else {
            dropped += 1;
        }
    }
}

/// After stdout ended: waits for the process (briefly; a child that closed its stdout but
/// runs on is ended), tells every waiting request, logs, and runs `on_exit` unless we
/// ended it ourselves.
fn finish(
    shared: &Shared,
    subject: &str,
    pid: u32,
    why: &Option<String>,
    on_exit: Box<dyn FnOnce() + Send>,
) {
    let status = reap(shared, why.is_some());
    let ours = shared.ending.load(Ordering::Acquire);
    let tail: Vec<String> = lock(&shared.tail).iter().cloned().collect();
    let status_text = status.map_or_else(|| "status unknown".to_string(), |s| s.to_string());
    let reason = match why {
        Some(why) => format!("the upstream server was ended: {why}"),
        None => format!("the upstream server exited ({status_text})"),
    };
    *lock(&shared.ended) = Some(reason.clone());
    for waiter in lock(&shared.waiting).drain(..) {
        let _ = waiter.to.try_send(Incoming::Ended(reason.clone()));
    }
    if ours {
        return;
    }
    log::warn!(
        "upstream pid={pid} sub={subject}: {reason}; its last stderr lines: {:?}",
        tail
    );
    on_exit();
}

/// Waits for the process after its stdout ended: up to a second if it exits by itself
/// (at once when `end` says it must be ended), then kills it.
fn reap(shared: &Shared, end: bool) -> Option<ExitStatus> {
    let mut reaped = shared.take_process()?;
    let process = &mut reaped.process;
    let deadline = Instant::now()
        + if end {
            Duration::ZERO
        } else {
            Duration::from_secs(1)
        };
    loop {
        match process.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => {
                signal_group(process.id(), rustix::process::Signal::KILL);
                let _ = process.kill();
                return process.wait().ok();
            }
        }
    }
}

/// As PID 1 (the init of a container), this process inherits every orphan of its
/// children's own children (a child that started a process and exited first), and must
/// wait for each when it exits, or it stays a zombie. Once a second, looks in `/proc` for
/// its zombie children that are not children of its own gateway (their owners wait for
/// those) and waits for each by pid. Nothing runs unless this process is PID 1.
pub fn reap_orphans_as_init(live: Arc<Live>) {
    if std::process::id() != 1 {
        return;
    }
    let reaper = move || {
        loop {
            thread::sleep(Duration::from_secs(1));
            for pid in zombie_children() {
                if live.has(pid) {
                    continue;
                }
                if let Some(pid) = i32::try_from(pid)
                    .ok()
                    .and_then(rustix::process::Pid::from_raw)
                {
                    let _ =
                        rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG);
                }
            }
        }
    };
    if let Err(e) = helper("orphan-reaper", reaper) {
        log::warn!("no thread to wait for orphaned processes as PID 1: {e}");
    }
}

/// The pids of this process's children that have exited and not been waited for.
fn zombie_children() -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // `/proc/PID/stat`: "pid (comm) state ppid …"; comm may hold spaces and ')'.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                let fields: Vec<&str> = stat
                    .rsplit_once(')')
                    .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
                fields.first() == Some(&"Z") && fields.get(1) == Some(&me.to_string().as_str())
            })
        })
        .collect()
}
