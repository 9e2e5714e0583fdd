"""Run steps as Kubernetes pods (the official client): `type: pod` runs an image; `type: script` with
`runner: pod` runs the script in the runner image, with the run's commit downloaded by an init
container (a short-lived token for that one commit) into a read-only /workspace.

Task state and artifacts (`kubernetes.files`, on by default): the init container also fills $STATE_DIR, and a
native sidecar sends $STATE_OUT_DIR and $ARTIFACTS_DIR to the web process when the step's container has ended
(each with an object token for one object); the worker then reads them as if the step had run here.

The action's `manifest` is merged into the generated pod, which is refused if it would reach the
node (host namespaces, hostPath, privileged). A pod Pending too long fails with the pod's own
reason; timeout and cancel delete the pod; the pod is deleted when the step ends.
"""

from __future__ import annotations

import copy
import shlex
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from ..container_config import KubernetesConfig
from ..durations import format_duration
from ..engine.status import StepStatus
from ..engine.work import StepWork
from ..errors import RunnerUnavailable, StepSetupError, StromError
from ..outputs import OutputCollector, compose_summary
from ..spec.payloads import ContainerPayload, ScriptPayload
from .base import INSTALLATION_LABEL, MANAGED_LABEL, LogSink, StepResult, exited_cleanly, safe_cut_of
from .languages import container_script
from .outfiles import TooMuch, kept_files, unpack_out
from .pods import (
    CONTAINER_CONTEXT,
    STEP_CONTAINER,
    UPLOAD_GRACE,
    PodFiles,
    deep_merge,
    forbid_escalation,
    label_value,
    pod_name,
    step_pod,
    unsafe_parts,
    with_files,
)
from .process import LineSplitter

__all__ = ["INIT_SCRIPT", "PULL_PROBLEMS", "PodExecutor", "PodFileStore"]

INIT_SCRIPT = (
    'set -e; wget -q -O /tmp/snapshot.tar.gz --header "Authorization: Bearer $STROM_SNAPSHOT_TOKEN" '
    '"$STROM_SNAPSHOT_URL"; tar -xzf /tmp/snapshot.tar.gz -C /workspace; '
    'printf "%s" "$STROM_SCRIPT" > "/strom/$STROM_SCRIPT_NAME"'
)
PULL_PROBLEMS = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull")
READ_ATTEMPTS = 5  # consecutive failed reads of a pod before the step is given up
UPLOAD_WAIT = UPLOAD_GRACE + 30.0  # seconds a succeeded step's files may take to arrive


class PodFileStore(Protocol):
    """The worker's side of pods' files (runner/service/pod_files.py)."""

    budget: int  # bytes of files one step may leave (state and artifacts)

    def access(self, work: StepWork) -> PodFiles | str:
        """The step's PodFiles, or why its files cannot be collected."""

    def fetch(self, key: str, scratch: Path) -> Path:
        """The object on this machine; ObjectError when it is not there (yet)."""

    def forget(self, key: str) -> None: ...


class PodExecutor:
    def __init__(
        self,
        settings: KubernetesConfig | None = None,
        worker: str = "",
        snapshot_access: Callable[[StepWork], tuple[str, str]] | None = None,
        api=None,
        poll: float = 1.0,
        files: PodFileStore | None = None,
        installation: Callable[[], str] | None = None,
    ):
        """`snapshot_access(work)` gives (url, token) to download the step's commit; `files` gives steps their
        task state and artifacts; `installation()` the id of the service this worker belongs to."""
        self.settings = settings or KubernetesConfig()
        self.worker = worker
        self.installation = installation or str
        self.snapshot_access = snapshot_access
        self.files = files if self.settings.files else None
        self._api = api
        self.poll = poll
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the cluster
    @property
    def api(self):
        with self._lock:
            if self._api is None:
                from kubernetes import client, config

                try:
                    if self.settings.kubeconfig is not None:
                        api_client = config.new_client_from_config(
                            str(self.settings.kubeconfig), context=self.settings.context
                        )
                    else:
                        try:
                            config.load_incluster_config()
                        except config.ConfigException:
                            config.load_kube_config(context=self.settings.context)
                        api_client = client.ApiClient()
                except (config.ConfigException, OSError, TypeError) as exc:
                    raise RunnerUnavailable(f"no Kubernetes configuration: {exc}") from exc
                self._api = client.CoreV1Api(api_client)
            return self._api

    def check(self) -> str:
        """The API server the worker talks to; raises RunnerUnavailable saying why it cannot."""
        from kubernetes.client.rest import ApiException

        host = self.api.api_client.configuration.host
        try:
            self.api.list_namespaced_pod(self.settings.namespace, limit=1)
        except ApiException as exc:
            raise RunnerUnavailable(
                f"the Kubernetes API at {host} refused to list pods in namespace "
                f"{self.settings.namespace!r}: {exc.status} {exc.reason}"
            ) from exc
        except Exception as exc:
            raise RunnerUnavailable(f"cannot reach the Kubernetes API at {host}: {_short(exc)}") from exc
        return host

    # ------------------------------------------------------------------ the pod
    def manifest(self, work: StepWork, files: PodFiles | None = None) -> dict:
        labels = {
            MANAGED_LABEL: "1",
            "strom.run": label_value(work.job_id),
            "strom.step": label_value(work.step),
            "strom.attempt": str(work.attempt),
            "strom.worker": label_value(self.worker or "none"),
        }
        installation = self.installation()
        if installation:
            labels[INSTALLATION_LABEL] = installation
        name = pod_name(work.job_id, work.step, work.attempt, installation)
        env = dict(work.env)
        init = None
        if not work.network:
            raise StepSetupError(
                "steps of untrusted pull requests cannot run as pods without network (Strom "
                "cannot cut a pod off the network); use runner: docker or allow "
                "pull_requests.network"
            )
        manifest = _manifest(work)
        if work.untrusted and manifest:
            raise StepSetupError("steps of untrusted pull requests cannot change the pod manifest")
        if isinstance(work.payload, ContainerPayload):
            run = work.payload
            image = run.image
            command = list(run.entrypoint) if run.entrypoint else None
            args = list(run.command) if run.command else shlex.split(run.cmd) if run.cmd else None
            workdir = work.workdir
        else:
            image = work.payload_as(ScriptPayload).image or self.settings.runner_image
            command, script_name, script = self._script(work)
            args = None
            workdir = str(PurePosixPath("/workspace") / work.workdir) if work.workdir else "/workspace"
            env["STROM_WORKSPACE"] = "/workspace"
            init = self._init_container(work, script_name, script)
        if not image:
            raise StepSetupError("the step names no image")
        pod = step_pod(
            name=name,
            namespace=self.settings.namespace,
            labels=labels,
            image=image,
            command=command,
            args=args,
            env=env,
            workdir=workdir,
            workspace_init=init,
            resources=work.resources,
            service_account=self.settings.service_account,
        )
        if work.timeout:  # the cluster stops the pod even if this worker dies
            pod["spec"]["activeDeadlineSeconds"] = int(work.timeout + self.settings.pending_timeout) + 60
        if files is not None:
            pod = with_files(pod, files, self.settings.init_image)
        if manifest:
            pod = deep_merge(pod, dict(manifest))
        unsafe = unsafe_parts(pod)
        if unsafe:
            raise StepSetupError("the pod manifest asks for more than a step may have: " + "; ".join(unsafe))
        return forbid_escalation(pod)

    @staticmethod
    def _script(work: StepWork) -> tuple[list[str], str, str]:
        step = work.payload_as(ScriptPayload)
        script = container_script(step)
        return script.argv, script.name or "unused", step.script if step.script is not None else ""

    def _init_container(self, work: StepWork, script_name: str, script: str) -> dict:
        if self.snapshot_access is None or not work.commit:
            raise StepSetupError(
                "runner: pod needs the run's commit from a git workspace, and workers.token to let the pod download it"
            )
        url, token = self.snapshot_access(work)
        return {
            "name": "workspace",
            "image": self.settings.init_image,
            "command": ["sh", "-c", INIT_SCRIPT],
            "env": [
                {"name": "STROM_SNAPSHOT_URL", "value": url},
                {"name": "STROM_SNAPSHOT_TOKEN", "value": token},
                {"name": "STROM_SCRIPT", "value": script},
                {"name": "STROM_SCRIPT_NAME", "value": script_name},
            ],
            "volumeMounts": [{"name": "workspace", "mountPath": "/workspace"}, {"name": "code", "mountPath": "/strom"}],
            "securityContext": copy.deepcopy(CONTAINER_CONTEXT),
        }

    # ------------------------------------------------------------------ a step
    def run(self, work: StepWork, workspace, logs: LogSink, cancel: threading.Event) -> StepResult:
        from kubernetes.client.rest import ApiException

        if cancel.is_set():
            return StepResult(StepStatus.CANCELLED, error="cancelled")
        files = self._files(work, logs)
        pod = self.manifest(work, files)
        name, namespace = pod["metadata"]["name"], self.settings.namespace
        try:
            self.api.create_namespaced_pod(namespace, pod)
        except ApiException as exc:
            if exc.status == 409:  # a retry of this very attempt: the old pod goes first
                self._delete(name)
                self.api.create_namespaced_pod(namespace, pod)
            else:
                raise StepSetupError(f"Kubernetes refused pod {name}: {exc.status} {_api_message(exc)}") from exc
        except RunnerUnavailable:
            raise
        except Exception as exc:
            raise RunnerUnavailable(f"cannot reach the Kubernetes API: {_short(exc)}") from exc
        logs.line("strom", f"pod {namespace}/{name}")
        try:
            result = self._follow(work, name, logs, cancel)
            if files is not None and result.status is StepStatus.SUCCEEDED:
                result = self._collect(work, name, files, result, logs, cancel)
            return result
        finally:
            if files is not None:
                self._forget(files.key)
            try:
                self._delete(name)
            except Exception as exc:  # noqa: BLE001 - the step's own result matters more; the pod's deadline ends it
                logs.line("strom", f"could not delete pod {name}: {_short(exc)}")

    # ------------------------------------------------------------------ task state and artifacts
    def _files(self, work: StepWork, logs: LogSink) -> PodFiles | None:
        if self.files is None:
            return None
        access = self.files.access(work)
        if isinstance(access, str):
            logs.line("strom", f"$STATE_OUT_DIR and $ARTIFACTS_DIR are not collected from this pod: {access}")
            return None
        self._forget(access.key)  # what an earlier pod of this very attempt sent
        return access

    def _forget(self, key: str) -> None:
        try:
            self.files.forget(key)  # type: ignore[union-attr]
        except StromError:  # gone, or storage unreachable: the object is orphaned, never read
            pass

    def _collect(
        self, work: StepWork, name: str, files: PodFiles, result: StepResult, logs: LogSink, cancel: threading.Event
    ) -> StepResult:
        """`result` with what the succeeded step left, once the pod's files container has sent it: deleting the
        pod stops that container (if the cluster has not already), which sends the files."""
        assert self.files is not None
        try:
            self._delete(name, grace=UPLOAD_GRACE)
        except Exception as exc:  # noqa: BLE001 - the files may be on their way all the same
            logs.line("strom", f"could not stop pod {name}: {_short(exc)}")
        scratch = Path(tempfile.mkdtemp(prefix="strom-pod-files-"))
        try:
            deadline = time.monotonic() + UPLOAD_WAIT
            while True:
                try:
                    archive = self.files.fetch(files.key, scratch)
                    break
                except StromError as exc:
                    if cancel.is_set():
                        return StepResult(StepStatus.CANCELLED, error="cancelled")
                    if time.monotonic() >= deadline:
                        return replace(
                            result,
                            status=StepStatus.FAILED,
                            error=f"the files the step left did not reach Strom within {format_duration(UPLOAD_WAIT)}"
                            f" ({exc}): the pod's strom-files container sends them to the public_url, can the "
                            "cluster reach it?",
                        )
                    cancel.wait(self.poll)
            out, skipped = scratch / "out", list[str]()
            out.mkdir()
            try:
                unpack_out(archive, out, self.files.budget, skipped)
            except (TooMuch, ValueError) as exc:
                return replace(result, status=StepStatus.FAILED, error=f"the files the step left are not kept: {exc}")
            for line in skipped:
                logs.line("strom", f"not kept: {line}")
            return kept_files(result, out, logs, work.untrusted)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _delete(self, name: str, grace: int = 0) -> None:
        from kubernetes.client.rest import ApiException

        try:
            self.api.delete_namespaced_pod(name, self.settings.namespace, grace_period_seconds=grace)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _read(self, name: str, errors: list):
        """The pod, riding out a few transient API errors in a row."""
        try:
            pod = self.api.read_namespaced_pod(name, self.settings.namespace)
        except Exception as exc:
            errors.append(exc)
            if len(errors) >= READ_ATTEMPTS:
                raise RunnerUnavailable(f"lost the Kubernetes API while following pod {name}: {_short(exc)}") from exc
            return None
        errors.clear()
        return pod

    def _follow(self, work: StepWork, name: str, logs: LogSink, cancel: threading.Event) -> StepResult:
        started = time.monotonic()
        deadline = started + work.timeout if work.timeout else None
        collector = OutputCollector()
        reader: threading.Thread | None = None
        pulling_since: float | None = None
        errors: list = []
        while True:
            pod = self._read(name, errors)
            if pod is not None:
                phase = (pod.status.phase if pod.status else None) or "Pending"
                state = _step_state(pod)
                if (phase == "Pending" and state is None) or (state is not None and state.waiting):
                    waiting = _waiting(pod)
                    if waiting and waiting[0] in PULL_PROBLEMS:
                        pulling_since = pulling_since or time.monotonic()
                        if time.monotonic() - pulling_since >= self.settings.pull_backoff_timeout:
                            return self._failed_pending(name, waiting, self.settings.pull_backoff_timeout)
                    elif time.monotonic() - started >= self.settings.pending_timeout:
                        return self._failed_pending(name, waiting or _unscheduled(pod), self.settings.pending_timeout)
                elif reader is None and state is not None and (state.running or state.terminated):
                    reader = threading.Thread(
                        target=self._stream,
                        args=(name, logs, collector),
                        daemon=True,
                        name=f"strom-pod-logs-{work.step}",
                    )
                    reader.start()
                if (state is not None and state.terminated) or phase in ("Succeeded", "Failed"):
                    if reader is not None:
                        reader.join(timeout=10)
                    summary = compose_summary("", collector.summary_lines)
                    return replace(self._result(pod, phase, collector), summary=summary)
            if cancel.is_set():
                return StepResult(StepStatus.CANCELLED, error="cancelled")
            if deadline is not None and time.monotonic() >= deadline:
                return StepResult(StepStatus.TIMED_OUT, error=f"timed out after {format_duration(work.timeout)}")
            cancel.wait(self.poll)

    def _failed_pending(self, name: str, why: tuple[str, str] | None, limit: float) -> StepResult:
        reason = f": {why[0]}" + (f" ({why[1]})" if why[1] else "") if why else ""
        return StepResult(
            StepStatus.FAILED, error=f"pod {name} was still Pending after {format_duration(limit)}{reason}"
        )

    def _stream(self, name: str, logs: LogSink, collector: OutputCollector) -> None:
        def emit(stream: str, line: str) -> None:
            collector.feed(line)
            logs.line(stream, line)

        lines = LineSplitter("stdout", emit, safe_cut_of(logs))  # the pod log API merges stdout and stderr
        try:
            response = self.api.read_namespaced_pod_log(
                name, self.settings.namespace, container=STEP_CONTAINER, follow=True, _preload_content=False
            )
            for chunk in response.stream(4096):
                lines.feed(chunk)
        except Exception as exc:  # noqa: BLE001 - the pod went away: what was read is kept
            logs.line("strom", f"log stream ended: {_short(exc)}")
        lines.close()

    @staticmethod
    def _result(pod, phase: str, collector: OutputCollector) -> StepResult:
        state = _step_state(pod)
        terminated = state.terminated if state else None
        if terminated is None:
            init = _failed_init(pod)
            if init:
                return StepResult(StepStatus.FAILED, error=init)
        code = terminated.exit_code if terminated else (0 if phase == "Succeeded" else None)
        if code != 0:
            detail = f" ({terminated.reason})" if terminated and terminated.reason not in (None, "Error") else ""
            reason = (pod.status.reason or pod.status.message or "") if pod.status else ""
            what = (
                f"exit code {code}" if code is not None else f"pod {phase.lower()}" + (f": {reason}" if reason else "")
            )
            return StepResult(StepStatus.FAILED, error=f"{what}{detail}", exit_code=code)
        return exited_cleanly(collector)


def _step_state(pod):
    status = pod.status
    return (
        next((s.state for s in (status.container_statuses or []) if s.name == STEP_CONTAINER), None) if status else None
    )


_INIT_JOBS = {"workspace": "the commit (or the task state's files)", "files": "the task state's files"}


def _failed_init(pod) -> str | None:
    for container in (pod.status.init_container_statuses or []) if pod.status else []:
        terminated = container.state.terminated if container.state else None
        if terminated and terminated.exit_code:
            return (
                f"init container {container.name!r} failed with exit code {terminated.exit_code}"
                + (f" ({terminated.reason})" if terminated.reason not in (None, "Error") else "")
                + (
                    f": {_INIT_JOBS[container.name]} could not be downloaded (can the cluster reach public_url?)"
                    if container.name in _INIT_JOBS
                    else ""
                )
            )
    return None


def _waiting(pod) -> tuple[str, str] | None:
    """The first waiting container's (reason, message), init containers first."""
    status = pod.status
    for container in [*(status.init_container_statuses or []), *(status.container_statuses or [])] if status else []:
        waiting = container.state.waiting if container.state else None
        if waiting and waiting.reason and waiting.reason not in ("PodInitializing", "ContainerCreating"):
            return waiting.reason, waiting.message or ""
    return None


def _unscheduled(pod) -> tuple[str, str] | None:
    for condition in (pod.status.conditions or []) if pod.status else []:
        if condition.type == "PodScheduled" and condition.status == "False":
            return condition.reason or "Unschedulable", condition.message or ""
    return None


def _api_message(exc) -> str:
    import json

    try:
        return json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError, AttributeError):
        return exc.reason or ""


def _short(exc: Exception) -> str:
    text = str(exc)
    return text.split("(Caused by", 1)[-1].strip(" ()") if "Caused by" in text else text[:300]


def _manifest(work: StepWork) -> Mapping[str, Any] | None:
    """The pod manifest the step merges into its pod (a pod action's, or a script's with runner: pod)."""
    return work.payload.manifest if isinstance(work.payload, (ContainerPayload, ScriptPayload)) else None
