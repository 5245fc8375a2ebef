#!/usr/bin/env node
// Interop check through mcp-remote (npm, pinned in package.json): mcp-remote is a stdio
// proxy that a local-only MCP client starts as its "server"; it connects to the remote
// server over HTTP. Here the official TypeScript SDK client starts it with
// StdioClientTransport, pointed at <baseUrl>/mcp with its default transport strategy
// (http-first: Streamable HTTP, falling back to SSE), and checks that
//   - its log names the transport it chose, and that is Streamable HTTP
//     (`Connected to remote server using StreamableHTTPClientTransport`), with no SSE
//     fallback;
//   - initialize, tools/list and tools/call echo work through it (and whoami names
//     EXPECT_SUBJECT when set).
//
// Usage: node mcp-remote.mjs <baseUrl>        e.g. node mcp-remote.mjs http://127.0.0.1:3000
//
// Env:
//   MCP_HEADER_FILE  if set, passed as `--header-file`: a file of `Name: value` lines that
//                    mcp-remote sends on every request (here `Authorization: Bearer …`), so the
//                    token is in neither the process list nor this script's output
//   EXPECT_SUBJECT   if set, whoami's text must contain it
//   MCP_REMOTE_CONFIG_DIR  where mcp-remote keeps its state (default ~/.mcp-auth); the
//                    caller should give it a fresh temporary directory
//
// mcp-remote's stderr is printed as `# mcp-remote: …` lines, with any header value from
// MCP_HEADER_FILE replaced by `[redacted]` (a check fails if one appeared at all).
// Prints one TAP-like line per check, then `N passed, M failed`. Exits non-zero on any
// failed check, or after 60 s overall.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { describeError, finish, report, watchdog } from './tap.mjs';

const OVERALL_TIMEOUT_MS = 60_000;

const baseArg = process.argv[2];
if (!baseArg) {
  console.error('usage: node mcp-remote.mjs <baseUrl>   (e.g. http://127.0.0.1:3000)');
  process.exit(2);
}
const mcpUrl = new URL(baseArg.replace(/\/+$/, '') + '/mcp');
const headerFile = process.env.MCP_HEADER_FILE || '';
const expectSubject = process.env.EXPECT_SUBJECT || '';
const proxyJs = fileURLToPath(new URL('./node_modules/mcp-remote/dist/proxy.js', import.meta.url));

// Values that must never be printed: every header value of the header file.
const secrets = [];
if (headerFile) {
  for (const line of readFileSync(headerFile, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.trimStart().startsWith('#')) {
      const value = line.slice(i + 1).trim();
      if (value) secrets.push(value, ...value.split(/\s+/).filter((part) => part.length >= 16));
    }
  }
}
let secretSeen = false;
function redact(text) {
  let out = text;
  for (const s of secrets) {
    if (out.includes(s)) {
      secretSeen = true;
      out = out.split(s).join('[redacted]');
    }
  }
  return out;
}


const args = [proxyJs, mcpUrl.href];
if (headerFile) args.push('--header-file', headerFile);
const transport = new StdioClientTransport({
  command: process.execPath, // the node running this file
  args,
  env: { ...process.env },
  stderr: 'pipe',
});
let log = '';
transport.stderr?.on('data', (chunk) => {
  log += chunk.toString('utf8');
});

const client = new Client({ name: 'mcp-warden-interop-mcp-remote', version: '0.0.0' }, { capabilities: {} });
let closing = false;
client.onerror = (err) => {
  if (!closing) console.log(`# transport error: ${redact(describeError(err))}`);
};

function printLog() {
  for (const line of redact(log).split('\n')) if (line.trim()) console.log(`# mcp-remote: ${line}`);
}

const timer = watchdog(OVERALL_TIMEOUT_MS, printLog);

async function main() {
  console.log(`# starting mcp-remote for ${mcpUrl.href}${headerFile ? ' with a header file' : ''}`);
  try {
    await client.connect(transport);
    const info = client.getServerVersion();
    report(true, `initialize through mcp-remote (server ${info?.name} ${info?.version})`);
  } catch (err) {
    report(false, 'initialize through mcp-remote', redact(describeError(err)));
    return;
  }

  // mcp-remote connects to the remote server before it answers initialize on stdio, so
  // its choice is logged by now.
  const chosen = /Connected to remote server using (\w+)/.exec(log);
  report(
    chosen?.[1] === 'StreamableHTTPClientTransport',
    `mcp-remote's log names the transport it chose: ${chosen?.[1] ?? '(none)'}`,
    'want StreamableHTTPClientTransport (see the log below)',
  );
  const fellBack = /SSEClientTransport|falling back|fallback/i.exec(log);
  report(!fellBack, 'mcp-remote did not fall back to SSE', `its log says ${JSON.stringify(fellBack?.[0])}`);

  try {
    const res = await client.listTools();
    const names = (res.tools ?? []).map((t) => t.name);
    report(names.includes('echo'), `tools/list through mcp-remote (${names.join(', ')})`, `no echo in ${JSON.stringify(names)}`);
  } catch (err) {
    report(false, 'tools/list through mcp-remote', redact(describeError(err)));
  }

  try {
    const res = await client.callTool({ name: 'echo', arguments: { message: 'through mcp-remote' } });
    const text = res.content?.[0]?.text;
    report(
      !res.isError && text === 'Tool echo: through mcp-remote',
      'tools/call echo through mcp-remote',
      `result ${JSON.stringify(res)}`,
    );
  } catch (err) {
    report(false, 'tools/call echo through mcp-remote', redact(describeError(err)));
  }

  try {
    const res = await client.callTool({ name: 'whoami', arguments: {} });
    const text = res.content?.[0]?.text ?? '';
    console.log(`# whoami: ${redact(text)}`);
    const want = expectSubject || (headerFile ? '' : 'anonymous');
    report(!res.isError && text.includes(want), `tools/call whoami through mcp-remote${want ? ` names ${want}` : ''}`, `whoami said ${JSON.stringify(redact(text))}`);
  } catch (err) {
    report(false, 'tools/call whoami through mcp-remote', redact(describeError(err)));
  }
}

try {
  await main();
} catch (err) {
  report(false, 'unexpected exception', redact(describeError(err)));
}
closing = true;
try {
  await client.close(); // ends mcp-remote (stdin closed, then SIGTERM/SIGKILL by the SDK)
} catch (err) {
  console.log(`# error while closing: ${redact(describeError(err))}`);
}
clearTimeout(timer);
const shownLog = redact(log); // sets secretSeen if mcp-remote printed a header value
if (headerFile) report(!secretSeen, 'no header value (token) appeared in mcp-remote\'s output', 'it did; it is redacted below');
for (const line of shownLog.split('\n')) if (line.trim()) console.log(`# mcp-remote: ${line}`);
finish();
