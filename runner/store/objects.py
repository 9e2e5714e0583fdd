"""Files Strom keeps besides Redis (the files of task state snapshots, artifacts, finished runs' logs), by key: in
the data directory or an S3-compatible object store (`storage:`), or, for a worker that does not share the
server's disk, through the web process with the worker token (`PUT`/`GET /api/objects/<key>`). Objects never
change once written."""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from ..errors import StromError

__all__ = [
    "LocalObjects",
    "ObjectError",
    "ObjectMissing",
    "ObjectStore",
    "RemoteObjects",
    "S3Objects",
    "S3Settings",
    "artifact_object",
    "check_key",
    "pod_files_object",
    "state_object",
]

_KEY = re.compile(
    r"state/[0-9a-f]{32}\.tar\.gz|artifacts/[0-9a-f]{32}|logs/[0-9a-f]{32}\.jsonl\.gz|pods/[0-9a-f]{32}\.tar\.gz"
)
_CHUNK = 1 << 20


class ObjectError(StromError):
    status_hint = 502


class ObjectMissing(ObjectError):
    status_hint = 404


def state_object(snapshot_id: str) -> str:
    """The key of a task state snapshot's files."""
    return check_key(f"state/{snapshot_id}.tar.gz")


def artifact_object(job_id: str, step: str, attempt: int, name: str) -> str:
    """The key of an artifact: the same for the same attempt's same file (a repeated upload overwrites nothing)."""
    return f"artifacts/{uuid.uuid5(uuid.NAMESPACE_URL, f'strom-artifact:{job_id}:{step}:{attempt}:{name}').hex}"


def pod_files_object(job_id: str, step: str, attempt: int) -> str:
    """The key of what a pod's step left for Strom (its out directory as a gzipped tar), until the worker has
    read it."""
    return f"pods/{uuid.uuid5(uuid.NAMESPACE_URL, f'strom-pod-files:{job_id}:{step}:{attempt}').hex}.tar.gz"


def check_key(key: str) -> str:
    """`key` if it names an object Strom writes; ObjectError otherwise (keys come over HTTP too)."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ObjectError(f"{key!r} is not the key of an object (state/<32 hex>.tar.gz, artifacts/<32 hex>, logs/...)")
    return key


class ObjectStore(Protocol):
    def put_stream(self, key: str, stream: IO[bytes], limit: int) -> int:
        """Store what `stream` gives (at most `limit` bytes, else ObjectError and nothing stored); its size."""

    def fetch(self, key: str, scratch: Path) -> Path:
        """A path on this machine with the object's bytes (in `scratch` when it had to be copied there)."""

    def open(self, key: str) -> tuple[IO[bytes], int]:
        """The object's bytes to read, and their size; ObjectMissing if there is no such object."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...


class _Limited:
    """A readable that raises ObjectError past `limit` bytes (an upload is never stored cut short)."""

    def __init__(self, stream: IO[bytes], limit: int):
        self.stream, self.limit, self.size = stream, limit, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size if size is not None and size >= 0 else _CHUNK)
        self.size += len(chunk)
        if self.size > self.limit:
            raise ObjectError(f"the object is over {self.limit} bytes")
        return chunk


class LocalObjects:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_stream(self, key: str, stream: IO[bytes], limit: int) -> int:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        limited = _Limited(stream, limit)
        try:
            with os.fdopen(handle, "wb") as out:
                while chunk := limited.read(_CHUNK):
                    out.write(chunk)
            os.replace(temp, target)
        except BaseException:
            os.unlink(temp)
            raise
        return limited.size

    def fetch(self, key: str, scratch: Path) -> Path:
        path = self.path(key)
        if not path.is_file():
            raise ObjectMissing(f"object {key} is not in {self.root}")
        return path

    def open(self, key: str) -> tuple[IO[bytes], int]:
        try:
            stream = open(self.path(key), "rb")
        except FileNotFoundError:
            raise ObjectMissing(f"object {key} is not in {self.root}") from None
        return stream, os.fstat(stream.fileno()).st_size

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)


@dataclass(frozen=True)
class S3Settings:
    """`storage: { type: s3, bucket, prefix, endpoint, region, access_key, secret_key }`."""

    bucket: str
    prefix: str = ""
    endpoint: str | None = None  # an S3-compatible service (MinIO, Ceph, R2, ...); None: AWS
    region: str | None = None
    access_key: str | None = field(default=None, repr=False)  # None: boto3's own lookup (env, profile, role)
    secret_key: str | None = field(default=None, repr=False)


class S3Objects:
    def __init__(self, settings: S3Settings):
        self.settings = settings
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config as BotoConfig

            s = self.settings
            self._client = boto3.client(
                "s3",
                endpoint_url=s.endpoint,
                region_name=s.region,
                aws_access_key_id=s.access_key,
                aws_secret_access_key=s.secret_key,
                config=BotoConfig(retries={"max_attempts": 5, "mode": "standard"}),
            )
        return self._client

    def _name(self, key: str) -> str:
        return self.settings.prefix + check_key(key)

    def _call(self, what: str, key: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                raise ObjectMissing(f"object {key} is not in bucket {self.settings.bucket}") from None
            raise ObjectError(f"{what} {key} in bucket {self.settings.bucket} failed: {exc}") from None
        except BotoCoreError as exc:
            raise ObjectError(f"{what} {key} in bucket {self.settings.bucket} failed: {exc}") from None

    def put_stream(self, key: str, stream: IO[bytes], limit: int) -> int:
        limited = _Limited(stream, limit)
        name = self._name(key)
        self._call("storing", key, self.client.upload_fileobj, limited, self.settings.bucket, name)
        return limited.size

    def fetch(self, key: str, scratch: Path) -> Path:
        target = scratch / Path(key).name
        self._call("downloading", key, self.client.download_file, self.settings.bucket, self._name(key), str(target))
        return target

    def open(self, key: str) -> tuple[IO[bytes], int]:
        answer = self._call("reading", key, self.client.get_object, Bucket=self.settings.bucket, Key=self._name(key))
        return answer["Body"], int(answer.get("ContentLength") or 0)

    def exists(self, key: str) -> bool:
        try:
            self._call("looking up", key, self.client.head_object, Bucket=self.settings.bucket, Key=self._name(key))
        except ObjectMissing:
            return False
        return True

    def delete(self, key: str) -> None:
        self._call("deleting", key, self.client.delete_object, Bucket=self.settings.bucket, Key=self._name(key))


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
            raise ObjectError("workers.token is not set: a worker on another machine needs it to store files")
        return {"Authorization": f"Bearer {self.token}"}

    def put_stream(self, key: str, stream: IO[bytes], limit: int) -> int:
        import requests

        url, limited = self._url(key), _Limited(stream, limit)
        try:
            response = requests.put(
                url, data=iter(lambda: limited.read(_CHUNK), b""), headers=self._headers(), timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise ObjectError(f"uploading {key} to {url} failed: {exc}") from None
        if response.status_code not in (200, 201):
            raise ObjectError(f"uploading {key} to {url} failed: HTTP {response.status_code} {response.text[:200]}")
        return limited.size

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

    def open(self, key: str) -> tuple[IO[bytes], int]:
        raise ObjectError("a worker reads objects with fetch")

    def exists(self, key: str) -> bool:
        raise ObjectError("a worker does not look objects up")

    def delete(self, key: str) -> None:
        import requests

        url = self._url(key)
        try:
            response = requests.delete(url, headers=self._headers(), timeout=self.timeout)
        except requests.RequestException as exc:
            raise ObjectError(f"deleting {key} at {url} failed: {exc}") from None
        if response.status_code not in (200, 204, 404):
            raise ObjectError(f"deleting {key} at {url} failed: HTTP {response.status_code}")
