"""Files Strom keeps besides Redis (the files of task state snapshots), by key: in the data directory, or, for a
worker that does not share the server's disk, through the web process with the worker token
(`PUT`/`GET /api/objects/<key>`). Objects never change once written."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import IO, Protocol

from ..errors import StromError

__all__ = ["LocalObjects", "ObjectError", "ObjectStore", "RemoteObjects", "check_key", "state_object"]

_KEY = re.compile(r"state/[0-9a-f]{32}\.tar\.gz")


class ObjectError(StromError):
    status_hint = 502


def state_object(snapshot_id: str) -> str:
    """The key of a task state snapshot's files."""
    return check_key(f"state/{snapshot_id}.tar.gz")


def check_key(key: str) -> str:
    """`key` if it names an object Strom writes; ObjectError otherwise (keys come over HTTP too)."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ObjectError(f"{key!r} is not the key of an object (state/<32 hex digits>.tar.gz)")
    return key


class ObjectStore(Protocol):
    def put(self, key: str, source: Path) -> None: ...

    def fetch(self, key: str, scratch: Path) -> Path:
        """A path on this machine with the object's bytes (in `scratch` when it had to be copied there)."""

    def delete(self, key: str) -> None: ...


class LocalObjects:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, source: Path) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as out, open(source, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
            os.replace(temp, target)
        except BaseException:
            os.unlink(temp)
            raise

    def put_stream(self, key: str, stream: IO[bytes], limit: int) -> int:
        """Write `stream` (at most `limit` bytes, else ObjectError and nothing written) as `key`; its size."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        size = 0
        try:
            with os.fdopen(handle, "wb") as out:
                while chunk := stream.read(1 << 20):
                    size += len(chunk)
                    if size > limit:
                        raise ObjectError(f"the object is over {limit} bytes")
                    out.write(chunk)
            os.replace(temp, target)
        except BaseException:
            os.unlink(temp)
            raise
        return size

    def fetch(self, key: str, scratch: Path) -> Path:
        path = self.path(key)
        if not path.is_file():
            raise ObjectError(f"object {key} is not in {self.root}")
        return path

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)


class RemoteObjects:
    """Objects through the web process, for workers on other machines."""

    def __init__(self, base_url: str, token: str | None, timeout: float = 300.0):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _url(self, key: str) -> str:
        return f"{self.base_url}/api/objects/{check_key(key)}"

    def _headers(self) -> dict[str, str]:
        if not self.token:
            raise ObjectError("workers.token is not set: a worker on another machine needs it to store task state")
        return {"Authorization": f"Bearer {self.token}"}

    def put(self, key: str, source: Path) -> None:
        import requests

        url = self._url(key)
        try:
            with open(source, "rb") as body:
                response = requests.put(url, data=body, headers=self._headers(), timeout=self.timeout)
        except requests.RequestException as exc:
            raise ObjectError(f"uploading {key} to {url} failed: {exc}") from None
        if response.status_code not in (200, 201):
            raise ObjectError(f"uploading {key} to {url} failed: HTTP {response.status_code} {response.text[:200]}")

    def fetch(self, key: str, scratch: Path) -> Path:
        import requests

        url, target = self._url(key), scratch / Path(key).name
        try:
            with requests.get(url, headers=self._headers(), stream=True, timeout=self.timeout) as response:
                if response.status_code != 200:
                    raise ObjectError(f"downloading {key} from {url} failed: HTTP {response.status_code}")
                with open(target, "wb") as out:
                    for chunk in response.iter_content(1 << 16):
                        out.write(chunk)
        except requests.RequestException as exc:
            raise ObjectError(f"downloading {key} from {url} failed: {exc}") from None
        return target

    def delete(self, key: str) -> None:
        raise ObjectError("a worker does not delete objects")
