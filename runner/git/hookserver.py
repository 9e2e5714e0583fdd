"""The other end of `hookclient`: while `strom web` serves a push, a thread answers that push's
pre-receive hook, checking the pushed `.strom/` with the loader this process has imported already
(a fresh Python importing it costs more than the rest of the push together)."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from ..spec.limits import SpecLimits
from .hookclient import QUARANTINE
from .prereceive import answer

__all__ = ["HookServer"]

log = logging.getLogger("strom.git")
MAX_REQUEST = 16 << 20  # the refs of one push: far more than any push updates


class HookServer:
    """Listens on a socket of its own (in a directory only this user may enter) until `close`."""

    def __init__(
        self,
        git_dir: Path,
        limits: SpecLimits,
        channels: Iterable[str] | None,
        providers: Iterable[str] | None = None,
        libraries: Callable[[], dict[str, str]] | None = None,
        workspaces: Iterable[str] = (),
    ):
        self.git_dir = git_dir
        self.libraries = libraries  # the server's libraries' files (runner/runs/libraries.py)
        self.workspaces = tuple(workspaces)  # whose actions a step may name as `workspace.action`
        self.limits = limits
        self.channels = None if channels is None else sorted(channels)
        self.providers = None if providers is None else sorted(providers)
        self._dir = tempfile.mkdtemp(prefix="strom-hook-")
        self.path = os.path.join(self._dir, "socket")
        self._listener = socket.socket(socket.AF_UNIX)
        self._listener.bind(self.path)
        self._listener.listen(4)
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="pre-receive", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed
                return
            with conn:
                try:
                    self._answer(conn)
                except Exception:  # the hook sees no answer and refuses the push
                    log.exception("checking a push in %s failed", self.git_dir.name)

    def _answer(self, conn: socket.socket) -> None:
        chunks, size = [], 0
        while chunk := conn.recv(65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_REQUEST:
                raise ValueError("the hook's request is too large")
        head, _, refs = b"".join(chunks).decode("utf-8", "surrogateescape").partition("\n\n")
        variables = dict(line.partition("=")[::2] for line in head.splitlines())
        env = {name: value for name, value in variables.items() if name in QUARANTINE}
        output, status = answer(
            self.git_dir, refs, self.limits, self.channels, env, self.providers, self.libraries, self.workspaces
        )
        conn.sendall(f"{status}\n{output}".encode("utf-8", "surrogateescape"))

    def close(self) -> None:
        """Stop answering (again: a no-op)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the serving thread
        except OSError:
            pass
        self._listener.close()
        self._thread.join(5)
        shutil.rmtree(self._dir, ignore_errors=True)
