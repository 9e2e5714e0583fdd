"""A bare mirror of one repository (GitPython), fetching only what an event needs."""

from __future__ import annotations

import base64
import os
import shlex
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..errors import StromError
from ..workspace_config import redact_url
from .objects import Objects, is_sha

if TYPE_CHECKING:  # GitPython is imported when a mirror is first used (a folder workspace never needs it)
    import git

__all__ = ["ZERO_SHA", "GitError", "Mirror"]

ZERO_SHA = "0" * 40
_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


class GitError(StromError):
    status_hint = 502


def _lock(path: Path) -> threading.RLock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(str(path), threading.RLock())


class Mirror:
    """`path` is the bare repository; `url` the origin (None for a hosted repository)."""

    def __init__(
        self,
        path: Path,
        url: str | None = None,
        token: str | None = None,
        token_user: str = "x-access-token",
        ssh_key: Path | None = None,
    ):
        self.path = Path(path)
        self.url = url
        self._token = token
        self._token_user = token_user
        self._ssh_key = ssh_key
        self._repo: git.Repo | None = None
        self._objects: Objects | None = None

    # ---------------------------------------------------------------- plumbing
    def _env(self) -> dict[str, str]:
        env = {"GIT_TERMINAL_PROMPT": "0"}
        if self._token and self.url and self.url.startswith(("http://", "https://")):
            # In the environment, not the command line, where any local user could read it.
            basic = base64.b64encode(f"{self._token_user}:{self._token}".encode()).decode()
            env.update(
                GIT_CONFIG_COUNT="1",
                GIT_CONFIG_KEY_0="http.extraHeader",
                GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}",
            )
        if self._ssh_key:
            env["GIT_SSH_COMMAND"] = (
                f"ssh -i {shlex.quote(str(self._ssh_key))} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new"
            )
        return env

    def _hide(self, text: str) -> str:
        redacted = redact_url(self.url)
        if self.url and redacted is not None and redacted != self.url:
            parts = urlsplit(self.url)
            text = text.replace(self.url, redacted)
            for secret in (parts.password, parts.username if len(parts.username or "") >= 16 else None):
                if secret:  # a long user name is a token (https://<token>@github.com/...)
                    text = text.replace(secret, "***")
        return text.replace(self._token, "***") if self._token else text

    @property
    def repo(self) -> git.Repo:
        return self._repo if self._repo is not None else self._open()

    @property
    def objects(self) -> Objects:
        with _lock(self.path):
            if self._objects is None:
                self._objects = Objects(self.repo)
            return self._objects

    def ensure(self) -> Mirror:
        self._open()
        return self

    def _open(self) -> git.Repo:
        """Create the bare repository if it is not there yet, and open it."""
        import git

        with _lock(self.path):
            if not (self.path / "HEAD").exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                git.Repo.init(self.path, bare=True)
            attributes = self.path / "info" / "attributes"
            if not attributes.exists():  # snapshots are the whole tree, whatever .gitattributes says
                attributes.parent.mkdir(exist_ok=True)
                attributes.write_text("* -export-ignore -export-subst\n")
            self._repo = git.Repo(self.path)
            return self._repo

    def _git(self, *args: str, **kwargs) -> str:
        """A git command of its own (object reads go through `objects`, shared by threads one at a time)."""
        from git.exc import GitCommandError

        try:
            return self.repo.git.execute(["git", *args], env=self._env(), **kwargs)
        except GitCommandError as exc:
            detail = self._hide((exc.stderr or str(exc)).strip())
            raise GitError(f"git {args[0]} failed in {self.path.name}: {detail}") from exc

    # ---------------------------------------------------------------- remote
    def fetch(self, *refs: str) -> None:
        """Fetch `refs` (branch or tag names, refs/..., or pull request refs) into the mirror's own refs."""
        if self.url is None:
            return
        specs = []
        for ref in refs:
            if is_sha(ref):
                specs.append(f"{ref}:refs/strom/commits/{ref}")
                continue
            full = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
            specs.append(f"+{full}:{full}")
        if not specs:
            specs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]
        with _lock(self.path):
            # housekeeping waits for `maintain` (the scheduler's retention pass), not an event's fetch
            self._git(
                "fetch", "--quiet", "--no-write-fetch-head", "--no-tags", "--no-auto-maintenance", self.url, *specs
            )

    def maintain(self) -> None:
        """Pack loose objects and prune when git thinks it is time (cheap when it is not)."""
        if (self.path / "HEAD").exists():
            self._git("maintenance", "run", "--auto", "--quiet")

    def remote_heads(self) -> dict[str, str]:
        """branch -> sha of the origin's branches (git ls-remote)."""
        if self.url is None:
            return self.local_heads()
        out = self._git("ls-remote", "--heads", self.url)
        heads = {}
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            if ref.startswith("refs/heads/"):
                heads[ref[len("refs/heads/") :]] = sha
        return heads

    # ---------------------------------------------------------------- local
    def local_heads(self) -> dict[str, str]:
        out = self._git("for-each-ref", "--format=%(objectname) %(refname)", "refs/heads")
        return {ref[len("refs/heads/") :]: sha for sha, ref in (line.split(" ", 1) for line in out.splitlines())}

    def resolve(self, ref: str) -> str | None:
        """The commit `ref` names (a sha, a ref, an annotated tag: peeled), or None when the mirror lacks it."""
        return self.objects.commit_of(ref)

    def has(self, sha: str) -> bool:
        return self.resolve(sha) is not None

    def commit_info(self, sha: str) -> dict:
        try:
            info = self.objects.commit_info(sha)
        except ValueError as exc:
            raise GitError(f"cannot read commit {sha[:12]} in {self.path.name}: {exc}") from None
        message = info["message"].strip()
        return {
            "sha": sha,
            "short_sha": sha[:7],
            "message": message,
            "title": message.splitlines()[0] if message else "",
            "author": info["author"],
            "author_email": info["email"],
        }

    def changed_files(self, before: str | None, after: str) -> list[str]:
        """Files that differ between `before` and `after`; for a new ref, the files its commits touch
        that no other branch has (or, with no other branch, the files of its head commit)."""
        if before and before != ZERO_SHA and self.has(before):
            try:
                return self.objects.changed(before, after)
            except ValueError as exc:
                raise GitError(f"cannot compare {before[:12]} with {after[:12]} in {self.path.name}: {exc}") from None
        others = sorted({sha for sha in self.local_heads().values() if sha != after})
        if others:
            out = self._git("log", "--format=", "--name-only", "--no-renames", after, "--not", *others)
            return sorted({line for line in out.splitlines() if line})
        return self._git("diff-tree", "--no-commit-id", "--name-only", "-r", "--root", after).splitlines()

    def changed_since_fork(self, base: str, head: str) -> list[str]:
        """Files a pull request changes: the diff from the merge base of `base` and `head` to `head`."""
        return self._git("diff", "--name-only", "--no-renames", f"{base}...{head}").splitlines()

    def tree(
        self, sha: str, max_file: int | None = None, max_files: int | None = None
    ) -> tuple[dict[str, str], Callable[[str], bool], dict[str, int]]:
        """(the .strom/ workflow files' texts by path, whether a file is at a path, sizes of workflow files
        too large to read) of commit `sha`."""
        try:
            return self.objects.definitions(sha, max_file=max_file, max_files=max_files)
        except ValueError as exc:
            raise GitError(f"cannot read commit {sha[:12]} in {self.path.name}: {exc}") from None

    def archive(self, sha: str, output: Path) -> None:
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
        os.close(fd)
        try:
            self._git("archive", "--format=tar.gz", f"--output={tmp}", sha)
            os.replace(tmp, output)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
