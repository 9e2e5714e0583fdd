"""Read a commit's tree with two plain git calls: every path, and the .strom/ workflow files' text.

Used by the mirror and by the pre-receive hook (where importing GitPython would slow every push).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["STROM_PREFIX", "TreeError", "read_tree"]

STROM_PREFIX = ".strom/"


class TreeError(Exception):
    pass


def _git(git_dir: Path, *args: str, stdin: bytes | None = None, env: dict | None = None) -> bytes:
    proc = subprocess.run(
        ["git", f"--git-dir={git_dir}", *args], input=stdin, capture_output=True, env={**os.environ, **(env or {})}
    )
    if proc.returncode != 0:
        raise TreeError(proc.stderr.decode("utf-8", "replace").strip() or f"git {args[0]} failed")
    return proc.stdout


def read_tree(
    git_dir: Path, sha: str, env: dict | None = None, max_file: int | None = None, max_files: int | None = None
) -> tuple[dict[str, str], set[str], dict[str, int]]:
    """(.strom/**/*.yaml|yml path -> text, every file path, path -> size of workflow files left unread
    because they are larger than `max_file`) of commit `sha`. Past `max_files` files, one more is read and
    the rest are not: enough for the loader to refuse them."""
    listing = _git(git_dir, "ls-tree", "-r", "-z", "-l", "--full-tree", sha, env=env)
    paths, blobs, oversized = set(), {}, {}
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, _, name = entry.partition(b"\t")
        path = name.decode("utf-8", "surrogateescape")
        paths.add(path)
        _mode, kind, oid, size = meta.split()
        if kind == b"blob" and path.startswith(STROM_PREFIX) and path.endswith((".yaml", ".yml")):
            if max_file is not None and int(size) > max_file:
                oversized[path] = int(size)
            else:
                blobs[path] = oid.decode()
    if not blobs:
        return {}, paths, oversized
    order = sorted(blobs)[: max_files + 1] if max_files is not None else sorted(blobs)  # one past: refused
    out = _git(git_dir, "cat-file", "--batch", stdin="".join(f"{blobs[p]}\n" for p in order).encode(), env=env)
    texts, pos = {}, 0
    for path in order:
        header_end = out.index(b"\n", pos)
        length = int(out[pos:header_end].split(b" ")[2])
        body = out[header_end + 1 : header_end + 1 + length]
        pos = header_end + 1 + length + 1
        texts[path] = body.decode("utf-8", "replace")
    return texts, paths, oversized
