#!/usr/bin/env node
// Gateway check, driven by scripts/interop: a real stdio MCP server from npm,
// @modelcontextprotocol/server-everything (pinned in package.json), run by mcp-warden's
// bridge (`mcp-warden -- node .../server-everything/dist/index.js stdio`, one child per
// session), driven by the official TypeScript SDK client (1.32.2) over both transports.
//
// Usage: node gateway.mjs <baseUrl>      e.g. node gateway.mjs http://127.0.0.1:3000
//
// On each transport in turn (SSEClientTransport on /sse, StreamableHTTPClientTransport on
// /mcp) one client that declares sampling, elicitation and roots, and answers them with
// fixed values, checks:
//   - initialize reaches the child and its answer is the client's: serverInfo
//     `mcp-servers/everything`, the child's capabilities (tools, prompts, resources with
//     subscribe, logging, completions); on /mcp a session id and 2025-11-25; a new child
//     process of the server (SERVER_PID) per session;
//   - tools/list holds the child's tools, including the three it registers only when the
//     relayed initialize declared sampling, elicitation and roots;
//   - tools/call echo, get-structured-content (structuredContent, checked by the SDK against
//     the outputSchema), get-tiny-image (image content);
//   - trigger-sampling-request: the client's sampling handler is asked (the child's
//     sampling/createMessage relayed) and its answer is in the result;
//   - trigger-elicitation-request: the client's elicitation handler is asked and its
//     accepted values are in the result;
//   - trigger-long-running-operation with a progress token: onprogress gets 1..4 of 4, in
//     order, before the result;
//   - roots: the child asks roots/list by itself after initialize (outside any request:
//     the session's stream; on /mcp the GET stream the SDK opens); get-roots-list shows the
//     client's root; after notifications/roots/list_changed the child asks again and sees
//     the new root;
//   - resources/list + read of the first, resources/templates/list + read of a template
//     URI; resources/subscribe, then toggle-subscriber-updates: a
//     notifications/resources/updated for that URI arrives; toggled off, unsubscribed;
//   - prompts/list, prompts/get simple-prompt and args-prompt (arguments), and
//     completion/complete of completable-prompt's `department`;
//   - logging/setLevel debug, then toggle-simulated-logging: a notifications/message
//     arrives; toggled off;
//   - cancellation: a long-running call aborted by the client after its first progress
//     (the SDK sends notifications/cancelled) rejects, and the session goes on (echo);
//   - ping; an unknown tool answers with an error (as the child says);
//   - get-env: the child's whole environment is the allow-list (PATH, HOME) and the
//     verified caller: MCP_USER_SUB / _EMAIL / _GROUPS equal EXPECT_SUBJECT / EXPECT_EMAIL /
//     EXPECT_GROUPS with a token, no MCP_USER_* without one; no variable holds the token;
//   - the session ends (on /mcp: DELETE, then 404; on /sse: the stream closed) and its
//     child process is gone (SERVER_PID's children, in /proc).
// Then both transports at once: two sessions, two children, each with its own roots
// (get-roots-list in each names only its own).
//
// Env:
//   MCP_TOKEN       sent as `Authorization: Bearer` on every request when set
//   EXPECT_SUBJECT, EXPECT_EMAIL, EXPECT_GROUPS
//                   with MCP_TOKEN: what MCP_USER_SUB, MCP_USER_EMAIL and MCP_USER_GROUPS
//                   of the child must be
//   SERVER_PID      the server's pid: its child processes are counted in /proc (one per
//                   open session, none left after the sessions end); unset: not checked
//   GATEWAY_SDK_ORDER_SHIM  `0` turns off keepArrivalOrder (sdk-order.mjs: a workaround for
//                   an SDK 1.32.2 client race that drops a final progress notification on
//                   /sse, typescript-sdk#2580)
//
// Prints one TAP-like line per check (`ok - [transport] ...` / `not ok - ...`), then
// `N passed, M failed`. Exits non-zero on any failed check, on any unexpected exception, or
// after OVERALL_TIMEOUT_MS. Every wait polls and is bounded (WAIT_MS); no sleep stands in for
// an event.

import { readdirSync, readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  McpError,
  ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { check, describeError, expect, finish, inProgress, report, show, waitFor as pollUntil, watchdog } from './tap.mjs';
import { pingSession, sdkTransport } from './mcp-http.mjs';
import { keepArrivalOrder } from './sdk-order.mjs';

const OVERALL_TIMEOUT_MS = 60_000;
const REQUEST_TIMEOUT_MS = 10_000; // per request (the SDK's default is 60 s)
const WAIT_MS = 5_000; // any awaited event
const POLL_MS = 10;

const SAMPLING_ANSWER = 'gateway: the fixed sampling answer';
const SAMPLING_PROMPT = 'gateway: what is 2 + 2?';
const ELICITED = { name: 'Gateway Tester', check: true };
const ALLOWED_ENV = ['PATH', 'HOME']; // UPSTREAM_ENV's default
const CONDITIONAL_TOOLS = ['trigger-sampling-request', 'trigger-elicitation-request', 'get-roots-list'];
const EXPECTED_TOOLS = [
  'echo', 'get-env', 'get-structured-content', 'get-tiny-image', 'trigger-long-running-operation',
  'toggle-simulated-logging', 'toggle-subscriber-updates', ...CONDITIONAL_TOOLS,
];
const EXPECTED_PROMPTS = ['simple-prompt', 'args-prompt', 'completable-prompt', 'resource-prompt'];
const TEMPLATE = 'demo://resource/dynamic/text/{resourceId}';

const baseArg = process.argv[2];
if (!baseArg) {
  console.error('usage: node gateway.mjs <baseUrl>   (e.g. http://127.0.0.1:3000)');
  process.exit(2);
}
const base = baseArg.replace(/\/+$/, '');
const token = process.env.MCP_TOKEN || '';
const expectSubject = process.env.EXPECT_SUBJECT || '';
const expectEmail = process.env.EXPECT_EMAIL || '';
const expectGroups = process.env.EXPECT_GROUPS || '';
const serverPid = process.env.SERVER_PID ? Number(process.env.SERVER_PID) : null;

// ---- reporting (tap.mjs) ------------------------------------------------------------------
/** Polls `cond` every POLL_MS until it holds (true) or `ms` have passed (false). */
const waitFor = (cond, ms = WAIT_MS) => pollUntil(cond, ms, POLL_MS);

const timer = watchdog(OVERALL_TIMEOUT_MS);

/** The pids of SERVER_PID's child processes (from /proc), or null when not watched. */
function serverChildren() {
  if (!serverPid) return null;
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so from the last ')'
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === serverPid) pids.push(Number(entry));
  }
  return pids;
}

// The SDK 1.32.2 client race that sdk-order.mjs works around (typescript-sdk#2580): without
// it, a progress notification sent just before its response may be dropped.
const ORDER_SHIM = process.env.GATEWAY_SDK_ORDER_SHIM !== '0';

// ---- one client ----------------------------------------------------------------------------

/** A client for `kind` ('sse' or 'streamable') whose roots are `roots`, and what it saw. */
function makeClient(kind, roots) {
  const seen = { sampling: [], elicitation: [], roots: 0, logs: [], updated: [], errors: [] };
  const client = new Client(
    { name: `mcp-warden-gateway-${kind}`, version: '0.0.0' },
    { capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } } },
  );
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
    seen.sampling.push(req.params);
    return { role: 'assistant', content: { type: 'text', text: SAMPLING_ANSWER }, model: 'gateway-fixed' };
  });
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    seen.elicitation.push(req.params);
    return { action: 'accept', content: ELICITED };
  });
  client.setRequestHandler(ListRootsRequestSchema, async () => {
    seen.roots += 1;
    return { roots: client.roots };
  });
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    seen.logs.push(n.params);
  });
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
    seen.updated.push(n.params);
  });
  client.onerror = (err) => {
    if (!client.closing) seen.errors.push(describeError(err));
  };
  client.roots = roots;
  const transport = sdkTransport(base, kind, token);
  return { client, transport, seen, kind };
}

const opts = { timeout: REQUEST_TIMEOUT_MS };

function texts(result) {
  return (result.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
}

async function call(client, name, args = {}, extra = {}) {
  const res = await client.callTool({ name, arguments: args }, undefined, { ...opts, ...extra });
  expect(!res.isError, `${name}: isError: ${show(res)}`);
  return res;
}

// ---- the checks of one transport ---------------------------------------------------------

async function oneTransport(kind) {
  const label = `[${kind}]`;
  const root = { uri: `file:///tmp/mcp-warden-gateway-${kind}`, name: `gateway-${kind}` };
  const c = makeClient(kind, [root]);
  const { client, transport, seen } = c;
  const before = serverChildren();

  const connected = await check(`${label} initialize: the child's answer is the client's`, async () => {
    await client.connect(transport, opts);
    if (ORDER_SHIM) keepArrivalOrder(transport);
    const info = client.getServerVersion();
    const caps = client.getServerCapabilities() ?? {};
    expect(info?.name === 'mcp-servers/everything', `serverInfo ${show(info)}, want the child's (mcp-servers/everything)`);
    for (const cap of ['tools', 'prompts', 'resources', 'logging', 'completions']) {
      expect(caps[cap] !== undefined, `capability ${cap} missing: ${show(caps)}`);
    }
    expect(caps.resources?.subscribe === true, `resources.subscribe missing: ${show(caps)}`);
    if (kind === 'streamable') {
      expect(typeof transport.sessionId === 'string' && transport.sessionId.length > 0, 'no Mcp-Session-Id');
      expect(transport.protocolVersion === '2025-11-25', `protocolVersion ${show(transport.protocolVersion)}`);
    }
    return `${info.name} ${info.version}, capabilities ${Object.keys(caps).join(',')}`;
  });
  if (!connected) return;

  let mine = null; // this session's child
  if (before) {
    await check(`${label} the session has a child process of its own`, async () => {
      let now = [];
      const found = await waitFor(() => {
        now = serverChildren().filter((p) => !before.includes(p));
        return now.length === 1;
      });
      expect(found, `new children of the server: ${show(now)} (before: ${show(before)}), want exactly one`);
      [mine] = now;
      return `pid ${mine}`;
    });
  }

  await check(`${label} tools/list: the child's tools, with those it offers only to clients declaring sampling, elicitation and roots`, async () => {
    const names = (await client.listTools(undefined, opts)).tools.map((t) => t.name);
    const missing = EXPECTED_TOOLS.filter((n) => !names.includes(n));
    expect(missing.length === 0, `missing ${show(missing)} in ${show(names)}`);
    return `${names.length} tools`;
  });

  await check(`${label} tools/call echo`, async () => {
    const text = texts(await call(client, 'echo', { message: `hello ${kind}` }));
    expect(text === `Echo: hello ${kind}`, `text ${show(text)}`);
  });

  await check(`${label} tools/call get-structured-content (structuredContent, validated by the SDK)`, async () => {
    const res = await call(client, 'get-structured-content', { location: 'New York' });
    expect(res.structuredContent && typeof res.structuredContent === 'object', `no structuredContent: ${show(res)}`);
    return show(res.structuredContent);
  });

  await check(`${label} tools/call get-tiny-image (image content)`, async () => {
    const res = await call(client, 'get-tiny-image');
    const image = (res.content ?? []).find((x) => x.type === 'image');
    expect(image && image.mimeType === 'image/png' && image.data.length > 0, `no PNG image in ${show(res).slice(0, 300)}`);
  });

  await check(`${label} sampling: the child's sampling/createMessage is answered by the client's handler`, async () => {
    const res = await call(client, 'trigger-sampling-request', { prompt: SAMPLING_PROMPT, maxTokens: 20 });
    expect(seen.sampling.length === 1, `the sampling handler was asked ${seen.sampling.length} times`);
    const asked = show(seen.sampling[0].messages);
    expect(asked.includes(SAMPLING_PROMPT), `the handler was asked ${asked}`);
    expect(texts(res).includes(SAMPLING_ANSWER), `the result does not hold the handler's answer: ${show(res)}`);
  });

  await check(`${label} elicitation: the child's elicitation/create is answered by the client's handler`, async () => {
    const res = await call(client, 'trigger-elicitation-request');
    expect(seen.elicitation.length === 1, `the elicitation handler was asked ${seen.elicitation.length} times`);
    expect(seen.elicitation[0].requestedSchema?.properties?.name, `requestedSchema ${show(seen.elicitation[0])}`);
    const text = texts(res);
    expect(text.includes(`- Name: ${ELICITED.name}`) && text.includes('- Agreed to terms: true'), `result ${show(text)}`);
  });

  await check(`${label} progress: onprogress gets 1..4 of 4 before the result`, async () => {
    const progress = [];
    const res = await call(client, 'trigger-long-running-operation', { duration: 0.4, steps: 4 }, {
      onprogress: (p) => progress.push(`${p.progress}/${p.total}`),
    });
    expect(show(progress) === show(['1/4', '2/4', '3/4', '4/4']), `progress ${show(progress)}`);
    expect(texts(res).includes('Long running operation completed'), `result ${show(res)}`);
  });

  await check(`${label} roots: the child asks roots/list by itself after initialize, and get-roots-list shows the client's root`, async () => {
    expect(await waitFor(() => seen.roots >= 1), 'the roots handler was never asked');
    const text = texts(await call(client, 'get-roots-list'));
    expect(text.includes(root.uri), `get-roots-list: ${show(text)}`);
  });

  await check(`${label} roots: after notifications/roots/list_changed the child asks again (outside any request) and sees the new root`, async () => {
    const asked = seen.roots;
    const next = { uri: `${root.uri}-changed`, name: `${root.name}-changed` };
    client.roots = [next];
    await client.sendRootsListChanged();
    expect(await waitFor(() => seen.roots > asked), 'the roots handler was not asked again');
    // The child stores the answer when it arrives, then logs; its log says it has it.
    const text = texts(await call(client, 'get-roots-list'));
    expect(text.includes(next.uri), `get-roots-list: ${show(text)}`);
  });

  let first = null;
  await check(`${label} resources/list and resources/read of the first`, async () => {
    const list = (await client.listResources(undefined, opts)).resources;
    expect(list.length > 0, 'resources/list is empty');
    first = list[0].uri;
    const read = await client.readResource({ uri: first }, opts);
    expect(read.contents?.[0]?.uri === first && (read.contents[0].text ?? read.contents[0].blob), `read ${show(read).slice(0, 300)}`);
    return `${list.length} resources, read ${first}`;
  });

  await check(`${label} resources/templates/list and a template's read`, async () => {
    const templates = (await client.listResourceTemplates(undefined, opts)).resourceTemplates.map((t) => t.uriTemplate);
    expect(templates.includes(TEMPLATE), `templates ${show(templates)}`);
    const uri = TEMPLATE.replace('{resourceId}', '7');
    const read = await client.readResource({ uri }, opts);
    expect(read.contents?.[0]?.uri === uri && read.contents[0].text, `read ${show(read)}`);
  });

  await check(`${label} resources/subscribe: a notifications/resources/updated for that URI arrives`, async () => {
    expect(first, 'no resource to subscribe to');
    await client.subscribeResource({ uri: first }, opts);
    await call(client, 'toggle-subscriber-updates');
    const arrived = await waitFor(() => seen.updated.some((u) => u.uri === first));
    await call(client, 'toggle-subscriber-updates'); // off again, whatever happened
    await client.unsubscribeResource({ uri: first }, opts);
    expect(arrived, `no update for ${first}; got ${show(seen.updated)}`);
  });

  await check(`${label} prompts/list, prompts/get simple-prompt and args-prompt`, async () => {
    const names = (await client.listPrompts(undefined, opts)).prompts.map((p) => p.name);
    const missing = EXPECTED_PROMPTS.filter((n) => !names.includes(n));
    expect(missing.length === 0, `missing ${show(missing)} in ${show(names)}`);
    const simple = await client.getPrompt({ name: 'simple-prompt' }, opts);
    expect(simple.messages?.[0]?.content?.text, `simple-prompt ${show(simple)}`);
    const args = await client.getPrompt({ name: 'args-prompt', arguments: { city: 'Lyon', state: 'ARA' } }, opts);
    expect(show(args.messages).includes('Lyon'), `args-prompt ${show(args)}`);
  });

  await check(`${label} completion/complete of completable-prompt's department`, async () => {
    const res = await client.complete({
      ref: { type: 'ref/prompt', name: 'completable-prompt' },
      argument: { name: 'department', value: 'E' },
    }, opts);
    const values = res.completion?.values ?? [];
    expect(values.length > 0 && values.every((v) => v.startsWith('E')), `values ${show(values)}`);
    return show(values);
  });

  await check(`${label} logging: after logging/setLevel debug, toggle-simulated-logging sends a notifications/message`, async () => {
    await client.setLoggingLevel('debug', opts);
    const had = seen.logs.length;
    await call(client, 'toggle-simulated-logging');
    const arrived = await waitFor(() => seen.logs.slice(had).some((l) => /-level message|level-message/.test(show(l.data))));
    await call(client, 'toggle-simulated-logging'); // off
    expect(arrived, `no simulated log message; got ${show(seen.logs.slice(had))}`);
    return show(seen.logs.slice(had).map((l) => l.level));
  });

  await check(`${label} cancellation: a call aborted by the client rejects, and the session goes on`, async () => {
    const abort = new AbortController();
    let progressed = 0;
    const pending = client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 20, steps: 100 } }, undefined, {
      ...opts,
      timeout: 30_000,
      signal: abort.signal,
      onprogress: () => { progressed += 1; },
    });
    const outcome = pending.then(() => 'resolved', (err) => err);
    expect(await waitFor(() => progressed >= 1), 'no progress before the abort');
    abort.abort('gateway: cancelled on purpose');
    const result = await outcome;
    expect(result !== 'resolved', 'the aborted call resolved');
    const text = texts(await call(client, 'echo', { message: 'after cancel' }));
    expect(text === 'Echo: after cancel', `echo after the cancellation: ${show(text)}`);
  });

  await check(`${label} ping`, async () => {
    await client.ping(opts);
  });

  await check(`${label} an unknown tool is answered with an error`, async () => {
    let answer;
    try {
      const res = await client.callTool({ name: 'no-such-tool', arguments: {} }, undefined, opts);
      expect(res.isError === true, `no error: ${show(res)}`);
      answer = texts(res);
    } catch (err) {
      expect(err instanceof McpError, `not an MCP error: ${describeError(err)}`);
      answer = describeError(err);
    }
    return answer;
  });

  await check(`${label} get-env: the child's environment is the allow-list and the verified caller`, async () => {
    const text = texts(await call(client, 'get-env'));
    const env = JSON.parse(text);
    const names = Object.keys(env).sort();
    const user = names.filter((n) => n.startsWith('MCP_USER_'));
    const others = names.filter((n) => !n.startsWith('MCP_USER_') && !ALLOWED_ENV.includes(n));
    expect(others.length === 0, `variables beyond the allow-list and MCP_USER_*: ${show(others)}`);
    if (token) {
      expect(!Object.values(env).some((v) => v.includes(token)), 'a variable holds the token');
      expect(env.MCP_USER_SUB === expectSubject, `MCP_USER_SUB ${show(env.MCP_USER_SUB)}, want ${show(expectSubject)}`);
      if (expectEmail) expect(env.MCP_USER_EMAIL === expectEmail, `MCP_USER_EMAIL ${show(env.MCP_USER_EMAIL)}, want ${show(expectEmail)}`);
      if (expectGroups) expect(env.MCP_USER_GROUPS === expectGroups, `MCP_USER_GROUPS ${show(env.MCP_USER_GROUPS)}, want ${show(expectGroups)}`);
    } else {
      expect(user.length === 0, `without a token: ${show(user)}`);
    }
    return names.map((n) => (n.startsWith('MCP_USER_') ? `${n}=${env[n]}` : n)).join(' ');
  });

  if (kind === 'streamable') {
    const sessionId = transport.sessionId;
    await check(`${label} DELETE ends the session: then 404`, async () => {
      await transport.terminateSession();
      const status = await pingSession(`${base}/mcp`, sessionId, token);
      expect(status === 404, `status ${status}, want 404`);
    });
  }
  client.closing = true;
  await client.close();
  if (mine) {
    await check(`${label} the session's child process is gone once the session ended`, async () => {
      expect(await waitFor(() => !serverChildren().includes(mine)), `pid ${mine} still runs`);
    });
  }
  await check(`${label} no transport error was reported`, async () => {
    expect(seen.errors.length === 0, seen.errors.join('\n'));
  });
}

// ---- both transports at once: one child each, isolated ------------------------------------

async function together() {
  const label = '[sse+streamable]';
  const before = serverChildren();
  const clients = ['sse', 'streamable'].map((kind) =>
    makeClient(kind, [{ uri: `file:///tmp/mcp-warden-gateway-together-${kind}`, name: kind }]));
  const connected = await check(`${label} two sessions at once`, async () => {
    await Promise.all(clients.map((c) => c.client.connect(c.transport, opts)));
    if (ORDER_SHIM) for (const c of clients) keepArrivalOrder(c.transport);
  });
  if (connected) {
    if (before) {
      await check(`${label} two new child processes`, async () => {
        let now = [];
        const found = await waitFor(() => {
          now = serverChildren().filter((p) => !before.includes(p));
          return now.length === 2;
        });
        expect(found, `new children ${show(now)}, want two`);
      });
    }
    await check(`${label} each child knows only its own client's roots`, async () => {
      const answers = await Promise.all(clients.map((c) => call(c.client, 'get-roots-list').then(texts)));
      for (const [i, c] of clients.entries()) {
        const other = clients[1 - i];
        expect(answers[i].includes(c.client.roots[0].uri), `${c.kind}: ${show(answers[i])}`);
        expect(!answers[i].includes(other.client.roots[0].uri), `${c.kind} sees ${other.kind}'s root: ${show(answers[i])}`);
      }
    });
  }
  for (const c of clients) {
    c.client.closing = true;
    if (c.kind === 'streamable' && c.transport.sessionId) await c.transport.terminateSession().catch(() => {});
    await c.client.close().catch(() => {});
  }
  if (before) {
    await check(`${label} no child process left once both sessions ended`, async () => {
      let left = [];
      const done = await waitFor(() => {
        left = serverChildren().filter((p) => !before.includes(p));
        return left.length === 0;
      });
      expect(done, `still running: ${show(left)}`);
    });
  }
}

console.log(`# gateway: ${base}${token ? ' with bearer token' : ''}${serverPid ? `, server pid ${serverPid}` : ''}`);
try {
  await oneTransport('sse');
  await oneTransport('streamable');
  await together();
} catch (err) {
  report(false, `unexpected exception (in: ${inProgress()})`, describeError(err));
}
clearTimeout(timer);
finish();
