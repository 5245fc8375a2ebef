// Benchmark peer for scripts/bench: the official MCP TypeScript SDK serving the HTTP+SSE
// transport (SSEServerTransport on Express, as the SDK's own simpleSseServer example does),
// with the same `echo` tool as mcp-warden (`Tool echo: <message>`). No authentication.
//
// GET /sse opens a session (one McpServer per session: an McpServer serves one transport
// at a time); POST /messages?sessionId=<id> feeds it. Nothing is logged per request.
//
// Env: PORT (default 0: any free port), HOST (default 127.0.0.1).
// Prints `listening on http://HOST:PORT` once it accepts connections.
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { SSEServerTransport } from "@modelcontextprotocol/sdk/server/sse.js";
import { createMcpExpressApp } from "@modelcontextprotocol/sdk/server/express.js";
import * as z from "zod/v4";

const host = process.env.HOST || "127.0.0.1";
const port = Number(process.env.PORT || 0);

function newServer() {
  const server = new McpServer({ name: "bench-peer", version: "0.0.0" });
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
const transports = new Map();

app.get("/sse", async (req, res) => {
  const transport = new SSEServerTransport("/messages", res);
  const id = transport.sessionId;
  transports.set(id, transport);
  transport.onclose = () => transports.delete(id);
  try {
    await newServer().connect(transport);
  } catch (error) {
    console.error("cannot open SSE stream:", error);
    transports.delete(id);
    if (!res.headersSent) res.status(500).send("cannot open SSE stream");
  }
});

app.post("/messages", async (req, res) => {
  const transport = transports.get(String(req.query.sessionId ?? ""));
  if (!transport) {
    res.status(404).send("unknown sessionId");
    return;
  }
  try {
    await transport.handlePostMessage(req, res, req.body);
  } catch (error) {
    if (!res.headersSent) res.status(500).send("error handling request");
  }
});

const listener = app.listen(port, host, (error) => {
  if (error) {
    console.error("cannot listen:", error);
    process.exit(1);
  }
  const addr = listener.address();
  console.log(`listening on http://${addr.address}:${addr.port}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
