"""A repository's objects read through GitPython's object database: its long-lived `git cat-file --batch`
answers every question about commits and trees (a fraction of a millisecond each, where a git process
per question costs milliseconds). Threads take turns: the process answers one question at a time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from ..spec.layout import WORKFLOW_DIRS, WORKFLOW_SUFFIXES

if TYPE_CHECKING:
    import git

__all__ = ["Objects", "is_sha"]

T = TypeVar("T")
TREE = 0o040000
CHUNK = 1 << 20
CACHED_ENTRIES = 100_000  # trees never change: the entries of those read last are kept, about 15 MB at most
_Entry = tuple[bytes, int, str]  # (binary sha, mode, name)


def is_sha(value: str) -> bool:
    """A full object name: 40 hex digits (SHA-1) or 64 (SHA-256), lower case as git writes them."""
    return len(value) in (40, 64) and all(c in "0123456789abcdef" for c in value)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _askable(name: str) -> bool:
    """A name cat-file reads as one question: one line, nothing it would take for a command."""
    return bool(name) and name.isprintable() and not name.startswith("-")


class Objects:
    def __init__(self, repo: git.Repo):
        self._repo = repo
        self._lock = threading.Lock()
        self._trees: OrderedDict[bytes, list[_Entry]] = OrderedDict()
        self._cached = 0
        self._roots: OrderedDict[str, bytes] = OrderedDict()

    def _ask(self, question: Callable[[], T]) -> T:
        with self._lock:
            try:
                return question()
            except (OSError, ValueError):
                if self._alive():  # a true answer: the object is missing or malformed
                    raise
            self._repo.git.clear_cache()  # a cat-file process died (killed, out of memory): start afresh once
            return question()

    def _alive(self) -> bool:
        command = getattr(self._repo.git, "cat_file_all", None)  # the only one asked: one process, not two
        return command is None or command.proc.poll() is None

    def _object(self, name: str, kind: str) -> tuple[str, bytes]:
        """(sha, content) of the object `name` names, which must be a `kind`."""
        hexsha, found, _size, stream = self._repo.git.stream_object_data(name)
        data = stream.read()
        sha, found = _text(hexsha), _text(found)  # GitPython's types say str; cat-file's answers are bytes
        if found != kind:
            raise ValueError(f"{name} is a {found}, not a {kind}")
        return sha, data

    def close(self) -> None:
        with self._lock:
            self._repo.git.clear_cache()

    # ---------------------------------------------------------------- commits
    def commit_of(self, name: str) -> str | None:
        """The sha of the commit `name` (a sha, a ref, an annotated tag) names, or None."""
        if not _askable(name):
            return None
        try:
            return self._ask(lambda: self._object(f"{name}^{{commit}}", "commit")[0])
        except ValueError:
            return None

    def commit_info(self, sha: str) -> dict[str, str]:
        """The author's name and email and the message of commit `sha`."""

        from git import Commit

        def read() -> dict[str, str]:
            commit = Commit(self._repo, bytes.fromhex(sha))  # read through the odb on first use
            message = commit.message  # bytes when the commit's encoding cannot decode it
            if isinstance(message, bytes):
                message = message.decode("utf-8", "replace")
            return {"author": commit.author.name or "", "email": commit.author.email or "", "message": message}

        return self._ask(read)

    # ---------------------------------------------------------------- trees
    def _entries(self, tree: bytes) -> list[_Entry]:
        entries = self._trees.get(tree)
        if entries is not None:
            self._trees.move_to_end(tree)
            return entries
        from git.objects.fun import tree_entries_from_data

        entries = tree_entries_from_data(self._repo.odb.stream(tree).read())
        self._trees[tree] = entries
        self._cached += len(entries)
        while self._cached > CACHED_ENTRIES and len(self._trees) > 1:
            self._cached -= len(self._trees.popitem(last=False)[1])
        return entries

    def _root(self, sha: str) -> bytes:
        root = self._roots.get(sha)
        if root is None:
            _, data = self._object(f"{sha}^{{commit}}", "commit")  # an annotated tag: its commit's tree
            first = data.split(b"\n", 1)[0]  # a commit starts with `tree <sha>`
            if not first.startswith(b"tree "):
                raise ValueError(f"commit {sha} names no tree")
            root = bytes.fromhex(first[5:].decode())
            if is_sha(sha):  # a commit's tree never changes (a ref's does)
                self._roots[sha] = root
                if len(self._roots) > 256:
                    self._roots.popitem(last=False)
        return root

    def _lookup(self, tree: bytes, path: str) -> _Entry | None:
        entry: _Entry | None = None
        for part in path.split("/"):
            if entry is not None:
                if entry[1] != TREE:
                    return None
                tree = entry[0]
            entry = next((e for e in self._entries(tree) if e[2] == part), None)
            if entry is None:
                return None
        return entry

    def files(
        self, sha: str, folder: str, suffixes: tuple[str, ...], max_file: int | None, max_files: int | None
    ) -> tuple[dict[str, str], dict[str, int]]:
        """(text of each file under `folder` ending in one of `suffixes`, path -> size of those larger than
        `max_file`, left unread) of commit `sha`. Past `max_files` files one more is read, enough to refuse them."""

        def read() -> tuple[dict[str, str], dict[str, int]]:
            top = self._lookup(self._root(sha), folder)
            if top is None or top[1] != TREE:
                return {}, {}
            found = {
                path: binsha
                for path, mode, binsha in self._walk(top[0], f"{folder}/")
                if mode >> 12 in (0o10, 0o12) and path.endswith(suffixes)  # files and symbolic links
            }
            texts, oversized = {}, {}
            order = sorted(found)[: max_files + 1] if max_files is not None else sorted(found)
            for path in order:
                _, _, size, stream = self._repo.git.stream_object_data(found[path].hex())
                if max_file is not None and size > max_file:
                    while stream.read(CHUNK):  # the process's answer is read to its end all the same
                        pass
                    oversized[path] = size
                else:
                    texts[path] = stream.read().decode("utf-8", "replace")
            return texts, oversized

        return self._ask(read)

    def _walk(self, tree: bytes, prefix: str) -> Iterator[tuple[str, int, bytes]]:
        pending = [(tree, prefix)]
        while pending:
            tree, prefix = pending.pop()
            for binsha, mode, name in self._entries(tree):
                yield prefix + name, mode, binsha
                if mode == TREE:
                    pending.append((binsha, f"{prefix}{name}/"))

    def walk(self, sha: str) -> list[tuple[str, int, bytes]]:
        """Every entry of commit `sha`'s tree as (path, mode, binary sha), each directory before its contents.
        GitPython refuses names git would not check out (`..`, `.git` and its aliases) with a ValueError."""
        return self._ask(lambda: list(self._walk(self._root(sha), "")))

    def copy(self, binsha: bytes, out: BinaryIO) -> None:
        """Write the content of blob `binsha` to `out`, a chunk at a time."""

        def read() -> None:
            out.seek(0)
            out.truncate()
            stream = self._repo.odb.stream(binsha)
            while chunk := stream.read(CHUNK):
                out.write(chunk)

        self._ask(read)

    def definitions(
        self, sha: str, max_file: int | None = None, max_files: int | None = None
    ) -> tuple[dict[str, str], Callable[[str], bool], dict[str, int]]:
        """(the workflow files' texts by path, whether a file is at a path, sizes of workflow files too large
        to read) of commit `sha`, as the loader takes them."""
        texts: dict[str, str] = {}
        oversized: dict[str, int] = {}
        for folder in WORKFLOW_DIRS:
            found, large = self.files(sha, folder, WORKFLOW_SUFFIXES, max_file=max_file, max_files=max_files)
            texts.update(found)
            oversized.update(large)
        return texts, self.exists(sha), oversized

    def exists(self, sha: str) -> Callable[[str], bool]:
        """Whether a file (or submodule) is at a path in commit `sha`, as a function of the path."""
        root = self._ask(lambda: self._root(sha))

        def exists(path: str) -> bool:
            if not _askable(path) or path.startswith(("/", "./", "../")):
                return False
            try:
                entry = self._ask(lambda: self._lookup(root, path))
            except ValueError:
                return False
            return entry is not None and entry[1] != TREE

        return exists

    def changed(self, before: str, after: str) -> list[str]:
        """Paths whose content or mode differ between two commits (a rename is its two paths), as
        `git diff --name-only --no-renames` lists them; only subtrees that differ are read."""

        def read() -> list[str]:
            out: set[str] = set()
            pending: list[tuple[bytes | None, bytes | None, str]] = [(self._root(before), self._root(after), "")]
            while pending:  # a loop, not recursion: a tree may be nested deeper than Python recurses
                old, new, prefix = pending.pop()
                was = {name: (binsha, mode) for binsha, mode, name in (self._entries(old) if old else [])}
                now = {name: (binsha, mode) for binsha, mode, name in (self._entries(new) if new else [])}
                for name in was.keys() | now.keys():
                    a, b = was.get(name), now.get(name)
                    if a == b:
                        continue
                    a_tree = a[0] if a is not None and a[1] == TREE else None
                    b_tree = b[0] if b is not None and b[1] == TREE else None
                    if a_tree or b_tree:
                        pending.append((a_tree, b_tree, f"{prefix}{name}/"))
                    if (a is not None and a_tree is None) or (b is not None and b_tree is None):
                        out.add(f"{prefix}{name}")
            return sorted(out)

        return self._ask(read)
