"""API tokens and roles. Tokens are compared in constant time against every configured token."""

from __future__ import annotations

import functools
import hmac

from flask import g, request

from runner.config import TokenConfig
from runner.signed_tokens import SCOPED_PREFIX  # short-lived snapshot and object tokens
from runner.store.run_tokens import PREFIX as RUN_PREFIX  # the tokens of runs with `api: true`

from ..context import current_service
from ..errors import ApiError
from .roles import PERMISSIONS
from .session import signed_in

__all__ = ["PERMISSIONS", "RUN_PREFIX", "SCOPED_PREFIX", "caller", "identify", "requires", "run_token"]


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


# What a run's token may do (runner/store/run_tokens.py): an operator's reading and starting, in the run's
# workspace only. Listings with no workspace in their path must name it as `?workspace=`.
_RUN_PERMISSIONS = frozenset({"read", "run"})
_RUN_LISTINGS = frozenset({"api.list_runs", "api.list_events"})


def run_token(presented: str, permission: str, view_kwargs: dict) -> TokenConfig:
    """The identity of a run's token, for a request it may make; else ApiError (401 or 403) saying why not."""
    service = current_service()
    run_id = service.run_tokens.run_of(presented)
    state = service.runs.load(run_id) if run_id else None
    if state is None:
        raise ApiError(401, "unauthorized", "this run token is not valid (or its run was deleted)")
    if state.status.terminal:
        raise ApiError(401, "unauthorized", f"run {state.id} has ended: its token no longer works")
    if not state.trusted:
        raise ApiError(401, "unauthorized", "runs of untrusted pull requests have no API token")
    if permission not in _RUN_PERMISSIONS:
        raise ApiError(403, "forbidden", f"a run's token may read and start runs, not {permission}")
    target = view_kwargs.get("workspace")
    if target is None and view_kwargs.get("run_id"):
        other = service.runs.load(view_kwargs["run_id"])
        target = other.workspace if other is not None else state.workspace  # an unknown run is a 404 below
    if target is None and request.endpoint in _RUN_LISTINGS:
        target = request.args.get("workspace")
        if target is None:
            raise ApiError(
                403, "forbidden", f"a run's token lists its own workspace's only: add ?workspace={state.workspace}"
            )
    if target != state.workspace:
        raise ApiError(403, "forbidden", f"run {state.id}'s token works only in workspace {state.workspace!r}")
    return TokenConfig(f"run:{state.id}", "operator", presented)


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
            if presented and presented.startswith(RUN_PREFIX):
                g.strom_token = run_token(presented, permission, kwargs)
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
