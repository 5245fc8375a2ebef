// How scripts/conformance judges one scenario from the checks.json the conformance runner
// wrote for it (shared by summarize.mjs and compare.mjs). See summarize.mjs for the rules:
// a scenario passes when the runner left a checks.json for it with at least one SUCCESS and
// no FAILURE or WARNING.

import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

/** The runner's result directories under `outDir` (none when it does not exist). */
export function entriesOf(outDir) {
  return existsSync(outDir) ? readdirSync(outDir) : [];
}

/**
 * The verdict on `scenario` from the runs under `outDir` (`entries`: entriesOf(outDir)):
 * `{ pass, why?, tally?, lines }`: `why` when there is no usable checks.json, else `tally`
 * (counts per status), and `lines`, one per check that is not SUCCESS, with `bad` telling
 * whether it fails the scenario.
 */
export function verdict(outDir, entries, scenario) {
  // The directory name is `server-<scenario>-<ISO timestamp with : and . as ->`; the
  // timestamp starts with a digit, so the prefix below matches only this scenario.
  const prefix = `server-${scenario}-`;
  const dirs = entries.filter((d) => d.startsWith(prefix) && /^\d/.test(d.slice(prefix.length))).sort();
  const file = dirs.length ? join(outDir, dirs[dirs.length - 1], 'checks.json') : null;
  let checks = null;
  let why = '';
  if (!file || !existsSync(file)) {
    why = 'the runner wrote no checks.json (it crashed, timed out, did not run it, or skipped it as ' +
      'not applicable at the requested spec version; see its output)';
  } else {
    try {
      checks = JSON.parse(readFileSync(file, 'utf8'));
      if (!Array.isArray(checks) || checks.length === 0) {
        why = 'checks.json holds no checks';
        checks = null;
      }
    } catch (err) {
      why = `checks.json is not JSON: ${err.message}`;
    }
  }
  if (!checks) return { pass: false, why, lines: [] };
  const count = (s) => checks.filter((c) => c.status === s).length;
  const bad = checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING');
  const tally = `${count('SUCCESS')} success, ${count('FAILURE')} failure, ${count('WARNING')} warning` +
    (count('INFO') ? `, ${count('INFO')} info` : '') + (count('SKIPPED') ? `, ${count('SKIPPED')} skipped` : '');
  const lines = [];
  for (const c of checks) {
    if (c.status === 'SUCCESS') continue;
    const msg = c.errorMessage ?? c.details?.message ?? c.details?.note ?? c.description ?? '';
    const untestable = c.details?.untestable === true && !/^Not testable/.test(msg) ? ' (not testable)' : '';
    lines.push({ text: `[${c.id}] ${c.status}${untestable}: ${msg}`, bad: c.status === 'FAILURE' || c.status === 'WARNING' });
  }
  return { pass: bad.length === 0 && count('SUCCESS') > 0, tally, lines };
}
