"""Snapshots for workers that do not share the server's disk: downloaded once per commit from the web
process (`GET /api/workspaces/<ws>/snapshots/<sha>.tar.gz`, authenticated with the worker token)."""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

from ..errors import StromError
from .snapshots import Snapshots
from .untar import extract

__all__ = ["DownloadError", "SnapshotDownloads"]


class DownloadError(StromError):
    status_hint = 502


class SnapshotDownloads:
    def __init__(self, root: Path, base_url: str, token: str | None, timeout: float = 300.0):
        self.snapshots = Snapshots(root)
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def get(self, workspace: str, sha: str) -> Path:
        return self.snapshots.ensure(sha, lambda target: self._download(workspace, sha, target))

    def _download(self, workspace: str, sha: str, target: Path) -> None:
        import requests

        url = f"{self.base_url}/api/workspaces/{workspace}/snapshots/{sha}.tar.gz"
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            with requests.get(url, headers=headers, stream=True, timeout=self.timeout) as response:
                if response.status_code != 200:
                    raise DownloadError(
                        f"downloading the snapshot of {sha[:12]} from {url} failed: HTTP "
                        f"{response.status_code} {response.text[:200]}"
                        + (" (set workers.token in the worker's configuration)" if response.status_code == 401 else "")
                    )
                with tempfile.TemporaryFile() as archive:
                    for chunk in response.iter_content(1 << 16):
                        archive.write(chunk)
                    archive.seek(0)
                    target.mkdir(parents=True)
                    with tarfile.open(fileobj=archive, mode="r:gz") as tar:
                        extract(tar, target)
        except requests.RequestException as exc:
            raise DownloadError(f"downloading the snapshot of {sha[:12]} from {url} failed: {exc}") from None
