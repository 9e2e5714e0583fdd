"""Where a local step runs: bubblewrap with the workspace read-only at /workspace, or a read-only copy.

With bubblewrap the host filesystem is visible read-only, the workspace is bound read-only at
/workspace, and the step gets a private writable /tmp (its HOME and TMPDIR). Without it, the
step runs in a throw-away copy of the workspace (files made read-only; as root that cannot be
enforced), whose path is given in STROM_WORKSPACE.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import StepSetupError
from ..readonly import make_read_only

__all__ = ["Sandbox", "bwrap_available", "WORKSPACE_MOUNT", "TMP_MOUNT"]

WORKSPACE_MOUNT = "/workspace"
TMP_MOUNT = "/tmp"


@functools.lru_cache(maxsize=1)
def bwrap_available() -> bool:
    path = shutil.which("bwrap")
    if not path:
        return False
    try:
        probe = subprocess.run([path, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-pid", "true"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


@dataclass
class Sandbox:
    """The paths a step sees, and how to wrap its command."""

    workspace: Path  # host path of the workspace snapshot
    scratch: Path  # host path of the step's private writable directory
    use_bwrap: bool
    extra_binds: tuple[tuple[Path, str], ...] = ()  # (host dir, path inside) bound writable, e.g. caches
    hide: tuple[Path, ...] = ()  # host paths steps must not see (Strom's data, its configuration and key files)
    network: bool = True  # False: a network namespace of its own (loopback only)

    @property
    def workspace_path(self) -> str:
        return WORKSPACE_MOUNT if self.use_bwrap else str(self.scratch / "workspace")

    @property
    def tmp_path(self) -> str:
        return TMP_MOUNT if self.use_bwrap else str(self.scratch / "tmp")

    def inside(self, host_path: Path) -> str:
        """Where a file under `scratch/tmp` appears to the step."""
        rel = host_path.relative_to(self.scratch / "tmp")
        return str(Path(self.tmp_path) / rel)

    def visible_path(self, search_path: str) -> str:
        """PATH without the directories the step cannot see (the host's /tmp is replaced by its own)."""
        if not self.use_bwrap:
            return search_path
        hidden = ("/tmp", "/var/tmp", "/dev/shm")
        keep = [d for d in search_path.split(os.pathsep)
                if d and not any(d == h or d.startswith(h + "/") for h in hidden)]
        return os.pathsep.join(keep)

    def hidden(self) -> list[str]:
        """The hidden paths that lie inside the workspace, relative to it."""
        root = self.workspace.resolve()
        out = []
        for path in self.hide:
            try:
                rel = Path(path).resolve().relative_to(root)
            except ValueError:
                continue
            if rel.parts and (root / rel).exists():
                out.append(rel.as_posix())
        return out

    def hidden_elsewhere(self) -> list[Path]:
        """The hidden paths outside the workspace (Strom's data and configuration, key files)."""
        root = self.workspace.resolve()
        out = []
        for path in self.hide:
            resolved = Path(path).resolve()
            if resolved == root or root in resolved.parents or not resolved.exists():
                continue
            if resolved.parts[1:2] and resolved.parts[1] not in ("tmp", "proc", "dev"):
                out.append(resolved)
        return out

    def prepare(self) -> None:
        (self.scratch / "tmp" / "home").mkdir(parents=True, exist_ok=True)
        if not self.use_bwrap:
            _read_only_copy(self.workspace, self.scratch / "workspace", self.hidden())

    def wrap(self, argv: list[str], cwd: str) -> tuple[list[str], str | None]:
        """The command to execute on the host, and the host working directory."""
        if not self.use_bwrap:
            return argv, cwd
        bwrap = [shutil.which("bwrap") or "bwrap", "--die-with-parent", "--unshare-pid"]
        bwrap += _host_root()
        bwrap += [
            "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/dev/shm",
            "--bind", str(self.scratch / "tmp"), TMP_MOUNT,
            "--ro-bind", str(self.workspace), WORKSPACE_MOUNT,
        ]
        for rel in self.hidden():
            bwrap += _cover(self.workspace / rel, f"{WORKSPACE_MOUNT}/{rel}")
        for path in self.hidden_elsewhere():
            bwrap += _cover(path, str(path))
        if not self.network:
            bwrap += ["--unshare-net"]
        for host, inner in self.extra_binds:
            bwrap += ["--bind", str(host), inner]
        bwrap += ["--remount-ro", "/", "--chdir", cwd, "--"]
        return bwrap + argv, None


def _cover(host: Path, inside: str) -> list[str]:
    """bwrap arguments that put something empty over `inside`: a tmpfs on a directory, /dev/null on a file."""
    return ["--tmpfs", inside] if host.is_dir() else ["--ro-bind", "/dev/null", inside]


_SKIP_AT_ROOT = {"proc", "dev", "tmp", "workspace", "lost+found"}


@functools.lru_cache(maxsize=1)
def _host_root() -> tuple[str, ...]:
    """Bind each top-level entry of the host read-only, so /workspace can be created at the root."""
    args: list[str] = []
    for name in sorted(os.listdir("/")):
        if name in _SKIP_AT_ROOT:
            continue
        path = "/" + name
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return tuple(args)


def _read_only_copy(source: Path, target: Path, skip: list[str] = ()) -> None:
    skipped = {(source / rel).resolve() for rel in skip}

    def ignore(directory, names):
        return [n for n in names if (Path(directory) / n).resolve() in skipped]

    try:
        shutil.copytree(source, target, symlinks=True, ignore=ignore if skipped else None)
    except (OSError, shutil.Error) as exc:
        raise StepSetupError(f"could not copy the workspace for this step: {exc}") from exc
    make_read_only(target)
