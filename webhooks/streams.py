"""Server-Sent Events responses: the log follower and the overview's run changes share the framing and the end."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Response, stream_with_context
from redis import RedisError

__all__ = ["HEARTBEAT_MS", "MAX_STREAM_S", "event_stream"]

HEARTBEAT_MS = 15_000  # a comment this often keeps proxies from closing a quiet stream
MAX_STREAM_S = 300  # a stream is closed after this long (its greenlet is freed); the browser reconnects


def event_stream(events: Iterator[str]) -> Response:
    """`events` (SSE frames) as a streamed response. If Redis goes away meanwhile, the stream ends as a whole
    response: the browser reconnects by itself and resumes after the last id it received."""

    def until_redis_fails() -> Iterator[str]:
        try:
            yield from events
        except RedisError:
            return

    return Response(
        stream_with_context(until_redis_fails()),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
