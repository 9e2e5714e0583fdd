"""The REST API under /api: workspaces, tasks, runs, logs (with live follow), approvals."""

from flask import Blueprint, request

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.before_request
def _known_query_parameters():
    """A query parameter the API does not take, or one given twice, is an error, not silently ignored (a typo
    filters nothing)."""
    from ..errors import ApiError
    from ..openapi import query_parameters

    if request.url_rule is None or not request.args:
        return
    known = query_parameters(request.url_rule.rule, request.method)
    unknown = sorted(set(request.args) - known) if known is not None else []
    if known is not None and unknown:
        raise ApiError(
            400,
            "bad_request",
            f"unknown query parameter {unknown[0][:40]!r}; this takes: {', '.join(sorted(known)) or 'none'}",
        )
    repeated = sorted(name for name in request.args if len(request.args.getlist(name)) > 1)
    if repeated:  # every parameter takes one value: which of several was meant is a guess
        raise ApiError(400, "bad_request", f"query parameter {repeated[0][:40]!r} is given more than once")


from . import artifacts, events, health, logs, objects, runs, snapshots, task_state, workspaces  # noqa: E402  (views register on bp)

__all__ = ["bp"]
