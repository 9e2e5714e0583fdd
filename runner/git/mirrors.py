"""A bare mirror of one repository (GitPython), fetching only what an event needs."""

from __future__ import annotations

import base64
import os
import shlex
import tarfile
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

import git
from git.exc import GitCommandError

from ..errors import StromError
from ..workspace_config import redact_url
from .trees import TreeError, read_tree
from .untar import extract

__all__ = ["ZERO_SHA", "GitError", "Mirror"]

ZERO_SHA = "0" * 40
_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


class GitError(StromError):
    status_hint = 502


def _lock(path: Path) -> threading.RLock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(str(path), threading.RLock())


def _is_sha(ref: str) -> bool:
    return len(ref) == 40 and all(c in "0123456789abcdef" for c in ref)


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

    def ensure(self) -> Mirror:
        self._open()
        return self

    def _open(self) -> git.Repo:
        """Create the bare repository if it is not there yet, and open it."""
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
        try:
            # A new process per call (never GitPython's shared cat-file), so threads may share a mirror.
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
            if _is_sha(ref):
                specs.append(f"{ref}:refs/strom/commits/{ref}")
                continue
            full = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
            specs.append(f"+{full}:{full}")
        if not specs:
            specs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]
        with _lock(self.path):
            self._git("fetch", "--quiet", "--no-write-fetch-head", "--no-tags", self.url, *specs)

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
        try:
            return self._git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip() or None
        except GitError:
            return None

    def has(self, sha: str) -> bool:
        return self.resolve(sha) is not None

    def commit_info(self, sha: str) -> dict:
        out = self._git("show", "-s", "--format=%H%x00%an%x00%ae%x00%B", sha, strip_newline_in_stdout=False)
        full, author, email, message = out.split("\0", 3)
        message = message.strip()
        return {
            "sha": full.strip(),
            "short_sha": full.strip()[:7],
            "message": message,
            "title": message.splitlines()[0] if message else "",
            "author": author,
            "author_email": email,
        }

    def changed_files(self, before: str | None, after: str) -> list[str]:
        """Files that differ between `before` and `after`; for a new ref, the files its commits touch
        that no other branch has (or, with no other branch, the files of its head commit)."""
        if before and before != ZERO_SHA and self.has(before):
            return self._git("diff", "--name-only", "--no-renames", before, after).splitlines()
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
    ) -> tuple[dict[str, str], set[str], dict[str, int]]:
        """(the .strom/ workflow files' texts by path, every file path, sizes of files too large to read)
        of commit `sha`."""
        try:
            return read_tree(self.path, sha, max_file=max_file, max_files=max_files)
        except TreeError as exc:
            raise GitError(f"cannot read commit {sha[:12]} in {self.path.name}: {exc}") from None

    def export(self, sha: str, target: Path) -> None:
        """Write the tree of `sha` into the (new) directory `target`."""
        target.mkdir(parents=True)
        with tempfile.NamedTemporaryFile(suffix=".tar") as archive:
            self._git("archive", "--format=tar", f"--output={archive.name}", sha)
            with tarfile.open(archive.name) as tar:
                extract(tar, target)

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
