"""Where a local step runs: bubblewrap with no privilege at all, or (trusted steps only) a read-only copy.

With bubblewrap a step:
- runs as an unprivileged user: a uid of its own from STEP_UIDS when the worker is root (so it
  owns nothing on the host, cannot read root's files, and has its own process limit), else the
  worker's uid; always in a user namespace of its own, with every capability dropped, no new
  privileges, no further namespaces, in a session of its own, and dying with its worker;
- behind a seccomp filter (runner/executors/seccomp.py) against mounts, tracing, keyrings, bpf,
  io_uring and the like;
- sees what programs need of the host (/usr, /etc, /opt, /home, /var, ... and the directories on
  its PATH) read-only, with /run (host sockets: Docker's, D-Bus's) and Strom's own files (data
  directory, configuration, key files) covered by empty ones, and nothing else of it (/root,
  /srv, /mnt, ...);
- sees the workspace read-only at /workspace, its script and event file read-only at /strom, and
  a private /tmp (its HOME and TMPDIR) and /dev/shm in memory, each of a bounded size;
- has no network at all when its policy says so (a network namespace of its own);
- is held to limits on processes, memory, open files and file sizes (rlimits).
util-linux's setpriv and prlimit switch to the step's uid and set its limits just before
bubblewrap starts; without them, Popen does it between fork and exec (slower: a full fork).
Without bubblewrap a step runs in a throw-away read-only copy of the workspace (as its own uid
when the worker is root), which only trusted steps may do.
"""

from __future__ import annotations

import functools
import logging
import os
import resource
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import StepSetupError
from ..readonly import make_read_only
from .seccomp import SUPPORTED, filter_program

__all__ = [
    "CODE_MOUNT",
    "EMPTY_MOUNT",
    "TMP_MOUNT",
    "WORKSPACE_MOUNT",
    "Sandbox",
    "StepLimits",
    "StepUsers",
    "bwrap_available",
    "count_processes",
    "hidden_inside",
    "open_to_steps",
    "sandbox_problem",
]

log = logging.getLogger("strom.sandbox")

WORKSPACE_MOUNT = "/workspace"
TMP_MOUNT = "/tmp"
CODE_MOUNT = "/strom"
EMPTY_MOUNT = f"{TMP_MOUNT}/.strom-empty"  # an empty directory in the step's own /tmp (its $STATE_DIR without state)
STEP_UID, STEP_GID, STEP_UIDS = 61000, 61000, 256  # steps of a root worker run as uids 61000-61255, group 61000


@dataclass(frozen=True)
class StepLimits:
    processes: int = 512  # per step (needs a uid of its own: a root worker)
    memory: int = 4 * 1024**3  # bytes of data one process may map
    tmp: int = 1024**3  # bytes of /tmp (in memory)
    shm: int = 64 * 1024**2  # bytes of /dev/shm
    open_files: int = 4096
    file_size: int = 1024**3  # the largest file a step may write

    def rlimits(self, processes: int) -> tuple[tuple[int, int], ...]:
        return (
            (resource.RLIMIT_DATA, self.memory),
            (resource.RLIMIT_NOFILE, self.open_files),
            (resource.RLIMIT_FSIZE, self.file_size),
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_NPROC, processes),
        )

    def apply(self, processes: int) -> None:
        """In the step's process, before it starts: its rlimits (inherited by everything it starts)."""
        for kind, value in self.rlimits(processes):
            resource.setrlimit(kind, (value, value))

    def command(self, processes: int) -> list[str] | None:
        """util-linux's `prlimit` setting these limits, to put before the step's command; None without it."""
        tool = _tool("prlimit")
        if tool is None:
            return None
        names = {
            resource.RLIMIT_DATA: "data",
            resource.RLIMIT_NOFILE: "nofile",
            resource.RLIMIT_FSIZE: "fsize",
            resource.RLIMIT_CORE: "core",
            resource.RLIMIT_NPROC: "nproc",
        }
        return [tool, *(f"--{names[kind]}={value}" for kind, value in self.rlimits(processes)), "--"]

    def process_cap(self, own_uid: bool) -> int:
        """RLIMIT_NPROC for a step. The kernel counts every process of the step's uid: with a uid of its own
        that is the step's; sharing the worker's uid, the step may add `processes` to those running now (all of
        them, counted: cheaper than finding the uid's own, and as bounded)."""
        return self.processes if own_uid else self.processes + count_processes()


class StepUsers:
    """The uids a root worker gives its steps, one per running step."""

    def __init__(self, base: int = STEP_UID, count: int = STEP_UIDS):
        self.free = list(range(base, base + count))
        self.lock = threading.Lock()

    def take(self) -> int | None:
        """A free uid, or None when the worker is not root (steps then run as its own uid)."""
        if os.geteuid() != 0:
            return None
        with self.lock:
            if not self.free:
                raise StepSetupError(f"more than {STEP_UIDS} steps at once on one worker")
            return self.free.pop(0)

    def give_back(self, uid: int | None) -> None:
        if uid is not None:
            with self.lock:
                self.free.append(uid)


def open_to_steps(directory: Path) -> None:
    """Let steps' own uids pass through `directory` (o+x: enter, not list) to the commit snapshots in it.

    Only for a root worker, whose steps run as other uids; what it holds stays as closed as its own
    modes say (secrets are 0600), and sandboxed steps see the directory covered anyway."""
    if os.geteuid() != 0 or not directory.is_dir():
        return
    mode = directory.stat().st_mode
    if not mode & 0o001:
        directory.chmod((mode & 0o7777) | 0o001)
        log.warning(
            "%s was closed to other users; made enterable (o+x) so that steps, which run as their own "
            "uids, reach the commit snapshots in it",
            directory,
        )


@functools.lru_cache(maxsize=1)
def bwrap_available() -> bool:
    path = shutil.which("bwrap")
    if not path:
        return False
    try:
        probe = subprocess.run(
            [path, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-pid", "true"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


@functools.lru_cache(maxsize=1)
def _seccomp_file() -> str | None:
    """A file holding the seccomp program (None on an architecture without a table)."""
    import platform

    if platform.machine() not in SUPPORTED:
        return None
    fd, path = tempfile.mkstemp(prefix="strom-seccomp-")
    os.write(fd, filter_program())
    os.close(fd)
    os.chmod(path, 0o444)
    return path


@functools.lru_cache(maxsize=1)
def sandbox_problem() -> str | None:
    """Why the full sandbox cannot be built on this machine (run once, as a step would be), or None."""
    if not bwrap_available():
        return "bubblewrap (bwrap) is not installed or does not work here"
    scratch = Path(tempfile.mkdtemp(prefix="strom-probe-"))
    try:
        scratch.chmod(0o755)
        (scratch / "ws").mkdir()
        users = StepUsers()
        uid = users.take()
        box = Sandbox(scratch / "ws", scratch, True, network=False, uid=uid)
        box.prepare()
        argv, _ = box.wrap(["/bin/sh", "-c", "id -u; touch /tmp/x"], WORKSPACE_MOUNT, "/usr/bin:/bin")
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, **box.process_options())
        box.close()
        if done.returncode != 0:
            return f"the sandbox failed to start: {done.stderr.strip()[-300:] or done.returncode}"
        return None
    except (OSError, subprocess.SubprocessError, StepSetupError) as exc:
        return f"the sandbox failed to start: {exc}"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class Sandbox:
    """The paths a step sees, and how to start its processes."""

    workspace: Path  # host path of the workspace snapshot
    scratch: Path  # host path of the step's private directory
    use_bwrap: bool
    extra_binds: tuple[tuple[Path, str], ...] = ()  # (host dir, path inside) bound writable, e.g. caches
    hide: tuple[Path, ...] = ()  # host paths steps must not see (Strom's data, its configuration and key files)
    network: bool = True  # False: a network namespace of its own (loopback only)
    uid: int | None = None  # the step's own uid (a root worker), else None
    limits: StepLimits = field(default_factory=StepLimits)
    _fds: dict = field(default_factory=dict, repr=False)  # host path -> fd, passed to bwrap
    _bound: Path | None = field(default=None, repr=False)  # the copy bound at /workspace, if the step cannot reach it
    _launcher: list[str] = field(default_factory=list, repr=False)  # what `wrap` put before the command
    _switched: bool = field(default=False, repr=False)  # the launcher switches to the step's uid
    _limited: bool = field(default=False, repr=False)  # the launcher sets the limits

    # ------------------------------------------------------------------ paths inside
    @property
    def workspace_path(self) -> str:
        return WORKSPACE_MOUNT if self.use_bwrap else str(self.scratch / "workspace")

    @property
    def empty_dir(self) -> str | None:
        """An empty directory the step sees, made in memory with its sandbox (None without bubblewrap)."""
        return EMPTY_MOUNT if self.use_bwrap else None

    @property
    def tmp_path(self) -> str:
        return TMP_MOUNT if self.use_bwrap else str(self.scratch / "tmp")

    @property
    def code_dir(self) -> Path:
        """Host directory of the step's script and event file; not the step's to change when it runs as a uid of
        its own (the directory is the worker's), except `out_dir`."""
        return self.scratch / "code"

    @property
    def deps_path(self) -> str:
        """Where the step's dependencies are installed (writable, inside /tmp)."""
        return f"{self.tmp_path}/.deps"

    @property
    def out_dir(self) -> Path:
        """Host directory the step may write files for Strom to read after it (its summary), the step's own."""
        return self.code_dir / "out"

    def inside(self, host_path: Path) -> str:
        """Where a file of the code directory appears to the step."""
        rel = host_path.relative_to(self.code_dir)
        return str(Path(CODE_MOUNT if self.use_bwrap else self.code_dir) / rel)

    def visible_path(self, search_path: str) -> str:
        """PATH without the directories the step cannot see or enter: the host's /tmp (replaced by its own),
        and, for a step with its own uid, directories closed to other users (root's home, say)."""
        hidden = ("/tmp", "/var/tmp", "/dev/shm", "/run") if self.use_bwrap else ()
        keep = [
            d
            for d in search_path.split(os.pathsep)
            if d
            and not any(d == h or d.startswith(h + "/") for h in hidden)
            and (self.uid is None or _open_to_others(d))
        ]
        return os.pathsep.join(keep)

    def hidden(self) -> list[str]:
        """The hidden paths that lie inside the workspace, relative to it."""
        return hidden_inside(self.workspace, self.hide)

    def hidden_elsewhere(self) -> list[Path]:
        """The hidden paths outside the workspace (Strom's data and configuration, key files). A path a step's
        own uid cannot reach (under a directory closed to others) is hidden already, and left alone."""
        root = self.workspace.resolve()
        out = []
        for path in self.hide:
            resolved = Path(path).resolve()
            if resolved == root or root in resolved.parents or not resolved.exists():
                continue
            if self.uid is not None and not _open_to_others(str(resolved.parent)):
                continue
            if resolved.parts[1:2] and resolved.parts[1] not in ("tmp", "proc", "dev", "run"):
                out.append(resolved)
        return out

    # ------------------------------------------------------------------ setting up and starting
    def prepare(self) -> None:
        problem = self.unreachable()
        if problem:  # the step gets a read-only copy it can reach, in its own directory
            _warn_once(problem)
            self._bound = self.scratch / "workspace"
            _read_only_copy(self.workspace, self._bound, self.hidden())
        self.code_dir.mkdir(parents=True, exist_ok=True)
        self.code_dir.chmod(0o755)
        self.out_dir.mkdir(mode=0o700, exist_ok=True)
        if self.uid is not None:
            os.chown(self.out_dir, self.uid, STEP_GID)
        if not self.use_bwrap:
            tmp = self.scratch / "tmp"
            (tmp / "home").mkdir(parents=True, exist_ok=True)
            _read_only_copy(self.workspace, self.scratch / "workspace", self.hidden())
            if self.uid is not None:
                for path in (tmp, tmp / "home"):
                    os.chown(path, self.uid, STEP_GID)
        self.scratch.chmod(0o755)

    def wrap(self, argv: list[str], cwd: str, search_path: str = "") -> tuple[list[str], str | None]:
        """The command to execute on the host (as the step's user, limits applied), and the host working directory."""
        self._launcher = self._launch()
        if not self.use_bwrap:
            return self._launcher + argv, cwd
        tops = _visible_tops(search_path)
        seccomp = _seccomp_file()
        bwrap = [
            _tool("bwrap") or "bwrap",
            "--die-with-parent",
            "--new-session",
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--cap-drop",
            "ALL",
        ]
        if seccomp is None:  # the filter refuses new namespaces itself
            bwrap.append("--disable-userns")
        bwrap += _host_root(tops)
        bwrap += [  # bubblewrap, running as the step, must be able to reach what it binds (see `unreachable`)
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--size",
            str(self.limits.shm),
            "--tmpfs",
            "/dev/shm",
            "--tmpfs",
            "/run",
            "--size",
            str(self.limits.tmp),
            "--tmpfs",
            TMP_MOUNT,
            "--dir",
            f"{TMP_MOUNT}/home",
            "--dir",
            EMPTY_MOUNT,
            "--ro-bind",
            str(self._bound or self.workspace),
            WORKSPACE_MOUNT,
            "--bind",  # one mount: the step may write only where its uid may, which is out/ (see out_dir)
            str(self.code_dir),
            CODE_MOUNT,
        ]
        for rel in self.hidden() if self._bound is None else ():  # a copy leaves them out
            bwrap += _cover(self.workspace / rel, f"{WORKSPACE_MOUNT}/{rel}")
        for path in self.hidden_elsewhere():
            if path.parts[1] in tops:  # elsewhere, nothing of the host is there to cover
                bwrap += _cover(path, str(path))
        if not self.network:
            bwrap += ["--unshare-net"]
        for host, inner in self.extra_binds:
            bwrap += ["--bind", str(host), inner]
        if seccomp is not None:
            bwrap += ["--seccomp", self._fd(Path(seccomp), os.O_RDONLY)]
            os.lseek(self._fds[Path(seccomp)], 0, os.SEEK_SET)  # each bwrap reads the program from its start
        bwrap += ["--remount-ro", "/", "--chdir", cwd, "--"]
        return self._launcher + bwrap + argv, None

    def standalone(self, argv: list[str], cwd: str, search_path: str = "") -> tuple[list[str], str | None]:
        """Like `wrap`, for a process that a library starts (an MCP server over stdio): a command that needs no
        descriptor passed and nothing done between fork and exec (the seccomp program is opened by a shell that
        then becomes the sandbox). StepSetupError when this machine lacks the tools for that."""
        command, host_cwd = self.wrap(argv, cwd, search_path)
        options = self.process_options()
        if "preexec_fn" in options or "user" in options:
            raise StepSetupError("this needs util-linux's setpriv and prlimit on the worker (to start as the step)")
        seccomp = next((path for path in self._fds if path.is_file()), None)
        if seccomp is None:
            return command, host_cwd
        fd = command.index("--seccomp") + 1
        command[fd] = "3"
        return ["/bin/sh", "-c", 'exec "$@" 3<"$0"', str(seccomp), *command], host_cwd

    def _launch(self) -> list[str]:
        """util-linux's setpriv (the step's uid) and prlimit (its limits), to put before the command: starting it
        with Popen's user= or Python code between fork and exec would cost a full fork of the worker instead of a
        vfork. What a missing tool cannot do, process_options asks of Popen."""
        self._switched = self._limited = False
        launcher: list[str] = []
        setpriv = _tool("setpriv") if self.uid is not None else None
        if setpriv:
            launcher += [setpriv, f"--reuid={self.uid}", f"--regid={STEP_GID}", "--clear-groups", "--"]
            self._switched = True
        limits = self.limits.command(self.limits.process_cap(self.uid is not None))
        if limits is not None:
            launcher += limits
            self._limited = True
        return launcher

    def unreachable(self) -> str | None:
        """Why the step's own uid cannot read its workspace in place (a directory on the way is closed to others,
        or the workspace itself is), or None."""
        if self.uid is None or not self.use_bwrap:
            return None
        root = self.workspace.resolve()
        for path in [*reversed(root.parents), root]:
            needed = 0o005 if path == root else 0o001
            if os.stat(path).st_mode & needed != needed:
                return (
                    f"steps, which run as unprivileged uids, cannot read the workspace {root} in place ({path} is "
                    f"closed to other users), so each step gets a copy of it; open the way to it (chmod o+x on "
                    f"the directories above it, o+rx on it) or run the worker as a non-root user to spare the copy"
                )
        return None

    def _fd(self, path: Path, flags: int = os.O_PATH | os.O_DIRECTORY) -> str:
        if path not in self._fds:
            self._fds[path] = os.open(path, flags | os.O_CLOEXEC)
        return str(self._fds[path])

    def process_options(self) -> dict:
        """subprocess.Popen arguments that start the step's processes as the step: its uid, group, umask, and
        its limits when `wrap` could not put them in the command."""
        options: dict = {"umask": 0o002, "pass_fds": tuple(self._fds.values())}
        if not self._limited:
            options["preexec_fn"] = functools.partial(self.limits.apply, self.limits.process_cap(self.uid is not None))
        if self.uid is not None and not self._switched:
            options.update(user=self.uid, group=STEP_GID, extra_groups=[])
        return options

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def count_processes() -> int:
    """How many processes run now (of any user: a cheap upper bound on the worker user's own)."""
    return sum(1 for name in os.listdir("/proc") if name[0].isdigit())


def hidden_inside(workspace: Path, hide) -> list[str]:
    """The paths of `hide` that lie inside `workspace` (a folder workspace holding Strom's own files),
    relative to it."""
    root = workspace.resolve()
    out = []
    for path in hide:
        try:
            rel = Path(path).resolve().relative_to(root)
        except ValueError:
            continue
        if rel.parts and (root / rel).exists():
            out.append(rel.as_posix())
    return out


_warned: set[str] = set()


def _warn_once(problem: str) -> None:
    if problem not in _warned:
        _warned.add(problem)
        log.warning("%s", problem)


@functools.lru_cache(maxsize=256)
def _open_to_others(directory: str) -> bool:
    """Whether a user who owns nothing may enter `directory` (every directory on the way lets others search it)."""
    path = Path(directory)
    try:
        return all(os.stat(p).st_mode & 0o001 for p in [*reversed(path.parents), path])
    except OSError:
        return False


def _cover(host: Path, inside: str) -> list[str]:
    """bwrap arguments that put something empty over `inside`: a tmpfs on a directory, /dev/null on a file."""
    return ["--tmpfs", inside] if host.is_dir() else ["--ro-bind", "/dev/null", inside]


_SKIP_AT_ROOT = {"proc", "dev", "tmp", "run", "workspace", "strom", "lost+found"}
# what programs need of the host; a top-level directory on the step's PATH is added (toolchains under /root,
# say); the rest of the host (/root, /srv, /mnt, /media, /boot, ...) steps do not see
_SYSTEM_TOP = frozenset(
    {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "opt", "home", "var", "sys", "nix", "snap", "gnu"}
)


def _visible_tops(search_path: str) -> frozenset[str]:
    tops = {part.split("/")[1] for part in search_path.split(os.pathsep) if part.startswith("/") and part != "/"}
    return _SYSTEM_TOP | frozenset(tops)


@functools.lru_cache(maxsize=4)
def _tool(name: str) -> str | None:
    return shutil.which(name)


@functools.lru_cache(maxsize=32)
def _host_root(tops: frozenset[str]) -> tuple[str, ...]:
    """Bind the host's top-level entries in `tops` read-only, so /workspace can be created at the root."""
    args: list[str] = []
    for name in sorted(os.listdir("/")):
        if name in _SKIP_AT_ROOT or name not in tops:
            continue
        path = "/" + name
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return tuple(args)


def _read_only_copy(source: Path, target: Path, skip: Iterable[str] = ()) -> None:
    skipped = {(source / rel).resolve() for rel in skip}

    def ignore(directory, names):
        return [n for n in names if (Path(directory) / n).resolve() in skipped]

    try:
        shutil.copytree(source, target, symlinks=True, ignore=ignore if skipped else None)
    except (OSError, shutil.Error) as exc:
        raise StepSetupError(f"could not copy the workspace for this step: {exc}") from exc
    make_read_only(target)
