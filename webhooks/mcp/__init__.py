"""`/mcp`: Strom as a tool server for assistants (the Model Context Protocol), off unless `mcp.enabled`.

The Streamable HTTP transport in JSON response mode, stateless: each POST carries one JSON-RPC message and gets
its answer as JSON (a notification gets 202); there is no server-to-client stream and no session, so GET and
DELETE are 405. Callers present the API's bearer tokens, and each tool needs the permission its API route
needs. Host (and Origin, when sent) must be public_url's, loopback's or one of `mcp.allowed_hosts`: a page
elsewhere cannot reach a local Strom through DNS rebinding. The messages are read and written with the MCP
SDK's own types (webhooks/mcp/protocol.py, imported on the first call)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from flask import Blueprint, Response, g, request

from ..access.tokens import identify
from ..context import current_service

__all__ = ["MAX_MESSAGE", "bp"]

bp = Blueprint("mcp", __name__)
MAX_MESSAGE = 1024 * 1024  # bytes of one JSON-RPC message
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def _allowed_host(host: str | None) -> bool:
    if not host:
        return False
    config = current_service().config
    public = (urlsplit(config.public_url).hostname or "").lower() if config.public_url else ""
    return host.lower() in _LOOPBACK | {public} | set(config.mcp_allowed_hosts)


def _refusal(status: int, message: str, **headers: str) -> Response:
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message}})
    return Response(body, status, mimetype="application/json", headers=headers)


@bp.route("/mcp", methods=["POST", "GET", "DELETE"])
def endpoint():
    token = identify()
    if token is None:
        return _refusal(401, "send an API token: `Authorization: Bearer <token>`", **{"WWW-Authenticate": "Bearer"})
    if not current_service().config.mcp_enabled:
        return _refusal(404, "the MCP endpoint is off: set `mcp: { enabled: true }` in the server configuration")
    origin = request.headers.get("Origin")
    if not _allowed_host(urlsplit(f"//{request.host}").hostname) or (
        origin and not _allowed_host(urlsplit(origin).hostname)
    ):
        return _refusal(403, "this Host or Origin may not use /mcp; add it to mcp.allowed_hosts")
    if request.method != "POST":
        return _refusal(405, "this server keeps no sessions and sends no stream: POST one message", Allow="POST")
    g.strom_token = token
    if (request.content_length or 0) > MAX_MESSAGE:
        return _refusal(413, f"a message is at most {MAX_MESSAGE} bytes")
    from .protocol import answer

    status, reply = answer(
        request.get_data(cache=False)[: MAX_MESSAGE + 1], request.headers.get("Mcp-Protocol-Version")
    )
    if reply is None:
        return Response(status=status)
    return Response(json.dumps(reply, default=str), status, mimetype="application/json")


vars(endpoint)["strom_permission"] = "read"  # the least a token needs here; each tool checks its own (tools.py)
