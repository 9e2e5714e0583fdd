"""vals-style secret references (`ref+env://NAME`, `ref+file:///path`, `ref+vault://...`), resolved by the `vals`
template filter, and SOPS-encrypted secrets files, decrypted with the `sops` CLI.

`ref+env://` reads only what the template may read as `env` (the server's `expose_env`); `ref+file://`
only files under the server's `vals_files` directories, never another file of the server; every other
backend goes to the `vals` CLI (time-bounded), with an error that says so when it is not installed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["ValsError", "decrypt_sops", "resolve_ref"]

CLI_SECONDS = 20
MAX_FILE = 1024 * 1024


class ValsError(ValueError):
    pass


def resolve_ref(ref: str, env: Mapping[str, str] | None, files: Iterable[str] = ()) -> str:
    """The value `ref` names; a string that is not a `ref+` reference is returned as it is."""
    if not ref.startswith("ref+"):
        return ref
    if ref.startswith("ref+env://"):
        name = ref[len("ref+env://") :]
        if env is not None and name in env:
            return env[name]
        raise ValsError(f"{ref}: {name!r} is not among the environment variables templates may read (expose_env)")
    if ref.startswith("ref+file://"):
        return _file(ref, ref[len("ref+file://") :], files)
    return _cli(ref)


def _file(ref: str, path: str, allowed: Iterable[str]) -> str:
    path, _, _fragment = path.partition("#")
    target = Path(path).resolve()
    roots = [Path(root).resolve() for root in allowed]
    if not any(target == root or root in target.parents for root in roots):
        raise ValsError(
            f"{ref}: files are read only under the server's `vals_files` directories"
            + (f" ({', '.join(map(str, roots))})" if roots else " (none are configured)")
        )
    try:
        with open(target, encoding="utf-8") as file:
            text = file.read(MAX_FILE + 1)
    except OSError as exc:
        raise ValsError(f"{ref}: cannot read the file: {exc.strerror or exc}") from None
    if len(text) > MAX_FILE:
        raise ValsError(f"{ref}: the file is larger than {MAX_FILE} bytes")
    return text.rstrip("\n")


def _run(tool: str, args: list[str], what: str) -> str:
    import os  # here: templates (and the engine) load this module, and run no process unless a reference asks
    import shutil
    import subprocess

    program = shutil.which(tool)
    if program is None:
        raise ValsError(f"{what} needs the `{tool}` command on the server, and it is not installed")
    try:
        done = subprocess.run(
            [program, *args], capture_output=True, text=True, timeout=CLI_SECONDS, env=dict(os.environ), check=False
        )
    except subprocess.TimeoutExpired:
        raise ValsError(f"{what}: `{tool}` did not answer within {CLI_SECONDS}s") from None
    if done.returncode != 0:
        raise ValsError(f"{what}: `{tool}` failed: {(done.stderr or done.stdout).strip()[-300:]}")
    return done.stdout


def _cli(ref: str) -> str:
    return _run("vals", ["get", ref], ref).rstrip("\n")


def decrypt_sops(path: Path) -> str:
    """The decrypted text of a SOPS-encrypted file (`*.sops.yaml`, `*.sops.json`)."""
    return _run("sops", ["--decrypt", str(path)], f"the SOPS file {path}")
