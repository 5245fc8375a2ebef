#!/usr/bin/env node
// Filesystem check, driven by scripts/interop: @modelcontextprotocol/server-filesystem
// (pinned in package.json) on a temporary folder, run by mcp-warden's bridge
// (`mcp-warden -- node .../server-filesystem/dist/index.js DIR`), driven by the official
// TypeScript SDK client (1.32.2) over HTTP+SSE (/sse) and Streamable HTTP (/mcp).
//
// Usage: node filesystem.mjs <baseUrl> <dir>
//
// It writes DIR/hello.txt itself, then on each transport (the client declares no roots, so
// the server keeps DIR as its only allowed directory):
//   - initialize: serverInfo is the child's (secure-filesystem-server);
//   - tools/list holds read_text_file, list_directory, list_allowed_directories, and
//     write_file (WRITE_FILE=visible) or not (WRITE_FILE=hidden);
//   - list_allowed_directories names DIR; list_directory DIR lists hello.txt;
//     read_text_file DIR/hello.txt gives its text; reading a file outside DIR is refused
//     by the server (its own sandbox, through the bridge);
//   - WRITE_FILE=visible: write_file DIR/written-<transport>.txt, then the file on disk and
//     read_text_file both hold what was written;
//   - WRITE_FILE=hidden (a per-tool policy keeps write_file from this caller): calling
//     write_file is answered exactly as calling a tool that does not exist (the same
//     result or error, the name aside), and no file is written;
//   - on /mcp, DELETE ends the session.
//
// Env:
//   MCP_TOKEN    sent as `Authorization: Bearer` on every request when set
//   WRITE_FILE   `visible` (default) or `hidden`
//
// Prints one TAP-like line per check, then `N passed, M failed`. Exits non-zero on any failed
// check, on any unexpected exception, or after OVERALL_TIMEOUT_MS.

import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { check, describeError, expect, finish, inProgress, report, show, watchdog } from './tap.mjs';
import { sdkTransport } from './mcp-http.mjs';

const OVERALL_TIMEOUT_MS = 30_000;
const opts = { timeout: 10_000 };

const [baseArg, dirArg] = process.argv.slice(2);
const writeMode = process.env.WRITE_FILE || 'visible';
if (!baseArg || !dirArg || !['visible', 'hidden'].includes(writeMode)) {
  console.error('usage: WRITE_FILE=visible|hidden node filesystem.mjs <baseUrl> <dir>');
  process.exit(2);
}
const base = baseArg.replace(/\/+$/, '');
const dir = realpathSync(dirArg);
const token = process.env.MCP_TOKEN || '';
const HELLO = 'hello from the temporary folder\n';

const timer = watchdog(OVERALL_TIMEOUT_MS);

function texts(result) {
  return (result.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
}

/** What a tools/call of `name` answers (a result or an error), with `name` written as <TOOL>. */
async function answerOf(client, name, args) {
  let answer;
  try {
    answer = { result: await client.callTool({ name, arguments: args }, undefined, opts) };
  } catch (err) {
    answer = err instanceof McpError ? { error: { code: err.code, message: err.message, data: err.data } } : { thrown: describeError(err) };
  }
  return show(answer).split(name).join('<TOOL>');
}

async function oneTransport(kind) {
  const label = `[${kind}]`;
  const client = new Client({ name: `mcp-warden-filesystem-${kind}`, version: '0.0.0' }, { capabilities: {} });
  const transport = sdkTransport(base, kind, token);
  let connected = false;
  await check(`${label} initialize: the child's answer is the client's`, async () => {
    await client.connect(transport, opts);
    connected = true;
    const info = client.getServerVersion();
    expect(info?.name === 'secure-filesystem-server', `serverInfo ${show(info)}`);
    return `${info.name} ${info.version}`;
  });
  if (!connected) return;

  await check(`${label} tools/list: write_file ${writeMode === 'visible' ? 'listed' : 'not listed'}`, async () => {
    const names = (await client.listTools(undefined, opts)).tools.map((t) => t.name);
    for (const n of ['read_text_file', 'list_directory', 'list_allowed_directories']) {
      expect(names.includes(n), `${n} missing in ${show(names)}`);
    }
    expect(names.includes('write_file') === (writeMode === 'visible'), `write_file ${writeMode}? tools: ${show(names)}`);
    return `${names.length} tools`;
  });

  await check(`${label} list_allowed_directories names the temporary folder`, async () => {
    const text = texts(await client.callTool({ name: 'list_allowed_directories', arguments: {} }, undefined, opts));
    expect(text.includes(dir), `${show(text)}, want ${dir}`);
  });

  await check(`${label} list_directory lists hello.txt`, async () => {
    const text = texts(await client.callTool({ name: 'list_directory', arguments: { path: dir } }, undefined, opts));
    expect(text.includes('hello.txt'), show(text));
  });

  await check(`${label} read_text_file hello.txt`, async () => {
    const res = await client.callTool({ name: 'read_text_file', arguments: { path: join(dir, 'hello.txt') } }, undefined, opts);
    expect(!res.isError && texts(res) === HELLO, show(res));
  });

  await check(`${label} a file outside the folder is refused by the server`, async () => {
    const res = await client.callTool({ name: 'read_text_file', arguments: { path: '/etc/hostname' } }, undefined, opts);
    expect(res.isError === true && /denied|outside/i.test(texts(res)), show(res));
  });

  const target = join(dir, `written-${kind}.txt`);
  const content = `written through mcp-warden over ${kind}\n`;
  if (writeMode === 'visible') {
    await check(`${label} write_file, then the file holds it`, async () => {
      const res = await client.callTool({ name: 'write_file', arguments: { path: target, content } }, undefined, opts);
      expect(!res.isError, show(res));
      expect(readFileSync(target, 'utf8') === content, `on disk: ${show(readFileSync(target, 'utf8'))}`);
      const back = await client.callTool({ name: 'read_text_file', arguments: { path: target } }, undefined, opts);
      expect(texts(back) === content, show(back));
    });
  } else {
    await check(`${label} write_file is answered as a tool that does not exist, and writes nothing`, async () => {
      const denied = await answerOf(client, 'write_file', { path: target, content });
      const unknown = await answerOf(client, 'no_such_tool_gateway', { path: target, content });
      expect(denied === unknown, `write_file: ${denied}\nunknown:    ${unknown}`);
      expect(!existsSync(target), `${target} was written`);
      return denied;
    });
  }

  if (kind === 'streamable') {
    await check(`${label} DELETE ends the session`, async () => {
      await transport.terminateSession();
      expect(transport.sessionId === undefined, 'the transport still holds a session id');
    });
  }
  await client.close();
}

writeFileSync(join(dir, 'hello.txt'), HELLO);
console.log(`# filesystem: ${base} on ${dir}, write_file ${writeMode}${token ? ', with bearer token' : ''}`);
try {
  await oneTransport('sse');
  await oneTransport('streamable');
} catch (err) {
  report(false, `unexpected exception (in: ${inProgress()})`, describeError(err));
}
clearTimeout(timer);
finish();
