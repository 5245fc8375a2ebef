#!/usr/bin/env node
// Reconnect check, driven by scripts/interop: the official MCP TypeScript SDK client
// (SSEClientTransport) keeps working across a server restart with no reconnect code here.
//
// Usage: node reconnect.mjs <baseUrl>      e.g. node reconnect.mjs http://127.0.0.1:3000
//
// Env:
//   MCP_TOKEN       if set, sent as `Authorization: Bearer $MCP_TOKEN` on the SSE GET and on every POST
//   EXPECT_SUBJECT  if set (together with MCP_TOKEN), whoami after the restart must contain it
//
// What happens:
//   1. the client connects (GET /sse, initialize) and calls echo;
//   2. it prints `# ready for restart`: scripts/interop then stops the server (SIGTERM) and
//      starts it again on the same port;
//   3. the SDK's transport notices the stream has ended and opens a new one by itself (its
//      EventSource retries after 3 s; the new server sends a new `endpoint`, a new session
//      that is never initialized). This file only watches for that `endpoint` event, through
//      the `eventSourceInit.fetch` option: it does not reconnect, re-initialize or retry;
//   4. the same Client object calls echo once more: that one call must succeed.
//
// Prints one TAP-like line per check, then `N passed, M failed`. Exits non-zero on any
// failed check, when no new stream arrives within RECONNECT_TIMEOUT_MS, or after 45 s overall.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { describeError, finish, report, watchdog } from './tap.mjs';

const OVERALL_TIMEOUT_MS = 45_000;
// The EventSource retries every 3 s; the server is down for well under one retry.
const RECONNECT_TIMEOUT_MS = 20_000;

const baseArg = process.argv[2];
if (!baseArg) {
  console.error('usage: node reconnect.mjs <baseUrl>   (e.g. http://127.0.0.1:3000)');
  process.exit(2);
}
const sseUrl = new URL(baseArg.replace(/\/+$/, '') + '/sse');
const token = process.env.MCP_TOKEN || '';
const expectSubject = process.env.EXPECT_SUBJECT || '';

let closing = false;



// ---- watching the streams the transport opens (observation only) ----------------------
// Every GET /sse the transport makes goes through this fetch. Each 200 response's body is
// passed through unchanged; on the way, the data of its first `endpoint` event is noted.
const streams = []; // per GET /sse, in order: { status, endpoint }
const waiters = []; // { count, resolve }: resolved once `count` streams have an endpoint

function endpointsSeen() {
  return streams.filter((s) => s.endpoint !== null).length;
}

function noteEndpoint(stream, endpoint) {
  stream.endpoint = endpoint;
  const seen = endpointsSeen();
  for (const w of waiters.splice(0)) {
    if (seen >= w.count) w.resolve();
    else waiters.push(w);
  }
}

/** Resolves once `count` streams have delivered their `endpoint` event. */
function streamsWithEndpoint(count) {
  if (endpointsSeen() >= count) return Promise.resolve();
  return new Promise((resolve) => waiters.push({ count, resolve }));
}

function watch(response) {
  const stream = { status: response.status, endpoint: null };
  streams.push(stream);
  if (response.status !== 200 || !response.body) return response;
  const decoder = new TextDecoder();
  let text = '';
  let done = false;
  const tap = new TransformStream({
    transform(chunk, controller) {
      controller.enqueue(chunk);
      if (done) return;
      text += decoder.decode(chunk, { stream: true });
      const m = /(?:^|\n)event: ?endpoint\r?\ndata: ?([^\r\n]*)\r?\n\r?\n/.exec(text);
      if (m) {
        done = true;
        text = '';
        noteEndpoint(stream, m[1]);
      } else if (text.length > 65536) {
        done = true; // no endpoint in the first 64 KiB: stop looking
        text = '';
      }
    },
  });
  return new Response(response.body.pipeThrough(tap), {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

const authValue = token ? `Bearer ${token}` : '';
const transport = new SSEClientTransport(sseUrl, {
  ...(token ? { requestInit: { headers: { Authorization: authValue } } } : {}),
  eventSourceInit: {
    fetch: async (url, init) => {
      const headers = new Headers(init?.headers);
      if (authValue) headers.set('Authorization', authValue);
      return watch(await fetch(url, { ...init, headers }));
    },
  },
});

const client = new Client({ name: 'mcp-warden-reconnect', version: '0.0.0' }, { capabilities: {} });
// The restart ends the stream: the transport reports it here, and carries on by itself.
client.onerror = (err) => {
  if (!closing) console.log(`# transport reported: ${describeError(err)}`);
};

const timer = watchdog(OVERALL_TIMEOUT_MS);

async function echo(message) {
  const res = await client.callTool({ name: 'echo', arguments: { message } });
  const text = res.content?.[0]?.text;
  if (res.isError || text !== `Tool echo: ${message}`) {
    throw new Error(`unexpected echo result ${JSON.stringify(res)}`);
  }
}

async function main() {
  console.log(`# connecting to ${sseUrl.href}${token ? ' with bearer token' : ''}`);
  try {
    await client.connect(transport);
    await echo('before restart');
    report(true, 'connect, initialize and echo before the restart');
  } catch (err) {
    report(false, 'connect, initialize and echo before the restart', describeError(err));
    return;
  }

  console.log('# ready for restart');
  const asked = Date.now();
  let timer;
  const reconnected = await Promise.race([
    streamsWithEndpoint(2).then(() => true),
    new Promise((resolve) => {
      timer = setTimeout(() => resolve(false), RECONNECT_TIMEOUT_MS);
    }),
  ]);
  clearTimeout(timer);
  const tried = streams.map((s) => s.status).join(', ');
  if (!reconnected) {
    report(false, 'the transport opened a new stream by itself',
      `no second endpoint event within ${RECONNECT_TIMEOUT_MS / 1000} s; GET /sse statuses so far: ${tried}`);
    return;
  }
  const second = streams.filter((s) => s.endpoint !== null)[1];
  report(second.endpoint !== streams[0].endpoint,
    `the transport opened a new stream, with a new session, by itself ${Date.now() - asked} ms after the restart began (GET /sse statuses: ${tried})`,
    'the new stream sent the old endpoint: same session id');
  // The endpoint event was seen on its way to the EventSource, which handles it in the
  // same turn of the event loop; let that turn finish before calling.
  await new Promise((resolve) => setImmediate(resolve));

  try {
    await echo('after restart');
    report(true, 'the same client calls echo after the restart, with no initialize');
  } catch (err) {
    report(false, 'the same client calls echo after the restart, with no initialize', describeError(err));
    return;
  }
  if (token && expectSubject) {
    try {
      const res = await client.callTool({ name: 'whoami', arguments: {} });
      const text = res.content?.[0]?.text ?? '';
      report(text.includes(expectSubject), `whoami after the restart names ${expectSubject}`, `whoami said ${JSON.stringify(text)}`);
    } catch (err) {
      report(false, `whoami after the restart names ${expectSubject}`, describeError(err));
    }
  }
}

try {
  await main();
} catch (err) {
  report(false, 'unexpected exception', describeError(err));
}
closing = true;
try {
  await client.close();
} catch (err) {
  console.log(`# error while closing: ${describeError(err)}`);
}
clearTimeout(timer);
finish();
