//! Where log lines go: stderr, written by one thread that takes every line waiting at
//! once, so request threads do not queue on the stderr lock and pay a `write(2)` each.
//!
//! Lines are in order. The writer sleeps until a line arrives, then gathers for
//! `BATCH_WINDOW` and writes everything waiting in one write; a request thread wakes it
//! only when it is asleep, so under load a line costs no system call of its own and the
//! writer runs a few hundred times a second, not once per request. `sync` writes what is pending on the calling thread (exit paths). Above
//! `MAX_PENDING_BYTES` waiting (stderr blocked), writers write themselves: slower, but no
//! line is lost and memory stays bounded.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;

/// Log bytes allowed to wait for the writer thread.
const MAX_PENDING_BYTES: usize = 1024 * 1024;

/// How long the writer gathers lines after the first one wakes it: the most a line waits.
const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(5);

/// Capacity a buffer keeps between batches; a burst's larger buffer is given back.
const KEEP_BYTES: usize = 4 * 1024;

struct Shared {
    pending: Mutex<Vec<u8>>,
    wake: Condvar,
    /// Held while writing to stderr, and while taking `pending` for it, so lines stay in
    /// order whoever writes them. Holds the spare buffer swapped with `pending`, so
    /// neither is reallocated batch after batch.
    out: Mutex<Vec<u8>>,
    /// Whether the writer thread runs; if it could not start, each flush writes.
    threaded: AtomicBool,
    /// Whether the writer waits on `wake` (set and cleared under `pending`'s lock): only
    /// then does a flush need to notify it.
    asleep: AtomicBool,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, Vec<u8>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes everything pending to stderr, on this thread.
    fn write_pending(&self) {
        let mut spare = self.out.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::swap(&mut *spare, &mut *self.pending());
        if !spare.is_empty() {
            let _ = io::stderr().lock().write_all(&spare);
        }
        spare.clear();
        // After a burst, give the memory back: an idle server stays small.
        spare.shrink_to(KEEP_BYTES);
    }
}

/// The `Write` end handed to the logger. Cheap to clone.
#[derive(Clone)]
pub struct Sink(Arc<Shared>);

/// Starts the writer thread. If it cannot start, lines are written by their own threads.
pub fn start() -> Sink {
    let shared = Arc::new(Shared {
        pending: Mutex::new(Vec::new()),
        wake: Condvar::new(),
        out: Mutex::new(Vec::new()),
        threaded: AtomicBool::new(true),
        asleep: AtomicBool::new(false),
    });
    let writer = Arc::clone(&shared);
    let spawned = thread::Builder::new()
        .name("log".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            loop {
                {
                    let mut pending = writer.pending();
                    while pending.is_empty() {
                        writer.asleep.store(true, Ordering::Release);
                        pending = writer.wake.wait(pending).unwrap_or_else(|p| p.into_inner());
                    }
                    writer.asleep.store(false, Ordering::Release);
                }
                thread::sleep(BATCH_WINDOW);
                writer.write_pending();
            }
        });
    if spawned.is_err() {
        shared.threaded.store(false, Ordering::Release);
    }
    Sink(shared)
}

impl Sink {
    /// Writes what is pending now, on this thread (before the process exits).
    pub fn sync(&self) {
        self.0.write_pending();
    }
}

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut pending = self.0.pending();
        pending.extend_from_slice(bytes);
        let backed_up = pending.len() > MAX_PENDING_BYTES;
        drop(pending);
        if backed_up {
            self.0.write_pending();
        }
        Ok(bytes.len())
    }

    /// The logger flushes after every line: that only wakes the writer thread, and only
    /// when it is asleep. (`asleep` is set under `pending`'s lock before the writer waits,
    /// and the line was added under that lock before this runs: a line never waits for a
    /// wake-up that will not come.)
    fn flush(&mut self) -> io::Result<()> {
        if self.0.threaded.load(Ordering::Acquire) {
            if self.0.asleep.load(Ordering::Acquire) {
                self.0.wake.notify_one();
            }
        } else {
            self.0.write_pending();
        }
        Ok(())
    }
}
