"""Step scratch directories made ahead and removed behind, off the step's path.

Each step gets a fresh directory tree (its script, its out directory with `state`, `state-out` and
`artifacts`). Creating and removing directories costs a journaled filesystem tenths of a millisecond each,
which a step would otherwise wait for before it starts and after it ends. A pool keeps a few trees made by a
thread of its own, and removes used ones there; a step only takes one (or makes one itself when none is ready).
A tree is never handed out twice: a used one is only ever removed.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from ..readonly import make_writable

__all__ = ["ScratchPool"]


class ScratchPool:
    def __init__(self, prefix: str, layout: Callable[[Path], None], root: Path | None = None, ready: int = 2):
        """`layout(path)` fills a fresh directory with what every step needs (it runs in the pool's thread)."""
        self.prefix, self.layout, self.root, self.ready = prefix, layout, root, ready
        self._made: list[Path] = []
        self._used: list[Path] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def take(self) -> Path:
        with self._cond:
            self._start()
            path = self._made.pop() if self._made else None
            self._cond.notify()
        return path if path is not None else self._make()

    def give_back(self, path: Path) -> None:
        """`path` is done with: removed by the pool's thread."""
        with self._cond:
            self._start()
            self._used.append(path)
            self._cond.notify()

    def _make(self) -> Path:
        path = Path(tempfile.mkdtemp(prefix=self.prefix, dir=self.root))
        self.layout(path)
        return path

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            if self._thread is None:
                atexit.register(self.close)
            self._thread = threading.Thread(target=self._tend, daemon=True, name=f"strom-scratch-{self.prefix}")
            self._thread.start()

    def close(self) -> None:
        """Remove the trees made ahead and not taken, and those given back and not removed yet."""
        with self._cond:
            left, self._made, used, self._used = self._made, [], self._used, []
        for path in left + used:
            make_writable(path / "workspace")
            shutil.rmtree(path, ignore_errors=True)

    def _tend(self) -> None:
        while True:
            with self._cond:
                while not self._used and len(self._made) >= self.ready:
                    self._cond.wait()
                used = self._used.pop() if self._used else None
            if used is not None:
                make_writable(used / "workspace")
                shutil.rmtree(used, ignore_errors=True)
                continue
            try:
                made = self._make()
            except OSError:  # a full disk, say: steps make their own, and say why
                with self._cond:
                    self._cond.wait(5)
                continue
            with self._cond:
                self._made.append(made)
