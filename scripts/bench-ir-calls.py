# bench-ir-calls.py PORT N MODE: N echo tools/call on one keep-alive connection (MODE mcp, sse,
# or modern: stateless 2026-07-28 requests on /mcp, no session), each answer read before the
# next call; used by scripts/bench-ir.
import json, socket, sys
port, n, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def conn():
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(60); return s, s.makefile("rb")
def post(s, f, path, body, extra=""):
    b = json.dumps(body).encode()
    s.sendall((f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
               f"Accept: application/json, text/event-stream\r\n{extra}Content-Length: {len(b)}\r\n\r\n").encode() + b)
    headers = {}
    status = f.readline()
    while True:
        line = f.readline().decode().strip()
        if not line: break
        k, v = line.split(":", 1); headers[k.lower()] = v.strip()
    body = f.read(int(headers.get("content-length", 0)))
    return status, headers, body
call = lambda i: {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "hi"}}}
if mode == "modern":
    s, f = conn()
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
    extra = "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: echo\r\n"
    for i in range(1, n + 1):
        body = call(i)
        body["params"]["_meta"] = meta
        _, _, answer = post(s, f, "/mcp", body, extra)
        reply = json.loads(answer)
        assert reply["id"] == i and reply["result"]["resultType"] == "complete", reply
elif mode == "mcp":
    s, f = conn()
    _, h, _ = post(s, f, "/mcp", {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "c", "version": "0"}}})
    extra = f"Mcp-Session-Id: {h['mcp-session-id']}\r\nMCP-Protocol-Version: 2025-11-25\r\n"
    post(s, f, "/mcp", {"jsonrpc": "2.0", "method": "notifications/initialized"}, extra)
    for i in range(1, n + 1):
        _, _, body = post(s, f, "/mcp", call(i), extra)
        assert json.loads(body)["id"] == i
else:
    g, gf = conn()
    g.sendall(b"GET /sse HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n")
    while gf.readline().strip(): pass
    def event():
        data = None
        while True:
            line = gf.readline().decode().rstrip("\n")
            if line.startswith("data: "): data = line[6:]
            elif line == "" and data is not None: return data
    endpoint = event()
    s, f = conn()
    post(s, f, endpoint, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "c", "version": "0"}}}); event()
    post(s, f, endpoint, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    for i in range(1, n + 1):
        post(s, f, endpoint, call(i))
        assert json.loads(event())["id"] == i
