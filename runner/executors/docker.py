"""Run steps in Docker containers (Docker SDK): `type: docker` runs an image as it is; `type: script`
with `runner: docker` runs the script in the runner image with the run's commit read-only at
/workspace.

Containers hold no capabilities, may not gain privileges, run as an unprivileged user unless the
operator says otherwise (and always for untrusted pull requests), have pids, memory and /tmp limits,
and see nothing of Strom's own files that a folder workspace may hold.

Every container carries labels naming its run, step, attempt and worker; it is removed when the
step ends, however it ends. `reap` removes containers that workers which died left behind.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path, PurePosixPath

from ..container_config import NOBODY, DockerConfig, parse_memory
from ..durations import format_duration
from ..engine.status import StepStatus
from ..engine.work import StepWork
from ..errors import RunnerUnavailable, StepSetupError
from ..outputs import SUMMARY_ENV, SUMMARY_FILE, OutputCollector, compose_summary, read_summary_file
from ..spec.payloads import ContainerPayload, ScriptPayload
from .base import INSTALLATION_LABEL, MANAGED_LABEL, LogSink, StepResult, exited_cleanly, safe_cut_of
from .languages import container_script, is_file_inside
from .outfiles import OUT_DIRS, kept_files, prepare_out
from .process import LineSplitter
from .sandbox import hidden_inside

__all__ = ["WORKSPACE", "DockerExecutor", "container_labels", "container_name", "reap"]

WORKSPACE = "/workspace"
CODE = "/strom"
POLL = 0.5


def container_labels(work: StepWork, worker: str, installation: str = "") -> dict[str, str]:
    labels = {
        MANAGED_LABEL: "1",
        "strom.run": work.job_id,
        "strom.step": work.step,
        "strom.attempt": str(work.attempt),
        "strom.worker": worker,
    }
    if installation:
        labels[INSTALLATION_LABEL] = installation
    return labels


def container_name(work: StepWork, installation: str = "") -> str:
    """strom-[<installation>-]<run>-<step>-<attempt>: one name per attempt, so a half-made container can be
    found; the installation's id keeps another Strom's run of the same id (run ids follow commits) apart."""
    slug = re.sub(r"[^a-zA-Z0-9_.-]", "-", work.step)[:40].strip("-_.") or "step"
    owner = f"{installation}-" if installation else ""
    return f"strom-{owner}{work.job_id}-{slug}-{work.attempt}"


def _engine_problem(settings: DockerConfig, exc: Exception) -> str:
    where = settings.host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    reason = str(exc).split("(Caused by", 1)[0].strip()
    return f"cannot reach the Docker engine at {where}: {reason}"


class DockerExecutor:
    def __init__(
        self,
        settings: DockerConfig | None = None,
        worker: str = "",
        client=None,
        hide: tuple[Path, ...] = (),
        installation: Callable[[], str] | None = None,
    ):
        """`installation()`: the id of the service this worker belongs to; `strom run` has none."""
        self.settings = settings or DockerConfig()
        self.worker = worker
        self.installation = installation or str
        self.hide = hide  # host paths steps must not see (Strom's data, its configuration and key files)
        self._client = client
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the engine
    @property
    def client(self):
        with self._lock:
            if self._client is None:
                import docker
                import requests

                try:
                    self._client = (
                        docker.DockerClient(base_url=self.settings.host) if self.settings.host else docker.from_env()
                    )
                except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
                    raise RunnerUnavailable(_engine_problem(self.settings, exc)) from exc
            return self._client

    def check(self) -> str:
        """The engine's version; raises RunnerUnavailable saying why it cannot be reached."""
        import docker
        import requests

        try:
            return self.client.version().get("Version", "?")
        except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
            raise RunnerUnavailable(_engine_problem(self.settings, exc)) from exc

    def _ensure_image(self, image: str, logs: LogSink) -> None:
        import docker

        policy = self.settings.pull
        try:
            if policy != "always":
                try:
                    self.client.images.get(image)
                    return
                except docker.errors.ImageNotFound:
                    if policy == "never":
                        raise StepSetupError(
                            f"image {image!r} is not on the Docker engine and the pull policy is "
                            "never: load it there (docker pull / docker load) or set docker.pull "
                            "to if-missing"
                        ) from None
            logs.line("strom", f"pulling {image}")
            self.client.images.pull(image)
        except docker.errors.APIError as exc:
            raise StepSetupError(f"cannot pull image {image!r}: {exc.explanation or exc}") from exc
        except (docker.errors.DockerException, OSError) as exc:
            raise RunnerUnavailable(_engine_problem(self.settings, exc)) from exc

    # ------------------------------------------------------------------ a step
    def run(self, work: StepWork, workspace: Path, logs: LogSink, cancel: threading.Event) -> StepResult:
        if cancel.is_set():
            return StepResult(StepStatus.CANCELLED, error="cancelled")
        scratch = Path(tempfile.mkdtemp(prefix="strom-docker-"))
        scratch.chmod(0o755)  # images that run as another user, and remapped engines, read the script too
        try:
            spec = self._spec(work, Path(workspace), scratch)
            self.check()
            self._ensure_image(spec["image"], logs)
            return self._run(work, spec, scratch, logs, cancel)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _spec(self, work: StepWork, workspace: Path, scratch: Path) -> dict:
        env = dict(work.env)
        volumes: dict = {}
        covers: list = []
        if isinstance(work.payload, ContainerPayload):
            run = work.payload
            image = run.image
            command = list(run.command) if run.command else shlex.split(run.cmd) if run.cmd else None
            entrypoint = list(run.entrypoint) if run.entrypoint else None
            workdir = work.workdir
        else:  # a script in the runner image, the commit at /workspace
            image = work.payload_as(ScriptPayload).image or self.settings.runner_image
            entrypoint, command = [], self._script_command(work, workspace, scratch)
            volumes[str(workspace)] = {"bind": WORKSPACE, "mode": "ro"}
            volumes[str(scratch)] = {"bind": CODE, "mode": "ro"}
            covers = [_cover(workspace / rel, f"{WORKSPACE}/{rel}") for rel in hidden_inside(workspace, self.hide)]
            workdir = str(PurePosixPath(WORKSPACE) / work.workdir) if work.workdir else WORKSPACE
            env["STROM_WORKSPACE"] = WORKSPACE
            env.setdefault("HOME", "/tmp")
            if work.event:
                (scratch / "event.json").write_text(json.dumps(work.event, default=str), encoding="utf-8")
                env["STROM_EVENT_PATH"] = f"{CODE}/event.json"
        if not image:
            raise StepSetupError("the step names no image")
        out = scratch / "out"  # the summary file: writable by whichever user the image runs as
        out.mkdir()
        out.chmod(0o1777)
        volumes[str(out)] = {"bind": f"{CODE}/out", "mode": "rw"}
        env[SUMMARY_ENV] = f"{CODE}/out/{SUMMARY_FILE}"
        prepare_out(out, work.state_archive, shared=True)
        env.update({name: f"{CODE}/out/{where}" for name, where in OUT_DIRS.items()})
        return {
            "image": image,
            "command": command,
            "entrypoint": entrypoint,
            "environment": env,
            "working_dir": workdir,
            "volumes": volumes,
            "mounts": covers,
        }

    def _script_command(self, work: StepWork, workspace: Path, scratch: Path) -> list[str]:
        step = work.payload_as(ScriptPayload)
        script = container_script(step, WORKSPACE, CODE)
        if script.name is not None and script.text is not None:  # an inline script has both
            (scratch / script.name).write_text(script.text, encoding="utf-8")
        elif script.source is None or not is_file_inside(workspace, script.source):
            raise StepSetupError(f"source file {step.source!r} does not exist in the workspace")
        return script.argv

    def _limits(self, work: StepWork) -> dict:
        try:
            return self._parse_limits(work)
        except ValueError as exc:
            raise StepSetupError(f"resources {dict(work.resources or {})} cannot be read: {exc}") from exc

    def _parse_limits(self, work: StepWork) -> dict:
        settings, resources = self.settings, dict(work.resources or {})
        limits: dict = {}
        cpus = settings.cpus
        if resources.get("cpu"):
            text = str(resources["cpu"])
            asked = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
            cpus = min(cpus, asked) if cpus else asked
        if cpus:
            limits["nano_cpus"] = int(cpus * 1e9)
        memory = settings.memory
        if resources.get("memory"):
            asked_memory = parse_memory(str(resources["memory"]).lower().replace("i", ""))
            memory = min(memory, asked_memory) if memory and asked_memory else (asked_memory or memory)
        if memory:
            limits["mem_limit"] = memory
        if settings.pids:
            limits["pids_limit"] = settings.pids
        return limits

    def _user(self, work: StepWork) -> dict:
        user = self.settings.user
        if user == "image":
            return {"user": NOBODY} if work.untrusted else {}
        if work.untrusted and user.split(":")[0] in ("0", "root"):
            return {"user": NOBODY}
        return {"user": user}

    def _create(self, work: StepWork, spec: dict, name: str):
        import docker

        network = self.settings.network if work.network else "none"  # untrusted code: no network
        kwargs = dict(
            command=spec["command"],
            entrypoint=spec["entrypoint"],
            environment=spec["environment"],
            working_dir=spec["working_dir"],
            volumes=spec["volumes"],
            mounts=spec["mounts"],
            name=name,
            labels=container_labels(work, self.worker, self.installation()),
            network_mode=network,
            security_opt=["no-new-privileges"],
            cap_drop=["ALL"],
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={self.settings.tmp},mode=1777"},
            detach=True,
            **self._user(work),
            **self._limits(work),
        )
        try:
            return self.client.containers.create(spec["image"], **kwargs)
        except docker.errors.ImageNotFound as exc:
            raise StepSetupError(f"image {spec['image']!r} is not on the Docker engine: {exc.explanation}") from exc
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: this attempt's container from before (a retried step)
                raise StepSetupError(f"Docker refused to create the container: {exc.explanation or exc}") from exc
        except Exception:  # a timeout may leave a container the engine did create
            self._remove(name)
            raise
        self._remove(name)
        return self.client.containers.create(spec["image"], **kwargs)

    def _remove(self, name_or_container) -> None:
        import docker

        try:
            container = (
                self.client.containers.get(name_or_container)
                if isinstance(name_or_container, str)
                else name_or_container
            )
            container.remove(force=True)
        except docker.errors.NotFound:
            pass

    def _run(self, work: StepWork, spec: dict, scratch: Path, logs: LogSink, cancel: threading.Event) -> StepResult:
        import docker

        container = self._create(work, spec, container_name(work, self.installation()))
        collector = OutputCollector()
        try:  # attached before the start, like `docker run`, so no line is missed
            chunks = container.attach(stdout=True, stderr=True, stream=True, logs=True, demux=True)
            reader = threading.Thread(
                target=self._stream, args=(chunks, logs, collector), daemon=True, name=f"strom-docker-logs-{work.step}"
            )
            reader.start()
            try:
                container.start()
            except docker.errors.APIError as exc:  # e.g. the command is not in the image
                raise StepSetupError(f"Docker could not start the container: {exc.explanation or exc}") from exc
            status, exit_code = self._wait(container, work, cancel)
            reader.join(timeout=10)
        finally:
            try:
                self._remove(container)
            except docker.errors.APIError as exc:  # the reaper will get it
                logs.line("strom", f"could not remove container {container.short_id}: {exc.explanation or exc}")
        summary = compose_summary(read_summary_file(scratch / "out" / SUMMARY_FILE), collector.summary_lines)
        judged = replace(self._judge(work, status, exit_code, collector), summary=summary)
        return kept_files(judged, scratch / "out", logs, work.untrusted)

    @staticmethod
    def _judge(work: StepWork, status: StepStatus, exit_code: int | None, collector: OutputCollector) -> StepResult:
        if status is StepStatus.CANCELLED:
            return StepResult(status, error="cancelled", exit_code=exit_code)
        if status is StepStatus.TIMED_OUT:
            return StepResult(status, error=f"timed out after {format_duration(work.timeout)}", exit_code=exit_code)
        if exit_code != 0:
            return StepResult(StepStatus.FAILED, error=f"exit code {exit_code}", exit_code=exit_code)
        return exited_cleanly(collector)

    @staticmethod
    def _stream(chunks, logs: LogSink, collector: OutputCollector) -> None:
        def emit(stream: str, line: str) -> None:
            if stream == "stdout":
                collector.feed(line)
            logs.line(stream, line)

        out, err = LineSplitter("stdout", emit, safe_cut_of(logs)), LineSplitter("stderr", emit, safe_cut_of(logs))
        try:
            for stdout, stderr in chunks:
                if stdout:
                    out.feed(stdout)
                if stderr:
                    err.feed(stderr)
        except Exception as exc:  # noqa: BLE001 - the container went away: what was read is kept
            logs.line("strom", f"log stream ended: {exc}")
        out.close()
        err.close()

    def _wait(self, container, work: StepWork, cancel: threading.Event) -> tuple[StepStatus, int | None]:
        import docker
        import requests

        deadline = time.monotonic() + work.timeout if work.timeout else None
        while True:
            try:
                result = container.wait(timeout=POLL)
                return StepStatus.SUCCEEDED, int(result.get("StatusCode", -1))
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                pass
            except docker.errors.NotFound as exc:  # removed behind Strom's back
                raise StepSetupError(f"the step's container disappeared: {exc.explanation or exc}") from exc
            stop = (
                StepStatus.CANCELLED
                if cancel.is_set()
                else StepStatus.TIMED_OUT
                if deadline is not None and time.monotonic() >= deadline
                else None
            )
            if stop is not None:
                try:
                    container.stop(timeout=2)
                    code = int(container.wait(timeout=10).get("StatusCode", -1))
                except Exception:  # noqa: BLE001 - it is removed right after anyway
                    code = None
                return stop, code


def _cover(host: Path, inside: str):
    """A mount that puts something empty over `inside`: a tmpfs on a directory, /dev/null on a file."""
    from docker.types import Mount

    if host.is_dir():
        return Mount(inside, None, type="tmpfs", tmpfs_size=4096)
    return Mount(inside, "/dev/null", type="bind", read_only=True)


def reap(client, alive: Callable[[str], bool], also: tuple[str, ...] = (), installation: str = "") -> list[str]:
    """Remove the containers of `installation` whose worker is not alive (or is named in `also`); their names.
    Containers of `strom run` (no worker) are its own to remove, and another installation's are its own."""
    removed = []
    for container in client.containers.list(all=True, filters={"label": f"{MANAGED_LABEL}=1"}, ignore_removed=True):
        worker = container.labels.get("strom.worker", "")
        if container.labels.get(INSTALLATION_LABEL, installation) != installation:
            continue
        if worker and (worker in also or not alive(worker)):
            try:
                container.remove(force=True)
                removed.append(container.name)
            except Exception:  # noqa: BLE001 - gone already, or the engine is busy: the next pass tries again
                continue
    return removed
