"""What requests share: page size, Unix timestamps, whole numbers, JSON object bodies, short texts."""

from __future__ import annotations

import math

from flask import request

from ..errors import ApiError

__all__ = ["MAX_PAGE", "json_object", "number", "page_limit", "short_text", "timestamp", "unix_time"]

MAX_PAGE = 200
MAX_TEXT = 4000  # characters of a reason, a note


def number(name: str, value: str | None, maximum: int = 2**31 - 1) -> int | None:
    """`value` as a whole number written in ASCII digits (so not "²" or "1e3"), or 400 naming `name`."""
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 12 and int(value) <= maximum):
        raise ApiError(400, "bad_request", f"{name} must be a whole number up to {maximum}, not {value[:40]!r}")
    return int(value)


def page_limit(default: int = 50) -> int:
    value = number("limit", request.args.get("limit"), MAX_PAGE)
    if value == 0:
        raise ApiError(400, "bad_request", f"limit must be from 1 to {MAX_PAGE}")
    return default if value is None else value


def unix_time(value: str) -> float | None:
    """`value` as a Unix timestamp, or None when it is not a finite number."""
    try:
        stamp = float(value)
    except ValueError:
        return None
    return stamp if math.isfinite(stamp) else None


def timestamp(name: str) -> float | None:
    value = request.args.get(name)
    if value is None:
        return None
    stamp = unix_time(value)
    if stamp is None:
        raise ApiError(400, "bad_request", f"{name} must be a Unix timestamp, got {value[:40]!r}")
    return stamp


def json_object() -> dict:
    """The request's JSON body as an object (none: empty); 400 when it is something else."""
    body = request.get_json(silent=True)
    if body is None:
        if request.get_data(cache=True).strip():
            raise ApiError(400, "bad_request", "the body is not JSON; send a JSON object")
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", f"the body must be a JSON object, not a {type(body).__name__}")
    return body


def short_text(body: dict, *names: str, limit: int = MAX_TEXT) -> str | None:
    """The first of `names` in `body` that is set: a string of at most `limit` characters, or 400."""
    for name in names:
        value = body.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise ApiError(400, "bad_request", f"{name} must be a string")
        if len(value) > limit:
            raise ApiError(400, "bad_request", f"{name} is longer than {limit} characters")
        return value
    return None
