"""Request bodies from strangers: read with a cap on their size and on the time they take to arrive,
whether their length is declared or they are chunked, and never parsed before the sender is
authenticated. Every other body the app reads (API JSON, forms) is capped by MAX_BODY."""

from __future__ import annotations

import socket
import threading
import time
from typing import IO, Any

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from ..errors import ApiError
from .cooperative import gevent_patched

__all__ = ["MAX_BODY", "READS_PER_BODY", "read_body"]

_CHUNK = 64 * 1024
MAX_BODY = 1024 * 1024  # API requests, sign-in forms (MAX_CONTENT_LENGTH)
READS_PER_BODY = 4  # a body may take this many times web.read_timeout to arrive in all (each read has one)


def read_body(config) -> bytes:
    """The body, at most limits.webhook_body_size bytes: 413 when it is longer (before reading it, when its length
    is declared), 408 when it takes longer than READS_PER_BODY times web.read_timeout to arrive."""
    limit, seconds = config.webhook_body_size, READS_PER_BODY * config.web_read_timeout
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    request.max_content_length = limit
    late = ApiError(408, "timeout", f"the body took longer than {seconds:g} s to arrive; send it again")
    with _Deadline(seconds, late):  # a read blocks until its whole chunk is in: a trickle needs the deadline
        return _read(request.stream, limit)


def _read(stream: IO[bytes], limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            chunk = stream.read(min(_CHUNK, limit + 1 - size))
        except OSError:  # the client stopped sending for longer than web.read_timeout
            raise ApiError(408, "timeout", "the body stopped arriving; send it again") from None
        except RequestEntityTooLarge:
            raise _too_large(limit) from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)


class _Deadline:
    """Raises `error` once `seconds` pass while the body is read: in the reading greenlet under gevent workers; in
    a thread (the single-process server) by shutting the reading side of the connection, which ends the read
    that waits (the answer can still be written)."""

    def __init__(self, seconds: float, error: ApiError):
        self.seconds, self.error = seconds, error
        self.timer: Any = None  # a gevent.Timeout, or a threading.Timer
        self.cut = False

    def __enter__(self):
        self.started = time.monotonic()
        if gevent_patched("socket"):
            import gevent

            self.timer = gevent.Timeout(self.seconds, self.error)
            self.timer.start()
        elif (connection := request.environ.get("werkzeug.socket")) is not None:
            self.timer = threading.Timer(self.seconds, self._cut, args=(connection,))
            self.timer.daemon = True
            self.timer.start()
        return self

    def _cut(self, connection: socket.socket) -> None:
        self.cut = True
        try:
            connection.shutdown(socket.SHUT_RD)
        except OSError:  # gone already
            pass

    def __exit__(self, kind, value, traceback):
        if isinstance(self.timer, threading.Timer):
            self.timer.cancel()
        elif self.timer is not None:
            self.timer.close()
        if self.cut or (kind is None and time.monotonic() - self.started > self.seconds):
            raise self.error
        return False


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "too_large",
        f"the body is larger than {limit} bytes, the most this server reads (limits.webhook_body_size)",
    )
