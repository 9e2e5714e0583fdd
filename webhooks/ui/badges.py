"""Status badges: `/badge/<workspace>/<task>.svg?branch=main`, a shields-style SVG of the task's newest run.

Public only for workspaces that say `badges: true`; for the others, and for names that do not exist,
the answer is the same 404, so a badge URL tells a stranger nothing. Badges are small and change
when a run does: an ETag of the run and its status, and a short max-age, keep proxies honest.
"""

from __future__ import annotations

import hashlib
from html import escape

from flask import Blueprint, Response, abort, request

from runner.durations import format_duration
from runner.store import RunFilter

from ..context import current_service

__all__ = ["badge_svg", "bp"]

bp = Blueprint("badges", __name__)

_COLOURS = {
    "passing": "#2e9b52",
    "failing": "#cb2431",
    "running": "#2b6fd6",
    "waiting": "#c98a00",
    "cancelled": "#8d94a3",
    "no runs": "#8d94a3",
}
_WORDS = {"succeeded": "passing", "failed": "failing", "timed_out": "failing", "queued": "running"}


def _width(text: str) -> int:
    """Roughly how wide 11px Verdana sets `text`, as shields.io reckons it (no fonts are measured here)."""
    wide = sum(1 for c in text if c in "mwMW@%")
    narrow = sum(1 for c in text if c in "ilj.,:;|!'I1 ")
    return int(7 * len(text) + 2 * wide - 3 * narrow) + 10


def badge_svg(label: str, message: str, colour: str) -> str:
    left, right = _width(label), _width(message)
    total = left + right
    label_text, message_text = escape(label), escape(message)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{label_text}: {message_text}"><title>{label_text}: {message_text}</title>'
        f'<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        f'<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        f'<rect width="{total}" height="20" fill="url(#s)"/></g>'
        f'<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{left / 2:.1f}" y="14">{label_text}</text>'
        f'<text x="{left + right / 2:.1f}" y="14">{message_text}</text></g></svg>'
    )


@bp.get("/badge/<workspace>/<task>.svg")
def badge(workspace: str, task: str):
    service = current_service()
    config = service.config.workspaces.get(workspace)
    if config is None or not config.public_badges:
        abort(404, description="no badge here")
    branch = request.args.get("branch") or None
    if branch is not None and len(branch) > 200:
        abort(400, description="the branch name is too long")
    page = service.runs.list(RunFilter(workspace=workspace, task=task, branch=branch), limit=1)
    state = page.runs[0] if page.runs else None
    if state is None:
        word, took = "no runs", ""
    else:
        word = _WORDS.get(state.status.value, state.status.value)
        finished = state.finished_at if state.status.terminal else None
        took = f" · {format_duration(finished - (state.started_at or state.created_at))}" if finished else ""
    message = word + took
    tag = hashlib.sha256(f"{state.id if state else '-'}:{message}".encode()).hexdigest()[:20]
    if request.if_none_match.contains(tag):
        return Response(status=304, headers={"ETag": f'"{tag}"', "Cache-Control": "public, max-age=30"})
    svg = badge_svg(task, message, _COLOURS.get(word, "#8d94a3"))
    response = Response(svg, mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "public, max-age=30"
    response.headers["ETag"] = f'"{tag}"'
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response
