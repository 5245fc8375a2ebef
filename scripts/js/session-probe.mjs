// What the checks ask of `/mcp` directly, outside an SDK client.

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
