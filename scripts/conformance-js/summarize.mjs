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

import { entriesOf, verdict } from './verdict.mjs';

const [phase, outDir, ...scenarios] = process.argv.slice(2);
if (!phase || !outDir || scenarios.length === 0) {
  console.error('usage: node summarize.mjs LABEL OUTDIR SCENARIO...');
  process.exit(2);
}

const entries = entriesOf(outDir);
let passed = 0;
let failed = 0;
const failures = [];

console.log(`conformance: == summary, ${phase}`);
for (const scenario of scenarios) {
  const v = verdict(outDir, entries, scenario);
  if (v.why) {
    failed += 1;
    console.log(`FAIL ${scenario}: ${v.why}`);
    failures.push(`${scenario}: ${v.why}`);
    continue;
  }
  if (v.pass) {
    passed += 1;
    console.log(`pass ${scenario} (${v.tally})`);
  } else {
    failed += 1;
    console.log(`FAIL ${scenario} (${v.tally})`);
  }
  for (const line of v.lines) {
    console.log(`       ${line.text}`);
    if (line.bad) failures.push(`${scenario} ${line.text}`);
  }
}
console.log(`conformance (${phase}): ${passed} passed, ${failed} failed`);
if (failures.length) {
  console.log(`conformance (${phase}): failing checks:`);
  for (const f of failures) console.log(`  - ${f}`);
}
process.exit(failed > 0 ? 1 : 0);
