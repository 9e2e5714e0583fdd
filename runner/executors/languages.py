"""Toolchains for script languages: which binary runs a script, and how dependencies are installed.

Preferences follow Strøm: shell bash > sh; python uv > python3 > python; javascript bun > node;
typescript bun > deno (> node 22.6+ with type stripping); go: go run.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import RunnerUnavailable, StepSetupError
from ..spec.payloads import ScriptPayload

__all__ = [
    "IN_CONTAINER",
    "SCRIPT_SUFFIX",
    "ContainerScript",
    "Plan",
    "cache_env",
    "container_script",
    "is_file_inside",
    "plan_script",
    "read_inside",
    "script_name",
    "source_path",
]

SCRIPT_SUFFIX = {"shell": ".sh", "python": ".py", "javascript": ".mjs", "typescript": ".ts", "go": ".go"}
_CANDIDATES = {
    "shell": ("bash", "sh"),
    "python": ("uv", "python3", "python"),
    "javascript": ("bun", "node"),
    "typescript": ("bun", "deno", "node"),
    "go": ("go",),
}


@dataclass
class Plan:
    """Setup commands (dependency installs) then the command that runs the script."""

    setup: list[list[str]] = field(default_factory=list)
    run: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    setup_cwd: str | None = None  # where setup commands run (inside the sandbox); None: the dependencies' directory


@functools.lru_cache(maxsize=64)
def _which(name: str, path: str | None = None) -> str | None:
    return shutil.which(name, path=path)


@functools.lru_cache(maxsize=8)
def _node_strips_types(node: str) -> bool:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    match = re.match(r"v(\d+)\.(\d+)", out.strip())
    return match is not None and (int(match.group(1)), int(match.group(2))) >= (22, 6)


@functools.lru_cache(maxsize=8)
def _real_python(python: str) -> str:
    """The interpreter behind a launcher or shim (pyenv, asdf), which may not work read-only."""
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True, timeout=20
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return python
    return out if out and os.path.isfile(out) else python


@functools.lru_cache(maxsize=8)
def _has_pip(python: str) -> bool:
    try:
        return subprocess.run([python, "-m", "pip", "--version"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _find(language: str, interpreter: str | None, search: str | None) -> tuple[str, str]:
    """(tool name, path) of the toolchain to use, looked up on `search` (a PATH)."""
    if interpreter:
        path = _which(interpreter, search)
        if not path:
            raise RunnerUnavailable(f"interpreter {interpreter!r} is not installed on this machine (not found on PATH)")
        return interpreter, path
    for name in _CANDIDATES[language]:
        path = _which(name, search)
        if not path:
            continue
        if language == "typescript" and name == "node" and not _node_strips_types(path):
            continue
        return name, path
    wanted = " or ".join(_CANDIDATES[language])
    extra = " (node needs version 22.6 or later for TypeScript)" if language == "typescript" else ""
    raise RunnerUnavailable(
        f"no {language} toolchain on this machine: install {wanted}{extra}, "
        f"or set `interpreter:` to one that is installed"
    )


def cache_env(cache: str) -> dict[str, str]:
    """Package and build caches shared by steps on this machine (paths inside the sandbox)."""
    return {
        "PIP_CACHE_DIR": f"{cache}/pip",
        "UV_CACHE_DIR": f"{cache}/uv",
        "npm_config_cache": f"{cache}/npm",
        "BUN_INSTALL_CACHE_DIR": f"{cache}/bun",
        "GOCACHE": f"{cache}/go-build",
        "GOMODCACHE": f"{cache}/go-mod",
    }


def plan_script(
    language: str,
    interpreter: str | None,
    script: str,
    args: list[str],
    deps: list[str],
    scratch: str,
    search: str | None = None,
) -> Plan:
    """How to run `script` (a path inside the sandbox) with `args`, installing `deps` under `scratch`.

    Toolchains are looked up on `search`, the PATH the step will have.
    """
    tool, path = _find(language, interpreter, search)
    return _PLANNERS[language](tool, path, script, list(args), list(deps), scratch, search)


def _shell(tool, path, script, args, deps, scratch, search) -> Plan:
    flags = ["-eo", "pipefail"] if tool in ("bash", "zsh") or tool.endswith("bash") else ["-e"]
    return Plan(run=[path, *flags, script, *args])


def _python(tool, path, script, args, deps, scratch, search) -> Plan:
    if tool == "uv":
        with_deps = [arg for dep in deps for arg in ("--with", dep)]
        return Plan(run=[path, "run", "--no-project", "--quiet", *with_deps, "python", script, *args])
    if not deps:
        return Plan(run=[path, script, *args])
    path = _real_python(path)
    venv = f"{scratch}/.venv"
    python = f"{venv}/bin/python"
    install = ["install", "--quiet", "--disable-pip-version-check", "--no-input", *deps]
    if _has_pip(path):
        setup = [[path, "-m", "venv", "--without-pip", venv], [path, "-m", "pip", "--python", python, *install]]
    else:
        setup = [[path, "-m", "venv", venv], [python, "-m", "pip", *install]]
    return Plan(setup=setup, run=[python, script, *args])


def _node_install(tool: str, deps: list[str], scratch: str, search: str | None) -> list[list[str]]:
    if not deps:
        return []
    if tool == "bun":
        return [[_which("bun", search) or "bun", "add", "--cwd", scratch, *deps]]
    npm = _which("npm", search)
    if not npm:
        raise RunnerUnavailable("installing JavaScript dependencies needs npm or bun, and neither is installed")
    return [[npm, "install", "--prefix", scratch, "--no-audit", "--no-fund", "--silent", *deps]]


def _beside_modules(script: str, deps, scratch: str) -> tuple[list[list[str]], str]:
    """A script that imports dependencies runs from where they are installed (node resolves from the script)."""
    if not deps:
        return [], script
    copy = f"{scratch}/{PurePosixPath(script).name}"
    return [["cp", script, copy]], copy


def _javascript(tool, path, script, args, deps, scratch, search) -> Plan:
    copy, script = _beside_modules(script, deps, scratch)
    return Plan(setup=_node_install(tool, deps, scratch, search) + copy, run=[path, script, *args])


def _typescript(tool, path, script, args, deps, scratch, search) -> Plan:
    if tool == "deno":
        if deps:
            raise RunnerUnavailable(
                "TypeScript dependencies under deno are not supported; import npm: specifiers instead"
            )
        return Plan(run=[path, "run", "--allow-all", script, *args])
    copy, script = _beside_modules(script, deps, scratch)
    if tool == "node":
        return Plan(
            setup=_node_install(tool, deps, scratch, search) + copy,
            run=[path, "--experimental-strip-types", "--no-warnings", script, *args],
        )
    return Plan(setup=_node_install(tool, deps, scratch, search) + copy, run=[path, script, *args])


def _go(tool, path, script, args, deps, scratch, search) -> Plan:
    env = {"GOPATH": f"{scratch}/.go", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    if not deps:
        return Plan(run=[path, "run", script, *args], env=env)
    binary = f"{scratch}/step-bin"
    setup = [
        ["cp", script, f"{scratch}/main.go"],
        [path, "mod", "init", "strom.step"],
        [path, "get", *deps],
        [path, "build", "-o", binary, "."],
    ]
    return Plan(setup=setup, run=[binary, *args], env=env, setup_cwd=scratch)


_PLANNERS = {"shell": _shell, "python": _python, "javascript": _javascript, "typescript": _typescript, "go": _go}


# -- scripts by file ------------------------------------------------------------------------------


def script_name(language: str) -> str:
    """The file an inline script is written to."""
    return f"step{SCRIPT_SUFFIX.get(language, '')}"


def source_path(source: str | None) -> PurePosixPath:
    """A step's `source` as a path inside the workspace; StepSetupError when there is none or it leaves it."""
    if not source:
        raise StepSetupError("the step has neither `script` nor `source`")
    relative = PurePosixPath(source)
    if relative.is_absolute() or ".." in relative.parts:
        raise StepSetupError(f"source {source!r} leaves the workspace")
    return relative


def read_inside(root: Path, relative: PurePosixPath, limit: int = 16 * 1024 * 1024) -> bytes:
    """The bytes of file `relative` under `root`, read on the host without following a link anywhere on the way
    (a pushed `cfg.go -> /etc/strom/strom.yaml` is refused, not read as root)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in relative.parts[:-1]:
            next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        try:
            file_fd = os.open(relative.parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        except OSError as exc:
            raise StepSetupError(
                f"source file {relative.as_posix()!r} cannot be read: it does not exist or is a "
                f"symbolic link ({exc.strerror})"
            ) from None
        with os.fdopen(file_fd, "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise StepSetupError(f"source file {relative.as_posix()!r} is not a regular file")
            data = file.read(limit + 1)
    except NotADirectoryError:
        raise StepSetupError(
            f"source file {relative.as_posix()!r} lies under something that is not a directory"
        ) from None
    except OSError as exc:
        raise StepSetupError(f"source file {relative.as_posix()!r} cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise StepSetupError(f"source file {relative.as_posix()!r} is larger than {limit} bytes")
    return data


def is_file_inside(root: Path, relative: PurePosixPath) -> bool:
    """Whether `relative` is a file of the workspace: links may lead elsewhere in it, never out of it."""
    base = root.resolve()
    target = (base / relative).resolve()
    return base in target.parents and target.is_file()


# Interpreters inside a container image: the image decides which toolchains there are.
IN_CONTAINER = {
    "shell": ["sh"],
    "python": ["python3"],
    "javascript": ["node"],
    "typescript": ["bun", "run"],
    "go": ["go", "run"],
}


@dataclass(frozen=True)
class ContainerScript:
    argv: list[str]
    name: str | None = None  # the inline script's file name under `code`, or None for a `source`
    text: str | None = None  # the inline script
    source: PurePosixPath | None = None


def container_script(step: ScriptPayload, workspace: str = "/workspace", code: str = "/strom") -> ContainerScript:
    """How a container runs a script step: the interpreter for its language, then its file (an inline
    script under `code`, a `source` under `workspace`), then its args."""
    interpreter = [step.interpreter] if step.interpreter else IN_CONTAINER.get(step.language, ["sh"])
    if step.script is not None:
        name = script_name(step.language)
        text = step.script if step.script.endswith("\n") else step.script + "\n"
        return ContainerScript([*interpreter, f"{code}/{name}", *step.args], name, text)
    relative = source_path(step.source)
    return ContainerScript([*interpreter, str(PurePosixPath(workspace) / relative), *step.args], source=relative)
