"""Where secret values come from: the environment (STROM_SECRET_<NAME>) and secrets files, never the repository."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from .errors import StromError
from .vals import ValsError, decrypt_sops

__all__ = ["ENV_PREFIX", "SecretsFileError", "read_secrets_file", "resolve_workspace_secrets", "secrets_from_env"]

ENV_PREFIX = "STROM_SECRET_"


class SecretsFileError(StromError):
    status_hint = 400


def secrets_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    environ = os.environ if environ is None else environ
    return {
        key[len(ENV_PREFIX) :]: value
        for key, value in environ.items()
        if key.startswith(ENV_PREFIX) and len(key) > len(ENV_PREFIX)
    }


def read_secrets_file(path: Path) -> dict[str, str]:
    """A YAML or JSON mapping of names to values, or a dotenv file of NAME=value lines."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SecretsFileError(f"cannot read secrets file {path}: {exc.strerror or exc}") from exc
    if ".sops." in Path(path).name:  # SOPS-encrypted: decrypted by the sops CLI
        try:
            text = decrypt_sops(Path(path))
        except ValsError as exc:
            raise SecretsFileError(str(exc)) from None
    stripped = text.strip()
    if not stripped:
        return {}
    data = None
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError as exc:
            raise SecretsFileError(f"secrets file {path} is not valid JSON: {exc}") from exc
    elif _looks_like_dotenv(stripped):
        data = _dotenv(stripped)
    else:
        try:
            data = YAML(typ="safe").load(text)
        except YAMLError as exc:
            raise SecretsFileError(f"secrets file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SecretsFileError(f"secrets file {path} must map names to values")
    return {str(k): "" if v is None else str(v) for k, v in data.items()}


def _looks_like_dotenv(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return bool(lines) and all("=" in line and ":" not in line.split("=", 1)[0] for line in lines)


def _dotenv(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def resolve_workspace_secrets(
    declared: Mapping[str, Any],
    provided: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
    vals_files: tuple[str, ...] = (),
) -> tuple[dict[str, Any], dict[str, str]]:
    """Render the workspace's `secrets:` references (e.g. "{{ env.DB_PASSWORD }}").

    Returns (secrets, problems): provided values win over declarations; a reference that cannot be
    resolved is left out, with the reason in `problems`.
    """
    from .templating import VALS_FILES, Namespace, SecretMap, render  # only servers and `strom run` render them

    environ = os.environ if environ is None else environ
    context = {
        "env": Namespace("env", dict(environ)),
        "secret": SecretMap(provided),
        "secrets": SecretMap(provided),
        VALS_FILES: tuple(vals_files),
    }
    out: dict[str, Any] = dict(provided)
    problems: dict[str, str] = {}

    def resolve(name: str, source: Any) -> Any:
        if isinstance(source, Mapping):  # a secret map: `secret.db.user`
            return {key: resolve(f"{name}.{key}", value) for key, value in source.items()}
        try:
            return render(str(source), context, f"secret {name!r}")
        except StromError as exc:
            problems[name] = str(exc)
            return None

    for name, source in declared.items():
        if name not in out:
            value = resolve(name, source)
            if value is not None:
                out[name] = value
    return out, problems
