#!/usr/bin/env node
// Summarizes one run of scripts/conformance from the checks.json files the conformance
// runner wrote: `server --scenario NAME -o DIR` (0.1.16) and `server --suite all
// --spec-version V -o DIR` (0.2.0-alpha.12) both write DIR/server-NAME-<timestamp>/
// checks.json, an array of checks {id, name, description, status, errorMessage?, details?}.
//
// Usage: node summarize.mjs LABEL OUTDIR SCENARIO...
//
// Only the named scenarios are judged (a whole-suite run also holds others). A scenario
// passes when the runner left a checks.json for it with at least one check and none of its
// checks is FAILURE or WARNING. WARNING counts as a failure on purpose: in the selected
// scenarios a WARNING means a part of the scenario could not be exercised (e.g.
// server-sse-multiple-streams without an Mcp-Session-Id, or only some of its streams
// working), and that must not pass quietly; 0.2.0-alpha.12 marks a check it could not
// exercise with details.untestable (message "Not testable: ..."), always as FAILURE or
// WARNING, shown here as such. INFO and SKIPPED are shown, not counted (0.2.0-alpha.12
// reports as SKIPPED e.g. the SEP-2106 checks of json-schema-2020-12 at the 2025-11-25 wire,
// or caching's resources/read when the server lists no resource). A scenario with no
// SUCCESS at all fails too: it checked nothing (server-sse-polling answered with plain JSON
// reports only INFO, "not applicable").
//
// Prints one line per scenario, each check that is not SUCCESS as `[check-id] STATUS:
// message`, then `N passed, M failed` (scenarios), then the failing checks again. Exits 1
// if any scenario failed.

import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const [phase, outDir, ...scenarios] = process.argv.slice(2);
if (!phase || !outDir || scenarios.length === 0) {
  console.error('usage: node summarize.mjs LABEL OUTDIR SCENARIO...');
  process.exit(2);
}

const entries = existsSync(outDir) ? readdirSync(outDir) : [];
let passed = 0;
let failed = 0;
const failures = [];

console.log(`conformance: == summary, ${phase}`);
for (const scenario of scenarios) {
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
  if (!checks) {
    failed += 1;
    console.log(`FAIL ${scenario}: ${why}`);
    failures.push(`${scenario}: ${why}`);
    continue;
  }
  const count = (s) => checks.filter((c) => c.status === s).length;
  const bad = checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING');
  const tally = `${count('SUCCESS')} success, ${count('FAILURE')} failure, ${count('WARNING')} warning` +
    (count('INFO') ? `, ${count('INFO')} info` : '') + (count('SKIPPED') ? `, ${count('SKIPPED')} skipped` : '');
  if (bad.length === 0 && count('SUCCESS') > 0) {
    passed += 1;
    console.log(`pass ${scenario} (${tally})`);
  } else {
    failed += 1;
    console.log(`FAIL ${scenario} (${tally})`);
  }
  for (const c of checks) {
    if (c.status === 'SUCCESS') continue;
    const msg = c.errorMessage ?? c.details?.message ?? c.details?.note ?? c.description ?? '';
    const untestable = c.details?.untestable === true && !/^Not testable/.test(msg) ? ' (not testable)' : '';
    const line = `[${c.id}] ${c.status}${untestable}: ${msg}`;
    console.log(`       ${line}`);
    if (c.status === 'FAILURE' || c.status === 'WARNING') failures.push(`${scenario} ${line}`);
  }
}
console.log(`conformance (${phase}): ${passed} passed, ${failed} failed`);
if (failures.length) {
  console.log(`conformance (${phase}): failing checks:`);
  for (const f of failures) console.log(`  - ${f}`);
}
process.exit(failed > 0 ? 1 : 0);
