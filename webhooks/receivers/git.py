"""`/git/<workspace>.git`: clone from and push to hosted workspaces with the stock git client.

Smart HTTP is served by `git http-backend` (protocol v0 and v2; gzip and chunked request bodies are
streamed through). API tokens authenticate over basic auth: the password is the token (the user
name is ignored); pushing needs the `run` permission, cloning `read`. After a push, the refs the
post-receive hook recorded become push / tag / delete events, stored before the client is answered.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from flask import Blueprint, Response, current_app, request

from runner.forges.event import EventKind, EventSource, RepoEvent
from runner.git.hookserver import HookServer
from runner.git.mirrors import ZERO_SHA
from runner.gitops.polling import PushInFlight
from runner.spec.globs import included
from runner.store import keys

from ..access.tokens import PERMISSIONS, identify
from ..context import current_service
from ..errors import ApiError
from .spawned import Spawned

if TYPE_CHECKING:
    from runner.runs.service import Service
    from runner.workspace_config import WorkspaceConfig

__all__ = ["bp"]

bp = Blueprint("git", __name__)
log = logging.getLogger("strom.git")

SERVICES = {"git-upload-pack": "read", "git-receive-pack": "run"}
CHUNK = 64 * 1024
SKIP_OPTIONS = ("strom.skip", "ci.skip")


def _unauthorized(message: str) -> Response:
    return Response(
        f"{message}\n", 401, {"WWW-Authenticate": 'Basic realm="Strom", charset="UTF-8"', "Content-Type": "text/plain"}
    )


def _wanted_permission(rest: str) -> str | None:
    service = request.args.get("service") if rest == "info/refs" else rest
    return SERVICES.get(service) if service is not None else None


@bp.route("/git/<workspace>.git/<path:rest>", methods=["GET", "POST"])
def smart_http(workspace: str, rest: str):
    service = current_service()
    token = identify()  # first: who is not signed in learns nothing, not even which workspaces exist
    if token is None:
        return _unauthorized(
            "Strom needs an API token: use it as the password "
            f"(git remote add strom http://strom:<token>@{request.host}/git/{workspace}.git)"
        )
    ws = service.config.workspaces.get(workspace)
    if ws is None or ws.kind != "hosted":
        raise ApiError(
            404,
            "not_found",
            f"no hosted workspace {workspace!r}; hosted workspaces have `hosted: true` in the server configuration",
        )
    permission = _wanted_permission(rest)
    if permission is None:
        raise ApiError(404, "not_found", "only smart HTTP (git-upload-pack, git-receive-pack) is served")
    if permission not in PERMISSIONS[token.role]:
        return Response(
            f"token {token.name!r} (role {token.role}) may not {permission} here\n", 403, {"Content-Type": "text/plain"}
        )
    git_dir = service.repos.hosted.ensure(workspace, ws.default_branch)
    if rest != "git-receive-pack":
        return _backend(git_dir, rest, token.name, None, ws)
    fd, record = tempfile.mkstemp(prefix="push-", suffix=".txt", dir=service.repos.root)
    os.close(fd)
    in_flight = None
    try:
        in_flight = PushInFlight(service.redis, ws.name, record)  # Redis away: refused before git moves a ref
        return _backend(git_dir, rest, token.name, record, ws, in_flight)
    except BaseException:  # git never ran, or no answer will carry its record
        if in_flight is not None:
            in_flight.finish()
        Path(record).unlink(missing_ok=True)
        raise


def _cgi_env(repo_root: Path, path_info: str, user: str, record: str | None, hook: HookServer | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STROM_SECRET_", "GIT_"))}
    env.update(
        GIT_PROJECT_ROOT=str(repo_root),
        GIT_HTTP_EXPORT_ALL="1",
        PATH_INFO=path_info,
        REQUEST_METHOD=request.method,
        QUERY_STRING=request.query_string.decode("latin-1"),
        CONTENT_TYPE=request.headers.get("Content-Type", ""),
        REMOTE_USER=user,
        REMOTE_ADDR=request.remote_addr or "",
        GIT_HTTP_MAX_REQUEST_BUFFER="100M",
    )
    if request.content_length is not None:
        env["CONTENT_LENGTH"] = str(request.content_length)
    if request.headers.get("Content-Encoding"):
        env["HTTP_CONTENT_ENCODING"] = request.headers["Content-Encoding"]
    if request.headers.get("Git-Protocol"):
        env["GIT_PROTOCOL"] = request.headers["Git-Protocol"]
    if record:
        env["STROM_PUSH_RECORD"] = record
        if hook is not None:
            env["STROM_HOOK_SOCKET"] = hook.path
        # git refuses a pack larger than the limit before any hook runs; its housekeeping after a push
        # waits for the scheduler's retention pass instead of the pusher
        settings = {"receive.maxInputSize": str(current_service().config.push_size), "receive.autogc": "false"}
        env["GIT_CONFIG_COUNT"] = str(len(settings))
        for i, (key, value) in enumerate(settings.items()):
            env.update({f"GIT_CONFIG_KEY_{i}": key, f"GIT_CONFIG_VALUE_{i}": value})
    return env


def _hook_server(git_dir: Path) -> HookServer:
    """The pre-receive hook's checker: definitions past the limits, or naming notification channels or model providers
    this server lacks, are refused."""
    service = current_service()
    config = service.config
    libraries = service.libraries.texts if config.libraries else None
    return HookServer(
        git_dir,
        config.spec_limits,
        config.notifications.channels,
        config.agent_providers,
        libraries,
        tuple(config.workspaces),
    )


def _backend(
    git_dir: Path,
    rest: str,
    user: str,
    record: str | None,
    ws: WorkspaceConfig,
    in_flight: PushInFlight | None = None,
) -> Response:
    """`git http-backend` serving `rest` (info/refs, git-upload-pack, git-receive-pack) of the repository `git_dir`."""
    hook = _hook_server(git_dir) if record else None
    try:
        env = _cgi_env(git_dir.parent, f"/{git_dir.name}/{rest}", user, record, hook)
        proc = Spawned(["git", "http-backend"], env)
    except BaseException:
        if hook is not None:
            hook.close()
        raise
    stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr
    request.max_content_length = None  # git itself refuses a pack past limits.push_size (receive.maxInputSize)
    stream = request.stream
    feeder = threading.Thread(target=_feed, args=(stream, stdin), daemon=True)
    feeder.start()
    errors: list[bytes] = []
    drain = threading.Thread(target=lambda: errors.append(stderr.read()), daemon=True)
    drain.start()
    status, headers = _read_cgi_headers(stdout)
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # flask types its LocalProxy as Flask
    read = getattr(stdout, "read1", stdout.read)  # read1: what has arrived, without waiting for a whole CHUNK

    def body() -> Iterator[bytes]:
        try:
            while True:
                chunk = read(CHUNK)
                if not chunk:
                    break
                yield chunk
        finally:
            stdout.close()
            proc.wait()
            if hook is not None:
                hook.close()
            feeder.join(5)
            drain.join(5)
            if errors and errors[0].strip():
                log.info("git http-backend: %s", errors[0].decode("utf-8", "replace").strip()[:2000])
            try:
                if record:
                    with app.app_context():
                        _store_push(current_service(app), ws, record, user)
            finally:
                if in_flight is not None:
                    in_flight.finish()  # before the client hears the end

    def closed() -> None:  # also when the client went away before the body started
        if hook is not None:
            hook.close()
        if in_flight is not None:
            in_flight.finish()

    response = Response(body(), status=status, headers=headers, direct_passthrough=True)
    response.call_on_close(closed)
    return response


def _feed(stream: IO[bytes], stdin: IO[bytes]) -> None:
    try:
        while True:
            chunk = stream.read(CHUNK)
            if not chunk:
                break
            stdin.write(chunk)
            stdin.flush()
    except (BrokenPipeError, OSError):
        pass
    finally:
        try:
            stdin.close()
        except OSError:
            pass


def _read_cgi_headers(stdout: IO[bytes]) -> tuple[int, list[tuple[str, str]]]:
    status = 200
    headers: list[tuple[str, str]] = []
    while True:
        line = stdout.readline()
        if not line or line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").rstrip("\r\n").partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers.append((name, value.strip()))
    return status, headers


def _store_push(service: Service, ws: WorkspaceConfig, record: str, user: str) -> list[str]:
    """One event per updated ref the post-receive hook recorded (none when the push was refused)."""
    try:
        text = Path(record).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    finally:
        Path(record).unlink(missing_ok=True)
    lines = text.split("\n")  # only newlines: an option may hold any other separator
    options = [line[7:].strip() for line in lines if line.startswith("option ")]
    skip = next((o for o in options if o in SKIP_OPTIONS), None)
    ids = []
    for line in lines:
        parts = line.split()
        if line.startswith("option ") or len(parts) != 3:
            continue
        old, new, ref = parts
        event = _push_event(ws, old, new, ref, user)
        if event is None:
            continue
        ignored = f"pushed with -o {skip}" if skip else None
        event_id, _ = service.repo_events.receive(
            ws.name, event.to_dict(), ignored=ignored, extra={"push_options": options}
        )
        # stored, so the poll has nothing to reconcile (nor to run, when the push said to skip)
        if event.deleted and event.branch:
            service.redis.hdel(keys.heads(ws.name), event.branch)
        elif event.branch and included(event.branch, ws.branches):
            service.redis.hset(keys.heads(ws.name), event.branch, new)
        ids.append(event_id)
    return ids


def _push_event(ws: WorkspaceConfig, old: str, new: str, ref: str, user: str) -> RepoEvent | None:
    deleted = new == ZERO_SHA
    if ref.startswith("refs/heads/"):
        branch, tag = ref[len("refs/heads/") :], None
    elif ref.startswith("refs/tags/"):
        branch, tag = None, ref[len("refs/tags/") :]
    else:
        return None
    kind = EventKind.DELETE if deleted else (EventKind.TAG if tag else EventKind.PUSH)
    return RepoEvent(
        source=EventSource.GIT,
        kind=kind,
        repo=ws.name,
        delivery=f"{ref}:{old}:{new}",
        forge_event="push",
        ref=ref,
        branch=branch,
        tag=tag,
        sha=None if deleted else new,
        before=old,
        actor=user,
        created=old == ZERO_SHA,
        deleted=deleted,
    )
