"""deploy/: the Compose file passes `docker-compose config`, every object the kustomize overlays render passes
`kubernetes-validate --strict` for the supported Kubernetes versions, and what the manifests promise holds
(probes on the health endpoints, non-root pods, a step role limited to pods, Redis out of the steps' reach,
workers given time to hand back their steps, KEDA on the step queues)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import need
from ruamel.yaml import YAML

from runner.config import load_config
from runner.store.queues import queue_name

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
KUBERNETES_VERSIONS = ["1.30.0", "1.32.0", "1.34.0"]
OVERLAYS = ["example", "production"]


def _yaml_all(text: str) -> list[dict]:
    return [doc for doc in YAML(typ="safe").load_all(text) if doc]


def _env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return dict(pairs)


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request, tmp_path_factory) -> tuple[str, Path, list[dict]]:
    kubectl = need("kubectl")
    text = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / "kubernetes" / "overlays" / request.param)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    path = tmp_path_factory.mktemp("rendered") / f"{request.param}.yaml"
    path.write_text(text)
    return request.param, path, _yaml_all(text)


def _of_kind(objects, kind, name=None) -> list[dict]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def _of(objects, kind, name=None):
    found = _of_kind(objects, kind, name)
    assert found, f"no {kind} {name or ''}"
    return found if name is None else found[0]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_object_is_valid_for_the_supported_kubernetes_versions(rendered, version):
    _, path, objects = rendered
    done = subprocess.run(
        [need("kubernetes-validate"), "--strict", "--quiet", "-k", version, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    problems = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if line.strip()
        and "Couldn't find schema for kind ScaledObject" not in line
        and "Couldn't find schema for kind TriggerAuthentication" not in line
    ]
    assert done.returncode == 0 and problems == [], problems
    assert len(objects) >= 20


def test_pods_run_as_non_root_with_probes_on_the_health_endpoints(rendered):
    _, _, objects = rendered
    probes = {
        "strom-web": ("/api/ready", "/api/health"),
        "strom-scheduler": ("/readyz", "/livez"),
        "strom-worker": ("/readyz", "/livez"),
    }
    for name, (ready, live) in probes.items():
        pod = _of(objects, "Deployment", name)["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert (container["readinessProbe"]["httpGet"]["path"], container["livenessProbe"]["httpGet"]["path"]) == (
            ready,
            live,
        )
        assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert _of(objects, "Deployment", "strom-scheduler")["spec"]["replicas"] == 2, "the Redis lease makes one active"
    assert {p["metadata"]["name"] for p in _of(objects, "PodDisruptionBudget")} == set(probes)


def test_workers_may_only_manage_pods_in_the_steps_namespace_and_have_time_to_hand_back(rendered):
    _, _, objects = rendered
    role = _of(objects, "Role", "strom-steps")
    assert role["metadata"]["namespace"] == "strom-steps" and not _of_kind(objects, "ClusterRole")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get", "list", "delete"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    ]
    binding = _of(objects, "RoleBinding", "strom-worker")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "strom-worker", "namespace": "strom"}]
    worker = _of(objects, "Deployment", "strom-worker")
    config = YAML(typ="safe").load(_of(objects, "ConfigMap")[0]["data"]["strom.yaml"])
    grace = int(str(config["workers"]["shutdown_grace"]).rstrip("s"))
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= grace + 25
    assert config["kubernetes"]["namespace"] == "strom-steps"
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] not in ("Namespace",)} == {
        "strom",
        "strom-steps",
    }


def test_step_pods_cannot_reach_redis(rendered):
    overlay, _, objects = rendered
    steps = _of(objects, "NetworkPolicy", "strom-steps")
    assert steps["metadata"]["namespace"] == "strom-steps" and steps["spec"]["policyTypes"] == ["Egress"]
    allowed = [rule["to"] for rule in steps["spec"]["egress"]]
    assert {"port": 6379, "protocol": "TCP"} not in [
        p for rule in steps["spec"]["egress"] for p in rule.get("ports", [])
    ]
    private = next(peer["ipBlock"] for rule in allowed for peer in rule if "ipBlock" in peer)
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"} <= set(private["except"])
    cluster = [peer for rule in allowed for peer in rule if "podSelector" in peer]
    assert all(p["podSelector"]["matchLabels"].get("app.kubernetes.io/component") in ("web", None) for p in cluster)
    if overlay == "example":
        redis = _of(objects, "NetworkPolicy", "strom-redis")
        sources = redis["spec"]["ingress"][0]["from"]
        assert sources == [
            {
                "podSelector": {
                    "matchExpressions": [
                        {
                            "key": "app.kubernetes.io/component",
                            "operator": "In",
                            "values": ["web", "scheduler", "worker"],
                        }
                    ]
                }
            }
        ]
        command = " ".join(
            _of(objects, "StatefulSet", "strom-redis")["spec"]["template"]["spec"]["containers"][0]["command"]
        )
        assert all(flag in command for flag in ("--appendonly yes", "--maxmemory-policy noeviction", "--requirepass"))
    else:
        assert not _of_kind(objects, "StatefulSet"), "production uses a Redis run elsewhere"


def test_keda_scales_workers_on_the_step_queues_and_keeps_busy_ones(rendered):
    overlay, _, objects = rendered
    if overlay != "production":
        assert not _of_kind(objects, "ScaledObject")
        return
    scaled = _of(objects, "ScaledObject", "strom-worker")
    worker = _of(objects, "Deployment", "strom-worker")
    assert "replicas" not in worker["spec"] and scaled["spec"]["minReplicaCount"] == 0
    args = worker["spec"]["template"]["spec"]["containers"][0]["args"]
    abilities = args[args.index("--abilities") + 1].split(",")
    lists = {t["metadata"]["listName"] for t in scaled["spec"]["triggers"] if t["type"] == "redis"}
    assert lists == {f"rq:queue:{queue_name(a)}" for a in abilities}
    [running] = [t for t in scaled["spec"]["triggers"] if t["type"] == "metrics-api"]
    assert running["metadata"]["valueLocation"] == "strom_steps_running"
    assert running["metadata"]["url"].startswith("http://strom-web.strom.svc:8080/metrics")


def test_the_kubernetes_configuration_loads(rendered):
    _, _, objects = rendered
    config_text = _of(objects, "ConfigMap")[0]["data"]["strom.yaml"]
    secret = {"STROM_REDIS_URL": "redis://strom-redis:6379/0", "STROM_WORKERS__TOKEN": "t"}
    path = DEPLOY / "kubernetes" / "base" / "strom.yaml"
    assert path.read_text() == config_text
    config = load_config(path, environ=secret, base_dir=ROOT)
    assert config.workspaces["site"].kind == "hosted" and config.shutdown_grace == 60


def test_the_compose_file_passes_docker_compose_config(tmp_path):
    compose = need("docker-compose")
    folder = DEPLOY / "compose"
    env = _env_file(folder / ".env.example")
    (tmp_path / ".env").write_text((folder / ".env.example").read_text())
    for name in ("compose.yaml", "strom.yaml"):
        (tmp_path / name).write_text((folder / name).read_text())
    done = subprocess.run(
        [compose, "-f", str(tmp_path / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    services = YAML(typ="safe").load(done.stdout)["services"]
    assert set(services) == {"redis", "web", "scheduler", "worker"}
    assert "--appendonly yes" in services["redis"]["command"][-1] and "noeviction" in services["redis"]["command"][-1]
    assert all(services[s]["command"][0] == s for s in ("web", "scheduler", "worker"))
    assert services["worker"]["environment"]["STROM_WORKERS__SERVER_URL"] == "http://web:8080"
    assert "strom-data" not in str(services["worker"].get("volumes")), "workers download commits, as remote ones do"
    config = load_config(folder / "strom.yaml", environ=env, base_dir=tmp_path)
    assert config.redis_url == env["STROM_REDIS_URL"] and config.worker_token == env["STROM_WORKERS__TOKEN"]
    (tmp_path / ".env").unlink()
    missing = subprocess.run(
        [compose, "-f", str(tmp_path / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert missing.returncode != 0 and "set REDIS_PASSWORD in .env" in missing.stderr
