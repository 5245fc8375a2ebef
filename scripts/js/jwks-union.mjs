#!/usr/bin/env node
// One JWKS made of several: fetches the key sets at the given URLs (examples/dev-issuer
// serves one key per process, so two users with different groups need two issuers) and
// serves all their keys together on loopback, so that one server (one JWKS_URI) accepts
// the tokens of every issuer. Their ES256 tokens carry no `kid`: mcp-warden tries each key.
//
// Usage: node jwks-union.mjs --url-file PATH JWKS_URL...
// Serves GET /jwks.json on 127.0.0.1 (any free port) until ended; writes its URL to PATH
// once listening, and logs `jwks-union listening on <url>`.

import { createServer } from 'node:http';
import { writeFileSync } from 'node:fs';

const args = process.argv.slice(2);
const at = args.indexOf('--url-file');
if (at < 0 || !args[at + 1] || args.length < 3) {
  console.error('usage: node jwks-union.mjs --url-file PATH JWKS_URL...');
  process.exit(2);
}
const urlFile = args[at + 1];
const sources = args.filter((_, i) => i !== at && i !== at + 1);

const keys = [];
for (const url of sources) {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) {
    console.error(`jwks-union: ${url} answered ${res.status}`);
    process.exit(1);
  }
  keys.push(...(await res.json()).keys);
}
const body = JSON.stringify({ keys });

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/jwks.json') {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  } else {
    res.writeHead(404);
    res.end();
  }
});
server.listen(0, '127.0.0.1', () => {
  const url = `http://127.0.0.1:${server.address().port}/jwks.json`;
  writeFileSync(urlFile, url);
  console.log(`jwks-union listening on ${url} (${keys.length} keys from ${sources.length} sets)`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
