"""Objects for workers on other machines (runner/store/objects.py): they store the files of task state and
artifacts, and read task state, through here with the worker token."""

from __future__ import annotations

import hmac

from flask import Response, jsonify, request

from runner.store.objects import ObjectError, ObjectMissing, ObjectStore, check_key

from ..context import current_service
from ..errors import ApiError
from . import bp

__all__ = ["get_object", "put_object", "stream_object"]


def _worker_only() -> None:
    key = current_service().config.worker_token
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if not key or scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), key.encode()):
        raise ApiError(401, "unauthorized", "objects are for workers: send `Authorization: Bearer <workers.token>`")


def _key(key: str) -> str:
    try:
        return check_key(key)
    except ObjectError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None


def _limit(key: str) -> int:
    config = current_service().config
    if key.startswith("state/"):
        from runner.executors.outfiles import MAX_STATE_ARCHIVE

        return MAX_STATE_ARCHIVE
    return config.artifacts_max_file


def stream_object(objects: ObjectStore, key: str, **headers: str) -> Response:
    """The object's bytes as a streamed response (404 when it is gone)."""
    try:
        body, size = objects.open(key)
    except ObjectMissing as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except ObjectError as exc:
        raise ApiError(502, "storage_failed", str(exc)) from None

    def chunks():
        try:
            while chunk := body.read(1 << 16):
                yield chunk
        finally:
            body.close()

    response = Response(
        chunks(), content_type=headers.pop("mimetype", "application/octet-stream"), direct_passthrough=True
    )
    response.headers["Content-Length"] = str(size)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers.update({k.replace("_", "-"): v for k, v in headers.items()})
    return response


@bp.put("/objects/<path:key>")
def put_object(key):
    _worker_only()
    key = _key(key)
    objects = current_service().objects
    try:
        if objects.exists(key):  # objects never change: a repeated upload (a retried report) changes nothing
            return jsonify(key=key, stored=False)
        limit = _limit(key)
        request.max_content_length = limit
        size = objects.put_stream(key, request.stream, limit)
    except ObjectMissing as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except ObjectError as exc:
        status = 413 if "over" in str(exc) else 502
        raise ApiError(status, "too_large" if status == 413 else "storage_failed", str(exc)) from None
    return jsonify(key=key, stored=True, size=size), 201


@bp.get("/objects/<path:key>")
def get_object(key):
    _worker_only()
    return stream_object(current_service().objects, _key(key))
