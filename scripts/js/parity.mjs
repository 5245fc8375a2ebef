#!/usr/bin/env node
// Parity check, driven by scripts/interop: examples/conformance.rs (the conformance suite's
// fixtures on the library API) must behave the same over both transports, as the official
// MCP TypeScript SDK client sees it.
//
// Usage: node parity.mjs <baseUrl>      e.g. node parity.mjs http://127.0.0.1:3000
//
// Two clients connect to the same server, one with SSEClientTransport (<baseUrl>/sse, the
// legacy HTTP+SSE transport) and one with StreamableHTTPClientTransport (<baseUrl>/mcp). Both
// declare the capabilities sampling, elicitation and roots, and answer the server's
// sampling/createMessage (a fixed assistant text), elicitation/create (accept, with fixed
// values for the fields asked) and roots/list (one fixed root; no fixture asks for it),
// recording what they were asked. On each transport, in turn:
//   - tools/list, prompts/list, resources/list, resources/templates/list;
//   - tools/call of every listed tool, with the arguments it needs: progress (0, 50, 100 of
//     100, through onprogress, and on the wire all three before the result), logging
//     (3 notifications/message after logging/setLevel
//     debug), sampling and elicitation (the handler was asked, and its answer is in the
//     result), each content type, the error result; a tool this file does not know fails;
//   - resources/read of every listed resource and of a template URI; prompts/get of every
//     listed prompt; completion/complete of test_prompt_with_arguments arg1 "pa";
//   - resources/subscribe test://watched-resource, tools/call touch_watched_resource: a
//     notifications/resources/updated for that URI must arrive (on /mcp it travels on the
//     session's GET stream, which the SDK opens by itself after initialize: checked first);
//     then resources/unsubscribe and touch again: nothing more within UNSUBSCRIBED_WINDOW_MS;
//   - tools/call test_sampling with {prompt: 5}: a result with isError whose text names
//     `prompt`, and the sampling handler not asked.
// Each transport's results (the answers, and every notification and request the client
// received) go into one record; the two records must be equal, else the differences are
// printed path by path. Nothing is removed before comparing: the SDK already strips the
// progress token from what onprogress gets, and no other value (session id, request id) is
// part of a record.
//
// The transports' fetch goes through a recorder that passes every body through unchanged and
// notes each JSON-RPC message sent and received, and on which HTTP exchange: to say which
// stream carried a message, and, when a check fails, to list what went each way meanwhile
// and which requests never got an HTTP response.
//
// Env:
//   PARITY_SDK_ORDER_SHIM  `0` turns off keepArrivalOrder (sdk-order.mjs: a workaround for an SDK
//                          1.32.2 race that drops a final progress notification on /sse)
//
// Prints one TAP-like line per check (`ok - [transport] ...` / `not ok - ...`), then
// `N passed, M failed`. Exits non-zero on any failed check, on any unexpected exception, or
// after OVERALL_TIMEOUT_MS. Every wait polls and is bounded (WAIT_MS); no sleep stands in for
// an event.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  McpError,
  ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { check, describeError, expect, finish, inProgress, report, show, waitFor as pollUntil, watchdog } from './tap.mjs';
import { keepArrivalOrder } from './sdk-order.mjs';

const OVERALL_TIMEOUT_MS = 90_000;
const REQUEST_TIMEOUT_MS = 10_000; // per request (the SDK's default is 60 s)
const WAIT_MS = 5_000; // any awaited event
const POLL_MS = 10;
const UNSUBSCRIBED_WINDOW_MS = 1_000; // how long "no further notification" is watched for

const SAMPLING_ANSWER = 'parity: the fixed sampling answer';
const SAMPLING_PROMPT = 'parity: what is 2 + 2?';
const ELICITATION_MESSAGE = 'parity: who are you?';
// The fixed values the elicitation handler accepts with, for each field a request names.
const ELICITATION_VALUES = {
  username: 'parity-user',
  email: 'parity@example.com',
  name: 'Parity Tester',
  age: 41,
  score: 87.5,
  status: 'pending',
  verified: false,
  untitledSingle: 'option2',
  titledSingle: 'value3',
  legacyEnum: 'opt1',
  untitledMulti: ['option1', 'option3'],
  titledMulti: ['value2'],
};
const ROOTS = [{ uri: 'file:///tmp/mcp-warden-parity', name: 'parity' }];
const WATCHED = 'test://watched-resource';
const TEMPLATE_URI = 'test://template/42/data';

const baseArg = process.argv[2];
if (!baseArg) {
  console.error('usage: node parity.mjs <baseUrl>   (e.g. http://127.0.0.1:3000)');
  process.exit(2);
}
const base = baseArg.replace(/\/+$/, '');

// ---- reporting ---------------------------------------------------------------------------
/** Polls `cond` every POLL_MS until it holds (true) or `ms` have passed (false). */
const waitFor = (cond, ms = WAIT_MS) => pollUntil(cond, ms, POLL_MS);

const timer = watchdog(OVERALL_TIMEOUT_MS);

// ---- one client per transport ------------------------------------------------------------

/**
 * A client for `kind` ('sse' or 'streamable') with its handlers and what they saw:
 * the requests the server sent it, the notifications it got, and the HTTP exchanges its
 * transport made (method, path, status, content type: to see the GET stream on /mcp).
 */
function makeClient(kind) {
  const seen = {
    sampling: [], // params of each sampling/createMessage
    elicitation: [], // params of each elicitation/create
    roots: 0, // roots/list requests
    logs: [], // params of each notifications/message
    updated: [], // params of each notifications/resources/updated
    errors: [], // what the transport or protocol layer reported through onerror
    http: [], // per fetch the transport made: { at, method, path, status, type, carried }
    wire: [], // every JSON-RPC message received, in order: { at (ms), via, what }
  };
  const recordingFetch = async (url, init) => {
    const method = init?.method ?? 'GET';
    const path = new URL(url).pathname;
    const entry = { at: Date.now(), method, path, status: null, type: null, carried: [] };
    seen.http.push(entry);
    if (typeof init?.body === 'string') {
      try {
        for (const m of [JSON.parse(init.body)].flat()) {
          seen.wire.push({ at: Date.now(), via: `${method} ${path}`, what: `sent ${summary(m)}` });
        }
      } catch {
        // not JSON: nothing to note
      }
    }
    let res;
    try {
      res = await fetch(url, init);
    } catch (err) {
      seen.wire.push({ at: Date.now(), via: `${method} ${path}`, what: `fetch failed: ${describeError(err)}` });
      throw err;
    }
    entry.status = res.status;
    if (method !== 'GET') seen.wire.push({ at: Date.now(), via: `${method} ${path}`, what: `HTTP ${res.status}` });
    entry.type = res.headers.get('content-type');
    return tapMessages(res, (m) => {
      entry.carried.push(m.method ?? ('result' in m ? 'result' : 'error'));
      seen.wire.push({ at: Date.now(), via: `${method} ${path}`, what: summary(m) });
    });
  };
  const url = new URL(base + (kind === 'sse' ? '/sse' : '/mcp'));
  const transport =
    kind === 'sse'
      ? new SSEClientTransport(url, { fetch: recordingFetch, eventSourceInit: { fetch: recordingFetch } })
      : new StreamableHTTPClientTransport(url, { fetch: recordingFetch });
  const client = new Client(
    { name: 'mcp-warden-parity', version: '0.0.0' },
    { capabilities: { sampling: {}, elicitation: {}, roots: {} } },
  );
  client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
    seen.sampling.push(request.params);
    return {
      role: 'assistant',
      content: { type: 'text', text: SAMPLING_ANSWER },
      model: 'parity-fixed-model',
      stopReason: 'endTurn',
    };
  });
  client.setRequestHandler(ElicitRequestSchema, async (request) => {
    seen.elicitation.push(request.params);
    const content = {};
    for (const field of Object.keys(request.params.requestedSchema?.properties ?? {})) {
      if (field in ELICITATION_VALUES) content[field] = ELICITATION_VALUES[field];
    }
    return { action: 'accept', content };
  });
  client.setRequestHandler(ListRootsRequestSchema, async () => {
    seen.roots += 1;
    return { roots: ROOTS };
  });
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    seen.logs.push(n.params);
  });
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
    seen.updated.push(n.params);
  });
  client.onerror = (err) => {
    seen.errors.push(describeError(err));
    seen.wire.push({ at: Date.now(), via: 'onerror', what: describeError(err) });
  };
  return { kind, label: kind === 'sse' ? 'SSE' : 'Streamable HTTP', client, transport, seen };
}

/**
 * `res` with its body passed through unchanged, noting on the way the method (or `result`,
 * `error`) of each JSON-RPC message it carries: an `application/json` body as a whole, a
 * `text/event-stream` body per `data:` line. Observation only, to say which HTTP exchange
 * carried a message, and to show what arrived when a check fails.
 */
function tapMessages(res, onMessage) {
  if (!res.body) return res;
  const sse = /^text\/event-stream/.test(res.headers.get('content-type') ?? '');
  const decoder = new TextDecoder();
  let text = '';
  const note = (json) => {
    try {
      for (const m of [JSON.parse(json)].flat()) onMessage(m);
    } catch {
      // not JSON-RPC: nothing to note
    }
  };
  const tap = new TransformStream({
    transform(chunk, controller) {
      controller.enqueue(chunk);
      text += decoder.decode(chunk, { stream: true });
      if (!sse) return;
      let nl;
      while ((nl = text.indexOf('\n')) >= 0) {
        const line = text.slice(0, nl).replace(/\r$/, '');
        text = text.slice(nl + 1);
        if (line.startsWith('data:')) note(line.slice(5).trim());
      }
    },
    flush() {
      if (!sse && text.trim()) note(text);
    },
  });
  return new Response(res.body.pipeThrough(tap), { status: res.status, statusText: res.statusText, headers: res.headers });
}

/** A short description of a JSON-RPC message: its method or kind, id, and progress. */
function summary(m) {
  const kind = m.method ?? ('result' in m ? 'result' : 'error');
  const id = m.id !== undefined ? ` id=${m.id}` : '';
  const progress = m.method === 'notifications/progress' ? ` ${m.params?.progress}/${m.params?.total}` : '';
  return `${kind}${id}${progress}`;
}

/**
 * What `seen` sent and received since `since` (a Date.now()), one per line, and the requests
 * still unanswered: for a failure.
 */
function wireSince(seen, since) {
  const lines = seen.wire.filter((w) => w.at >= since).map((w) => `  +${w.at - since} ms on ${w.via}: ${w.what}`);
  const open = seen.http.filter((h) => h.at >= since && h.status === null).map((h) => `${h.method} ${h.path}`);
  return (lines.length ? `meanwhile:\n${lines.join('\n')}` : 'nothing sent or received meanwhile')
    + (open.length ? `\nstill without an HTTP response: ${open.join(', ')}` : '');
}

const opts = { timeout: REQUEST_TIMEOUT_MS };

function text0(result) {
  return result?.content?.[0]?.type === 'text' ? result.content[0].text : undefined;
}

function startsWithBytes(b64, bytes) {
  const got = Buffer.from(String(b64), 'base64');
  return got.length >= bytes.length && bytes.every((b, i) => got[i] === b);
}
const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const RIFF_MAGIC = [0x52, 0x49, 0x46, 0x46];

// What each tool is called with, and what its result must show. `touch_watched_resource`
// is called by the subscription checks (twice), not here.
const TOOLS = {
  test_simple_text: {
    args: {},
    verify: (r) => {
      expect(!r.isError, `isError: ${show(r)}`);
      expect(text0(r) === 'This is a simple text response for testing.', `text: ${show(r)}`);
    },
  },
  test_image_content: {
    args: {},
    verify: (r) => {
      const c = r.content?.[0];
      expect(!r.isError && c?.type === 'image' && c.mimeType === 'image/png', `content: ${show(r)}`);
      expect(startsWithBytes(c.data, PNG_MAGIC), 'data is not a base64 PNG');
    },
  },
  test_audio_content: {
    args: {},
    verify: (r) => {
      const c = r.content?.[0];
      expect(!r.isError && c?.type === 'audio' && c.mimeType === 'audio/wav', `content: ${show(r)}`);
      expect(startsWithBytes(c.data, RIFF_MAGIC), 'data is not a base64 WAV');
    },
  },
  test_embedded_resource: {
    args: {},
    verify: (r) => {
      const c = r.content?.[0];
      expect(!r.isError && c?.type === 'resource', `content: ${show(r)}`);
      expect(c.resource?.uri === 'test://embedded-resource' && c.resource?.text === 'This is an embedded resource content.',
        `resource: ${show(c.resource)}`);
    },
  },
  test_multiple_content_types: {
    args: {},
    verify: (r) => {
      const types = (r.content ?? []).map((c) => c.type);
      expect(!r.isError && show(types) === show(['text', 'image', 'resource']), `content types ${show(types)}: ${show(r)}`);
    },
  },
  test_error_handling: {
    args: {},
    verify: (r) => {
      expect(r.isError === true, `isError is not true: ${show(r)}`);
      expect(/intentionally returns an error/.test(text0(r) ?? ''), `text: ${show(r)}`);
    },
  },
  test_tool_with_logging: {
    args: {},
    before: async (t) => {
      await t.client.setLoggingLevel('debug', opts);
    },
    verify: async (r, t, { logsBefore }) => {
      expect(!r.isError && text0(r) === 'Logging test completed', `result: ${show(r)}`);
      const arrived = await waitFor(() => t.seen.logs.length - logsBefore >= 3);
      const logs = t.seen.logs.slice(logsBefore);
      expect(arrived, `${logs.length} notifications/message within ${WAIT_MS} ms, want 3: ${show(logs)}`);
      expect(logs.length === 3, `${logs.length} notifications/message, want 3: ${show(logs)}`);
      return `3 notifications/message: ${logs.map((l) => `${l.level} ${show(l.data)}`).join('; ')}`;
    },
  },
  test_tool_with_progress: {
    args: {},
    progress: true,
    verify: async (r, t, { progress, mark }) => {
      expect(!r.isError && text0(r) === 'Progress test completed', `result: ${show(r)}`);
      const arrived = await waitFor(() => progress.length >= 3);
      expect(arrived, `${progress.length} progress notifications within ${WAIT_MS} ms, want 3: ${show(progress)}`);
      const want = [0, 50, 100].map((p) => ({ progress: p, total: 100 }));
      expect(show(progress) === show(want), `progress notifications ${show(progress)}, want ${show(want)}`);
      // On the wire, too: all three came before the result (the order the SDK must keep).
      const order = t.seen.wire.slice(mark).filter((w) => w.via !== 'onerror' && !/^(sent|HTTP) /.test(w.what))
        .map((w) => w.what.replace(/ id=.*$/, ''));
      const wantOrder = ['notifications/progress 0/100', 'notifications/progress 50/100', 'notifications/progress 100/100', 'result'];
      expect(show(order) === show(wantOrder), `received in this order: ${show(order)}, want ${show(wantOrder)}`);
      return 'progress 0, 50, 100 of 100, all before the result';
    },
  },
  test_sampling: {
    args: { prompt: SAMPLING_PROMPT },
    verify: (r, t, { before }) => {
      const asked = t.seen.sampling.slice(before.sampling);
      expect(asked.length === 1, `the sampling handler was asked ${asked.length} times, want 1: ${show(asked)}`);
      const msg = asked[0].messages?.[0];
      expect(msg?.role === 'user' && msg?.content?.text === SAMPLING_PROMPT,
        `sampling/createMessage params do not carry the prompt: ${show(asked[0])}`);
      expect(!r.isError && (text0(r) ?? '').includes(SAMPLING_ANSWER), `result does not contain the handler's answer: ${show(r)}`);
      return show(text0(r));
    },
  },
  test_elicitation: {
    args: { message: ELICITATION_MESSAGE },
    verify: (r, t, { before }) => {
      const asked = t.seen.elicitation.slice(before.elicitation);
      expect(asked.length === 1, `the elicitation handler was asked ${asked.length} times, want 1: ${show(asked)}`);
      expect(asked[0].message === ELICITATION_MESSAGE, `elicitation/create params do not carry the message: ${show(asked[0])}`);
      const text = text0(r) ?? '';
      expect(!r.isError && text.includes('action="accept"') && text.includes(ELICITATION_VALUES.username)
        && text.includes(ELICITATION_VALUES.email), `result does not carry the handler's answer: ${show(r)}`);
      return show(text);
    },
  },
  test_elicitation_sep1034_defaults: {
    args: {},
    verify: (r, t, { before }) => {
      const asked = t.seen.elicitation.slice(before.elicitation);
      expect(asked.length === 1, `the elicitation handler was asked ${asked.length} times, want 1`);
      const props = asked[0].requestedSchema?.properties ?? {};
      expect(props.name?.default === 'John Doe' && props.age?.default === 30 && props.verified?.default === true,
        `requestedSchema lost its defaults: ${show(asked[0].requestedSchema)}`);
      const text = text0(r) ?? '';
      expect(!r.isError && text.includes('action=accept') && text.includes(ELICITATION_VALUES.name), `result: ${show(r)}`);
    },
  },
  test_elicitation_sep1330_enums: {
    args: {},
    verify: (r, t, { before }) => {
      const asked = t.seen.elicitation.slice(before.elicitation);
      expect(asked.length === 1, `the elicitation handler was asked ${asked.length} times, want 1`);
      const props = asked[0].requestedSchema?.properties ?? {};
      expect(props.titledSingle?.oneOf?.length === 3 && props.legacyEnum?.enumNames?.length === 3
        && props.titledMulti?.items?.anyOf?.length === 3, `requestedSchema lost its enums: ${show(asked[0].requestedSchema)}`);
      const text = text0(r) ?? '';
      expect(!r.isError && text.includes('action=accept') && text.includes('value3'), `result: ${show(r)}`);
    },
  },
  json_schema_2020_12_tool: {
    args: { name: 'parity', address: { street: '1 Rue de la Paix', city: 'Paris' }, contactMethod: 'email', email: 'parity@example.com' },
    verify: (r) => {
      const text = text0(r) ?? '';
      expect(!r.isError && text.startsWith('received ') && text.includes('Rue de la Paix'), `result: ${show(r)}`);
    },
  },
  test_reconnection: {
    args: {},
    verify: (r) => {
      expect(!r.isError && text0(r) === 'Reconnection test completed successfully', `result: ${show(r)}`);
    },
  },
  // The diagnostic tools of conformance 0.2.0-alpha.12's 2026-07-28 scenarios; over these
  // 2025-era transports they ask and log like any tool.
  test_missing_capability: {
    args: {},
    verify: (r, t, { before }) => {
      const asked = t.seen.sampling.slice(before.sampling);
      expect(asked.length === 1, `the sampling handler was asked ${asked.length} times, want 1`);
      expect(!r.isError && (text0(r) ?? '').includes(SAMPLING_ANSWER), `result: ${show(r)}`);
    },
  },
  test_logging_tool: {
    args: {},
    verify: (r) => {
      expect(!r.isError && text0(r) === 'logged', `result: ${show(r)}`);
    },
  },
  // The multi-round-trip fixtures of 0.2.0-alpha.12: over these 2025-era transports their
  // questions go to the client's handlers as requests, and they complete in one call.
  ...Object.fromEntries([
    ['test_input_required_result_elicitation', /^Hello, Parity Tester!$/],
    ['test_input_required_result_sampling', /^The model says: /],
    ['test_input_required_result_list_roots', /^roots: \[/],
    ['test_input_required_result_request_state', /^no state: confirmed=/],
    ['test_input_required_result_multiple_inputs', /Parity Tester/],
    ['test_input_required_result_multi_round', /^"Parity Tester" likes /],
    ['test_input_required_result_tampered_state', /^confirmed=/],
  ].map(([name, want]) => [name, {
    args: {},
    verify: (r) => {
      expect(!r.isError && want.test(text0(r) ?? ''), `result ${show(r)}, want text matching ${want}`);
    },
  }])),
  // Asks only what the client declared: these clients declare sampling and elicitation,
  // so both are asked.
  test_input_required_result_capabilities: {
    args: {},
    verify: (r, t, { before }) => {
      const sampled = t.seen.sampling.length - before.sampling;
      const elicited = t.seen.elicitation.length - before.elicitation;
      expect(sampled === 1 && elicited === 1, `asked: ${sampled} sampling, ${elicited} elicitation; want 1 and 1`);
      expect(!r.isError && (text0(r) ?? '').startsWith('2 answer(s)'), `result: ${show(r)}`);
    },
  },
  // SEP-2243's Mcp-Param-* headers are a 2026-07-28 matter: over these transports the
  // tool is called as any other.
  test_custom_headers: {
    args: { region: 'eu-west', priority: 2 },
    verify: (r) => {
      expect(!r.isError && text0(r) === 'region eu-west', `result: ${show(r)}`);
    },
  },
  test_streaming_elicitation: {
    args: {},
    verify: (r, t, { before }) => {
      const asked = t.seen.elicitation.slice(before.elicitation);
      expect(asked.length === 1 && asked[0].message === 'Your name?', `elicitation asked: ${show(asked)}`);
      expect(!r.isError && (text0(r) ?? '').includes(ELICITATION_VALUES.name), `result: ${show(r)}`);
    },
  },
};
// touch_watched_resource is called by the subscription checks below; the two list-change
// hooks of conformance 0.2.0-alpha.12 change the example's lists for every session, which
// the clients would then list again mid-run: they are exercised by scripts/conformance.
const CALLED_ELSEWHERE = new Set(['touch_watched_resource', 'test_trigger_tool_change', 'test_trigger_prompt_change']);

const PROMPT_ARGS = {
  test_simple_prompt: {},
  test_prompt_with_arguments: { arg1: 'first', arg2: 'second' },
  test_prompt_with_embedded_resource: { resourceUri: 'test://static-text' },
  test_prompt_with_image: {},
  // Asks the client's elicitation handler for its context before it renders.
  test_input_required_result_prompt: {},
};

/** Runs every check on one transport; returns its record (the results to compare). */
async function exercise(t) {
  const L = `[${t.label}]`;
  const { client, seen } = t;
  const rec = {};
  const tcheck = (name, fn) => check(name, fn, (started) => wireSince(seen, started));

  if (t.kind === 'streamable') {
    // The SDK opens the GET stream after the 202 to notifications/initialized, by itself.
    await tcheck(`${L} the SDK client opened the session's GET /mcp stream by itself (200 text/event-stream)`, async () => {
      const isStream = (h) => h.method === 'GET' && h.status === 200 && /^text\/event-stream/.test(h.type ?? '');
      const opened = await waitFor(() => seen.http.some(isStream));
      const gets = seen.http.filter((h) => h.method === 'GET');
      expect(opened, `no GET /mcp answered 200 text/event-stream within ${WAIT_MS} ms; GETs: ${show(gets)}`);
      return `${gets.length} GET`;
    });
  }

  rec.initialize = {
    serverInfo: client.getServerVersion(),
    capabilities: client.getServerCapabilities(),
    instructions: client.getInstructions() ?? null,
    protocolVersion: t.kind === 'sse' ? t.transport._protocolVersion : t.transport.protocolVersion,
  };

  // ---- lists
  let tools = [];
  let prompts = [];
  let resources = [];
  await tcheck(`${L} tools/list`, async () => {
    rec.tools = await client.listTools(undefined, opts);
    tools = rec.tools.tools ?? [];
    const schema = tools.find((x) => x.name === 'json_schema_2020_12_tool')?.inputSchema;
    expect(schema?.$schema === 'https://json-schema.org/draft/2020-12/schema' && schema?.$defs?.address
      && schema?.additionalProperties === false, `json_schema_2020_12_tool's inputSchema was changed: ${show(schema)}`);
    return `${tools.length} tools`;
  });
  await tcheck(`${L} prompts/list`, async () => {
    rec.prompts = await client.listPrompts(undefined, opts);
    prompts = rec.prompts.prompts ?? [];
    return `${prompts.length} prompts`;
  });
  await tcheck(`${L} resources/list`, async () => {
    rec.resources = await client.listResources(undefined, opts);
    resources = rec.resources.resources ?? [];
    expect(resources.some((r) => r.uri === WATCHED), `${WATCHED} not listed: ${show(resources)}`);
    return `${resources.length} resources`;
  });
  await tcheck(`${L} resources/templates/list`, async () => {
    rec.templates = await client.listResourceTemplates(undefined, opts);
    const uris = (rec.templates.resourceTemplates ?? []).map((x) => x.uriTemplate);
    expect(uris.includes('test://template/{id}/data'), `templates: ${show(uris)}`);
    return uris.join(', ');
  });

  // ---- every tool
  rec.toolCalls = {};
  for (const tool of tools) {
    if (CALLED_ELSEWHERE.has(tool.name)) continue;
    const spec = TOOLS[tool.name];
    if (!spec) {
      report(false, `${L} tools/call ${tool.name}`, 'a tool this script does not know: add its arguments and checks to TOOLS');
      continue;
    }
    await tcheck(`${L} tools/call ${tool.name}`, async () => {
      if (spec.before) await spec.before(t);
      const before = { sampling: seen.sampling.length, elicitation: seen.elicitation.length };
      const mark = seen.wire.length; // what arrives from here on belongs to this call
      const logsBefore = seen.logs.length;
      const progress = [];
      const callOpts = spec.progress ? { ...opts, onprogress: (p) => progress.push(p) } : opts;
      const result = await client.callTool({ name: tool.name, arguments: spec.args }, undefined, callOpts);
      const extra = await spec.verify(result, t, { logsBefore, progress, before, mark });
      rec.toolCalls[tool.name] = { result, ...(spec.progress ? { progress } : {}) };
      return extra;
    });
  }
  // What the client was asked and told while the tools ran (compared across transports).
  rec.samplingRequests = seen.sampling.slice();
  rec.elicitationRequests = seen.elicitation.slice();
  rec.logMessages = seen.logs.slice();

  // ---- every resource, and a template URI
  rec.reads = {};
  for (const { uri, mimeType } of resources) {
    await tcheck(`${L} resources/read ${uri}`, async () => {
      const res = await client.readResource({ uri }, opts);
      const c = res.contents?.[0];
      expect(res.contents?.length === 1 && c?.uri === uri, `contents: ${show(res)}`);
      expect(c.mimeType === mimeType, `mimeType ${show(c.mimeType)}, listed as ${show(mimeType)}`);
      expect(typeof c.text === 'string' || typeof c.blob === 'string', `neither text nor blob: ${show(c)}`);
      if (typeof c.blob === 'string') expect(startsWithBytes(c.blob, PNG_MAGIC), 'blob is not a base64 PNG');
      rec.reads[uri] = res;
      return typeof c.text === 'string' ? 'text' : `blob, ${Buffer.from(c.blob, 'base64').length} bytes`;
    });
  }
  await tcheck(`${L} resources/read ${TEMPLATE_URI} (template)`, async () => {
    const res = await client.readResource({ uri: TEMPLATE_URI }, opts);
    const body = JSON.parse(res.contents?.[0]?.text ?? 'null');
    expect(res.contents?.[0]?.uri === TEMPLATE_URI && body?.id === '42' && body?.templateTest === true,
      `contents: ${show(res)}`);
    rec.reads[TEMPLATE_URI] = res;
  });

  // ---- every prompt, and a completion
  rec.promptGets = {};
  for (const { name } of prompts) {
    await tcheck(`${L} prompts/get ${name}`, async () => {
      expect(name in PROMPT_ARGS, 'a prompt this script does not know: add its arguments to PROMPT_ARGS');
      const res = await client.getPrompt({ name, arguments: PROMPT_ARGS[name] }, opts);
      expect(Array.isArray(res.messages) && res.messages.length > 0, `no messages: ${show(res)}`);
      const texts = res.messages.map((m) => m.content?.text).filter(Boolean).join(' ');
      for (const value of Object.values(PROMPT_ARGS[name])) {
        if (name !== 'test_prompt_with_embedded_resource') {
          expect(texts.includes(value), `the messages do not carry the argument ${show(value)}: ${show(res)}`);
        }
      }
      if (name === 'test_prompt_with_embedded_resource') {
        expect(res.messages[0].content?.resource?.uri === PROMPT_ARGS[name].resourceUri, `messages: ${show(res)}`);
      }
      rec.promptGets[name] = res;
      return `${res.messages.length} messages`;
    });
  }
  await tcheck(`${L} completion/complete test_prompt_with_arguments arg1 "pa"`, async () => {
    const res = await client.complete(
      { ref: { type: 'ref/prompt', name: 'test_prompt_with_arguments' }, argument: { name: 'arg1', value: 'pa' } },
      opts,
    );
    const values = res.completion?.values;
    expect(show(values) === show(['paris', 'park', 'party']), `values ${show(values)}, want ["paris","park","party"]`);
    rec.complete = res;
    return values.join(', ');
  });

  // ---- subscription
  rec.subscription = {};
  const subscribed = await tcheck(`${L} resources/subscribe ${WATCHED}`, async () => {
    rec.subscription.subscribe = await client.subscribeResource({ uri: WATCHED }, opts);
  });
  if (subscribed) {
    await tcheck(`${L} touch_watched_resource while subscribed: notifications/resources/updated for ${WATCHED}`, async () => {
      const before = seen.updated.length;
      const started = Date.now();
      rec.subscription.touch = await client.callTool({ name: 'touch_watched_resource', arguments: {} }, undefined, opts);
      expect(!rec.subscription.touch.isError && text0(rec.subscription.touch) === 'notified', `result: ${show(rec.subscription.touch)}`);
      const arrived = await waitFor(() => seen.updated.length > before);
      const streams = seen.http.filter((h) => h.method === 'GET').map((h) => `GET ${h.path} ${h.status} ${h.type}`);
      expect(arrived, `no notifications/resources/updated within ${WAIT_MS} ms of the call (its result came back); `
        + `the client's GET requests: ${show(streams)}; transport errors: ${show(seen.errors)}`);
      rec.subscription.updated = seen.updated.slice(before);
      expect(rec.subscription.updated.every((u) => u.uri === WATCHED), `for another URI: ${show(rec.subscription.updated)}`);
      // Which exchange carried it: on /mcp it must be the session's GET stream (the
      // touch's own POST answers the call and nothing else).
      const carriers = seen.http.filter((h) => h.carried.includes('notifications/resources/updated'))
        .map((h) => `${h.method} ${h.path} (${h.type})`);
      if (t.kind === 'streamable') {
        expect(carriers.length === 1 && carriers[0].startsWith('GET /mcp'),
          `notifications/resources/updated came on ${show(carriers)}, want the GET /mcp stream only`);
      }
      return `after ${Date.now() - started} ms, on ${carriers.join(', ')}`;
    });
    await tcheck(`${L} resources/unsubscribe ${WATCHED}`, async () => {
      rec.subscription.unsubscribe = await client.unsubscribeResource({ uri: WATCHED }, opts);
    });
    await tcheck(`${L} touch_watched_resource after unsubscribe: no notification within ${UNSUBSCRIBED_WINDOW_MS} ms`, async () => {
      const before = seen.updated.length;
      const again = await client.callTool({ name: 'touch_watched_resource', arguments: {} }, undefined, opts);
      expect(!again.isError, `result: ${show(again)}`);
      const arrived = await waitFor(() => seen.updated.length > before, UNSUBSCRIBED_WINDOW_MS);
      expect(!arrived, `notifications/resources/updated after unsubscribe: ${show(seen.updated.slice(before))}`);
    });
  }

  // ---- arguments that do not fit
  await tcheck(`${L} tools/call test_sampling {prompt: 5}: isError naming prompt, sampling not asked`, async () => {
    const before = seen.sampling.length;
    const res = await client.callTool({ name: 'test_sampling', arguments: { prompt: 5 } }, undefined, opts);
    const text = (res.content ?? []).map((c) => c.text ?? '').join(' ');
    expect(res.isError === true, `isError is not true: ${show(res)}`);
    expect(/\bprompt\b/.test(text), `the message does not name \`prompt\`: ${show(text)}`);
    expect(seen.sampling.length === before, 'the sampling handler was asked anyway');
    rec.badArguments = res;
    return show(text);
  });

  rec.rootsRequests = seen.roots;
  return rec;
}

// ---- comparing the two records -----------------------------------------------------------

/** The paths where `a` and `b` differ, with both values (JSON), at most `limit` lines. */
function diff(a, b, path = '$', out = [], limit = 40) {
  if (out.length >= limit) return out;
  const kind = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  if (kind(a) !== kind(b) || (kind(a) !== 'object' && kind(a) !== 'array')) {
    if (show(a) !== show(b)) out.push(`${path}: SSE ${show(a)} | Streamable HTTP ${show(b)}`);
    return out;
  }
  if (kind(a) === 'array') {
    if (a.length !== b.length) out.push(`${path}: SSE has ${a.length} items, Streamable HTTP ${b.length}`);
    for (let i = 0; i < Math.min(a.length, b.length); i++) diff(a[i], b[i], `${path}[${i}]`, out, limit);
    return out;
  }
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const p = `${path}.${key}`;
    if (!(key in a)) out.push(`${p}: only in Streamable HTTP: ${show(b[key])}`);
    else if (!(key in b)) out.push(`${p}: only in SSE: ${show(a[key])}`);
    else diff(a[key], b[key], p, out, limit);
  }
  return out;
}

// ---- a client-side workaround (sdk-order.mjs says why) ------------------------------------
// PARITY_SDK_ORDER_SHIM=0 turns it off (to see the SDK's behaviour, or once it is fixed).
const ORDER_SHIM = process.env.PARITY_SDK_ORDER_SHIM !== '0';

// ---- main --------------------------------------------------------------------------------

const sides = [makeClient('sse'), makeClient('streamable')];

async function main() {
  console.log(ORDER_SHIM
    ? '# responses are handled in arrival order after the notifications before them (keepArrivalOrder, SDK issue #2580)'
    : '# PARITY_SDK_ORDER_SHIM=0: the SDK handles responses before the notifications that came just before them');
  for (const t of sides) {
    const ok = await check(`[${t.label}] connect to ${t.transport._url.href} and initialize (capabilities sampling, elicitation, roots)`, async () => {
      await t.client.connect(t.transport);
      if (ORDER_SHIM) keepArrivalOrder(t.transport);
      const v = t.client.getServerVersion();
      return `server ${v?.name} ${v?.version}`;
    });
    if (!ok) return;
  }
  const records = [];
  for (const t of sides) records.push(await exercise(t));
  const [sse] = sides;

  // After its unsubscribe the SSE client must have heard nothing, also from the touches
  // the Streamable HTTP run made afterwards (another session).
  await check('[SSE] no notifications/resources/updated after its unsubscribe, across the whole run', async () => {
    const n = records[0].subscription?.updated?.length ?? 0;
    expect(sse.seen.updated.length === n, `${sse.seen.updated.length} in all, ${n} while subscribed`);
  });
  for (const t of sides) {
    await check(`[${t.label}] no transport or protocol errors reported`, async () => {
      expect(t.seen.errors.length === 0, t.seen.errors.join('\n'));
    });
  }
  await check('SSE and Streamable HTTP gave the same results (nothing removed before comparing)', async () => {
    const lines = diff(records[0], records[1]);
    expect(lines.length === 0, `the records differ:\n${lines.join('\n')}`);
    return `${show(records[0]).length} bytes of JSON each`;
  });
}

try {
  await main();
} catch (err) {
  report(false, `unexpected exception (in: ${inProgress()})`, describeError(err));
}
for (const t of sides) {
  try {
    if (t.kind === 'streamable' && t.transport.sessionId) await t.transport.terminateSession();
    await t.client.close();
  } catch (err) {
    console.log(`# error while closing ${t.label}: ${describeError(err)}`);
  }
}
clearTimeout(timer);
finish();
