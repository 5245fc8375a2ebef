#!/usr/bin/env python3
"""Interop check: drive a running mcp-warden with the official MCP Python SDK client
(`mcp` on PyPI, pinned in scripts/py/requirements.txt) over Streamable HTTP on <baseUrl>/mcp.

Usage: python interop.py <baseUrl> [auto|legacy] [--expect-refused]

  auto     the SDK's default connect mode: it probes `server/discover` (the stateless
           2026-07-28 protocol), which mcp-warden answers, so the client speaks 2026-07-28
           (no handshake, no session; `ping` is gone from that revision and is not sent)
  legacy   the initialize handshake only (what SDK 1.x always did)
  --expect-refused  the server must refuse the client: connecting must fail, and the
           server must have answered a POST /mcp with 401 (the SDK maps an HTTP 401 to a
           generic JSON-RPC error, so the status is read from the HTTP exchange itself)

Env:
  MCP_TOKEN       if set, sent as `Authorization: Bearer $MCP_TOKEN` on every request (a
                  header of the httpx2 client handed to streamable_http_client)
  EXPECT_SUBJECT  if set (with MCP_TOKEN), whoami's text must contain it

Prints one TAP-like line per check, and each HTTP exchange as `# HTTP METHOD PATH -> STATUS`
(no headers, no bodies), then `N passed, M failed`. Exits non-zero on any failed check or
after 45 s overall.
"""

from __future__ import annotations

import os
import sys
import warnings
from urllib.parse import urlsplit

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

OVERALL_TIMEOUT_S = 45


class Mismatch(Exception):
    pass


def expect(cond: bool, msg: str) -> None:
    if not cond:
        raise Mismatch(msg)


def describe(err: BaseException) -> str:
    if isinstance(err, MCPError):
        return f"MCPError code={err.code} message={err.message!r}"
    if isinstance(err, BaseExceptionGroup):
        return "; ".join(describe(e) for e in err.exceptions)
    return f"{type(err).__name__}: {err}"


class Run:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def ok(self, name: str) -> None:
        self.passed += 1
        print(f"ok - {name}", flush=True)

    def not_ok(self, name: str, why: str) -> None:
        self.failed += 1
        print(f"not ok - {name}", flush=True)
        for line in str(why).splitlines() or [""]:
            print(f"#   {line}", flush=True)

    async def check(self, name, fn) -> bool:
        try:
            extra = await fn()
        except Mismatch as err:
            self.not_ok(name, str(err))
            return False
        except Exception as err:  # noqa: BLE001 - any exception fails the check
            self.not_ok(name, f"unexpected exception: {describe(err)}")
            return False
        self.ok(f"{name} ({extra})" if extra else name)
        return True


async def main(base_url: str, mode: str, expect_refused: bool, run: Run) -> None:
    url = base_url.rstrip("/") + "/mcp"
    token = os.environ.get("MCP_TOKEN", "")
    expect_subject = os.environ.get("EXPECT_SUBJECT", "")
    statuses: list[tuple[str, str, int]] = []

    async def log_response(response: httpx2.Response) -> None:
        request = response.request
        statuses.append((request.method, urlsplit(str(request.url)).path, response.status_code))
        print(f"# HTTP {request.method} {urlsplit(str(request.url)).path} -> {response.status_code}", flush=True)

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(
        headers=headers,
        timeout=httpx2.Timeout(30.0, read=60.0),
        event_hooks={"response": [log_response]},
    )
    print(f"# connecting to {url} over Streamable HTTP, mode {mode}{' with bearer token' if token else ''}", flush=True)

    async with http:
        client = Client(streamable_http_client(url, http_client=http), mode=mode)

        if expect_refused:
            try:
                async with client:
                    run.not_ok("the server refuses the client without a token", "the client connected")
                    return
            except Exception as err:  # noqa: BLE001
                refused = [s for s in statuses if s[0] == "POST" and s[2] == 401]
                if refused:
                    run.ok(f"the server refuses the client without a token (POST /mcp -> 401; the client said: {describe(err)})")
                else:
                    run.not_ok(
                        "the server refuses the client without a token",
                        f"connecting failed, but no POST /mcp got 401 (statuses {statuses}): {describe(err)}",
                    )
            return

        async with client:
            async def initialized():
                version = client.protocol_version
                info = client.server_info
                expect(info is not None and bool(info.name), f"no serverInfo: {info!r}")
                wanted = ("2026-07-28",) if mode == "auto" else ("2025-03-26", "2025-06-18", "2025-11-25")
                expect(version in wanted, f"negotiated {version!r}, want one of {wanted}")
                return f"server {info.name} {info.version}, protocol {version}"

            if not await run.check(f"connect over Streamable HTTP (mode {mode})", initialized):
                return

            async def tools_list():
                res = await client.list_tools()
                names = [t.name for t in res.tools]
                expect("echo" in names and "whoami" in names, f"tools/list returned {names}")
                return ", ".join(names)

            await run.check("tools/list contains echo and whoami", tools_list)

            async def echo():
                res = await client.call_tool("echo", {"message": "hello from python"})
                text = res.content[0].text if res.content else None
                expect(not res.is_error, f"isError: {res!r}")
                expect(text == "Tool echo: hello from python", f"content[0].text = {text!r}")

            await run.check("tools/call echo", echo)

            async def whoami():
                res = await client.call_tool("whoami", {})
                expect(not res.is_error, f"isError: {res!r}")
                text = res.content[0].text if res.content else ""
                print(f"# whoami: {text}", flush=True)
                if not token:
                    expect("anonymous" in text, f"without MCP_TOKEN the text should contain 'anonymous', got {text!r}")
                elif expect_subject:
                    expect(expect_subject in text, f"text should contain {expect_subject!r}, got {text!r}")

            await run.check("tools/call whoami", whoami)

            async def templates():
                res = await client.list_resource_templates()
                uris = [t.uri_template for t in res.resource_templates]
                expect("echo://{message}" in uris, f"resources/templates/list returned {uris}")

            await run.check("resources/templates/list contains echo://{message}", templates)

            async def read():
                res = await client.read_resource("echo://hello")
                text = getattr(res.contents[0], "text", None) if res.contents else None
                expect(text == "Resource echo: hello", f"contents[0].text = {text!r}")

            await run.check("resources/read echo://hello", read)

            async def prompt():
                res = await client.get_prompt("echo", {"message": "hi"})
                msg = res.messages[0]
                expect(msg.role == "user", f"role {msg.role!r}")
                expect(getattr(msg.content, "text", None) == "Please process this message: hi", f"content {msg.content!r}")

            await run.check("prompts/get echo", prompt)

            async def ping():
                # On handshake-era connections ping is current; the SDK warns only because
                # 2026-07-28 removes it.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", MCPDeprecationWarning)
                    await client.send_ping()

            if client.protocol_version != "2026-07-28":
                await run.check("ping", ping)

            async def unknown_tool():
                try:
                    res = await client.call_tool("no-such-tool", {})
                except MCPError as err:
                    expect(err.code == -32602, f"want code -32602, got {describe(err)}")
                    return f"code {err.code}"
                raise Mismatch(f"expected MCPError -32602, the call resolved with {res!r}")

            await run.check("tools/call unknown tool rejects with -32602", unknown_tool)


def entry() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flags = [a for a in sys.argv[1:] if a.startswith("--")]
    if not args or len(args) > 2 or (len(args) == 2 and args[1] not in ("auto", "legacy")) or any(
        f != "--expect-refused" for f in flags
    ):
        print("usage: python interop.py <baseUrl> [auto|legacy] [--expect-refused]", file=sys.stderr)
        return 2
    mode = args[1] if len(args) == 2 else "auto"
    run = Run()

    async def bounded() -> None:
        with anyio.move_on_after(OVERALL_TIMEOUT_S) as scope:
            await main(args[0], mode, "--expect-refused" in flags, run)
        if scope.cancelled_caught:
            run.not_ok("overall timeout", f"no completion within {OVERALL_TIMEOUT_S} s")

    try:
        anyio.run(bounded)
    except Exception as err:  # noqa: BLE001
        run.not_ok("unexpected exception", describe(err))
    print(f"{run.passed} passed, {run.failed} failed", flush=True)
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(entry())
