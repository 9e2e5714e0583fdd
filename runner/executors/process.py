"""Run a process, stream its lines, and kill its whole tree on timeout or cancel."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

__all__ = ["MAX_LINE", "STEP_GROUPS", "LineSplitter", "ProcessOutcome", "StepGroups", "kill_tree", "run_process"]

MAX_LINE = 64 * 1024
_POLL = 0.05
_EOF_GRACE = 0.2  # after the main process exits, how long children may keep its pipes open


@dataclass(frozen=True)
class ProcessOutcome:
    exit_code: int | None
    timed_out: bool = False
    cancelled: bool = False
    started_at: float = 0.0
    error: str | None = None


class LineSplitter:
    """Bytes in, whole lines out (split at MAX_LINE when a line never ends)."""

    def __init__(
        self, stream: str, emit: Callable[[str, str], None], safe_cut: Callable[[bytes, int], int] | None = None
    ):
        self.stream, self.emit, self.buffer = stream, emit, b""
        self.safe_cut = safe_cut  # moves a cut off a secret (Masker.safe_cut)

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            cut = self.buffer.find(b"\n")
            if cut < 0:
                break
            self._send(self.buffer[:cut])
            self.buffer = self.buffer[cut + 1 :]
        while len(self.buffer) > MAX_LINE:
            cut = self.safe_cut(self.buffer, MAX_LINE) if self.safe_cut else MAX_LINE
            self._send(self.buffer[:cut])
            self.buffer = self.buffer[cut:]

    def close(self) -> None:
        if self.buffer:
            self._send(self.buffer)
            self.buffer = b""

    def _send(self, raw: bytes) -> None:
        self.emit(self.stream, raw.decode("utf-8", errors="replace").rstrip("\r"))


# Run by the watchdog: block until the worker's end of the pipe closes (it exited, however it
# died), then kill the process group of every step it was running.
_WATCHDOG = (
    'cat >/dev/null; if [ -f "$1" ]; then while read -r g; do kill -KILL "-$g" 2>/dev/null; done < "$1"; fi; '
    'rm -rf "$2"'
)


class StepGroups:
    """The process groups of the steps this process runs, and a watchdog that kills them if it dies.

    Each step leads a process group of its own. Its sandbox may die with the worker (bubblewrap's
    --die-with-parent), but a plain process does not, and neither do its children; so a small
    shell started once per worker waits on a pipe only the worker holds, and when the pipe closes
    it kills every group listed in a file the worker keeps current.
    """

    def __init__(self):
        self.groups: set[int] = set()
        self.lock = threading.Lock()
        self.file: Path | None = None
        self.watchdog: subprocess.Popen | None = None

    def watch(self) -> None:
        """Start the watchdog (once per process)."""
        with self.lock:
            if self.watchdog is not None:
                return
            directory = Path(tempfile.mkdtemp(prefix="strom-steps-"))
            self.file = directory / "groups"
            self._write()
            self.watchdog = subprocess.Popen(
                ["/bin/sh", "-c", _WATCHDOG, "strom-watchdog", str(self.file), str(directory)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )

    def add(self, pgid: int) -> None:
        with self.lock:
            self.groups.add(pgid)
            self._write()

    def remove(self, pgid: int) -> None:
        with self.lock:
            self.groups.discard(pgid)
            self._write()

    def _write(self) -> None:
        """Best effort: a step runs whether or not its group could be written down."""
        if self.file is None:
            return
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)  # a cleaner of /tmp may have removed it
            temp = self.file.with_suffix(".tmp")
            temp.write_text("".join(f"{g}\n" for g in sorted(self.groups)))
            os.replace(temp, self.file)
        except OSError:
            pass


STEP_GROUPS = StepGroups()


def kill_tree(pid: int, grace: float = 5.0) -> None:
    """SIGTERM the process group and every descendant, then SIGKILL what is left after `grace`."""
    try:
        family = [psutil.Process(pid)]
        family += family[0].children(recursive=True)
    except psutil.Error:
        family = []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        for proc in family:
            try:
                proc.send_signal(sig)
            except psutil.Error:
                pass
        if sig is signal.SIGTERM:
            family = _wait_gone(family, grace)
            if not family:
                return


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE  # a zombie has exited; its reaper may be slow
    except psutil.Error:
        return False


def _wait_gone(family: list, timeout: float) -> list:
    end = time.monotonic() + timeout
    alive = [p for p in family if _alive(p)]
    while alive and time.monotonic() < end:
        time.sleep(0.01)
        alive = [p for p in alive if _alive(p)]
    return alive


def run_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | None,
    emit: Callable[[str, str], None],
    cancel: threading.Event,
    timeout: float | None,
    kill_grace: float = 5.0,
    options: Mapping | None = None,
    safe_cut: Callable[[bytes, int], int] | None = None,
) -> ProcessOutcome:
    """Run to completion; `emit(stream, line)` gets each stdout/stderr line as it is produced. `options`
    are more subprocess.Popen arguments (the sandbox's user, group, umask and limits)."""
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            **(options or {}),
        )
    except OSError as exc:
        return ProcessOutcome(None, error=f"could not start {argv[0]}: {exc.strerror or exc}")
    STEP_GROUPS.add(proc.pid)
    try:
        return _supervise(proc, emit, cancel, timeout, kill_grace, safe_cut)
    finally:
        STEP_GROUPS.remove(proc.pid)


def _supervise(
    proc: subprocess.Popen[bytes],
    emit: Callable[[str, str], None],
    cancel: threading.Event,
    timeout: float | None,
    kill_grace: float,
    safe_cut: Callable[[bytes, int], int] | None = None,
) -> ProcessOutcome:
    started = time.time()
    deadline = time.monotonic() + timeout if timeout else None
    stdout, stderr = proc.stdout, proc.stderr
    if stdout is None or stderr is None:  # run_process starts it with both piped
        raise ValueError("the step's output is not piped")
    readers = {
        stdout.fileno(): LineSplitter("stdout", emit, safe_cut),
        stderr.fileno(): LineSplitter("stderr", emit, safe_cut),
    }
    selector = selectors.DefaultSelector()
    for fd in readers:
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
    timed_out = cancelled = False
    exited_at = None
    try:
        while readers:
            wait = _POLL
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - time.monotonic()))
            for key, _ in selector.select(wait):
                fd = key.fd
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if data:
                    readers[fd].feed(data)
                else:
                    readers.pop(fd).close()
                    selector.unregister(fd)
            if not readers:
                break
            if cancel.is_set():
                cancelled = True
                kill_tree(proc.pid, kill_grace)
                break
            if deadline is not None and time.monotonic() >= deadline:
                timed_out = True
                kill_tree(proc.pid, kill_grace)
                break
            if proc.poll() is not None:
                exited_at = exited_at or time.monotonic()
                if time.monotonic() - exited_at > _EOF_GRACE:
                    kill_tree(proc.pid, 0.5)  # orphans holding the pipes do not outlive their step
                    break
        _drain(selector, readers)
    finally:
        selector.close()
        stdout.close()
        stderr.close()
    exit_code = proc.wait()
    if not (timed_out or cancelled) and _group_alive(proc.pid):
        kill_tree(proc.pid, 0.5)
    return ProcessOutcome(exit_code, timed_out=timed_out, cancelled=cancelled, started_at=started)


def _drain(selector, readers) -> None:
    for fd, lines in list(readers.items()):
        try:
            while True:
                data = os.read(fd, 65536)
                if not data:
                    break
                lines.feed(data)
        except (BlockingIOError, OSError):
            pass
        lines.close()
        readers.pop(fd)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False
