"""The `workspaces:` section of the server configuration: folders, git repositories and hosted repositories.

workspaces:
  local: { folder: . }
  app:
    git: https://github.com/org/app.git
    branches: [main, "release/*"]
    credentials: { token: { env: GITHUB_TOKEN } }        # or { ssh_key: { file: /keys/deploy } }
    forge:
      type: github                                       # github | gitlab | gitea (Forgejo too)
      repo: org/app                                      # default: from the git URL
      token: { env: GITHUB_TOKEN }                       # statuses and comments
      webhook_secrets: [{ env: HOOK_SECRET }, { env: OLD_HOOK_SECRET }]
    poll: 60s
    pull_requests: { sticky_trust: false, secrets: false, network: false, agents: false }
    approvals: { self_approval: false, cancel_on_push: true }
  site: { hosted: true, branches: [main] }
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .spec.problems import Problems
from .spec.reader import Reader
from .spec.yamlnodes import LocDict

__all__ = ["FORGE_APIS", "KINDS", "WorkspaceConfig", "parse_workspaces", "redact_url"]

KINDS = ("folder", "git", "hosted")
FORGE_APIS = {"github": "https://api.github.com", "gitlab": "https://gitlab.com/api/v4", "gitea": None}
HOSTED_POLL = 30.0  # hosted repositories are local: a cheap safety net for a push whose events were lost
_KEYS = {
    "badges",
    "folder",
    "git",
    "hosted",
    "branches",
    "default_branch",
    "credentials",
    "forge",
    "poll",
    "pull_requests",
    "approvals",
}


@dataclass(frozen=True)
class WorkspaceConfig:
    name: str
    kind: str = "folder"
    folder: Path | None = None
    url: str | None = None
    branches: tuple[str, ...] = ()
    default_branch: str = "main"
    token: str | None = field(default=None, repr=False)
    token_user: str = "x-access-token"
    ssh_key: Path | None = None
    forge: str | None = None
    forge_api: str | None = None
    forge_token: str | None = field(default=None, repr=False)
    repo: str | None = None
    webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    poll_interval: float = 0.0
    sticky_trust: bool = False
    untrusted_secrets: bool = False
    untrusted_network: bool = False
    untrusted_agents: bool = False  # agent steps of untrusted pull requests may call the model providers
    self_approval: bool = True  # False: whoever wrote a change may not approve its gates
    cancel_waiting_on_push: bool = True  # a new push to a pull request cancels its runs waiting for approval
    public_badges: bool = False  # `badges: true`: /badge/<workspace>/<task>.svg answers anyone

    @property
    def is_git(self) -> bool:
        return self.kind in ("git", "hosted")


def redact_url(url: str | None) -> str | None:
    """`url` without credentials written into it (https://***@host/...): a user name may be a token too."""
    if not url or "://" not in url:
        return url
    parts = urlsplit(url)
    if not parts.username and not parts.password:
        return url
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def _repo_from_url(url: str) -> str | None:
    path = urlsplit(url).path if "://" in url else url.split(":", 1)[-1]
    path = path.strip("/").removesuffix(".git")
    return path or None


def parse_workspaces(block, problems: Problems, base: Path, read_value: Callable) -> dict[str, WorkspaceConfig]:
    if block is None:
        return {"local": WorkspaceConfig("local", folder=base.resolve())}
    out = {}
    for name, spec in block.items():
        if not isinstance(spec, LocDict):  # as every mapping of the file and of the environment
            problems.error(block.at(name), "wrong-type", f"workspace {name!r} must be a mapping like {{ folder: . }}")
            continue
        r = Reader(spec, problems, f"workspace {name!r}")
        r.check_keys(_KEYS)
        kinds = [k for k in KINDS if k in spec]
        if len(kinds) != 1:
            r.error(
                None,
                "missing-field" if not kinds else "conflict",
                "a workspace is exactly one of `folder: <path>`, `git: <url>` or `hosted: true`",
                "for example `folder: .`",
            )
            continue
        built = _build(r, name, kinds[0], base, read_value, problems)
        if built is not None:
            out[name] = built
    return out


def _build(r: Reader, name: str, kind: str, base: Path, read_value, problems) -> WorkspaceConfig | None:
    fields: dict = {"name": name, "kind": kind}
    if kind == "folder":
        folder = (base / str(r.raw("folder"))).resolve()
        if not folder.is_dir():
            r.error("folder", "missing-file", f"folder {str(folder)!r} does not exist")
            return None
        fields["folder"] = folder
        for key in ("branches", "default_branch", "credentials", "poll"):
            if r.has(key):
                r.error(
                    key, "conflict", f"`{key}` applies to git and hosted workspaces, not to folders", f"remove `{key}`"
                )
    elif not _git_fields(r, name, kind, read_value, problems, fields):
        return None
    _forge_fields(r, name, read_value, problems, fields)
    trust = r.mapping("pull_requests", "{ sticky_trust: false, secrets: false }")
    if trust is not None:
        t = Reader(trust, problems, f"workspace {name!r} pull_requests")
        t.check_keys({"sticky_trust", "secrets", "network", "agents"})
        fields["sticky_trust"] = t.boolean("sticky_trust")
        fields["untrusted_secrets"] = t.boolean("secrets")
        fields["untrusted_network"] = t.boolean("network")
        fields["untrusted_agents"] = t.boolean("agents")
    fields["public_badges"] = r.boolean("badges")
    approvals = r.mapping("approvals", "{ self_approval: false, cancel_on_push: true }")
    if approvals is not None:
        a = Reader(approvals, problems, f"workspace {name!r} approvals")
        a.check_keys({"self_approval", "cancel_on_push"})
        fields["self_approval"] = a.boolean("self_approval", True)
        fields["cancel_waiting_on_push"] = a.boolean("cancel_on_push", True)
    if fields.get("forge_token") is None:
        fields["forge_token"] = fields.get("token")
    return WorkspaceConfig(**fields)


def _git_fields(r: Reader, name: str, kind: str, read_value, problems, fields: dict) -> bool:
    if kind == "git":
        fields["url"] = r.string("git", "https://github.com/org/app.git")
        if not fields["url"]:
            return False
    elif r.raw("hosted") is not True:
        r.error("hosted", "bad-value", "`hosted` must be true", "write `hosted: true`")
        return False
    fields["branches"] = r.string_list("branches", '[main, "release/*"]') or ()
    first = fields["branches"][0] if fields["branches"] else ""
    fields["default_branch"] = r.string("default_branch") or (
        first if first and not any(c in first for c in "*?[!") else "main"
    )
    poll = r.duration("poll") if r.has("poll") else None
    fields["poll_interval"] = poll if poll is not None else (HOSTED_POLL if kind == "hosted" else 0.0)
    credentials = r.mapping("credentials", "{ token: { env: GITHUB_TOKEN } }")
    if credentials is not None:
        c = Reader(credentials, problems, f"workspace {name!r} credentials")
        c.check_keys({"token", "user", "ssh_key"})
        if "token" in credentials:
            fields["token"] = read_value(credentials["token"], c.what, problems, credentials.at("token"))
        if "ssh_key" in credentials:
            key = read_value(credentials["ssh_key"], c.what, problems, credentials.at("ssh_key"), as_path=True)
            fields["ssh_key"] = Path(key) if key else None
        fields["token_user"] = c.string("user") or "x-access-token"
    return True


def _forge_fields(r: Reader, name: str, read_value, problems, fields: dict) -> None:
    forge = r.mapping("forge", "{ type: github, repo: org/app }")
    if forge is None:
        return
    f = Reader(forge, problems, f"workspace {name!r} forge")
    f.check_keys({"type", "api", "repo", "token", "webhook_secrets"})
    f.require("type", "add `type: github` (or gitlab, gitea, forgejo)")
    kind = f.choice("type", ("github", "gitlab", "gitea", "forgejo"))
    fields["forge"] = "gitea" if kind == "forgejo" else kind
    fields["forge_api"] = (f.string("api") or FORGE_APIS.get(fields["forge"] or "") or "").rstrip("/") or None
    if fields["forge"] == "gitea" and not fields["forge_api"]:
        f.error(
            None,
            "missing-field",
            "a Gitea or Forgejo forge needs `api:`",
            "for example `api: https://codeberg.org/api/v1`",
        )
    fields["repo"] = f.string("repo") or _repo_from_url(fields.get("url") or "")
    if fields["forge"] and not fields["repo"]:
        f.error(None, "missing-field", "the forge needs the repository's path", "add `repo: owner/name`")
    if "token" in forge:
        fields["forge_token"] = read_value(forge["token"], f.what, problems, forge.at("token"))
    secrets = forge.get("webhook_secrets") or []
    if not isinstance(secrets, list):
        secrets = [secrets]
    fields["webhook_secrets"] = tuple(
        v for v in (read_value(s, f.what, problems, forge.at("webhook_secrets")) for s in secrets) if v
    )
