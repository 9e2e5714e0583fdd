"""Objects for workers on other machines (runner/store/objects.py): they store the files of task state and
artifacts, and read task state, through here with the worker token. A pod reaches the one object it may with
an object token (runner/store/object_tokens.py): it reads the task state files its step starts from, and
POSTs what its step left (as base64: busybox's wget can neither PUT nor send a NUL byte)."""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import IO, cast

from flask import Response, jsonify, request

from runner.store import object_tokens
from runner.store.objects import ObjectError, ObjectMissing, ObjectStore, check_key

from ..context import current_service
from ..errors import ApiError
from . import bp

__all__ = ["Base64Body", "delete_object", "get_object", "put_object", "stream_object"]


def _worker_only(key: str, verb: str) -> None:
    """The worker token opens every object; an object token the one it names, for its verb."""
    secret = current_service().config.worker_token
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    presented = presented.strip()
    if scheme.lower() == "bearer" and presented.startswith(object_tokens.TOKEN_PREFIX):
        why = object_tokens.check(secret, presented, verb, key)
        if why:
            raise ApiError(401, "unauthorized", why)
        return
    if not secret or scheme.lower() != "bearer" or not hmac.compare_digest(presented.encode(), secret.encode()):
        raise ApiError(401, "unauthorized", "objects are for workers: send `Authorization: Bearer <workers.token>`")


def _key(key: str) -> str:
    try:
        return check_key(key)
    except ObjectError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None


def _limit(key: str) -> int:
    config = current_service().config
    if key.startswith(("state/", "pods/")):
        from runner.executors.outfiles import MAX_STATE_ARCHIVE

        return MAX_STATE_ARCHIVE + (config.artifacts_max_run if key.startswith("pods/") else 0)
    return config.artifacts_max_file


class Base64Body:
    """A request body sent as base64, read decoded (whitespace between the characters is allowed)."""

    def __init__(self, stream: IO[bytes]):
        self.stream = stream
        self.pending = b""

    def read(self, size: int = -1) -> bytes:
        want = (max(size, 1 << 16) + 2) // 3 * 4
        while len(self.pending) < want:
            chunk = self.stream.read(want)
            if not chunk:
                break
            self.pending += b"".join(chunk.split())
        text, self.pending = self.pending[:want], self.pending[want:]  # `want` is a whole number of quads
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error as exc:
            raise ApiError(400, "bad_request", f"the body is not base64: {exc}") from None


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
@bp.post("/objects/<path:key>")
def put_object(key):
    key = _key(key)
    _worker_only(key, "put")
    objects = current_service().objects
    try:
        if objects.exists(key):  # objects never change: a repeated upload (a retried report) changes nothing
            return jsonify(key=key, stored=False)
        limit = _limit(key)
        body: IO[bytes] = request.stream
        if request.mimetype == "application/base64":
            request.max_content_length = limit // 3 * 4 + 4
            body = cast(IO[bytes], Base64Body(body))
        else:
            request.max_content_length = limit
        size = objects.put_stream(key, body, limit)
    except ObjectMissing as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except ObjectError as exc:
        status = 413 if "over" in str(exc) else 502
        raise ApiError(status, "too_large" if status == 413 else "storage_failed", str(exc)) from None
    return jsonify(key=key, stored=True, size=size), 201


@bp.get("/objects/<path:key>")
def get_object(key):
    key = _key(key)
    _worker_only(key, "get")
    return stream_object(current_service().objects, key)


@bp.delete("/objects/<path:key>")
def delete_object(key):
    key = _key(key)
    _worker_only(key, "delete")
    try:
        current_service().objects.delete(key)
    except ObjectError as exc:
        raise ApiError(502, "storage_failed", str(exc)) from None
    return "", 204
