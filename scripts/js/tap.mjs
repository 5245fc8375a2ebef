// The reporting every check script in this folder shares: one TAP-like line per check
// (`ok - name`, or `not ok - name` followed by `#   why` lines), then `N passed, M failed`,
// and a watchdog that ends a stuck run. Each script is its own process, so the counts are
// this module's.

export const counts = { passed: 0, failed: 0 };
const running = new Set(); // names of the checks in progress (several run at once in some)

/** A check's own failure: its message is the whole explanation. */
export class Mismatch extends Error {}

export function expect(cond, msg) {
  if (!cond) throw new Mismatch(msg);
}

export function show(value) {
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

/**
 * A thrown value, described: the SDKs' errors by their codes (1.x `McpError`: code,
 * message and data; 2.x `SdkError` and `SdkHttpError`: code, and the HTTP status), any
 * other error by its name and message (and `code` if it has one).
 */
export function describeError(err) {
  if (!(err instanceof Error)) return show(err);
  const kind = err.constructor?.name ?? err.name;
  if (kind === 'McpError') return `McpError code=${err.code} message=${show(err.message)} data=${show(err.data)}`;
  if (kind === 'SdkHttpError') return `SdkHttpError ${err.code} status=${err.status}: ${err.message}`;
  if (kind === 'SdkError') return `SdkError ${err.code}: ${err.message}`;
  return `${err.name}: ${err.message}${err.code !== undefined ? ` (code=${err.code})` : ''}`;
}

export function report(good, name, why) {
  if (good) {
    counts.passed += 1;
    console.log(`ok - ${name}`);
  } else {
    counts.failed += 1;
    console.log(`not ok - ${name}`);
    for (const line of String(why).split('\n')) console.log(`#   ${line}`);
  }
}

/**
 * Runs one check; a mismatch or exception marks it `not ok` and the run goes on. `fn` may
 * return a short note for the `ok` line. With `more`, a failure's explanation is followed by
 * `more(startedAtMs)` (what a client saw while the check ran, say).
 */
export async function check(name, fn, more) {
  running.add(name);
  const started = Date.now();
  try {
    const extra = await fn();
    report(true, extra ? `${name} (${extra})` : name);
    return true;
  } catch (err) {
    const why = err instanceof Mismatch ? err.message : `unexpected exception: ${describeError(err)}`;
    report(false, name, more ? `${why}\n${more(started)}` : why);
    return false;
  } finally {
    running.delete(name);
  }
}

/** The checks in progress, for a message about a stuck or failed run. */
export function inProgress() {
  return [...running].join('; ') || '-';
}

/** Polls `cond` every `pollMs` until it holds (resolves true) or `ms` have passed (false). */
export async function waitFor(cond, ms, pollMs = 10) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (cond()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** Prints `N passed, M failed`. */
export function summary() {
  console.log(`${counts.passed} passed, ${counts.failed} failed`);
}

/**
 * Ends the run as failed if it has not finished within `ms`: one `not ok - overall timeout`
 * naming the checks in progress, then `last()` (more to print, if given), the summary, and
 * exit status 1. Returns the timer, for `clearTimeout` at the end of the run.
 */
export function watchdog(ms, last) {
  return setTimeout(() => {
    report(false, 'overall timeout', `no completion within ${ms / 1000} s (in progress: ${inProgress()})`);
    last?.();
    summary();
    process.exit(1);
  }, ms);
}

/** The summary, then the exit status: 1 after any failed check, 0 otherwise. */
export function finish() {
  summary();
  process.exit(counts.failed > 0 ? 1 : 0);
}
