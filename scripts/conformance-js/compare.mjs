#!/usr/bin/env node
// The gateway's conformance comparison (scripts/conformance, phase 4): one suite run against
// @modelcontextprotocol/server-everything directly (its own Streamable HTTP mode) and one
// through mcp-warden's bridge (its stdio mode behind `mcp-warden --`), judged scenario by
// scenario as summarize.mjs judges (verdict.mjs), side by side.
//
// Usage: node compare.mjs LABEL DIRECT_OUTDIR BRIDGE_OUTDIR SCENARIO...
//
// Prints a table (scenario, direct, bridge), the failing checks of every scenario that
// fails through the bridge but passes directly, then
// `conformance (LABEL): N passed, M failed`, where a scenario fails only when the bridge
// adds a failure (it passes directly and fails through the bridge): scenarios that fail
// both ways (server-everything lacks the suite's fixtures: test_simple_text and the like)
// are recorded in the table, not counted as failures. Exits 1 if the bridge added any.

import { entriesOf, verdict } from './verdict.mjs';

const [label, directDir, bridgeDir, ...scenarios] = process.argv.slice(2);
if (!label || !directDir || !bridgeDir || scenarios.length === 0) {
  console.error('usage: node compare.mjs LABEL DIRECT_OUTDIR BRIDGE_OUTDIR SCENARIO...');
  process.exit(2);
}
const directEntries = entriesOf(directDir);
const bridgeEntries = entriesOf(bridgeDir);
const width = Math.max(...scenarios.map((s) => s.length), 'scenario'.length);
const mark = (v) => (v.pass ? 'pass' : 'FAIL');
let added = 0;
let fixed = 0;
const counts = { direct: 0, bridge: 0 };
const regressions = [];

console.log(`conformance: == server-everything directly and through the bridge, ${label}`);
console.log(`  ${'scenario'.padEnd(width)}  direct  bridge`);
for (const scenario of scenarios) {
  const direct = verdict(directDir, directEntries, scenario);
  const bridge = verdict(bridgeDir, bridgeEntries, scenario);
  counts.direct += direct.pass ? 1 : 0;
  counts.bridge += bridge.pass ? 1 : 0;
  let note = '';
  if (direct.pass && !bridge.pass) {
    added += 1;
    note = '  <- the bridge adds a failure';
    regressions.push({ scenario, bridge });
  } else if (!direct.pass && bridge.pass) {
    fixed += 1;
    note = '  (passes only through the bridge)';
  }
  console.log(`  ${scenario.padEnd(width)}  ${mark(direct).padEnd(6)}  ${mark(bridge).padEnd(6)}${note}`);
}
const n = scenarios.length;
console.log(`conformance (${label}): directly ${counts.direct} of ${n} pass, through the bridge ${counts.bridge} of ${n}; ` +
  `${added} fail only through the bridge, ${fixed} pass only through it`);
for (const { scenario, bridge } of regressions) {
  console.log(`conformance (${label}): ${scenario} fails through the bridge: ${bridge.why ?? bridge.tally}`);
  for (const line of bridge.lines.filter((l) => l.bad)) console.log(`       ${line.text}`);
}
console.log(`conformance (${label}): ${n - added} passed, ${added} failed`);
process.exit(added > 0 ? 1 : 0);
