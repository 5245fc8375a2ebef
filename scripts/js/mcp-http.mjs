// The SDK 1.x client's transports as the checks set them up, and what they ask of `/mcp`
// directly, outside an SDK client.

import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

/**
 * An SDK 1.x transport for `kind` ('sse': `/sse`, or 'streamable': `/mcp`) under `base`,
 * sending the bearer `token` (if given) on every request: on the SSE stream's GET too,
 * which goes through `eventSourceInit.fetch`.
 */
export function sdkTransport(base, kind, token) {
  const opts = {};
  if (token) {
    const auth = `Bearer ${token}`;
    opts.requestInit = { headers: { Authorization: auth } };
    if (kind === 'sse') {
      opts.eventSourceInit = {
        fetch: (url, init) => {
          const headers = new Headers(init?.headers);
          headers.set('Authorization', auth);
          return fetch(url, { ...init, headers });
        },
      };
    }
  }
  return kind === 'sse'
    ? new SSEClientTransport(new URL(`${base}/sse`), opts)
    : new StreamableHTTPClientTransport(new URL(`${base}/mcp`), opts);
}

/**
 * POSTs a `ping` naming Streamable HTTP session `sessionId` to `url` (the `/mcp` URL), with
 * the bearer `token` if given, and returns the HTTP status (404 once the session has ended).
 */
export async function pingSession(url, sessionId, token) {
  const headers = {
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
    'Mcp-Session-Id': sessionId,
    'MCP-Protocol-Version': '2025-11-25',
  };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(url, {
    method: 'POST',
    headers,
    body: JSON.stringify({ jsonrpc: '2.0', id: 'after-delete', method: 'ping' }),
  });
  await res.body?.cancel();
  return res.status;
}
