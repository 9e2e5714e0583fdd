"""The web UI: server-rendered pages (Jinja2), a little plain JavaScript, styles served from here.
Nothing is fetched from the internet."""

from __future__ import annotations

from datetime import UTC, datetime, timezone

from flask import Blueprint

from runner.durations import format_duration

bp = Blueprint("ui", __name__, template_folder="templates", static_folder="static", static_url_path="/ui/static")


@bp.app_template_filter("duration")
def _duration(seconds):
    return format_duration(seconds) if seconds is not None else ""


@bp.app_template_filter("filesize")
def _filesize(size):
    from runner.sizes import format_size

    return format_size(size or 0)


@bp.app_template_filter("markdown")
def _markdown(text):
    from .markdown import to_html

    return to_html(text)


@bp.app_template_filter("when")
def _when(ts):
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else ""


# Pages may load only this server's own scripts and styles, are never framed, and send no referrer
# (a run's link carries its id) to other sites. Inline styles are allowed: the timeline's bars use them.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@bp.after_app_request
def _security_headers(response):
    if response.mimetype == "text/html":
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


@bp.app_context_processor
def _helpers():
    from ..access.session import csrf_token, may, signed_in

    return {"csrf_token": csrf_token, "may": may, "signed_in": signed_in}


from . import events, overview, pulls, trends, views, workers  # noqa: E402  (pages register on bp)

__all__ = ["bp"]
