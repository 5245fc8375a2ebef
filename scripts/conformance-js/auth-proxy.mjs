#!/usr/bin/env node
// A header-adding reverse proxy for the conformance run with authentication on: the
// conformance runner cannot send headers, so it talks to this proxy, which forwards every
// request to the server with `Authorization: Bearer <token>` added (replacing any the
// client sent). Node's http module only, no framework.
//
// Usage: node auth-proxy.mjs --upstream http://127.0.0.1:PORT --token-file FILE [--port N]
//
//   --upstream    the server's origin (http only; loopback only)
//   --token-file  file holding the token (surrounding whitespace trimmed); it is read once
//                 and never printed
//   --port        port to listen on, on 127.0.0.1 (default 0: a free one)
//
// Once listening it prints `auth-proxy listening on http://127.0.0.1:PORT` on stdout; then
// one line per request on stderr (method, path without query, status; no headers, no
// session ids, no token). It runs until SIGTERM/SIGINT.
//
// What it preserves, so the server sees what the client sent:
//   - the method, path and query, and every end-to-end header as sent, including Host and
//     Origin (the DNS-rebinding checks must see the client's values, not the proxy's);
//   - the request body, streamed as it arrives;
//   - the response status and end-to-end headers, and the body streamed chunk by chunk as
//     the server writes it: an SSE stream's events reach the client as they are sent
//     (headers are flushed at once, Nagle is off on both sockets, nothing is buffered).
// Hop-by-hop headers (Connection and the ones it names, Keep-Alive, Transfer-Encoding, TE,
// Trailer, Upgrade, Proxy-*) are not forwarded; Node frames each side itself.
// When the client goes away mid-response, the upstream request is destroyed, so the server
// sees its stream end; when the server goes away mid-response, the client connection is
// destroyed, so the client sees the stream end too.

import http from 'node:http';
import { readFileSync } from 'node:fs';

function usage(msg) {
  if (msg) console.error(`auth-proxy: ${msg}`);
  console.error('usage: node auth-proxy.mjs --upstream http://127.0.0.1:PORT --token-file FILE [--port N]');
  process.exit(2);
}

const args = { port: '0' };
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i];
  const value = process.argv[i + 1];
  if (value === undefined) usage(`${key} needs a value`);
  if (key === '--upstream') args.upstream = value;
  else if (key === '--token-file') args.tokenFile = value;
  else if (key === '--port') args.port = value;
  else usage(`unknown argument ${key}`);
}
if (!args.upstream || !args.tokenFile) usage('--upstream and --token-file are required');

let upstream;
try {
  upstream = new URL(args.upstream);
} catch {
  usage('--upstream is not a URL');
}
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);
if (upstream.protocol !== 'http:' || !LOOPBACK_HOSTS.has(upstream.hostname)) {
  usage('--upstream must be an http:// URL on loopback (127.0.0.1, localhost or [::1])');
}
const upstreamHost = upstream.hostname === '[::1]' ? '::1' : upstream.hostname;
const upstreamPort = Number(upstream.port || 80);

let token;
try {
  token = readFileSync(args.tokenFile, 'utf8').trim();
} catch (err) {
  usage(`cannot read --token-file: ${err.code ?? err.message}`);
}
if (!token || /\s/.test(token)) usage('--token-file must hold one token');
const authorization = `Bearer ${token}`;

const listenPort = Number(args.port);
if (!Number.isInteger(listenPort) || listenPort < 0 || listenPort > 65535) usage('--port must be 0..65535');

// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** rawHeaders [name, value, name, value, ...] → an array of [name, value] to forward. */
function endToEnd(rawHeaders, dropAlso = new Set()) {
  const named = new Set();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i].toLowerCase() === 'connection') {
      for (const token of rawHeaders[i + 1].split(',')) named.add(token.trim().toLowerCase());
    }
  }
  const out = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const lower = rawHeaders[i].toLowerCase();
    if (HOP_BY_HOP.has(lower) || named.has(lower) || dropAlso.has(lower)) continue;
    out.push([rawHeaders[i], rawHeaders[i + 1]]);
  }
  return out;
}

function logLine(req, status, note = '') {
  const path = (req.url ?? '').split('?')[0];
  console.error(`auth-proxy: ${req.method} ${path} -> ${status}${note ? ` (${note})` : ''}`);
}

// One upstream connection per request: no pooling, so a stream and the POSTs beside it
// never wait for each other, and closing one side closes exactly one upstream request.
const agent = new http.Agent({ keepAlive: false });

const server = http.createServer((req, res) => {
  req.socket.setNoDelay(true);
  // Headers as sent (order and case kept), Host and Origin included; the client's own
  // Authorization, if any, is replaced by the proxy's.
  const headers = endToEnd(req.rawHeaders, new Set(['authorization']));
  headers.push(['Authorization', authorization]);

  const upstreamReq = http.request({
    host: upstreamHost,
    port: upstreamPort,
    method: req.method,
    path: req.url,
    headers, // an array of pairs: sent as given, including the client's Host
    agent,
    setHost: false,
  });
  upstreamReq.on('socket', (socket) => socket.setNoDelay(true));

  let answered = false;
  upstreamReq.on('response', (upstreamRes) => {
    answered = true;
    logLine(req, upstreamRes.statusCode);
    const resHeaders = endToEnd(upstreamRes.rawHeaders);
    res.writeHead(upstreamRes.statusCode, upstreamRes.statusMessage, resHeaders.flat());
    res.flushHeaders(); // an SSE response's head goes out before its first event
    upstreamRes.on('data', (chunk) => {
      // Write each chunk as it comes; back-pressure pauses the upstream.
      if (!res.write(chunk)) {
        upstreamRes.pause();
        res.once('drain', () => upstreamRes.resume());
      }
    });
    upstreamRes.on('end', () => res.end());
    upstreamRes.on('error', () => res.destroy());
    upstreamRes.on('aborted', () => res.destroy());
  });
  upstreamReq.on('error', (err) => {
    if (!answered && !res.headersSent) {
      logLine(req, 502, err.code ?? err.message);
      const body = JSON.stringify({ error: 'bad_gateway', message: 'auth-proxy: upstream unreachable' });
      res.writeHead(502, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    } else {
      res.destroy();
    }
  });

  // The client went away before its response was complete: end the upstream request too.
  res.on('close', () => {
    if (!res.writableFinished) upstreamReq.destroy();
  });
  req.on('aborted', () => upstreamReq.destroy());

  req.pipe(upstreamReq); // the body streamed as it arrives; ends the upstream request
});

server.on('clientError', (err, socket) => {
  if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  else socket.destroy();
});
// No idle or request timeouts of its own: the server's limits are the ones under test.
server.requestTimeout = 0;
server.headersTimeout = 0;
server.keepAliveTimeout = 5000;

server.listen(listenPort, '127.0.0.1', () => {
  console.log(`auth-proxy listening on http://127.0.0.1:${server.address().port}`);
});

function stop() {
  server.close();
  server.closeAllConnections();
  agent.destroy();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
