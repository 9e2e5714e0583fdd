"""Objects for workers on other machines (runner/store/objects.py): they store and read the files of task state
through here, with the worker token."""

from __future__ import annotations

import hmac

from flask import jsonify, request, send_file

from runner.executors.statefiles import MAX_STATE_SIZE
from runner.store.objects import ObjectError, check_key

from ..context import current_service
from ..errors import ApiError
from . import bp

_SLACK = 1024 * 1024  # a gzipped tar of MAX_STATE_SIZE bytes of files may be a little larger


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


@bp.put("/objects/<path:key>")
def put_object(key):
    _worker_only()
    key = _key(key)
    objects = current_service().objects
    if objects.path(key).is_file():  # objects never change: a repeated upload (a retried step) changes nothing
        return jsonify(key=key, stored=False)
    request.max_content_length = MAX_STATE_SIZE + _SLACK
    try:
        size = objects.put_stream(key, request.stream, MAX_STATE_SIZE + _SLACK)
    except ObjectError as exc:
        raise ApiError(413, "too_large", str(exc)) from None
    return jsonify(key=key, stored=True, size=size), 201


@bp.get("/objects/<path:key>")
def get_object(key):
    _worker_only()
    path = current_service().objects.path(_key(key))
    if not path.is_file():
        raise ApiError(404, "not_found", f"no object {key}")
    return send_file(path, mimetype="application/octet-stream", max_age=0)
