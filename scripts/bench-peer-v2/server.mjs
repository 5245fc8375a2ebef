// Benchmark peer for scripts/bench-modern: the official MCP TypeScript SDK v2
// (@modelcontextprotocol/server) serving MCP 2026-07-28 statelessly on /mcp through
// `createMcpHandler`, with the same `echo` tool as mcp-warden (`Tool echo: <message>`).
// No authentication.
//
// Mounted as the SDK's serving guide does it on Node ("Serve over HTTP", "Mount it on your
// runtime"): the handler wrapped once with `toNodeHandler` from @modelcontextprotocol/node,
// on plain `node:http`, loopback bind, with the `localhostHostValidation` /
// `localhostOriginValidation` guards in front. The factory builds a fresh McpServer for
// every request, as createMcpHandler requires. Everything else keeps its defaults:
// `responseMode: 'auto'` (one JSON body unless the tool emits a message before its result;
// echo emits none), `legacy: 'stateless'` (2025-era requests served by a stateless
// fallback; the bench sends none). Requests for another path get 404. Nothing is logged
// per request.
//
// Env: PORT (default 0: any free port), HOST (default 127.0.0.1).
// Prints `listening on http://HOST:PORT` once it accepts connections.
import { createServer } from "node:http";
import {
  localhostHostValidation,
  localhostOriginValidation,
  toNodeHandler,
} from "@modelcontextprotocol/node";
import { createMcpHandler, McpServer } from "@modelcontextprotocol/server";
import * as z from "zod/v4";

const host = process.env.HOST || "127.0.0.1";
const port = Number(process.env.PORT || 0);

const handler = createMcpHandler(() => {
  const server = new McpServer({ name: "bench-peer-v2", version: "0.0.0" });
  server.registerTool(
    "echo",
    {
      description: "Echoes the message back.",
      inputSchema: z.object({ message: z.string() }),
    },
    async ({ message }) => ({ content: [{ type: "text", text: `Tool echo: ${message}` }] }),
  );
  return server;
});

const nodeHandler = toNodeHandler(handler);
const validateHost = localhostHostValidation();
const validateOrigin = localhostOriginValidation();

const listener = createServer((req, res) => {
  if (!validateHost(req, res) || !validateOrigin(req, res)) return;
  if ((req.url ?? "").split("?")[0] !== "/mcp") {
    res.writeHead(404, { "Content-Type": "text/plain" });
    res.end("not found\n");
    return;
  }
  void nodeHandler(req, res);
});

listener.on("error", (error) => {
  console.error("cannot listen:", error);
  process.exit(1);
});
listener.listen(port, host, () => {
  const addr = listener.address();
  console.log(`listening on http://${addr.address}:${addr.port}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    await handler.close();
    process.exit(0);
  });
}
