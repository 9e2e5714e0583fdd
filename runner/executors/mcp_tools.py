"""The tools of MCP servers, for an agent step's conversation (`tools: [{mcp: NAME}]`), through the official `mcp`
SDK's client: stdio servers started in the step's sandbox (as a script step runs: its uid, /workspace read-only,
no network when the step has none), Streamable HTTP servers reached with their headers.

The SDK is asynchronous and the agent's conversation is not: an event loop in a thread of its own (anyio's
blocking portal) holds every server's session for as long as the step talks to the model, and each tool call is
made on it, bounded by the time the step has left. A server's tools are offered as `SERVER__TOOL`.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from typing import Any

from ..errors import StepSetupError

__all__ = ["McpTools", "StdioLaunch"]

_NAME = re.compile(r"[^A-Za-z0-9_-]")
CONNECT_SECONDS = 30.0  # at most, to start a server and list its tools
MAX_RESULT = 100_000  # characters of a tool's result given to the model

# (server name, its spec) -> (command, host working directory, environment) to start a stdio server as the step
StdioLaunch = Callable[[str, Mapping[str, Any]], tuple[list[str], str | None, dict[str, str]]]


class McpTools:
    """`with McpTools(servers, launch, time_left) as tools:` `tools.offered` (tool name -> (description, input
    schema)) and `tools.call(name, arguments)` (the result as JSON text for the model)."""

    def __init__(self, servers: Mapping[str, Mapping[str, Any]], launch: StdioLaunch, time_left: Callable[[], float]):
        self.servers = servers
        self.launch = launch
        self.time_left = time_left
        self.offered: dict[str, tuple[str, dict[str, Any]]] = {}
        self._targets: dict[str, tuple[Any, str]] = {}  # tool name -> (client, the server's own tool name)
        self._stack = ExitStack()
        self._portal: Any = None
        self._stderr: dict[str, Any] = {}  # a stdio server's stderr, said when it fails to start

    def __enter__(self) -> McpTools:
        from anyio.from_thread import start_blocking_portal

        try:
            self._portal = self._stack.enter_context(start_blocking_portal())
            for name, spec in self.servers.items():
                self._connect(name, spec)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _connect(self, name: str, spec: Mapping[str, Any]) -> None:
        from mcp import Client

        try:
            client = Client(self._transport(name, spec), read_timeout_seconds=CONNECT_SECONDS)
            session = self._stack.enter_context(self._portal.wrap_async_context_manager(client))
            listed = self._portal.call(_bounded, session.list_tools, min(CONNECT_SECONDS, self.time_left()))
        except StepSetupError:
            raise
        except Exception as exc:  # noqa: BLE001 - the SDK's and the transport's errors: the step's reason
            said = ""
            if name in self._stderr:
                self._stderr[name].seek(0)
                said = self._stderr[name].read()[-500:].strip()
            raise StepSetupError(
                f"MCP server {name!r} did not start: {_reason(exc)}" + (f"; it said: {said}" if said else "")
            ) from None
        for tool in listed.tools:
            offered = _NAME.sub("_", f"{name}__{tool.name}")[:64]
            self.offered[offered] = (tool.description or f"{tool.name} of MCP server {name}", dict(tool.input_schema))
            self._targets[offered] = (session, tool.name)

    def _transport(self, name: str, spec: Mapping[str, Any]):
        if spec.get("url"):
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            headers = {str(k): str(v) for k, v in (spec.get("headers") or {}).items()}
            http = httpx2.AsyncClient(headers=headers, timeout=CONNECT_SECONDS)
            self._stack.callback(lambda: self._portal.call(http.aclose))
            return streamable_http_client(str(spec["url"]), http_client=http)
        from mcp.client.stdio import StdioServerParameters, stdio_client

        command, cwd, env = self.launch(name, spec)
        errors = self._stderr[name] = self._stack.enter_context(tempfile.TemporaryFile("w+"))
        params = StdioServerParameters(command=command[0], args=command[1:], env=env, cwd=cwd)
        return stdio_client(params, errlog=errors)

    def call(self, name: str, arguments: dict[str, Any]) -> str:
        session, tool = self._targets[name]
        try:
            result = self._portal.call(_bounded, lambda: session.call_tool(tool, arguments), self.time_left())
        except TimeoutError:
            return json.dumps({"error": "the tool did not answer in the time the step had left"})
        except Exception as exc:  # noqa: BLE001 - the model is told, and may try otherwise
            return json.dumps({"error": _reason(exc)})
        texts = [block.text for block in result.content if getattr(block, "type", "") == "text"]
        if result.is_error:
            return json.dumps({"error": "\n".join(texts)[:MAX_RESULT] or "the tool failed"})
        if result.structured_content is not None:
            return json.dumps({"output": result.structured_content}, default=str)[:MAX_RESULT]
        return json.dumps({"output": "\n".join(texts)[:MAX_RESULT]})


async def _bounded(call: Callable[[], Any], seconds: float) -> Any:
    import anyio

    with anyio.fail_after(max(seconds, 0.001)):
        return await call()


def _reason(exc: BaseException) -> str:
    group = getattr(exc, "exceptions", None)
    if group:  # an exception group from the SDK's task groups: its first cause says it
        return _reason(group[0])
    return f"{type(exc).__name__}: {exc}"[:500]
