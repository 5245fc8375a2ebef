#!/usr/bin/env node
// Interop check for MCP 2026-07-28, driven by scripts/interop: the official TypeScript SDK
// v2 client (`@modelcontextprotocol/client`) speaks the stateless revision to a running
// mcp-warden on <baseUrl>/mcp while an SDK 1.x client (`@modelcontextprotocol/sdk`, a
// 2025-11-25 session on the same endpoint and port) makes its calls at the same time.
//
// Usage: node modern.mjs <baseUrl>                    the checks below
//        node modern.mjs <baseUrl> --expect-refused   a v2 client without a token (auth on)
//                                                     must be refused with 401
//
// Env:
//   MCP_TOKEN       if set, both clients send it as `Authorization: Bearer $MCP_TOKEN` (the v2
//                   client through its `authProvider`, the 1.x one through `requestInit.headers`)
//   EXPECT_SUBJECT  if set (together with MCP_TOKEN), whoami's text must contain it; without
//                   MCP_TOKEN, whoami must say `anonymous`
//
// The v2 client connects with `versionNegotiation: { mode: 'auto' }`: it probes with
// server/discover and would fall back to initialize silently, so the checks also read the
// wire (every request both clients send goes through a recording `fetch`): the v2 client
// must have sent no initialize, never have sent or got an Mcp-Session-Id, and sent every
// request with MCP-Protocol-Version 2026-07-28, Mcp-Method (and Mcp-Name where the method
// names something) equal to the body, and the `_meta` protocolVersion and clientCapabilities.
//
// The two clients go through the same rounds together, each round's two steps started at
// once (Promise.all): connect (v2: server/discover; 1.x: initialize, Mcp-Session-Id,
// 2025-11-25), tools/list (echo, whoami, ask), echo (each its own text), resources/read
// (each its own URI), prompts/get echo, whoami, and `ask`, crossed: while the v2 client's
// elicitation handler holds the answer to its `ask` (an input_required result, before the
// retry with inputResponses and requestState), it makes the 1.x client call echo, and while
// the 1.x client's handler holds its answer (an elicitation/create request in its 2025
// session, the server's tools/call still open), it makes the v2 client call echo. Both
// answers must come back in the results. Then the wire order of the two clients' POSTs
// must switch between the clients at least once per round, and a second v2 client pinned
// to 2026-07-28 (`mode: { pin }`) calls echo.
//
// Prints one TAP-like line per check (`ok - ...` / `not ok - ...`), then `N passed, M failed`.
// Exits non-zero on any failed check, on any unexpected exception, or after 45 s overall.

import { readFileSync } from 'node:fs';

import {
  Client as ClientV2,
  SdkHttpError,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { check, describeError, expect, finish, inProgress, report, show, watchdog } from './tap.mjs';

const OVERALL_TIMEOUT_MS = 45_000;
const REQUEST_TIMEOUT_MS = 10_000; // per request (the SDKs' default is 60 s)
const MODERN = '2026-07-28';
const ROUNDS = 7; // the rounds below in which both clients send: the wire must switch at least this often
const META_VERSION = 'io.modelcontextprotocol/protocolVersion';
const META_CAPABILITIES = 'io.modelcontextprotocol/clientCapabilities';

const baseArg = process.argv[2];
const mode = process.argv[3] ?? 'checks';
if (!baseArg || !['checks', '--expect-refused'].includes(mode)) {
  console.error('usage: node modern.mjs <baseUrl> [--expect-refused]   (e.g. http://127.0.0.1:3000)');
  process.exit(2);
}
let endpointUrl;
try {
  endpointUrl = new URL(baseArg.replace(/\/+$/, '') + '/mcp');
} catch (err) {
  console.error(`invalid baseUrl ${JSON.stringify(baseArg)}: ${err.message}`);
  process.exit(2);
}
const token = process.env.MCP_TOKEN || '';
const expectSubject = process.env.EXPECT_SUBJECT || '';

function packageVersion(name) {
  try {
    const file = new URL(`./node_modules/${name}/package.json`, import.meta.url);
    return JSON.parse(readFileSync(file, 'utf8')).version;
  } catch {
    return '?';
  }
}

// ---- reporting ---------------------------------------------------------------------------
let closing = false;
const timer = watchdog(OVERALL_TIMEOUT_MS);

// ---- the wire ------------------------------------------------------------------------------
// Every HTTP request of both clients goes through recordingFetch(who): it notes what was
// sent and the response's status and Mcp-Session-Id, and passes the response on unchanged.
const wire = [];

function messagesOf(body) {
  if (typeof body !== 'string') return [];
  try {
    const parsed = JSON.parse(body);
    return Array.isArray(parsed) ? parsed : [parsed];
  } catch {
    return [];
  }
}

function recordingFetch(who) {
  return async (input, init = {}) => {
    const headers = new Headers(input instanceof Request ? input.headers : undefined);
    for (const [k, v] of new Headers(init.headers)) headers.set(k, v);
    const entry = {
      who,
      httpMethod: (init.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase(),
      protocolVersion: headers.get('mcp-protocol-version'),
      mcpMethod: headers.get('mcp-method'),
      mcpName: headers.get('mcp-name'),
      sentSession: headers.has('mcp-session-id'),
      sentAuthorization: headers.has('authorization'),
      messages: messagesOf(init.body),
      status: undefined,
      gotSession: null,
    };
    wire.push(entry);
    const res = await fetch(input, init);
    entry.status = res.status;
    entry.gotSession = res.headers.get('mcp-session-id');
    return res;
  };
}

const requestsOf = (who) =>
  wire.filter((e) => e.who === who).flatMap((e) => e.messages.filter((m) => typeof m.method === 'string').map((m) => ({ entry: e, m })));

// ---- the clients ---------------------------------------------------------------------------
function newV2(name, negotiation, who) {
  const client = new ClientV2(
    { name, version: '0.0.0' },
    { capabilities: { elicitation: { form: {} } }, versionNegotiation: { mode: negotiation } },
  );
  client.onerror = (err) => {
    if (!closing) console.error(`# ${who} error: ${describeError(err)}`);
  };
  const opts = { fetch: recordingFetch(who) };
  // The v2 SDK's way to send a bearer token: an AuthProvider whose token() it calls before
  // every request.
  if (token) opts.authProvider = { token: async () => token };
  return { client, transport: new TransportV2(endpointUrl, opts) };
}

function timedCall(log, label, fn) {
  const entry = { label, start: performance.now(), end: undefined };
  log.push(entry);
  return Promise.resolve()
    .then(fn)
    .finally(() => {
      entry.end = performance.now();
    });
}

async function expectRefused() {
  console.log(`# v2 client ${packageVersion('@modelcontextprotocol/client')} under Node ${process.version}, no token, to ${endpointUrl.href}`);
  const { client, transport } = newV2('mcp-warden-interop-v2', 'auto', 'v2');
  await check('v2 client without a token: connect is refused with 401, and the error says so', async () => {
    let err;
    try {
      await client.connect(transport, { timeout: REQUEST_TIMEOUT_MS });
    } catch (e) {
      err = e;
    }
    expect(err !== undefined, `connect succeeded (era ${show(client.getProtocolEra())}, version ${show(client.getNegotiatedProtocolVersion())})`);
    console.log(`# the client's error: ${describeError(err)}`);
    expect(err instanceof SdkHttpError, `not an SdkHttpError: ${describeError(err)}`);
    expect(err.status === 401, `status ${err.status}, want 401`);
    expect(/\b401\b/.test(err.message), `the error's message does not name the 401: ${show(err.message)}`);
    return err.message;
  });
  await check('v2 client without a token: it sent only server/discover (no initialize fallback), answered 401', async () => {
    const sent = wire.map((e) => `${e.httpMethod} ${e.messages.map((m) => m.method).join(',')} -> ${e.status}`);
    expect(wire.length === 1, `want one request, the client sent ${wire.length}: ${show(sent)}`);
    expect(wire[0].messages[0]?.method === 'server/discover' && wire[0].status === 401, `sent ${show(sent)}`);
    expect(!wire[0].sentAuthorization, 'an Authorization header was sent');
  });
  closing = true;
  await client.close().catch(() => {});
}

async function checks() {
  console.log(
    `# v2 client @modelcontextprotocol/client ${packageVersion('@modelcontextprotocol/client')} and 1.x client ` +
      `@modelcontextprotocol/sdk ${packageVersion('@modelcontextprotocol/sdk')} under Node ${process.version}, ` +
      `to ${endpointUrl.href}${token ? ' with bearer token' : ''}`,
  );
  const v2 = newV2('mcp-warden-interop-v2', 'auto', 'v2');
  const v1 = {
    client: new ClientV1({ name: 'mcp-warden-interop-v1', version: '0.0.0' }, { capabilities: { elicitation: {} } }),
    transport: new TransportV1(endpointUrl, {
      fetch: recordingFetch('1.x'),
      ...(token ? { requestInit: { headers: { Authorization: `Bearer ${token}` } } } : {}),
    }),
  };
  v1.client.onerror = (err) => {
    if (!closing) console.error(`# 1.x error: ${describeError(err)}`);
  };
  const opts = { timeout: REQUEST_TIMEOUT_MS };
  const calls = { v2: [], v1: [] }; // each client's calls: { label, start, end }

  // ---- the crossed elicitation handlers (round `ask`) ----
  const ANSWER_V2 = 'blue, from the v2 client';
  const ANSWER_V1 = 'green, from the 1.x client';
  const asked = { v2: [], v1: [] }; // params of each elicitation the handler got
  const nested = { v2: undefined, v1: undefined }; // the other client's echo made inside a handler
  v2.client.setRequestHandler('elicitation/create', async (request) => {
    asked.v2.push(request.params);
    // The v2 client's tools/call is between its two rounds now: the 1.x client calls.
    nested.v1 = await timedCall(calls.v1, 'echo inside the v2 handler', () =>
      v1.client.callTool({ name: 'echo', arguments: { message: '1.x call during the v2 elicitation' } }, undefined, opts),
    ).then((r) => ({ result: r }), (e) => ({ error: e }));
    return { action: 'accept', content: { answer: ANSWER_V2 } };
  });
  v1.client.setRequestHandler(ElicitRequestSchema, async (request) => {
    asked.v1.push(request.params);
    // The server's tools/call for the 1.x client is open, waiting for this answer: the v2
    // client calls.
    nested.v2 = await timedCall(calls.v2, 'echo inside the 1.x handler', () =>
      v2.client.callTool({ name: 'echo', arguments: { message: 'v2 call during the 1.x elicitation' } }, opts),
    ).then((r) => ({ result: r }), (e) => ({ error: e }));
    return { action: 'accept', content: { answer: ANSWER_V1 } };
  });

  // round(v2Name, v2Fn, v1Name, v1Fn): both checks started together.
  const round = (v2Name, v2Fn, v1Name, v1Fn) =>
    Promise.all([
      check(`v2: ${v2Name}`, () => timedCall(calls.v2, v2Name, v2Fn)),
      check(`1.x: ${v1Name}`, () => timedCall(calls.v1, v1Name, v1Fn)),
    ]);

  const [v2Connected, v1Connected] = await round(
    `connect (versionNegotiation auto) negotiates ${MODERN} through server/discover`,
    async () => {
      await v2.client.connect(v2.transport, opts);
      const era = v2.client.getProtocolEra();
      const version = v2.client.getNegotiatedProtocolVersion();
      expect(era === 'modern' && version === MODERN, `era ${show(era)}, negotiated ${show(version)}: want modern, ${MODERN}`);
      expect(v2.transport.sessionId === undefined, 'the transport holds a session id');
      const discover = v2.client.getDiscoverResult();
      expect(discover !== undefined, 'no server/discover result recorded');
      expect(discover.supportedVersions?.includes(MODERN), `supportedVersions ${show(discover.supportedVersions)}`);
      const info = v2.client.getServerVersion();
      expect(info?.name === 'mcp-warden', `serverInfo ${show(info)}`);
      console.log(`# server/discover: ${show(discover)}`);
      return `server ${info.name} ${info.version}, versions ${discover.supportedVersions.join(' ')}`;
    },
    'connect (initialize) gets an Mcp-Session-Id and negotiates 2025-11-25',
    async () => {
      await v1.client.connect(v1.transport, opts);
      const sid = v1.transport.sessionId;
      expect(typeof sid === 'string' && sid.length > 0, `no Mcp-Session-Id: ${show(sid)}`);
      expect(v1.transport.protocolVersion === '2025-11-25', `protocolVersion ${show(v1.transport.protocolVersion)}`);
    },
  );
  if (!v2Connected || !v1Connected) return;

  const toolNames = async (client) => {
    const res = await client.listTools(undefined, opts);
    const names = (res.tools ?? []).map((t) => t.name);
    for (const want of ['echo', 'whoami', 'ask']) expect(names.includes(want), `tools/list returned ${show(names)}, no ${want}`);
    return names.join(', ');
  };
  await round('tools/list has echo, whoami, ask', () => toolNames(v2.client), 'tools/list has echo, whoami, ask', () => toolNames(v1.client));

  const echo = async (client, message, callOpts) => {
    const res = await callOpts(client, message);
    expect(!res.isError, `isError: ${show(res)}`);
    const text = res.content?.[0]?.text;
    expect(text === `Tool echo: ${message}`, `content[0].text = ${show(text)}, want ${show(`Tool echo: ${message}`)}`);
  };
  const callV2 = (client, message) => client.callTool({ name: 'echo', arguments: { message } }, opts);
  const callV1 = (client, message) => client.callTool({ name: 'echo', arguments: { message } }, undefined, opts);
  await round(
    'tools/call echo',
    () => echo(v2.client, 'hello from the v2 client', callV2),
    'tools/call echo',
    () => echo(v1.client, 'hello from the 1.x client', callV1),
  );

  const read = async (client, word) => {
    const res = await client.readResource({ uri: `echo://${word}` }, opts);
    const text = res.contents?.[0]?.text;
    expect(text === `Resource echo: ${word}`, `contents[0].text = ${show(text)}, want ${show(`Resource echo: ${word}`)} (result ${show(res)})`);
  };
  await round('resources/read echo://hello', () => read(v2.client, 'hello'), 'resources/read echo://one', () => read(v1.client, 'one'));

  const prompt = async (client, message) => {
    const res = await client.getPrompt({ name: 'echo', arguments: { message } }, opts);
    const msg = res.messages?.[0];
    const want = `Please process this message: ${message}`;
    expect(msg?.role === 'user', `messages[0].role = ${show(msg?.role)} (result ${show(res)})`);
    expect(msg?.content?.text === want, `messages[0].content.text = ${show(msg?.content?.text)}, want ${show(want)}`);
  };
  await round('prompts/get echo', () => prompt(v2.client, 'hi from v2'), 'prompts/get echo', () => prompt(v1.client, 'hi from 1.x'));

  const whoami = async (client, call, who) => {
    const res = await call(client);
    expect(!res.isError, `isError: ${show(res)}`);
    const text = res.content?.[0]?.text;
    expect(typeof text === 'string', `content[0].text missing: ${show(res)}`);
    console.log(`# ${who} whoami: ${text}`);
    if (!token) expect(text.includes('anonymous'), `without a token the text should say "anonymous": ${show(text)}`);
    else if (expectSubject) expect(text.includes(expectSubject), `the text should name ${show(expectSubject)}: ${show(text)}`);
  };
  await round(
    `tools/call whoami (${token ? `names ${expectSubject || 'the token\'s subject'}` : 'anonymous'})`,
    () => whoami(v2.client, (c) => c.callTool({ name: 'whoami', arguments: {} }, opts), 'v2'),
    `tools/call whoami (${token ? `names ${expectSubject || 'the token\'s subject'}` : 'anonymous'})`,
    () => whoami(v1.client, (c) => c.callTool({ name: 'whoami', arguments: {} }, undefined, opts), '1.x'),
  );

  const ask = async (call, question, answer, askedList) => {
    const res = await call(question);
    expect(askedList.length === 1, `the elicitation handler was asked ${askedList.length} times, want 1: ${show(askedList)}`);
    expect(askedList[0].message === question, `the elicitation's message ${show(askedList[0].message)}, want ${show(question)}`);
    expect(askedList[0].requestedSchema?.properties?.answer !== undefined, `requestedSchema ${show(askedList[0].requestedSchema)} has no answer`);
    expect(!res.isError, `isError: ${show(res)}`);
    const text = res.content?.[0]?.text;
    expect(text === `The user answered: ${answer}`, `content[0].text = ${show(text)}, want ${show(`The user answered: ${answer}`)}`);
  };
  await round(
    'tools/call ask: input_required, answered by the elicitation handler, retried',
    () => ask((q) => v2.client.callTool({ name: 'ask', arguments: { question: q } }, opts), 'v2: your favourite colour?', ANSWER_V2, asked.v2),
    'tools/call ask: elicitation/create, answered by the elicitation handler',
    () => ask((q) => v1.client.callTool({ name: 'ask', arguments: { question: q } }, undefined, opts), '1.x: your favourite colour?', ANSWER_V1, asked.v1),
  );

  const within = (inner, outerLabel, log) => {
    const outer = log.find((c) => c.label === outerLabel);
    return outer && inner && inner.start >= outer.start && inner.end <= outer.end;
  };
  const askLabelV2 = 'tools/call ask: input_required, answered by the elicitation handler, retried';
  const askLabelV1 = 'tools/call ask: elicitation/create, answered by the elicitation handler';
  await check('1.x: echo made while the v2 client answered its elicitation, inside the v2 ask', async () => {
    expect(nested.v1 !== undefined, 'the v2 handler did not run');
    expect(!nested.v1.error, `the call failed: ${describeError(nested.v1.error)}`);
    const text = nested.v1.result.content?.[0]?.text;
    expect(text === 'Tool echo: 1.x call during the v2 elicitation', `content[0].text = ${show(text)}`);
    const inner = calls.v1.find((c) => c.label === 'echo inside the v2 handler');
    expect(within(inner, askLabelV2, calls.v2), 'the call did not happen within the v2 ask');
  });
  await check('v2: echo made while the 1.x client answered its elicitation, inside the 1.x ask', async () => {
    expect(nested.v2 !== undefined, 'the 1.x handler did not run');
    expect(!nested.v2.error, `the call failed: ${describeError(nested.v2.error)}`);
    const text = nested.v2.result.content?.[0]?.text;
    expect(text === 'Tool echo: v2 call during the 1.x elicitation', `content[0].text = ${show(text)}`);
    const inner = calls.v2.find((c) => c.label === 'echo inside the 1.x handler');
    expect(within(inner, askLabelV1, calls.v1), 'the call did not happen within the 1.x ask');
  });

  // ---- what the wire shows ----
  await check('v2: ask went out twice, the retry with inputResponses and requestState', async () => {
    const asks = requestsOf('v2').filter(({ m }) => m.method === 'tools/call' && m.params?.name === 'ask');
    expect(asks.length === 2, `want 2 tools/call ask, sent ${asks.length}`);
    const [first, retry] = asks.map(({ m }) => m.params);
    expect(first.inputResponses === undefined && first.requestState === undefined, `the first call already had ${show(first)}`);
    expect(typeof retry.requestState === 'string' && retry.requestState.length > 0, `the retry's requestState: ${show(retry.requestState)}`);
    const answers = Object.values(retry.inputResponses ?? {});
    expect(answers.length === 1 && answers[0]?.content?.answer === ANSWER_V2, `the retry's inputResponses: ${show(retry.inputResponses)}`);
  });

  await check(`v2: on the wire, no initialize and no session; every request a POST with ${MODERN} headers and _meta`, async () => {
    const mine = wire.filter((e) => e.who === 'v2');
    const bad = [];
    for (const e of mine) {
      const methods = e.messages.map((m) => m.method ?? '(response)');
      const where = `${e.httpMethod} ${methods.join(',')} -> ${e.status}`;
      if (e.httpMethod !== 'POST') bad.push(`${where}: not a POST`);
      if (e.sentSession || e.gotSession) bad.push(`${where}: an Mcp-Session-Id was ${e.sentSession ? 'sent' : 'received'}`);
      if (e.protocolVersion !== MODERN) bad.push(`${where}: MCP-Protocol-Version ${show(e.protocolVersion)}`);
      if (token && !e.sentAuthorization) bad.push(`${where}: no Authorization`);
      if (e.messages.length !== 1) bad.push(`${where}: ${e.messages.length} messages in the body`);
      for (const m of e.messages) {
        if (m.method === 'initialize' || m.method === 'notifications/initialized') bad.push(`${where}: the client sent ${m.method}`);
        if (typeof m.method !== 'string') continue;
        if (e.mcpMethod !== m.method) bad.push(`${where}: Mcp-Method ${show(e.mcpMethod)}`);
        const named = { 'tools/call': m.params?.name, 'prompts/get': m.params?.name, 'resources/read': m.params?.uri }[m.method];
        if (named !== undefined && e.mcpName !== named) bad.push(`${where}: Mcp-Name ${show(e.mcpName)}, want ${show(named)}`);
        const meta = m.params?._meta ?? {};
        if (meta[META_VERSION] !== MODERN || typeof meta[META_CAPABILITIES] !== 'object') bad.push(`${where}: _meta ${show(meta)}`);
      }
    }
    expect(mine[0]?.messages[0]?.method === 'server/discover', `the first request was ${show(mine[0]?.messages)}`);
    expect(bad.length === 0, bad.join('\n'));
    return `${mine.length} requests`;
  });

  await check('1.x: on the wire, initialize first, then every request in its session', async () => {
    const mine = requestsOf('1.x');
    expect(mine[0]?.m.method === 'initialize', `first request ${show(mine[0]?.m.method)}`);
    const sid = wire.find((e) => e.who === '1.x' && e.gotSession)?.gotSession;
    expect(typeof sid === 'string', 'no Mcp-Session-Id in any response');
    const outside = mine.slice(1).filter(({ entry }) => !entry.sentSession);
    expect(outside.length === 0, `sent without Mcp-Session-Id: ${show(outside.map(({ m }) => m.method))}`);
    return `${mine.length} requests`;
  });

  await check(`the two clients' POSTs interleave on the wire (at least ${ROUNDS} switches)`, async () => {
    const order = wire.filter((e) => e.httpMethod === 'POST').map((e) => (e.who === 'v2' ? '2' : '1'));
    let switches = 0;
    for (let i = 1; i < order.length; i += 1) if (order[i] !== order[i - 1]) switches += 1;
    const overlaps = calls.v2.filter((a) => calls.v1.some((b) => a.start < b.end && b.start < a.end)).length;
    console.log(`# POST order (2 = v2 client, 1 = 1.x client): ${order.join(' ')}`);
    expect(switches >= ROUNDS, `${switches} switches between the clients in ${order.length} POSTs`);
    expect(overlaps >= ROUNDS, `only ${overlaps} v2 calls overlapped a 1.x call in time`);
    return `${switches} switches in ${order.length} POSTs; ${overlaps} of ${calls.v2.length} v2 calls overlapped a 1.x call`;
  });

  await check(`v2, a second client pinned to ${MODERN}: connect and tools/call echo`, async () => {
    const pinned = newV2('mcp-warden-interop-v2-pinned', { pin: MODERN }, 'v2-pinned');
    try {
      await pinned.client.connect(pinned.transport, opts);
      expect(pinned.client.getNegotiatedProtocolVersion() === MODERN, `negotiated ${show(pinned.client.getNegotiatedProtocolVersion())}`);
      await echo(pinned.client, 'hello from the pinned client', callV2);
    } finally {
      await pinned.client.close().catch(() => {});
    }
  });

  closing = true;
  await v2.client.close().catch((err) => console.error(`# v2 close: ${describeError(err)}`));
  await v1.transport.terminateSession().catch((err) => console.error(`# 1.x DELETE: ${describeError(err)}`));
  await v1.client.close().catch((err) => console.error(`# 1.x close: ${describeError(err)}`));
}

try {
  await (mode === '--expect-refused' ? expectRefused() : checks());
} catch (err) {
  report(false, `unexpected exception (in progress: ${inProgress()})`, describeError(err));
}
clearTimeout(timer);
finish();
