"""A child process started with posix_spawn, its pipes cooperative under gevent.

gevent's subprocess forks the whole worker process for every child, and copying a web worker's
memory map costs more than git's own work on a small push (twice per push: the ref advertisement and
the pack). posix_spawn starts the child without copying the parent. Under gevent (gunicorn's
workers) the pipes are gevent file objects and the exit is awaited through the event loop's child
watcher, so other requests go on meanwhile; elsewhere (the development server, tests) they are plain
files and `wait` blocks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import IO, Any

from .cooperative import gevent_patched

__all__ = ["Spawned"]


def _inheritable() -> list[int]:
    """Descriptors this process holds without close-on-exec (inherited from whoever started it): the
    child gets none of them, as subprocess's close_fds would have it."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return []
    held = []
    for name in names:
        fd = int(name)
        try:
            if fd > 2 and os.get_inheritable(fd):
                held.append(fd)
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return held


class Spawned:
    """`args` running with `env`, its stdin, stdout and stderr piped (stdin is buffered: flush it to send what
    was written before closing it, and close it to end its input)."""

    stdin: IO[bytes]
    stdout: IO[bytes]
    stderr: IO[bytes]

    def __init__(self, args: Sequence[str], env: Mapping[str, str]):
        ends = [os.pipe() for _ in range(3)]  # (read, write) each; created close-on-exec
        theirs = [ends[0][0], ends[1][1], ends[2][1]]
        ours = [ends[0][1], ends[1][0], ends[2][0]]
        try:
            self.pid = os.posix_spawnp(
                args[0],
                list(args),
                dict(env),
                file_actions=[(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(theirs)]
                + [(os.POSIX_SPAWN_CLOSE, fd) for fd in _inheritable()],
            )
        except BaseException:
            for fd in theirs + ours:
                os.close(fd)
            raise
        for fd in theirs:
            os.close(fd)
        self._watcher: Any = None
        if gevent_patched("os"):
            from gevent import get_hub
            from gevent.fileobject import FileObjectPosix

            # watched before anything yields: the loop reaps every child, and a status nobody watches is lost
            self._watcher = get_hub().loop.child(self.pid, False)
            self._watcher.start(lambda: None)
            self.stdin = FileObjectPosix(ours[0], "wb")  # buffered: a raw non-blocking write may write only part
            self.stdout = FileObjectPosix(ours[1], "rb")
            self.stderr = FileObjectPosix(ours[2], "rb")
        else:
            self.stdin = open(ours[0], "wb")  # closed by the caller, as Popen's pipes are
            self.stdout = open(ours[1], "rb")
            self.stderr = open(ours[2], "rb")
        self.returncode: int | None = None

    def wait(self) -> int:
        """Its exit status (a signal that ended it as its negative number, as subprocess has it)."""
        if self.returncode is not None:
            return self.returncode
        if self._watcher is not None:
            from gevent import get_hub

            if self._watcher.rpid == 0:  # not exited yet: wait through the loop, letting others run
                watcher = get_hub().loop.child(self.pid, False)
                with watcher:
                    get_hub().wait(watcher)
                status = watcher.rstatus
            else:
                status = self._watcher.rstatus
            self._watcher.stop()
        else:
            _, status = os.waitpid(self.pid, 0)
        self.returncode = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        return self.returncode
