"""The .strom files a run was created from, kept by content hash so every process can rebuild them."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ..spec import STROM_DIR, find_files, load_texts
from ..spec.limits import DEFAULT_LIMITS, SpecLimits
from ..spec.model import Workspace
from . import keys

if TYPE_CHECKING:
    from redis import Redis

__all__ = ["Definitions", "digest", "read_folder"]


def read_folder(folder: Path, max_file: int | None = None) -> dict[str, str]:
    """The workflow files of `folder`; one larger than `max_file` is read only far enough to be refused."""
    out = {}
    for path in find_files(folder):
        try:
            with open(path, encoding="utf-8") as file:
                out[path.relative_to(folder).as_posix()] = file.read(-1 if max_file is None else max_file + 1)
        except (OSError, UnicodeDecodeError):
            out[path.relative_to(folder).as_posix()] = ""
    return out


def digest(texts: dict[str, str]) -> str:
    h = hashlib.sha256()
    for path in sorted(texts):
        h.update(path.encode() + b"\0" + texts[path].encode() + b"\0")
    return h.hexdigest()[:32]


class Definitions:
    """Stores definitions by hash and caches the loaded workspaces (they never change for a hash)."""

    def __init__(
        self,
        redis: Redis,
        cache_size: int = 64,
        limits: SpecLimits = DEFAULT_LIMITS,
        workspaces: Iterable[str] = (),
    ):
        """`workspaces`: the server's, whose actions steps may name as `workspace.action`."""
        self.redis = redis
        self.limits = limits
        self.workspaces = frozenset(workspaces)
        self._cache: OrderedDict[tuple[str, str], Workspace] = OrderedDict()
        self._size = cache_size
        self._lock = threading.Lock()

    def put(self, texts: dict[str, str]) -> str:
        key = digest(texts)
        self.redis.set(keys.definitions(key), json.dumps(texts), nx=True)
        return key

    def texts(self, key: str) -> dict[str, str]:
        raw = self.redis.get(keys.definitions(key))
        if raw is None:
            raise KeyError(f"definitions {key} are gone")
        texts: dict[str, str] = json.loads(raw)
        return texts

    def workspace(self, key: str, root: str | Path) -> Workspace:
        """The loaded workspace for definitions `key`, with `root` as its folder."""
        cache_key = (key, str(root))
        with self._lock:
            if cache_key in self._cache:
                self._cache.move_to_end(cache_key)
                return self._cache[cache_key]
        root = Path(root)
        result = load_texts(
            self.texts(key),
            root=root,
            limits=self.limits,
            file_exists=lambda rel: (root / rel).is_file() if root.is_dir() else True,
            workspaces=self.workspaces,
        )
        workspace = result.raise_for_errors()
        with self._lock:
            self._cache[cache_key] = workspace
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return workspace

    def remember(self, key: str, root: str | Path, workspace: Workspace) -> None:
        with self._lock:
            self._cache[(key, str(root))] = workspace

    @staticmethod
    def is_definition_file(rel: str) -> bool:
        return rel.startswith(STROM_DIR + "/")
