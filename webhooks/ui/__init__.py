"""The web UI: server-rendered pages (Jinja2), a little plain JavaScript, styles served from here.
Nothing is fetched from the internet."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint

from runner.durations import format_duration

bp = Blueprint("ui", __name__, template_folder="templates", static_folder="static", static_url_path="/ui/static")


@bp.app_template_filter("duration")
def _duration(seconds):
    return format_duration(seconds) if seconds is not None else ""


@bp.app_template_filter("when")
def _when(ts):
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else ""


@bp.app_context_processor
def _helpers():
    from .session import csrf_token, may, signed_in
    return {"csrf_token": csrf_token, "may": may, "signed_in": signed_in}


from . import views  # noqa: E402,F401  (pages register on bp)

__all__ = ["bp"]
