"""Request bodies from strangers: read with a cap, whether their length is declared or they are
chunked, and never parsed before the sender is authenticated."""
from __future__ import annotations

from flask import request

from ..errors import ApiError

__all__ = ["read_body"]

_CHUNK = 64 * 1024


def read_body(limit: int) -> bytes:
    """The body, at most `limit` bytes: 413 when it is longer (before reading it, when its length is declared)."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    stream, chunks, size = request.stream, [], 0
    while True:
        try:
            chunk = stream.read(min(_CHUNK, limit + 1 - size))
        except OSError:  # the client stopped sending for longer than web.read_timeout
            raise ApiError(408, "timeout", "the body stopped arriving; send it again") from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"the body is larger than {limit} bytes, the most this server reads "
                                      "(limits.webhook_body_size)")
