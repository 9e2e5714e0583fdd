"""Liveness and readiness (the only API routes without a token), and the health of every process."""

from __future__ import annotations

import time

from flask import jsonify

from runner import __version__

from ..access.tokens import requires
from ..context import current_service
from . import bp

_TROUBLE = ("dead", "failing", "waiting-for-redis")


def _troubles(record: dict) -> list[str]:
    return [
        f"{record['name']}: loop {name} is {loop['state']}" + (f" ({loop['error']})" if loop.get("error") else "")
        for name, loop in record.get("loops", {}).items()
        if loop.get("state") in _TROUBLE
    ]


@bp.get("/health")
def health():
    return jsonify(status="ok", version=__version__)


@bp.get("/ready")
def ready():
    """Ready when Redis answers; `degraded` when a scheduler or worker reports a loop in trouble."""
    service = current_service()
    service.redis.ping()  # unreachable: 503 with Retry-After (webhooks/errors.py)
    processes = service.workers.processes(time.time())
    troubled = sum(1 for record in processes if _troubles(record))
    return jsonify(
        status="degraded" if troubled else "ready",
        workers=len(service.workers.live()),
        schedulers=sum(1 for r in processes if r["kind"] == "scheduler"),
        troubled_processes=troubled,
    )


@bp.get("/processes")
@requires("read")
def processes():
    """Schedulers and workers that reported lately: their loops and whether Redis answers them."""
    records = current_service().workers.processes(time.time())
    return jsonify(processes=[{**record, "problems": _troubles(record)} for record in records])
