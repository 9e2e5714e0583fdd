"""JSON-RPC for `/mcp`, read and written with the MCP SDK's types: initialize, ping, tools/list and tools/call."""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError

from runner import __version__

from .tools import TOOLS, ToolError, call

__all__ = ["answer"]

INSTRUCTIONS = (
    "Strom runs the tasks of workspaces (pipelines kept in their repositories). list_workspaces and list_tasks "
    "show what can run and its inputs; start_run starts one; get_run and read_log follow it; decide_gate answers "
    "an approval it waits for."
)


def _error(request_id: Any, code: int, message: str, status: int = 200) -> tuple[int, dict[str, Any]]:
    error = types.JSONRPCError(jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=message))
    return status, error.model_dump(by_alias=True, exclude_none=True)


def answer(body: bytes, version_header: str | None) -> tuple[int, dict[str, Any] | None]:
    """(HTTP status, JSON-RPC reply, None for a notification) for one message."""
    if version_header is not None and version_header not in HANDSHAKE_PROTOCOL_VERSIONS:
        supported = ", ".join(HANDSHAKE_PROTOCOL_VERSIONS)
        return _error(
            None, types.INVALID_REQUEST, f"protocol version {version_header[:40]!r}: not one of {supported}", 400
        )
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        return _error(None, types.PARSE_ERROR, "the body is not JSON", 400)
    if not isinstance(message, dict):
        return _error(None, types.INVALID_REQUEST, "send one JSON-RPC message (an object), not a batch", 400)
    if "id" not in message:
        try:
            types.JSONRPCNotification.model_validate(message)
        except ValidationError:
            return _error(None, types.INVALID_REQUEST, "not a JSON-RPC notification", 400)
        return 202, None  # initialized, cancelled, ...: nothing to do for a stateless server
    try:
        request = types.JSONRPCRequest.model_validate(message)
    except ValidationError as exc:
        return _error(None, types.INVALID_REQUEST, f"not a JSON-RPC request: {_first(exc)}", 400)
    try:
        result = _result(request.method, request.params or {})
    except _Invalid as exc:
        return _error(request.id, exc.code, str(exc))
    reply = types.JSONRPCResponse(jsonrpc="2.0", id=request.id, result=result)
    return 200, reply.model_dump(by_alias=True, exclude_none=True)


class _Invalid(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc']) or 'message'}: {error['msg']}"


def _params(model: type, params: dict[str, Any]) -> Any:
    try:
        return model.model_validate(params)  # type: ignore[attr-defined]
    except ValidationError as exc:
        raise _Invalid(types.INVALID_PARAMS, _first(exc)) from exc


def _result(method: str, params: dict[str, Any]) -> dict[str, Any]:
    if method == "initialize":
        asked = _params(types.InitializeRequestParams, params).protocol_version
        version = asked if asked in HANDSHAKE_PROTOCOL_VERSIONS else HANDSHAKE_PROTOCOL_VERSIONS[-1]
        result: Any = types.InitializeResult(
            protocol_version=version,
            capabilities=types.ServerCapabilities(tools=types.ToolsCapability(list_changed=False)),
            server_info=types.Implementation(name="strom", version=__version__),
            instructions=INSTRUCTIONS,
        )
    elif method == "ping":
        return {}
    elif method == "tools/list":
        result = types.ListToolsResult(
            tools=[
                types.Tool(
                    name=tool.name,
                    description=tool.description,
                    input_schema=tool.schema,
                    annotations=types.ToolAnnotations(read_only_hint=tool.permission == "read"),
                )
                for tool in TOOLS.values()
            ]
        )
    elif method == "tools/call":
        asked_call = _params(types.CallToolRequestParams, params)
        if asked_call.name not in TOOLS:
            raise _Invalid(types.INVALID_PARAMS, f"unknown tool {asked_call.name!r}; tools: {', '.join(TOOLS)}")
        try:
            data = call(asked_call.name, asked_call.arguments or {})
        except ToolError as exc:  # a tool's failure is its result, for the assistant to read
            result = types.CallToolResult(content=[types.TextContent(type="text", text=str(exc))], is_error=True)
        else:
            text = json.dumps(data, default=str)
            result = types.CallToolResult(
                content=[types.TextContent(type="text", text=text)], structured_content=data, is_error=False
            )
    else:
        raise _Invalid(types.METHOD_NOT_FOUND, f"method {method[:60]!r} is not served here")
    return result.model_dump(by_alias=True, exclude_none=True, mode="json")
