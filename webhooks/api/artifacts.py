"""A run's artifacts (docs/artifacts.md): the files its succeeded steps left in `$ARTIFACTS_DIR`."""

from __future__ import annotations

from urllib.parse import quote

from flask import jsonify

from ..access.tokens import requires
from ..context import current_service
from ..errors import ApiError
from . import bp
from .objects import stream_object
from .representations import run_artifacts_json
from .runs import load_run

__all__ = ["INLINE", "get_artifact", "list_artifacts"]

# Shown in the browser; anything else (HTML, SVG, XML, scripts) is downloaded, never rendered on this origin
INLINE = {
    "image/png": "image/png",
    "image/jpeg": "image/jpeg",
    "image/gif": "image/gif",
    "image/webp": "image/webp",
    "application/pdf": "application/pdf",
    "text/plain": "text/plain; charset=utf-8",
    "text/markdown": "text/plain; charset=utf-8",
    "text/csv": "text/plain; charset=utf-8",
    "application/json": "text/plain; charset=utf-8",
}


@bp.get("/runs/<run_id>/artifacts")
@requires("read")
def list_artifacts(run_id):
    return jsonify(artifacts=run_artifacts_json(load_run(run_id)))


@bp.get("/runs/<run_id>/artifacts/<step>/<path:name>")
@requires("read")
def get_artifact(run_id, step, name):
    state = load_run(run_id)
    run = state.steps.get(step)
    found = next((a for a in (run.artifacts or ()) if a.get("name") == name), None) if run else None
    if found is None:
        raise ApiError(404, "not_found", f"step {step!r} of run {run_id} kept no artifact {name!r}")
    stored_type = str(found.get("content_type") or "application/octet-stream")
    filename = quote(name.rsplit("/", 1)[-1])
    inline = INLINE.get(stored_type)
    disposition = "inline" if inline else "attachment"
    return stream_object(
        current_service().objects,
        found["key"],
        mimetype=inline or "application/octet-stream",
        Content_Disposition=f"{disposition}; filename*=UTF-8''{filename}",
        Content_Security_Policy="sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'",
    )
