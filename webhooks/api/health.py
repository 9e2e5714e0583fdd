"""Liveness and readiness: the only API routes without a token."""
from __future__ import annotations

from flask import current_app, jsonify

from runner import __version__

from . import bp


@bp.get("/health")
def health():
    return jsonify(status="ok", version=__version__)


@bp.get("/ready")
def ready():
    service = current_app.extensions["strom"]
    try:
        service.redis.ping()
    except Exception as exc:
        return jsonify(status="unavailable", reason=f"Redis: {exc}"), 503
    workers = service.workers.live()
    return jsonify(status="ready", workers=len(workers))
