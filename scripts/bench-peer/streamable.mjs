// Benchmark peer for scripts/bench (streamable phase): the official MCP TypeScript SDK
// serving Streamable HTTP on /mcp (StreamableHTTPServerTransport on Express), stateful,
// with the same `echo` tool as mcp-warden (`Tool echo: <message>`). No authentication.
//
// One transport and one McpServer per session (an McpServer serves one transport at a
// time). POST /mcp without Mcp-Session-Id must be `initialize`: it makes a new session,
// whose id the transport returns in Mcp-Session-Id. Later POST, GET and DELETE name it.
// The transport keeps its defaults, so a request's answer comes back as a
// text/event-stream response (enableJsonResponse is false unless JSON_RESPONSE=1).
// Nothing is logged per request.
//
// Env: PORT (default 0: any free port), HOST (default 127.0.0.1), JSON_RESPONSE (1: answer
// requests with application/json instead).
// Prints `listening on http://HOST:PORT` once it accepts connections.
import { randomUUID } from "node:crypto";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { createMcpExpressApp } from "@modelcontextprotocol/sdk/server/express.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import * as z from "zod/v4";

const host = process.env.HOST || "127.0.0.1";
const port = Number(process.env.PORT || 0);
const jsonResponse = process.env.JSON_RESPONSE === "1";

function newServer() {
  const server = new McpServer({ name: "bench-peer-streamable", version: "0.0.0" });
  server.registerTool(
    "echo",
    {
      description: "Echoes the message back.",
      inputSchema: { message: z.string() },
    },
    async ({ message }) => ({ content: [{ type: "text", text: `Tool echo: ${message}` }] }),
  );
  return server;
}

const app = createMcpExpressApp({ host });
/** session id -> its transport */
const sessions = new Map();

function rpcError(res, status, code, message) {
  res.status(status).json({ jsonrpc: "2.0", error: { code, message }, id: null });
}

app.post("/mcp", async (req, res) => {
  const id = req.get("mcp-session-id");
  let transport;
  if (id) {
    transport = sessions.get(id);
    if (!transport) return rpcError(res, 404, -32001, "unknown session");
  } else if (isInitializeRequest(req.body)) {
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: jsonResponse,
      onsessioninitialized: (sid) => sessions.set(sid, transport),
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await newServer().connect(transport);
  } else {
    return rpcError(res, 400, -32000, "no Mcp-Session-Id, and not initialize");
  }
  try {
    await transport.handleRequest(req, res, req.body);
  } catch (error) {
    if (!res.headersSent) rpcError(res, 500, -32603, "error handling request");
  }
});

// GET (the optional stream) and DELETE (end the session) go to the session's transport.
async function bySession(req, res) {
  const transport = sessions.get(req.get("mcp-session-id") ?? "");
  if (!transport) return rpcError(res, 404, -32001, "unknown session");
  try {
    await transport.handleRequest(req, res);
  } catch (error) {
    if (!res.headersSent) rpcError(res, 500, -32603, "error handling request");
  }
}
app.get("/mcp", bySession);
app.delete("/mcp", bySession);

const listener = app.listen(port, host, (error) => {
  if (error) {
    console.error("cannot listen:", error);
    process.exit(1);
  }
  const addr = listener.address();
  console.log(`listening on http://${addr.address}:${addr.port}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
