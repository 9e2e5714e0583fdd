"""Task state and artifacts of pods: the init container fills $STATE_DIR with an object token for the state's files,
a native sidecar sends $STATE_OUT_DIR and $ARTIFACTS_DIR to the web process with an upload token when the step
has ended, and the worker keeps them as it does a local step's. Through the official client against the
recording fake API server, the real web process and worker, and the containers' own scripts run with busybox."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import tarfile
import threading
import uuid
from pathlib import Path

import kubernetes_validate
import pytest
import requests
from fake_kube import RUNNING, FakeKube, succeeded
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_env import make_config, serving, stack, wait_for
from test_kubernetes import Lines, executor, work

from runner import runs
from runner.engine import RunStatus
from runner.engine.status import StepStatus
from runner.errors import StromError
from runner.executors import kubernetes as kube_module
from runner.executors.kubernetes import INIT_SCRIPT
from runner.executors.outfiles import TooMuch, unpack_out
from runner.executors.pods import PREPARE_FILES, UPLOAD_FILES, PodFiles
from runner.store import object_tokens
from runner.store.objects import ObjectMissing, pod_files_object, state_object

SECRET = "worker-secret-0123456789"
KEY = pod_files_object("ab12cd34ef56", "build", 1)


class Store:
    """A PodFileStore on a directory: what tests put there is what 'arrived'."""

    budget = 1 << 20

    def __init__(self, root: Path, state: str = ""):
        self.root, self.state, self.forgotten = root, state, []

    def access(self, work):
        return PodFiles(KEY, f"https://strom.example.com/api/objects/{KEY}", "up-token", self.state, "get-token")

    def fetch(self, key, scratch):
        path = self.root / key
        if not path.is_file():
            raise ObjectMissing(f"object {key} is not there")
        return path

    def forget(self, key):
        self.forgotten.append(key)


@pytest.fixture
def kube():
    with FakeKube() as fake:
        yield fake


def test_a_pod_gets_its_state_and_sends_what_it_left_through_two_helper_containers(kube, tmp_path):
    store = Store(tmp_path, state=f"https://strom.example.com/api/objects/{state_object('a' * 32)}")
    pods = executor(kube, tmp_path, files=store)
    image_pod = pods.manifest(work(env={}), store.access(None))
    spec = image_pod["spec"]
    prepare, sidecar = spec["initContainers"]
    assert (prepare["name"], prepare["command"]) == ("files", ["sh", "-c", f"set -e; {PREPARE_FILES}"])
    assert {e["name"]: e["value"] for e in prepare["env"]} == {
        "STROM_STATE_URL": store.state,
        "STROM_STATE_TOKEN": "get-token",
    }
    assert sidecar == {
        "name": "strom-files",
        "image": "busybox:1.36",
        "restartPolicy": "Always",
        "command": ["sh", "-c", UPLOAD_FILES],
        "env": [
            {"name": "STROM_UPLOAD_URL", "value": f"https://strom.example.com/api/objects/{KEY}"},
            {"name": "STROM_UPLOAD_TOKEN", "value": "up-token"},
        ],
        "volumeMounts": [{"name": "strom-out", "mountPath": "/strom-out", "readOnly": True}],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    [step] = spec["containers"]
    assert step["volumeMounts"] == [
        {"name": "strom-state", "mountPath": "/strom-state", "readOnly": True},
        {"name": "strom-out", "mountPath": "/strom-out"},
    ]
    assert {e["name"]: e["value"] for e in step["env"]} == {
        "STATE_DIR": "/strom-state",
        "STATE_OUT_DIR": "/strom-out/state-out",
        "ARTIFACTS_DIR": "/strom-out/artifacts",
    }
    assert spec["terminationGracePeriodSeconds"] == 120
    kubernetes_validate.validate(image_pod, "1.30", strict=True)

    script_pod = pods.manifest(work(env={}, kind="script", runner="pod", image=None, script="true"), store.access(None))
    [workspace, sidecar] = script_pod["spec"]["initContainers"]
    assert workspace["command"] == ["sh", "-c", f"{INIT_SCRIPT}; {PREPARE_FILES}"], "one init container does both"
    assert [m["name"] for m in workspace["volumeMounts"]] == ["workspace", "code", "strom-state", "strom-out"]
    assert sidecar["name"] == "strom-files"
    kubernetes_validate.validate(script_pod, "1.30", strict=True)


def test_what_a_succeeded_pod_left_is_kept_and_a_missing_upload_fails_the_step(kube, tmp_path, monkeypatch):
    store = Store(tmp_path)
    (tmp_path / "pods").mkdir()
    with tarfile.open(tmp_path / KEY, "w:gz") as tar:
        for name, data in {"state-out/cursor": b"41", "artifacts/report.txt": b"ok", "elsewhere": b"x"}.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
    kube.script("ok:1", [RUNNING, succeeded(0)], log='STATE: {"page": 2}\n')
    logs = Lines()
    result = executor(kube, tmp_path, files=store).run(work(env={}), None, logs, threading.Event())
    assert result.status is StepStatus.SUCCEEDED and result.state == {"page": 2}
    with tarfile.open(result.state_files) as tar:
        assert tar.extractfile("cursor").read() == b"41"
    assert (Path(result.artifacts_dir) / "files" / "report.txt").read_bytes() == b"ok"
    assert ("strom", "not kept: 'elsewhere': outside $STATE_OUT_DIR and $ARTIFACTS_DIR") in logs.lines
    [graceful, final] = [target for method, target in kube.requests if method == "DELETE"]
    assert "gracePeriodSeconds=120" in graceful and "gracePeriodSeconds=0" in final
    assert store.forgotten == [KEY, KEY], "an earlier upload of the attempt goes before, this one after"

    monkeypatch.setattr(kube_module, "UPLOAD_WAIT", 0.3)
    (tmp_path / KEY).unlink()
    result = executor(kube, tmp_path, files=store).run(work(env={}, step="other"), None, Lines(), threading.Event())
    assert result.status is StepStatus.FAILED
    assert result.error.startswith("the files the step left did not reach Strom within 300ms (object ")
    assert result.error.endswith(
        "the pod's strom-files container sends them to the public_url, can the cluster reach it?"
    )


WORKSPACE = {
    ".strom/ci.yaml": """
    tasks:
      report:
        flow:
          render: { type: pod, image: "reporter:3" }
    """
}


def test_state_and_artifacts_of_pods_go_through_the_web_process(tmp_path, redis_url, kube, service_workspace):
    kube.script(
        "reporter:3",
        [RUNNING, succeeded(0)],
        log='STATE: {"page": 2}\n',
        files={"state-out/cursor": b"41", "artifacts/report.txt": b"twelve pages\n"},
    )
    config = make_config(
        service_workspace(WORKSPACE),
        redis_url,
        STROM_WORKERS__TOKEN=SECRET,
        STROM_PUBLIC_URL="https://strom.example.com",
        STROM_KUBERNETES=json.dumps({"kubeconfig": str(kube.kubeconfig(tmp_path)), "namespace": "ci"}),
    )
    with stack(config, abilities=("kubernetes",)) as service, serving(config, service) as server:
        kube.upload_origin = server.url
        first = _finished(service, runs.execute(service, "local", "report", {}).id)
        assert first.status is RunStatus.SUCCEEDED, first.steps["render"].error
        assert kube.uploads == [201]
        [artifact] = first.steps["render"].artifacts
        assert (artifact["name"], artifact["size"]) == ("report.txt", 13)
        body, _ = service.objects.open(artifact["key"])
        assert body.read() == b"twelve pages\n"
        snapshot = service.task_states.latest("local", "report")
        assert snapshot["data"] == {"page": 2}
        assert not service.objects.exists(pod_files_object(first.id, "render", 1)), "the upload is read, then gone"

        second = _finished(service, runs.execute(service, "local", "report", {}).id)
        assert second.status is RunStatus.SUCCEEDED
        prepare = {e["name"]: e["value"] for e in kube.created[1]["spec"]["initContainers"][0]["env"]}
        state_url = prepare["STROM_STATE_URL"]
        assert state_url == f"https://strom.example.com/api/objects/{snapshot['files']}"
        local_url = state_url.replace("https://strom.example.com", server.url)
        token = {"Authorization": f"Bearer {prepare['STROM_STATE_TOKEN']}"}
        answer = requests.get(local_url, headers=token, timeout=10)
        with tarfile.open(fileobj=io.BytesIO(answer.content)) as tar:
            assert tar.extractfile("cursor").read() == b"41"
        refused = requests.post(local_url, headers=token, data=b"x", timeout=10)
        assert (refused.status_code, refused.json()["error"]["message"]) == (
            401,
            f"the object token does not open {snapshot['files']} to put",
        )
        sidecar = {e["name"]: e["value"] for e in kube.created[1]["spec"]["initContainers"][1]["env"]}
        other = pod_files_object(second.id, "elsewhere", 1)
        wrong = requests.post(
            f"{server.url}/api/objects/{other}",
            headers={"Authorization": f"Bearer {sidecar['STROM_UPLOAD_TOKEN']}"},
            data=b"x",
            timeout=10,
        )
        assert wrong.status_code == 401 and not service.objects.exists(other)
        deleted = requests.delete(local_url, headers=token, timeout=10)
        assert deleted.status_code == 401 and service.objects.exists(snapshot["files"]), "only workers delete"


def _finished(service, run_id):
    return wait_for(lambda: (s := service.runs.load(run_id)).status.terminal and s, timeout=30, what="the run")


def _children(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


def test_the_helper_containers_scripts_work_with_busybox(tmp_path, redis_url, service_workspace):
    """The scripts the two containers run, run by busybox against the web process (paths moved into tmp_path)."""
    config = make_config(service_workspace(WORKSPACE), redis_url, STROM_WORKERS__TOKEN=SECRET)

    def local(script: str) -> str:
        moved = script.replace("/tmp/", f"{tmp_path / 't'}/")
        return moved.replace("/strom-out", str(tmp_path / "out")).replace("/strom-state", str(tmp_path / "state"))

    (tmp_path / "t").mkdir()
    (tmp_path / "state").mkdir()
    with stack(config, workers=0, scheduler=False) as service, serving(config, service) as server:
        state_key = state_object(uuid.uuid4().hex)
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w:gz") as tar:
            entry = tarfile.TarInfo("notes/seen.txt")
            entry.size = 5
            tar.addfile(entry, io.BytesIO(b"seen\n"))
        archive.seek(0)
        service.objects.put_stream(state_key, archive, 1 << 20)
        env = {
            "PATH": os.environ["PATH"],
            "STROM_STATE_URL": f"{server.url}/api/objects/{state_key}",
            "STROM_STATE_TOKEN": object_tokens.issue(SECRET, "get", state_key, 60),
        }
        subprocess.run(["busybox", "sh", "-c", local(f"set -e; {PREPARE_FILES}")], env=env, check=True, timeout=30)
        assert (tmp_path / "state/notes/seen.txt").read_text() == "seen\n"
        assert oct((tmp_path / "out/artifacts").stat().st_mode & 0o7777) == "0o1777"
        (tmp_path / "out/artifacts/summary.md").write_text("# fine\n")
        (tmp_path / "out/state-out/cursor").write_text("7")

        key = pod_files_object(uuid.uuid4().hex, "render", 2)  # the data directory outlives the test
        env = {
            "PATH": os.environ["PATH"],
            "STROM_UPLOAD_URL": f"{server.url}/api/objects/{key}",
            "STROM_UPLOAD_TOKEN": object_tokens.issue(SECRET, "put", key, 60),
        }
        sidecar = subprocess.Popen(["busybox", "sh", "-c", local(UPLOAD_FILES)], env=env)
        try:
            wait_for(lambda: _children(sidecar.pid), what="the sidecar waiting")
            assert not service.objects.exists(key), "nothing is sent before the container is stopped"
            sidecar.send_signal(signal.SIGTERM)
            assert sidecar.wait(timeout=30) == 0
        finally:
            sidecar.kill()
        out = tmp_path / "unpacked"
        out.mkdir()
        skipped: list[str] = []
        unpack_out(service.objects.fetch(key, tmp_path), out, 1 << 20, skipped)
        assert (out / "artifacts/summary.md").read_text() == "# fine\n" and (
            out / "state-out/cursor"
        ).read_text() == "7"
        assert skipped == []


_NAMES = st.one_of(
    st.sampled_from(["state-out", "artifacts", "state-out/a", "artifacts/b/c", "../x", "/etc/x", "artifacts/../../x"]),
    st.text(min_size=1, max_size=40),
)
_MEMBERS = st.lists(
    st.tuples(
        st.one_of(_NAMES, st.builds(lambda r, n: f"{r}/{n}", st.sampled_from(["state-out", "artifacts"]), st.text())),
        st.sampled_from(
            [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE]
        ),
        st.binary(max_size=64),
        st.sampled_from(["/etc/passwd", "../../x", "state-out/a", ""]),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(members=_MEMBERS, budget=st.integers(0, 200))
def test_a_pods_upload_never_writes_outside_its_directory(tmp_path_factory, members, budget):
    """Whatever a step's pod sends: regular files and directories under state-out/ and artifacts/ only, within the
    budget, or a clear refusal; nothing outside the directory, no link, no special file."""
    root = tmp_path_factory.mktemp("upload")
    archive = root / "up.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, kind, data, target in members:
            entry = tarfile.TarInfo(name)
            entry.type, entry.linkname = kind, target
            entry.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(entry, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    out = root / "box" / "out"
    out.mkdir(parents=True)
    skipped: list[str] = []
    try:
        unpack_out(archive, out, budget, skipped)
    except (TooMuch, ValueError):
        pass
    outside = [p for p in (root / "box").rglob("*") if not p.is_relative_to(out)]
    assert outside == []
    for path in out.rglob("*"):
        assert path.is_dir() or path.is_file(), f"{path} is neither a file nor a directory"
        assert not path.is_symlink()
        assert path.relative_to(out).parts[0] in ("state-out", "artifacts")
    assert sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) <= budget


def test_a_broken_upload_is_refused_with_the_reason(tmp_path):
    (tmp_path / "junk.tar.gz").write_bytes(b"\x1f\x8b not really")
    (tmp_path / "out").mkdir()
    with pytest.raises(ValueError, match="the archive is broken"):
        unpack_out(tmp_path / "junk.tar.gz", tmp_path / "out", 100, [])
    with pytest.raises(StromError):
        Store(tmp_path).fetch(KEY, tmp_path)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=3000), gaps=st.lists(st.integers(0, 4000), max_size=8), size=st.integers(1, 5000))
def test_a_base64_body_reads_back_what_was_encoded(data, gaps, size):
    from webhooks.api.objects import Base64Body

    text = base64.b64encode(data)
    for gap in sorted(gaps, reverse=True):
        text = text[:gap] + b"\n" + text[gap:]
    body, out = Base64Body(io.BytesIO(text)), b""
    while chunk := body.read(size):
        out += chunk
    assert out == data


def test_workers_elsewhere_delete_objects_through_the_web_process_and_nobody_else(
    tmp_path, redis_url, service_workspace
):
    from runner.store.objects import RemoteObjects

    config = make_config(service_workspace(WORKSPACE), redis_url, STROM_WORKERS__TOKEN=SECRET)
    with stack(config, workers=0, scheduler=False) as service, serving(config, service) as server:
        key = pod_files_object(uuid.uuid4().hex, "render", 1)
        service.objects.put_stream(key, io.BytesIO(b"x"), 10)
        refused = requests.delete(f"{server.url}/api/objects/{key}", timeout=10)
        assert refused.status_code == 401 and service.objects.exists(key)
        bad = requests.post(
            f"{server.url}/api/objects/{pod_files_object(uuid.uuid4().hex, 'render', 1)}",
            data=b"not base64!",
            headers={"Authorization": f"Bearer {SECRET}", "Content-Type": "application/base64"},
            timeout=10,
        )
        assert (bad.status_code, bad.json()["error"]["message"][:25]) == (400, "the body is not base64: O")
        RemoteObjects(server.url, SECRET).delete(key)
        assert not service.objects.exists(key)
        RemoteObjects(server.url, SECRET).delete(key)  # gone already: nothing to say
