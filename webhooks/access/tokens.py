"""API tokens and roles. Tokens are compared in constant time against every configured token."""

from __future__ import annotations

import functools
import hmac

from flask import g, request

from runner.git.snapshot_tokens import PREFIX as SCOPED_PREFIX  # short-lived snapshot tokens

from ..context import current_service
from ..errors import ApiError
from .roles import PERMISSIONS
from .session import signed_in

__all__ = ["PERMISSIONS", "SCOPED_PREFIX", "caller", "identify", "requires"]


def _presented() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.authorization is not None and request.authorization.password:
        return request.authorization.password
    return None


def identify():
    """The configured token the request presents, or None. Every token is compared, matched or not."""
    presented = _presented()
    if presented is None:
        return None
    found = None
    for token in current_service().config.tokens:
        if hmac.compare_digest(token.token.encode(), presented.encode()):
            found = found or token
    return found


def caller() -> str:
    token = getattr(g, "strom_token", None)
    return token.name if token is not None else "anonymous"


def requires(permission: str, scoped=None):
    """Only callers whose token's role has `permission`. `scoped(presented, view_kwargs)` may also
    accept a narrow token of its own kind (it returns why not, or None)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            presented = _presented()
            if scoped is not None and presented and presented.startswith(SCOPED_PREFIX):
                why = scoped(presented, kwargs)
                if why:
                    raise ApiError(401, "unauthorized", why)
                return view(*args, **kwargs)
            token = identify()
            if token is None and presented is None and request.method in ("GET", "HEAD"):
                token = signed_in()  # the UI's pages read the API with their session
            if token is None:
                reason = "missing" if _presented() is None else "unknown"
                raise ApiError(401, "unauthorized", f"{reason} API token; send `Authorization: Bearer <token>`")
            if permission not in PERMISSIONS[token.role]:
                raise ApiError(403, "forbidden", f"token {token.name!r} (role {token.role}) may not {permission}")
            g.strom_token = token
            return view(*args, **kwargs)

        vars(wrapper)["strom_permission"] = permission  # what the view needs (the API's tests read it)
        return wrapper

    return decorate
