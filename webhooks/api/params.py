"""Query parameters the listings share: page size and Unix timestamps."""
from __future__ import annotations

from flask import request

from ..errors import ApiError

__all__ = ["MAX_PAGE", "page_limit", "timestamp"]

MAX_PAGE = 200


def page_limit(default: int = 50) -> int:
    try:
        return min(MAX_PAGE, max(1, int(request.args.get("limit", default))))
    except ValueError:
        raise ApiError(400, "bad_request", "limit must be a number") from None


def timestamp(name: str) -> float | None:
    value = request.args.get(name)
    if value in (None, ""):
        return None
    try:
        return float(value)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} must be a Unix timestamp, got {value!r}") from None
