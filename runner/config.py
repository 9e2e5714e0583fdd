"""Server configuration: `strom.yaml` (or STROM_CONFIG), with every key also settable from the
environment as STROM_<KEY>, nested keys joined by double underscores (STROM_RETENTION__MAX_AGE).

Secrets and tokens come from the environment or files named in the config, never from a repository.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .agent_config import AgentProvider, parse_agents
from .container_config import DockerConfig, KubernetesConfig, parse_docker, parse_kubernetes
from .errors import StromError
from .executors.sandbox import StepLimits
from .notify.config import NotifyConfig, parse_notifications
from .secrets import ENV_PREFIX, secrets_from_env
from .spec.limits import SpecLimits
from .spec.model import CatchUp
from .spec.problems import Position, Problems
from .spec.reader import Reader, describe
from .spec.yamlnodes import LocDict, LocList, parse_yaml
from .store.objects import S3Settings
from .workspace_config import WorkspaceConfig, parse_workspaces

__all__ = [
    "DEFAULT_FILE",
    "ROLES",
    "Config",
    "ConfigError",
    "LibraryConfig",
    "TokenConfig",
    "WorkspaceConfig",
    "load_config",
]

DEFAULT_FILE = "strom.yaml"
ROLES = ("viewer", "operator", "approver", "admin")

_KEYS = {
    "redis_url",
    "public_url",
    "listen",
    "data_dir",
    "workspaces",
    "tokens",
    "secrets",
    "expose_env",
    "vals_files",
    "retention",
    "workers",
    "scheduler",
    "runner",
    "web",
    "notifications",
    "docker",
    "kubernetes",
    "logs",
    "limits",
    "http",
    "step_limits",
    "rate_limits",
    "mcp",
    "agents",
    "state",
    "storage",
    "artifacts",
    "libraries",
}
_ENV_KEYS = {f"STROM_{k.upper()}": k for k in _KEYS}


@dataclass(frozen=True)
class LibraryConfig:
    """`libraries: { NAME: { type: folder, path } | { type: git, url, ref, token } }` (docs/libraries.md)."""

    name: str
    kind: str  # folder | git
    path: Path | None = None
    url: str | None = None
    ref: str | None = None  # a tag or commit pins the library; a branch follows it (fetched at most once a minute)
    token: str | None = field(default=None, repr=False)


class ConfigError(StromError):
    status_hint = 500

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(p.format() for p in self.problems))


@dataclass(frozen=True)
class TokenConfig:
    name: str
    role: str
    token: str = field(repr=False)


@dataclass(frozen=True)
class Config:
    redis_url: str = "redis://127.0.0.1:6379/0"
    public_url: str = "http://127.0.0.1:8080"
    listen: str = "127.0.0.1:8080"
    data_dir: Path = Path(".strom-data")
    workspaces: Mapping[str, WorkspaceConfig] = field(default_factory=dict)
    tokens: tuple[TokenConfig, ...] = ()
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    secret_scopes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # secret -> the workspaces it is for

    def secrets_for(self, workspace: str) -> dict[str, str]:
        """The server's secrets one workspace may use (those scoped to other workspaces left out)."""
        return {
            name: value
            for name, value in self.secrets.items()
            if name not in self.secret_scopes or workspace in self.secret_scopes[name]
        }

    expose_env: tuple[str, ...] = ()
    vals_files: tuple[str, ...] = ()  # directories whose files `ref+file://` (the vals filter) may read
    retention_max_age: float = 30 * 86400.0
    retention_max_runs: int = 1000
    retention_snapshots: float = 6 * 3600.0  # unused commit snapshots are removed after this
    heartbeat_interval: float = 5.0
    lost_after: float = 30.0
    shutdown_grace: float = 30.0  # a stopping worker lets running steps end this long, then hands them back
    unmatched_timeout: float = 60.0
    sweep_interval: float = 2.0
    catch_up: CatchUp = CatchUp.LATEST
    sandbox: str = "auto"
    log_max_step: int = 64 * 1024 * 1024  # bytes of log one step may store (head and tail kept beyond)
    log_max_run: int = 64 * 1024 * 1024  # bytes of log one run may store
    log_tail: int = 1024 * 1024  # of a cut log, how much of the end is kept
    log_archive_after: float | None = 3600.0  # a finished run's log moves to the object storage after this; None: never
    spec_limits: SpecLimits = field(default_factory=SpecLimits)  # how big .strom/ definitions may be
    webhook_body_size: int = 10 * 1024 * 1024  # the largest webhook body read (forges, generic hooks)
    push_size: int = 256 * 1024 * 1024  # the largest pack a `git push` may send (receive.maxInputSize)
    comment_commands: int = 10  # commands acted on in one pull request comment
    rate_per_token: str | None = "30/minute"  # runs one token may start by hand (None: no limit)
    rate_per_workspace: str | None = "30/minute"  # runs anyone may start by hand in one workspace
    http_allow: tuple[str, ...] = ()  # non-public networks (CIDRs) http steps may reach
    agent_providers: Mapping[str, AgentProvider] = field(default_factory=dict)  # `agents.providers`, by id
    mcp_enabled: bool = False  # `mcp: { enabled: true }`: /mcp answers assistants (webhooks/mcp/)
    mcp_allowed_hosts: tuple[str, ...] = ()  # Host names /mcp answers besides public_url's and loopback's
    state_max_snapshots: int = 5  # `state: { max_snapshots: 5 }`: task state snapshots kept per task
    storage: S3Settings | None = None  # `storage: { type: s3, ... }`: objects in a bucket; None: the data directory
    artifacts_max_file: int = 100 * 1024 * 1024  # `artifacts: { max_file_size, max_run_size }`
    artifacts_max_run: int = 1024 * 1024 * 1024
    libraries: Mapping[str, LibraryConfig] = field(default_factory=dict)  # `libraries:` shared by every workspace
    step_limits: StepLimits = field(default_factory=StepLimits)  # processes, memory, /tmp of a local step
    web_threads: int = 16  # no longer used: web workers are gevent workers (web.connections)
    web_workers: int = 1
    web_connections: int = 1000  # connections one web worker serves at once
    web_read_timeout: float = 20.0  # a request's headers arrive within this; a read or write that waits longer ends
    worker_token: str | None = field(default=None, repr=False)  # for downloading snapshots from the web process
    worker_server_url: str = ""  # where workers and pods reach the web process, when not at public_url
    notifications: NotifyConfig = field(default_factory=NotifyConfig)
    docker: DockerConfig = field(default_factory=DockerConfig)
    kubernetes: KubernetesConfig = field(default_factory=KubernetesConfig)
    sensitive_paths: tuple[Path, ...] = ()  # the config file and every file it reads values from: hidden from steps
    source: str = "defaults"

    def run_url(self, run_id: str) -> str:
        return f"{self.public_url.rstrip('/')}/runs/{run_id}"


def _env_overrides(environ: Mapping[str, str]) -> dict:
    """STROM_RETENTION__MAX_AGE=7d -> {"retention": {"max_age": "7d"}}; values parsed as JSON when they are."""
    out: dict = {}
    for name, raw in environ.items():
        if not name.startswith("STROM_") or name.startswith(ENV_PREFIX):
            continue
        head, _, rest = name.partition("__")
        key = _ENV_KEYS.get(head)
        if key is None:
            continue
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        target = out
        parts = [key] + [p.lower() for p in rest.split("__") if p] if rest else [key]
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return out


def _merge(base: LocDict, extra: Mapping[str, Any]) -> LocDict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def _as_loc(value: Any, pos: Position) -> Any:
    """`value` (from the environment) as the YAML reader gives it: its mappings and lists carry `pos`."""
    if isinstance(value, dict) and not isinstance(value, LocDict):
        out = LocDict((k, _as_loc(v, pos)) for k, v in value.items())
        out.pos, out.key_pos, out.val_pos = pos, dict.fromkeys(value, pos), dict.fromkeys(value, pos)
        return out
    if isinstance(value, list) and not isinstance(value, LocList):  # the mappings in it too (tokens, say)
        items = LocList(_as_loc(v, pos) for v in value)
        items.pos, items.item_pos = pos, [pos] * len(items)
        return items
    return value


def _read_value(
    spec, what: str, problems: Problems, pos, environ: Mapping[str, str] | None = None, as_path: bool = False
) -> str | None:
    """A secret-like value: a string, or {env: NAME} / {file: PATH} (as_path: the path itself)."""
    environ = os.environ if environ is None else environ
    if isinstance(spec, (str, int, float)) and not isinstance(spec, bool):
        return str(spec)
    if isinstance(spec, dict):
        if "env" in spec:
            value = environ.get(str(spec["env"]))
            if value is None:
                problems.error(
                    pos,
                    "missing-env",
                    f"{what}: environment variable {spec['env']!r} is not set",
                    f"export {spec['env']}=...",
                )
            return value
        if "file" in spec:
            path = Path(str(spec["file"])).expanduser()
            if as_path:
                if not path.is_file():
                    problems.error(pos, "missing-file", f"{what}: {path} does not exist")
                    return None
                return str(path)
            try:
                return path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                problems.error(pos, "missing-file", f"{what}: cannot read {path}: {exc.strerror}")
                return None
    problems.error(
        pos, "wrong-type", f"{what}: expected a string, {{env: NAME}} or {{file: PATH}}, got {describe(spec)}"
    )
    return None


def load_config(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None, base_dir: Path | None = None
) -> Config:
    """Read the config file (if any) and the STROM_* environment. Raises ConfigError listing every problem."""
    environ = os.environ if environ is None else environ
    problems = Problems()
    explicit = path or environ.get("STROM_CONFIG")
    file = Path(explicit) if explicit else Path(base_dir or ".") / DEFAULT_FILE
    data = LocDict()
    data.pos, data.key_pos, data.val_pos = (str(file), 1, 1), {}, {}
    source = "defaults"
    if file.is_file():
        parsed = parse_yaml(file.read_text(encoding="utf-8"), str(file), problems)
        if isinstance(parsed, dict):
            data, source = parsed, str(file)
        elif parsed is not None:
            problems.error((str(file), 1, 1), "wrong-type", "the configuration must be a mapping")
    elif explicit:
        raise ConfigError([_missing_file(file)])
    overrides = _env_overrides(environ)
    if overrides:
        data = _merge(data, _as_loc(overrides, (str(file), 1, 1)))
        for key in overrides:
            data.key_pos.setdefault(key, ("environment", 1, 1))
            data.val_pos.setdefault(key, ("environment", 1, 1))
        source = f"{source} + environment"
    config = _build(data, problems, environ, file.parent if file.is_file() else Path(base_dir or "."))
    if problems.has_errors:
        raise ConfigError([p for p in problems.items if p.is_error])
    sensitive = ([file.resolve()] if file.is_file() else []) + _file_references(data)
    sensitive += [c.config_file for c in config["notifications"].channels.values() if c.config_file]
    return Config(**{**config, "source": source, "sensitive_paths": tuple(dict.fromkeys(sensitive))})


def _file_references(value) -> list[Path]:
    """Every `file: PATH` in the configuration (tokens, secrets, credentials)."""
    out = []
    if isinstance(value, dict):
        if isinstance(value.get("file"), str):
            out.append(Path(value["file"]).expanduser().resolve())
        for item in value.values():
            out += _file_references(item)
    elif isinstance(value, list):
        for item in value:
            out += _file_references(item)
    return out


def _missing_file(file: Path):
    from .spec.problems import Problem

    return Problem(
        str(file),
        1,
        1,
        "missing-file",
        f"configuration file {file} does not exist",
        "create it, or unset STROM_CONFIG / --config",
    )


def _build(data: LocDict, problems: Problems, environ: Mapping[str, str], base: Path) -> dict:
    r = Reader(data, problems, "configuration")
    r.check_keys(_KEYS)
    out: dict[str, Any] = {}
    value: str | int | float | None
    for key in ("redis_url", "public_url", "listen"):
        value = r.string(key)
        if value:
            out[key] = value
    if r.has("data_dir"):
        out["data_dir"] = (base / str(r.raw("data_dir"))).resolve()
    read_value = functools.partial(_read_value, environ=environ)
    out["workspaces"] = parse_workspaces(
        r.mapping("workspaces", "{ local: { folder: . } }"), problems, base, read_value
    )
    out["tokens"] = _tokens(r.raw("tokens", None), data, problems, environ)
    out["docker"] = parse_docker(r.mapping("docker", "{ runner_image: python:3.12-slim }"), problems)
    out["kubernetes"] = parse_kubernetes(r.mapping("kubernetes", "{ namespace: strom }"), problems, base)
    out["agent_providers"] = parse_agents(r.mapping("agents", "{ providers: [...] }"), problems, read_value)
    out["notifications"] = parse_notifications(
        r.mapping("notifications", '{ channels: { ops: ["mailto://..."] } }'), problems, base, read_value
    )
    scopes: dict[str, tuple[str, ...]] = {}
    out["secrets"] = _secrets(
        r.mapping("secrets", "{ api_token: { env: API_TOKEN, workspaces: [web] } }"), problems, environ, scopes
    )
    out["secret_scopes"] = scopes
    _check_scopes(scopes, out["workspaces"], problems, data.at("secrets") if "secrets" in data else data.pos)
    out["expose_env"] = r.string_list("expose_env", "[DB_PASSWORD]") or ()
    files = r.string_list("vals_files", "[/run/secrets]") or ()
    out["vals_files"] = tuple(str((base / folder).resolve()) for folder in files)
    for section, fields in (
        (
            "retention",
            {"max_age": "retention_max_age", "max_runs": "retention_max_runs", "snapshots": "retention_snapshots"},
        ),
        (
            "workers",
            {
                "heartbeat_interval": "heartbeat_interval",
                "lost_after": "lost_after",
                "unmatched_timeout": "unmatched_timeout",
                "sandbox": "sandbox",
                "shutdown_grace": "shutdown_grace",
                "server_url": "worker_server_url",
                "token": "worker_token",
            },
        ),
        ("scheduler", {"catch_up": "catch_up", "sweep_interval": "sweep_interval"}),
        (
            "web",
            {
                "threads": "web_threads",
                "workers": "web_workers",
                "connections": "web_connections",
                "read_timeout": "web_read_timeout",
            },
        ),
        (
            "logs",
            {
                "max_step_size": "log_max_step",
                "max_run_size": "log_max_run",
                "tail_size": "log_tail",
                "archive_after": "log_archive_after",
            },
        ),
    ):
        block = r.mapping(section)
        if block is None:
            continue
        sub = Reader(block, problems, section)
        sub.check_keys(fields)
        for key, attr in fields.items():
            if key not in block:
                continue
            if attr in ("retention_max_runs", "web_threads", "web_workers", "web_connections"):
                value = sub.integer(key, minimum=1)
            elif attr in ("catch_up",):
                value = sub.member(key, CatchUp, None)
            elif attr == "sandbox":
                value = sub.choice(key, ("auto", "bwrap", "copy"))
            elif attr == "log_archive_after":
                if block[key] in ("off", False):
                    out[attr] = None
                    continue
                value = sub.duration(key)
            elif attr.startswith("log_"):
                value = sub.size(key, minimum=64 * 1024)
            elif attr == "worker_server_url":
                value = sub.string(key)
            elif attr == "worker_token":
                value = _read_value(block[key], "workers.token", problems, block.at(key), environ)
            else:
                value = sub.duration(key)
            if value is not None:
                out[attr] = value
    _limits(r.mapping("limits", "{ workflow_file_size: 4MiB }"), problems, out)
    _http(r.mapping("http", "{ allow: [10.0.0.0/8] }"), problems, out)
    _mcp(r.mapping("mcp", "{ enabled: true }"), problems, out)
    _state(r.mapping("state", "{ max_snapshots: 5 }"), problems, out)
    _storage(r.mapping("storage", "{ type: s3, bucket: strom }"), problems, out, environ)
    _artifacts(r.mapping("artifacts", "{ max_file_size: 100MiB, max_run_size: 1GiB }"), problems, out)
    _libraries(
        r.mapping("libraries", "{ common: { type: folder, path: /srv/strom-common } }"), problems, out, base, environ
    )
    _step_limits(r.mapping("step_limits", "{ processes: 512, tmp: 1GiB }"), problems, out)
    _rate_limits(r.mapping("rate_limits", "{ per_token: 30/minute, per_workspace: 60/minute }"), problems, out)
    if out.get("log_tail", Config.log_tail) * 2 > out.get("log_max_step", Config.log_max_step):
        problems.error(
            data.pos,
            "bad-value",
            "logs.tail_size must be at most half of logs.max_step_size",
            "for example max_step_size: 64MiB and tail_size: 1MiB",
        )
    if out.get("lost_after", 30.0) <= out.get("heartbeat_interval", 5.0):
        problems.error(
            data.pos,
            "bad-value",
            "workers.lost_after must be longer than workers.heartbeat_interval",
            "for example heartbeat_interval: 5s and lost_after: 30s",
        )
    return out


_SIZE_LIMITS = {
    "workflow_file_size": "file_size",
    "workflow_total_size": "total_size",
    "yaml_expanded_size": "expanded_size",
}
_COUNT_LIMITS = {
    "yaml_depth": "depth",
    "yaml_nodes": "nodes",
    "workflow_files": "files",
    "tasks": "tasks",
    "steps": "steps",
}
_SERVER_LIMITS = {"webhook_body_size": "webhook_body_size", "push_size": "push_size"}


def _limits(block, problems: Problems, out: dict) -> None:
    """`limits:` how big definitions, webhook bodies, pushes and comments may be."""
    if block is None:
        return
    sub = Reader(block, problems, "limits")
    sub.check_keys({*_SIZE_LIMITS, *_COUNT_LIMITS, *_SERVER_LIMITS, "comment_commands"})
    spec = {}
    for key, attr in _SIZE_LIMITS.items():
        spec[attr] = sub.size(key, minimum=1024)
    for key, attr in _COUNT_LIMITS.items():
        spec[attr] = sub.integer(key, minimum=1)
    out["spec_limits"] = SpecLimits(**{k: v for k, v in spec.items() if v is not None})
    for key, attr in _SERVER_LIMITS.items():
        value = sub.size(key, minimum=64 * 1024)
        if value is not None:
            out[attr] = value
    commands = sub.integer("comment_commands", minimum=1)
    if commands is not None:
        out["comment_commands"] = commands


def _http(block, problems: Problems, out: dict) -> None:
    """`http: { allow: [CIDR, ...] }`: the non-public networks http steps may reach."""
    if block is None:
        return
    import ipaddress

    sub = Reader(block, problems, "http")
    sub.check_keys({"allow"})
    allow = sub.string_list("allow", "[10.0.0.0/8, 192.168.1.20/32]") or ()
    for cidr in allow:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            problems.error(
                block.at("allow"),
                "bad-value",
                f"http.allow: {cidr!r} is not a network",
                "write networks like 10.0.0.0/8 or addresses like 192.168.1.20",
            )
    out["http_allow"] = tuple(allow)


def _mcp(block, problems: Problems, out: dict) -> None:
    """`mcp: { enabled: true, allowed_hosts: [ci.example.com] }`: the MCP endpoint for assistants."""
    if block is None:
        return
    sub = Reader(block, problems, "mcp")
    sub.check_keys({"enabled", "allowed_hosts"})
    out["mcp_enabled"] = sub.boolean("enabled", False)
    out["mcp_allowed_hosts"] = tuple(h.lower() for h in sub.string_list("allowed_hosts", "[ci.example.com]") or ())


def _state(block, problems: Problems, out: dict) -> None:
    """`state: { max_snapshots: 5 }`: how many task state snapshots each task keeps."""
    if block is None:
        return
    sub = Reader(block, problems, "state")
    sub.check_keys({"max_snapshots"})
    count = sub.integer("max_snapshots", minimum=1, maximum=1000)
    if count is not None:
        out["state_max_snapshots"] = count


def _storage(block, problems: Problems, out: dict, environ) -> None:
    """`storage: { type: local }` (the data directory) or `{ type: s3, bucket, prefix, endpoint, region,
    access_key, secret_key }`: where task state files and artifacts are kept."""
    if block is None:
        return
    sub = Reader(block, problems, "storage")
    sub.check_keys({"type", "bucket", "prefix", "endpoint", "region", "access_key", "secret_key"})
    kind = sub.choice("type", ("local", "s3")) or "local"
    if kind == "local":
        return
    bucket = sub.string("bucket")
    if not bucket:
        problems.error(
            block.pos, "missing-key", "storage: type s3 needs a bucket", "storage: { type: s3, bucket: strom }"
        )
        return
    keys = {
        name: _read_value(block[name], f"storage.{name}", problems, block.at(name), environ)
        for name in ("access_key", "secret_key")
        if name in block
    }
    out["storage"] = S3Settings(
        bucket=bucket,
        prefix=sub.string("prefix") or "",
        endpoint=sub.string("endpoint") or None,
        region=sub.string("region") or None,
        **keys,
    )


def _libraries(block, problems: Problems, out: dict, base: Path, environ) -> None:
    """`libraries: { NAME: { type: folder, path } | { type: git, url, ref, token } }`."""
    if block is None:
        return
    libraries: dict[str, LibraryConfig] = {}
    for name in block:
        entry = block[name]
        where = block.key_at(name)
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}", name):
            problems.error(
                where,
                "invalid-name",
                f"library name {name!r} must be letters, digits, - and _ (no dots)",
                "name it like `common` or `shared-tools`",
            )
            continue
        if not isinstance(entry, LocDict):
            problems.error(
                where, "wrong-type", f"library {name!r} must be a mapping", "{ type: folder, path: /srv/lib }"
            )
            continue
        sub = Reader(entry, problems, f"libraries.{name}")
        sub.check_keys({"type", "path", "url", "ref", "token"})
        kind = sub.choice("type", ("folder", "git")) or ("git" if "url" in entry else "folder")
        if kind == "folder":
            path = sub.string("path")
            if not path:
                problems.error(entry.pos, "missing-key", f"library {name!r} (a folder) needs `path`", "path: /srv/lib")
                continue
            libraries[name] = LibraryConfig(name, "folder", path=(base / path).resolve())
        else:
            url, ref = sub.string("url"), sub.string("ref")
            if not url or not ref:
                problems.error(
                    entry.pos,
                    "missing-key",
                    f"library {name!r} (git) needs `url` and `ref`",
                    "url: https://git.example.com/ci/library.git, ref: v1.2.0",
                )
                continue
            token = (
                _read_value(entry["token"], f"libraries.{name}.token", problems, entry.at("token"), environ)
                if "token" in entry
                else None
            )
            libraries[name] = LibraryConfig(name, "git", url=url, ref=ref, token=token)
    out["libraries"] = libraries


def _artifacts(block, problems: Problems, out: dict) -> None:
    """`artifacts: { max_file_size: 100MiB, max_run_size: 1GiB }`: what one file, and one run, may store."""
    if block is None:
        return
    sub = Reader(block, problems, "artifacts")
    sub.check_keys({"max_file_size", "max_run_size"})
    for key, attr in (("max_file_size", "artifacts_max_file"), ("max_run_size", "artifacts_max_run")):
        value = sub.size(key, minimum=1)
        if value is not None:
            out[attr] = value


def _step_limits(block, problems: Problems, out: dict) -> None:
    """`step_limits:` what one local step may use: processes, memory per process, /tmp, /dev/shm, files."""
    if block is None:
        return
    sub = Reader(block, problems, "step_limits")
    sub.check_keys({"processes", "open_files", "memory", "tmp", "shm", "file_size"})
    values = {key: sub.integer(key, minimum=16) for key in ("processes", "open_files")}
    values.update({key: sub.size(key, minimum=1024 * 1024) for key in ("memory", "tmp", "shm", "file_size")})
    out["step_limits"] = StepLimits(**{k: v for k, v in values.items() if v is not None})


_RATE_LIMITS = {"per_token": "rate_per_token", "per_workspace": "rate_per_workspace"}


def _rate_limits(block, problems: Problems, out: dict) -> None:
    """`rate_limits:` how many runs people may start by hand (API, UI, CLI), per token and per workspace:
    `30/minute`, `5 per second`, `1000/day`; `off` for none. Repository events are never limited."""
    if block is None:
        return
    from limits import parse

    sub = Reader(block, problems, "rate_limits")
    sub.check_keys(_RATE_LIMITS)
    for key, attr in _RATE_LIMITS.items():
        if key not in block:
            continue
        value = block[key]
        if value is False or value in ("off", "none"):  # YAML reads a bare `off` as false
            out[attr] = None
            continue
        try:
            parse(str(value))
        except ValueError:
            problems.error(
                block.at(key),
                "bad-value",
                f"rate_limits.{key}: {value!r} is not a rate",
                "write a count per second, minute, hour or day, e.g. 30/minute or 5 per second, or off",
            )
            continue
        out[attr] = str(value)


def _tokens(value, data: LocDict, problems: Problems, environ: Mapping[str, str]) -> tuple[TokenConfig, ...]:
    out = []
    if value is not None and not isinstance(value, list):
        problems.error(data.at("tokens"), "wrong-type", "tokens must be a list of { name, role, env|file|token }")
        value = []
    for i, spec in enumerate(value or []):
        pos = value.at(i) if hasattr(value, "at") else data.pos
        if not isinstance(spec, LocDict):  # as every mapping of the file and of the environment (_as_loc)
            problems.error(pos, "wrong-type", f"tokens[{i}] must be a mapping")
            continue
        sub = Reader(spec, problems, f"tokens[{i}]")
        sub.check_keys({"name", "role", "env", "file", "token"})
        role = sub.choice("role", ROLES)
        if role is None:
            sub.require("role", f"add `role:` ({', '.join(ROLES)})")
            continue
        source = {k: spec[k] for k in ("env", "file") if k in spec} or spec.get("token")
        token = _read_value(source, f"tokens[{i}]", problems, pos, environ)
        if token is not None and len(token) < 16:
            problems.error(
                pos,
                "weak-token",
                f"tokens[{i}] is shorter than 16 characters",
                "generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'",
            )
            continue
        if token:
            out.append(TokenConfig(str(spec.get("name") or f"token-{i}"), role, token))
    admin = environ.get("STROM_ADMIN_TOKEN")
    if admin:
        out.append(TokenConfig("admin (STROM_ADMIN_TOKEN)", "admin", admin))
    return tuple(out)


def _secrets(
    block, problems: Problems, environ: Mapping[str, str], scopes: dict[str, tuple[str, ...]]
) -> dict[str, str]:
    """The server's secrets by name; a secret given as {env|file|value: ..., workspaces: [a, b]} is for those
    workspaces only (its scope goes into `scopes`)."""
    out = {}
    for name, spec in (block or {}).items():
        if isinstance(spec, dict) and "workspaces" in spec:
            spec = dict(spec)
            named = spec.pop("workspaces")
            if not isinstance(named, list) or not all(isinstance(w, str) for w in named):
                problems.error(
                    block.at(name),
                    "wrong-type",
                    f"secret {name!r}: workspaces must be a list of workspace names",
                    "for example workspaces: [web, api]",
                )
                continue
            scopes[str(name)] = tuple(named)
        if isinstance(spec, dict) and set(spec) == {"value"}:
            spec = spec["value"]
        value = _read_value(spec, f"secret {name!r}", problems, block.at(name), environ)
        if value is not None:
            out[str(name)] = value
    out.update(secrets_from_env(environ))
    return out


def _check_scopes(scopes: Mapping[str, tuple[str, ...]], workspaces: Mapping, problems: Problems, pos) -> None:
    for name, named in scopes.items():
        for workspace in named:
            if workspace not in workspaces:
                problems.error(
                    pos,
                    "unknown-workspace",
                    f"secret {name!r} is for workspace {workspace!r}, which is not configured",
                    f"configured workspaces: {', '.join(sorted(workspaces))}",
                )
