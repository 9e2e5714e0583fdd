"""Pods through the official Kubernetes client against a recording fake API server: the manifest
Strom submits (the action's `manifest` merged in, checked with kubernetes-validate), what it does
with Pending, Failed and Succeeded pods, timeouts and cancels that delete the pod, and the
short-lived token that lets the pod's init container download the commit."""

from __future__ import annotations

import io
import tarfile
import threading

import kubernetes_validate
import pytest
import requests
from click.testing import CliRunner
from fake_kube import RUNNING, FakeKube, container_status, failed, pull_backoff, succeeded, unschedulable
from step_work import step_work

from runner.cli import main
from runner.container_config import KubernetesConfig
from runner.engine.status import StepStatus
from runner.engine.work import StepWork
from runner.errors import StepSetupError
from runner.executors.kubernetes import INIT_SCRIPT, PodExecutor
from runner.executors.pods import deep_merge, pod_name, unsafe_parts
from runner.git import snapshot_tokens

SHA = "0123456789abcdef0123456789abcdef01234567"
K8S_VERSION = "1.30"


class Lines:
    def __init__(self):
        self.lines = []

    def line(self, stream, text):
        self.lines.append((stream, text))


@pytest.fixture
def kube():
    with FakeKube() as fake:
        yield fake


def executor(kube, tmp_path, files=None, **settings) -> PodExecutor:
    config = KubernetesConfig(
        kubeconfig=kube.kubeconfig(tmp_path), namespace="ci", init_image="busybox:1.36", **settings
    )

    def access(work):
        return (
            f"https://strom.example.com/api/workspaces/{work.workspace}/snapshots/{work.commit}.tar.gz",
            snapshot_tokens.issue("worker-secret", work.workspace, work.commit),
        )

    return PodExecutor(config, worker="k8s-worker-1", snapshot_access=access, poll=0.05, files=files)


def work(**fields) -> StepWork:
    values = {
        "job_id": "ab12cd34ef56",
        "step": "build",
        "attempt": 1,
        "kind": "pod",
        "task": "ci",
        "workspace": "app",
        "image": "ok:1",
        "env": {"MODE": "fast"},
        "commit": SHA,
    }
    values.update(fields)
    return step_work(**values)


def run(kube, tmp_path, step: StepWork, cancel: threading.Event | None = None, **settings):
    logs = Lines()
    result = executor(kube, tmp_path, **settings).run(step, None, logs, cancel or threading.Event())
    return result, logs


def test_an_image_pod_is_submitted_as_generated_with_the_manifest_merged_in(kube, tmp_path):
    kube.script(
        "ok:1", [RUNNING, succeeded(0)], log='building\nSUMMARY: built app.tgz\nOUTPUT: {"artifact": "app.tgz"}\n'
    )
    step = work(
        cmd="make build --jobs 4",
        entrypoint=("/bin/sh", "-c"),
        resources={"cpu": "500m"},
        manifest={
            "metadata": {"annotations": {"iam.amazonaws.com/role": "builder"}},
            "spec": {
                "serviceAccountName": "builder",
                "nodeSelector": {"gpu": "true"},
                "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "containers": [
                    {
                        "name": "step",
                        "resources": {"limits": {"memory": "512Mi"}},
                        "env": [{"name": "MODE", "value": "thorough"}, {"name": "EXTRA", "value": "1"}],
                    },
                    {
                        "name": "postgres",
                        "image": "postgres:16",
                        "env": [{"name": "POSTGRES_PASSWORD", "value": "test"}],
                    },
                ],
            },
        },
    )
    result, logs = run(kube, tmp_path, step)
    assert (result.status, result.output, result.exit_code) == (StepStatus.SUCCEEDED, {"artifact": "app.tgz"}, 0)
    assert result.summary == "built app.tgz", "a pod's summary comes from its SUMMARY lines"
    assert ("stdout", "building") in logs.lines
    [pod] = kube.created
    name = pod["metadata"]["name"]
    assert name.startswith("strom-ab12cd34ef56-build-1-") and len(name) <= 63
    assert pod["metadata"]["labels"] == {
        "strom.managed": "1",
        "strom.run": "ab12cd34ef56",
        "strom.step": "build",
        "strom.attempt": "1",
        "strom.worker": "k8s-worker-1",
    }
    assert pod["metadata"]["annotations"] == {"iam.amazonaws.com/role": "builder"}
    spec = pod["spec"]
    assert (spec["restartPolicy"], spec["serviceAccountName"], spec["nodeSelector"]) == (
        "Never",
        "builder",
        {"gpu": "true"},
    )
    step_container, sidecar = spec["containers"]
    assert step_container == {
        "name": "step",
        "image": "ok:1",
        "command": ["/bin/sh", "-c"],
        "args": ["make", "build", "--jobs", "4"],
        "env": [{"name": "MODE", "value": "thorough"}, {"name": "EXTRA", "value": "1"}],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "resources": {"requests": {"cpu": "500m"}, "limits": {"memory": "512Mi"}},
    }
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65534,
        "runAsGroup": 65534,
        "fsGroup": 65534,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert sidecar["name"] == "postgres" and "initContainers" not in spec
    assert kube.deleted == [name], "the pod is deleted when its step ends"
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


def test_a_script_pod_downloads_the_commit_into_a_read_only_workspace(kube, tmp_path):
    kube.script("python:3.12-slim", [succeeded(0)], log="checked\n")
    step = work(
        kind="script",
        runner="pod",
        image=None,
        language="python",
        script="print('checked')",
        args=("--fast",),
        workdir="src",
    )
    result, _ = run(kube, tmp_path, step)
    assert result.status is StepStatus.SUCCEEDED
    [pod] = kube.created
    spec = pod["spec"]
    [init] = spec["initContainers"]
    env = {e["name"]: e["value"] for e in init["env"]}
    assert (init["image"], init["command"]) == ("busybox:1.36", ["sh", "-c", INIT_SCRIPT])
    assert env["STROM_SNAPSHOT_URL"] == f"https://strom.example.com/api/workspaces/app/snapshots/{SHA}.tar.gz"
    assert snapshot_tokens.check("worker-secret", env["STROM_SNAPSHOT_TOKEN"], "app", SHA) is None
    assert (env["STROM_SCRIPT"], env["STROM_SCRIPT_NAME"]) == ("print('checked')", "step.py")
    assert init["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    assert spec["securityContext"]["runAsNonRoot"] is True
    [main_container] = spec["containers"]
    assert main_container["command"] == ["python3", "/strom/step.py", "--fast"]
    assert main_container["workingDir"] == "/workspace/src"
    assert main_container["volumeMounts"] == [
        {"name": "workspace", "mountPath": "/workspace", "readOnly": True},
        {"name": "code", "mountPath": "/strom", "readOnly": True},
    ]
    assert spec["volumes"] == [{"name": "workspace", "emptyDir": {}}, {"name": "code", "emptyDir": {}}]
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


def test_failed_pods_fail_with_their_exit_code_and_pending_ones_with_their_reason(kube, tmp_path):
    kube.script("fails:1", [RUNNING, failed(3)], log="boom\n")
    kube.script("oom:1", [failed(137, "OOMKilled")])
    kube.script("big:1", [unschedulable("0/3 nodes are available: 3 Insufficient cpu.")])
    kube.script("nope:1", [pull_backoff("nope:1")])
    result, logs = run(kube, tmp_path, work(image="fails:1"))
    assert (result.status, result.error, result.exit_code) == (StepStatus.FAILED, "exit code 3", 3)
    assert ("stdout", "boom") in logs.lines
    result, _ = run(kube, tmp_path, work(image="oom:1", step="mem"))
    assert result.error == "exit code 137 (OOMKilled)"
    result, _ = run(kube, tmp_path, work(image="big:1", step="big"), pending_timeout=0.3)
    assert result.status is StepStatus.FAILED
    assert result.error.endswith(
        "was still Pending after 300ms: Unschedulable (0/3 nodes are available: 3 Insufficient cpu.)"
    )
    result, _ = run(kube, tmp_path, work(image="nope:1", step="pull"), pending_timeout=60, pull_backoff_timeout=0.3)
    assert result.error.endswith('was still Pending after 300ms: ImagePullBackOff (Back-off pulling image "nope:1")')
    assert len(kube.deleted) == 4, "every pod is deleted, whatever became of it"


def test_a_step_with_a_sidecar_ends_when_its_own_container_ends(kube, tmp_path):
    done_with_sidecar = {
        "phase": "Running",
        "containerStatuses": [
            container_status({"terminated": {"exitCode": 0, "reason": "Completed"}}),
            container_status({"running": {"startedAt": "2026-11-21T10:00:00Z"}}, name="postgres"),
        ],
    }
    kube.script("tests:1", [RUNNING, done_with_sidecar], log='OUTPUT: {"passed": 41}\n')
    result, _ = run(
        kube,
        tmp_path,
        work(image="tests:1", manifest={"spec": {"containers": [{"name": "postgres", "image": "postgres:16"}]}}),
    )
    assert (result.status, result.output) == (StepStatus.SUCCEEDED, {"passed": 41})
    [pod] = kube.created
    assert [c["securityContext"] for c in pod["spec"]["containers"]] == [
        {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        {"allowPrivilegeEscalation": False},
    ]


def test_untrusted_steps_get_no_pod_without_network_and_no_manifest(kube, tmp_path):
    with pytest.raises(StepSetupError, match="cannot run as pods without network"):
        run(kube, tmp_path, work(untrusted=True, network=False))
    with pytest.raises(StepSetupError, match="cannot change the pod manifest"):
        run(kube, tmp_path, work(untrusted=True, network=True, manifest={"spec": {"serviceAccountName": "admin"}}))
    assert kube.created == []


def test_timeout_and_cancel_delete_the_pod(kube, tmp_path):
    kube.script("forever:1", [RUNNING])
    result, _ = run(kube, tmp_path, work(image="forever:1", timeout=0.3))
    assert (result.status, result.error) == (StepStatus.TIMED_OUT, "timed out after 300ms")
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    result, _ = run(kube, tmp_path, work(image="forever:1", step="other"), cancel=cancel)
    assert (result.status, result.error) == (StepStatus.CANCELLED, "cancelled")
    assert [name.split("-")[2] for name in kube.deleted] == ["build", "other"]


def test_manifests_that_reach_the_node_are_refused_before_any_request(kube, tmp_path):
    for manifest, problem in [
        ({"spec": {"hostNetwork": True}}, "spec.hostNetwork"),
        ({"spec": {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}}, "volume 'root' uses hostPath"),
        (
            {"spec": {"containers": [{"name": "step", "securityContext": {"privileged": True}}]}},
            "containers 'step' is privileged",
        ),
        (
            {"spec": {"containers": [{"name": "step", "securityContext": {"allowPrivilegeEscalation": True}}]}},
            "containers 'step' allows privilege escalation",
        ),
        (
            {
                "spec": {
                    "initContainers": [
                        {
                            "name": "x",
                            "image": "a",
                            "securityContext": {"capabilities": {"add": ["CAP_SYS_ADMIN", "NET_BIND_SERVICE"]}},
                        }
                    ]
                }
            },
            "initContainers 'x' adds capability SYS_ADMIN",
        ),
        (
            {"spec": {"securityContext": {"sysctls": [{"name": "kernel.shm_rmid_forced", "value": "0"}]}}},
            "spec.securityContext sets sysctls",
        ),
        (
            {"spec": {"securityContext": {"seccompProfile": {"type": "Unconfined"}}}},
            "spec.securityContext sets seccompProfile Unconfined",
        ),
    ]:
        with pytest.raises(StepSetupError, match="asks for more than a step may have") as raised:
            run(kube, tmp_path, work(manifest=manifest))
        assert problem in str(raised.value)
    assert kube.created == []


def test_merge_rules():
    base = {"a": {"b": 1, "c": [1, 2]}, "items": [{"name": "x", "v": 1}, {"name": "y", "v": 2}], "s": "old"}
    extra = {"a": {"c": [3]}, "items": [{"name": "y", "w": 3}, {"name": "z"}], "s": "new"}
    assert deep_merge(base, extra) == {
        "a": {"b": 1, "c": [3]},
        "s": "new",
        "items": [{"name": "x", "v": 1}, {"name": "y", "v": 2, "w": 3}, {"name": "z"}],
    }
    assert base["items"][1] == {"name": "y", "v": 2}, "the base is not changed"
    assert unsafe_parts({"spec": {"hostPID": True, "containers": [{"name": "s"}]}}) == ["spec.hostPID"]


def test_a_snapshot_token_opens_one_commit_for_a_while(tmp_path, redis_url):
    import json as jsonlib

    from git_env import commit, git, init_repo
    from service_env import make_config, serving, stack

    bare = tmp_path / "up.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    repo = init_repo(tmp_path / "src")
    sha = commit(
        repo,
        {
            "app.py": "print(1)\n",
            ".strom/ci.yaml": "tasks:\n  t:\n    flow:\n      a: { type: script, script: 'true' }\n",
        },
    )
    git(repo, "push", "-q", str(bare), "main")
    (tmp_path / "empty").mkdir()
    config = make_config(
        tmp_path / "empty",
        redis_url,
        STROM_DATA_DIR=str(tmp_path / "data"),
        STROM_WORKSPACES=jsonlib.dumps({"app": {"git": str(bare)}}),
        STROM_WORKERS__TOKEN="worker-secret-0123456789",
    )
    with stack(config, workers=0, scheduler=False) as service, serving(config, service) as server:
        service.repos.mirror(config.workspaces["app"]).fetch("main")
        url = f"{server.url}/api/workspaces/app/snapshots/{sha}.tar.gz"
        token = snapshot_tokens.issue("worker-secret-0123456789", "app", sha)
        answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.status_code == 200
        with tarfile.open(fileobj=io.BytesIO(answer.content)) as archive:
            assert "app.py" in archive.getnames()
        other = snapshot_tokens.issue("worker-secret-0123456789", "app", "f" * 40)
        refused = requests.get(url, headers={"Authorization": f"Bearer {other}"}, timeout=10)
        assert (refused.status_code, refused.json()["error"]["message"]) == (
            401,
            "the snapshot token is for another commit",
        )
        old = snapshot_tokens.issue("worker-secret-0123456789", "app", sha, ttl=-1)
        assert requests.get(url, headers={"Authorization": f"Bearer {old}"}, timeout=10).status_code == 401
        forged = snapshot_tokens.issue("another-secret", "app", sha)
        assert (
            requests.get(url, headers={"Authorization": f"Bearer {forged}"}, timeout=10).json()["error"]["message"]
            == "the snapshot token is not valid"
        )


def test_a_worker_refuses_the_kubernetes_ability_when_the_cluster_does_not_answer(tmp_path, redis_url, kube):
    dead = tmp_path / "dead.yaml"
    dead.write_text(kube.kubeconfig(tmp_path).read_text().replace(kube.url, "http://127.0.0.1:9"))
    result = CliRunner().invoke(
        main,
        ["worker", "--abilities", "kubernetes"],
        env={"STROM_REDIS_URL": redis_url, "STROM_KUBERNETES": f'{{"kubeconfig": "{dead}", "namespace": "ci"}}'},
    )
    assert result.exit_code == 2
    assert (
        "this worker cannot offer 'kubernetes': cannot reach the Kubernetes API at http://127.0.0.1:9" in result.output
    )


def test_pod_steps_go_to_workers_with_the_kubernetes_ability(tmp_path, redis_url, kube, service_workspace):
    import json as jsonlib

    from service_env import make_config, stack, wait_for

    from runner.engine import RunStatus
    from runner.service.worker import Worker

    kube.script("reporter:2", [RUNNING, succeeded(0)], log='OUTPUT: {"pages": 12}\n')
    folder = service_workspace(
        {
            ".strom/ci.yaml": """
        tasks:
          report:
            flow:
              render: { type: pod, image: "reporter:2", command: [render, --all] }
        """
        }
    )
    config = make_config(
        folder,
        redis_url,
        STROM_WORKERS__TOKEN="worker-secret-0123456789",
        STROM_PUBLIC_URL="https://strom.example.com",
        STROM_KUBERNETES=jsonlib.dumps(
            {"kubeconfig": str(kube.kubeconfig(tmp_path)), "namespace": "ci", "files": False}
        ),
    )
    with stack(config, abilities=("kubernetes",)) as service:
        from runner import runs

        state = runs.execute(service, "local", "report", {})
        done = wait_for(lambda: (s := service.runs.load(state.id)).status.terminal and s, timeout=30, what="the run")
        assert done.status is RunStatus.SUCCEEDED and done.steps["render"].output == {"pages": 12}
        [pod] = kube.created
        assert pod["spec"]["containers"][0]["args"] == ["render", "--all"]
        assert "initContainers" not in pod["spec"], "kubernetes.files: false gives the pod no helper containers"
        assert pod["metadata"]["labels"]["strom.worker"] == "test-worker-0"
        installation = service.redis.get("strom:installation")
        assert pod["metadata"]["labels"]["strom.installation"] == installation
        assert (
            pod["metadata"]["name"]
            == pod_name(state.id, "render", 1, installation)
            != pod_name(state.id, "render", 1, "0123456789ab")
        ), "another Strom's run of the same id names its pod apart"
        worker = Worker(service, abilities=("kubernetes",), name="signer")
        url, token = worker._snapshot_access(work(workspace="app"))
        assert url == f"https://strom.example.com/api/workspaces/app/snapshots/{SHA}.tar.gz"
        assert snapshot_tokens.check("worker-secret-0123456789", token, "app", SHA) is None
