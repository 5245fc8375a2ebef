#!/usr/bin/env node
// Interop check: drive a running mcp-warden server with the official MCP
// TypeScript SDK client, over the (legacy) HTTP+SSE transport (`sse`, the default:
// SSEClientTransport on <baseUrl>/sse) or over Streamable HTTP (`streamable`:
// StreamableHTTPClientTransport on <baseUrl>/mcp).
//
// Usage: node interop.mjs <baseUrl> [sse|streamable]   e.g. node interop.mjs http://127.0.0.1:3000 streamable
//
// Env:
//   MCP_TOKEN       if set, sent as `Authorization: Bearer $MCP_TOKEN` on every request (SSE: the
//                   stream's GET and every POST; Streamable HTTP: every POST, GET and DELETE)
//   EXPECT_SUBJECT  if set (together with MCP_TOKEN), whoami's text must contain it
//
// Prints one TAP-like line per check (`ok - ...` / `not ok - ...`), then `N passed, M failed`.
// Exits non-zero on any failed check, on any unexpected exception, or after 30 s overall.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { Mismatch, check, describeError, expect, finish, inProgress, report, show, watchdog } from './tap.mjs';
import { pingSession } from './mcp-http.mjs';

const OVERALL_TIMEOUT_MS = 30_000;

const baseArg = process.argv[2];
const mode = process.argv[3] ?? 'sse';
if (!baseArg || !['sse', 'streamable'].includes(mode)) {
  console.error('usage: node interop.mjs <baseUrl> [sse|streamable]   (e.g. http://127.0.0.1:3000)');
  process.exit(2);
}
const streamable = mode === 'streamable';
const transportLabel = streamable ? 'Streamable HTTP' : 'SSE';

let endpointUrl;
try {
  endpointUrl = new URL(baseArg.replace(/\/+$/, '') + (streamable ? '/mcp' : '/sse'));
} catch (err) {
  console.error(`invalid baseUrl ${JSON.stringify(baseArg)}: ${err.message}`);
  process.exit(2);
}

const token = process.env.MCP_TOKEN || '';
const expectSubject = process.env.EXPECT_SUBJECT || '';

let closing = false;

// Expect `fn` to reject with an McpError carrying `code`.
async function expectMcpError(fn, code) {
  let result;
  try {
    result = await fn();
  } catch (err) {
    expect(err instanceof McpError, `expected McpError with code ${code}, got ${describeError(err)}`);
    expect(err.code === code, `expected McpError code ${code}, got ${describeError(err)}`);
    return `code ${err.code}: ${err.message}`;
  }
  throw new Mismatch(`expected rejection with McpError code ${code}, but the request resolved with ${show(result)}`);
}

// Header injection. StreamableHTTPClientTransport sends `requestInit.headers` on every
// request it makes (POST, the GET stream, DELETE). In SDK 1.32.2 SSEClientTransport
// builds the headers of both the SSE GET and the message POSTs from `requestInit.headers`
// (via _commonHeaders()); the GET goes through `eventSourceInit.fetch` when given, the
// POSTs through global fetch. The custom fetch re-asserts the header on the GET so it is
// present even if a future SDK stops merging requestInit.headers into the EventSource
// request.
const transportOpts = {};
if (token) {
  const authValue = `Bearer ${token}`;
  transportOpts.requestInit = { headers: { Authorization: authValue } };
}
if (token && !streamable) {
  const authValue = `Bearer ${token}`;
  transportOpts.eventSourceInit = {
    fetch: (url, init) => {
      const headers = new Headers(init?.headers);
      headers.set('Authorization', authValue);
      return fetch(url, { ...init, headers });
    },
  };
}

const client = new Client({ name: 'mcp-warden-interop', version: '0.0.0' }, { capabilities: {} });
client.onerror = (err) => {
  if (!closing) console.error(`# transport error: ${describeError(err)}`);
};

const timer = watchdog(OVERALL_TIMEOUT_MS);

async function main() {
  console.log(`# connecting to ${endpointUrl.href} over ${transportLabel}${token ? ' with bearer token' : ''}`);
  const transport = streamable
    ? new StreamableHTTPClientTransport(endpointUrl, transportOpts)
    : new SSEClientTransport(endpointUrl, transportOpts);

  const connected = await check(`initialize over ${transportLabel}`, async () => {
    await client.connect(transport);
    const info = client.getServerVersion();
    const caps = client.getServerCapabilities();
    expect(info && typeof info.name === 'string', `serverInfo missing from initialize result: ${show(info)}`);
    const version = streamable ? transport.protocolVersion : transport._protocolVersion;
    return `server ${info.name} ${info.version}, protocol ${version ?? '?'}, capabilities ${Object.keys(caps ?? {}).join(',')}`;
  });
  if (!connected) return;

  let sessionId;
  if (streamable) {
    await check('the server assigned an Mcp-Session-Id', async () => {
      sessionId = transport.sessionId;
      expect(typeof sessionId === 'string' && sessionId.length > 0, `no Mcp-Session-Id after initialize: ${show(sessionId)}`);
      expect(/^[\x21-\x7e]+$/.test(sessionId), 'the session id has characters outside visible ASCII (0x21-0x7E)');
      // the id itself is not printed: it is a credential of the session
    });
    await check('the client negotiated 2025-11-25 (the SDK\'s latest) and sends it as MCP-Protocol-Version', async () => {
      expect(transport.protocolVersion === '2025-11-25', `protocolVersion = ${show(transport.protocolVersion)}`);
    });
  }

  await check('tools/list contains echo and whoami', async () => {
    const res = await client.listTools();
    const names = (res.tools ?? []).map((t) => t.name);
    expect(names.includes('echo') && names.includes('whoami'), `tools/list returned ${show(names)}`);
    return names.join(', ');
  });

  await check('tools/call echo', async () => {
    const res = await client.callTool({ name: 'echo', arguments: { message: 'hello interop' } });
    expect(!res.isError, `isError is truthy: ${show(res)}`);
    const text = res.content?.[0]?.text;
    expect(text === 'Tool echo: hello interop', `content[0].text = ${show(text)}, want "Tool echo: hello interop" (result ${show(res)})`);
  });

  await check('tools/call whoami', async () => {
    const res = await client.callTool({ name: 'whoami', arguments: {} });
    expect(!res.isError, `isError is truthy: ${show(res)}`);
    const text = res.content?.[0]?.text;
    expect(typeof text === 'string', `content[0].text missing: ${show(res)}`);
    console.log(`# whoami: ${text}`);
    if (!token) {
      expect(text.includes('anonymous'), `without MCP_TOKEN the text should contain "anonymous", got ${show(text)}`);
    } else if (expectSubject) {
      expect(text.includes(expectSubject), `text should contain EXPECT_SUBJECT ${show(expectSubject)}, got ${show(text)}`);
    }
  });

  await check('resources/templates/list contains echo://{message}', async () => {
    const res = await client.listResourceTemplates();
    const templates = (res.resourceTemplates ?? []).map((t) => t.uriTemplate);
    expect(templates.includes('echo://{message}'), `resources/templates/list returned ${show(templates)}`);
  });

  await check('resources/read echo://hello', async () => {
    const res = await client.readResource({ uri: 'echo://hello' });
    const text = res.contents?.[0]?.text;
    expect(text === 'Resource echo: hello', `contents[0].text = ${show(text)}, want "Resource echo: hello" (result ${show(res)})`);
  });

  await check('prompts/list contains echo', async () => {
    const res = await client.listPrompts();
    const names = (res.prompts ?? []).map((p) => p.name);
    expect(names.includes('echo'), `prompts/list returned ${show(names)}`);
  });

  await check('prompts/get echo', async () => {
    const res = await client.getPrompt({ name: 'echo', arguments: { message: 'hi' } });
    const msg = res.messages?.[0];
    expect(msg?.role === 'user', `messages[0].role = ${show(msg?.role)}, want "user" (result ${show(res)})`);
    expect(
      msg?.content?.text === 'Please process this message: hi',
      `messages[0].content.text = ${show(msg?.content?.text)}, want "Please process this message: hi" (result ${show(res)})`,
    );
  });

  await check('ping', async () => {
    await client.ping();
  });

  await check('tools/call unknown tool rejects with -32602', () =>
    expectMcpError(() => client.callTool({ name: 'no-such-tool', arguments: {} }), -32602),
  );

  await check('resources/read nope://x rejects with -32002', () =>
    expectMcpError(() => client.readResource({ uri: 'nope://x' }), -32002),
  );

  if (streamable && sessionId) {
    await check('terminateSession (DELETE /mcp) ends the session', async () => {
      await transport.terminateSession(); // resolves on 2xx, and on 405, which the next step catches
      expect(transport.sessionId === undefined, 'the transport still holds a session id after DELETE');
    });
    await check('a POST with the ended session id gets 404', async () => {
      const status = await pingSession(endpointUrl, sessionId, token);
      expect(status === 404, `status ${status}, want 404`);
    });
  }
}

try {
  await main();
} catch (err) {
  report(false, `unexpected exception (in: ${inProgress()})`, describeError(err));
}
closing = true;
try {
  await client.close();
} catch (err) {
  console.error(`# error while closing: ${describeError(err)}`);
}
clearTimeout(timer);
finish();
