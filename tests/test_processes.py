"""The service as separate processes (gunicorn web, workers and schedulers) and as `strom up` runs it, killed and
restarted for real."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest
import requests
from service_env import TOKENS, Procs, free_port, wait_for

from runner.store import keys

pytestmark = pytest.mark.slow

WORKSPACE = {
    ".strom/t.yaml": """
    tasks:
      hello:
        input:
          name: { type: string, default: world }
        flow:
          greet: { type: script, script: 'echo "hello $INPUT_NAME"; sleep 0.3; echo bye', input: { name: "{{ input.name }}" } }
      survive:
        flow:
          work:
            type: script
            retry: { max_attempts: 2, delay: 0s }
            script: |
              echo "attempt $STROM_ATTEMPT"
              if [ "$STROM_ATTEMPT" = 1 ]; then sleep 317; fi
              echo done
      fragile:
        flow:
          work: { type: script, script: "echo started; sleep 318" }
    triggers:
      every-second: { type: scheduler, cron: "* * * * * *", task: hello }
    """
}

AUTH = {"Authorization": f"Bearer {TOKENS['admin']}"}


@pytest.fixture
def procs(service_workspace, redis_url, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    p = Procs(service_workspace(WORKSPACE), redis_url, logs)
    yield p
    p.stop_all()


def _web(procs) -> str:
    port = free_port()
    procs.start("web", "web", STROM_LISTEN=f"127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _ok(f"{url}/api/health"), 30, 0.1, "gunicorn to serve")
    return url


def _ok(url) -> bool:
    try:
        return requests.get(url, timeout=5).ok
    except requests.RequestException:  # not listening yet, or too busy starting to answer
        return False


def _run(url, run_id):
    return requests.get(f"{url}/api/runs/{run_id}", headers=AUTH, timeout=5).json()


def _strom_up(root, port: int, log, **env) -> subprocess.Popen:
    """`strom up` in `root` on `port`, with none of the test's STROM_* settings (its own Redis, its own token)."""
    return subprocess.Popen(
        [sys.executable, "-m", "runner.cli", "up", "--port", str(port)],
        cwd=root,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("STROM_")}, **env},
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_execute_over_http_runs_on_a_worker_process_and_streams_logs(procs):
    url = _web(procs)
    procs.start("scheduler", "scheduler")
    procs.start("worker", "worker", "--name", "w1")
    run = requests.post(
        f"{url}/api/workspaces/local/tasks/hello/execute", json={"input": {"name": "http"}}, headers=AUTH, timeout=10
    ).json()
    events = []
    with requests.get(
        f"{url}/api/runs/{run['id']}/logs", params={"follow": "1"}, headers=AUTH, stream=True, timeout=(5, 30)
    ) as stream:
        kind = None
        for raw in stream.iter_lines(decode_unicode=True):
            if raw.startswith("event:"):
                kind = raw[6:].strip()
            elif raw.startswith("data:"):
                events.append((kind, json.loads(raw[5:])))
                if kind == "end":
                    break
    lines = [d["text"] for k, d in events if k == "line"]
    assert lines == ["hello http", "bye"]
    statuses = [(d["step"], d["status"]) for k, d in events if k == "status"]
    assert statuses == [("greet", "running"), ("greet", "succeeded")]
    assert events[-1] == ("end", {"status": "succeeded"})
    final = _run(url, run["id"])
    assert final["status"] == "succeeded" and final["steps"][0]["worker"] == "w1"


def _marker_running(marker: str) -> bool:
    return any(
        marker in " ".join(p.info["cmdline"] or []) and p.status() != psutil.STATUS_ZOMBIE
        for p in psutil.process_iter(["cmdline"])
    )


def _rq_view(redis_url: str, queue: str) -> tuple[dict, list, list]:
    """What RQ's own tools (`rq info`) see: its workers' states and jobs, the started and failed job ids."""
    import redis as redis_lib
    from rq import Worker
    from rq.registry import FailedJobRegistry, StartedJobRegistry

    connection = redis_lib.Redis.from_url(redis_url)
    workers = {w.name: (w.get_state(), w.get_current_job_id()) for w in Worker.all(connection=connection)}
    started = StartedJobRegistry(queue, connection=connection).get_job_ids()
    return workers, started, FailedJobRegistry(queue, connection=connection).get_job_ids()


def test_a_worker_killed_mid_step_is_detected_and_the_step_retried_elsewhere(procs, redis_url):
    url = _web(procs)
    procs.start("scheduler", "scheduler")
    procs.start("doomed", "worker", "--name", "doomed")
    run = requests.post(f"{url}/api/workspaces/local/tasks/survive/execute", json={}, headers=AUTH).json()
    running = wait_for(
        lambda: (r := _run(url, run["id"]))["steps"][0]["status"] == "running" and r, 20, 0.05, "the step to start"
    )
    first = keys.rq_job_id(run["id"], running["steps"][0]["name"], 1)
    workers, started, _ = _rq_view(redis_url, "strom-script")
    busy = {job: name for name, (state, job) in workers.items() if state == "busy"}
    assert busy.get(first, "").startswith("doomed.") and first in started, "RQ sees the step run as its job"
    assert {n for n in workers if n.startswith("doomed")} == {f"doomed.{i}" for i in range(4)}, "a slot, an RQ worker"
    wait_for(lambda: _marker_running("sleep 317"), 10, 0.05, "the step's process")
    wait_for(
        lambda: requests.get(f"{url}/api/runs/{run['id']}/logs", headers=AUTH, timeout=5).json()["lines"],
        10,
        0.05,
        "its first line to reach Redis (what a SIGKILL catches unsent is lost with the worker)",
    )
    killed = time.monotonic()
    procs.kill("doomed")
    assert wait_for(lambda: not _marker_running("sleep 317"), 5, 0.05, "the step's processes to die with it")
    procs.start("rescuer", "worker", "--name", "rescuer")
    final = wait_for(lambda: (r := _run(url, run["id"]))["status"] == "succeeded" and r, 30, 0.1, "the retry")
    step = final["steps"][0]
    assert step["attempt"] == 2 and step["worker"] == "rescuer"
    assert time.monotonic() - killed < 15, "lost_after is 2s in these tests"
    logs = requests.get(f"{url}/api/runs/{run['id']}/logs", headers=AUTH).json()["lines"]
    assert [(line["attempt"], line["text"]) for line in logs] == [(1, "attempt 1"), (2, "attempt 2"), (2, "done")]
    workers, started, failed = _rq_view(redis_url, "strom-script")
    assert first not in started and failed == [first], "the dead worker's job failed in RQ as abandoned"
    assert not any(n.startswith("doomed.") for n in workers), "the dead worker's slots left RQ's registry"
    assert {n for n in workers if n.startswith("rescuer")} == {f"rescuer.{i}" for i in range(4)}


def test_a_lost_step_without_attempts_left_fails_as_worker_lost(procs):
    url = _web(procs)
    procs.start("scheduler", "scheduler")
    procs.start("doomed", "worker", "--name", "doomed")
    run = requests.post(f"{url}/api/workspaces/local/tasks/fragile/execute", json={}, headers=AUTH).json()
    wait_for(lambda: _marker_running("sleep 318"), 20, 0.05, "the step's process")
    procs.kill("doomed")
    final = wait_for(lambda: (r := _run(url, run["id"]))["status"] == "failed" and r, 20, 0.1, "the failure")
    assert final["steps"][0]["error"] == "worker lost: doomed stopped sending heartbeats"


def test_two_scheduler_processes_fire_each_cron_tick_once(procs, redis_url):
    import redis as redis_lib

    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    procs.start("scheduler-1", "scheduler")
    procs.start("scheduler-2", "scheduler")
    wait_for(lambda: client.get(keys.cron_last("local", "every-second")), 10, 0.05, "the trigger to be seen")
    wait_for(
        lambda: client.zcard(keys.runs_by("trigger", "local", "every-second")) >= 4,
        15,
        0.05,
        "four ticks while both schedulers run",
    )
    procs.kill("scheduler-1", signal.SIGTERM)
    procs.kill("scheduler-2", signal.SIGTERM)
    ids = client.zrange(keys.runs_by("trigger", "local", "every-second"), 0, -1)
    ticks = sorted(json.loads(client.get(keys.job(i)))["event"]["scheduled_at"] for i in ids)
    assert len(ticks) >= 4
    assert len(set(ticks)) == len(ticks), "no tick fired twice"
    assert ticks == [ticks[0] + i for i in range(len(ticks))], "no tick was skipped"


def test_strom_up_serves_runs_and_keeps_history_across_restarts(service_workspace, tmp_path):
    root = service_workspace({".strom/t.yaml": WORKSPACE[".strom/t.yaml"].split("    triggers:")[0]})
    port = free_port()
    first = _strom_up(root, port, tmp_path / "up.log")
    try:
        wait_for(lambda: _ok(f"http://127.0.0.1:{port}/api/health"), 60, 0.1, "strom up")
        token = (root / ".strom-data" / "admin-token").read_text().strip()
        auth = {"Authorization": f"Bearer {token}"}
        run = requests.post(
            f"http://127.0.0.1:{port}/api/workspaces/local/tasks/hello/execute", json={}, headers=auth
        ).json()
        wait_for(
            lambda: (
                requests.get(f"http://127.0.0.1:{port}/api/runs/{run['id']}", headers=auth).json()["status"]
                == "succeeded"
            ),
            30,
            0.1,
            "the run",
        )
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(30)
    assert first.returncode == 0, (tmp_path / "up.log").read_text()
    said = (tmp_path / "up.log").read_text()
    assert f"Strom is up at http://127.0.0.1:{port}\n  workspace local: {root}\n" in said, (
        "the banner names the workspaces the server loaded (asked with the admin token)"
    )
    assert not _ok(f"http://127.0.0.1:{port}/api/health"), "Ctrl-C stops the web server"
    assert wait_for(lambda: not _children_of(root), 10, 0.1, "no child to outlive strom up")
    second = _strom_up(root, port, tmp_path / "up.log")
    try:
        wait_for(lambda: _ok(f"http://127.0.0.1:{port}/api/health"), 60, 0.1, "strom up again")
        runs = requests.get(f"http://127.0.0.1:{port}/api/runs", headers=auth).json()["runs"]
        assert [(r["id"], r["status"]) for r in runs] == [(run["id"], "succeeded")]
    finally:
        second.send_signal(signal.SIGKILL)
        second.wait(30)
    assert wait_for(lambda: not _children_of(root), 10, 0.1, "children of a killed strom up to die with it")


def _children_of(root) -> list:
    return [
        p
        for p in psutil.process_iter(["cmdline", "cwd"])
        if (
            "runner.cli" in " ".join(p.info["cmdline"] or [])
            or "gunicorn" in " ".join(p.info["cmdline"] or [])
            or "webhooks.serve" in " ".join(p.info["cmdline"] or [])
            or "redis-server" in " ".join(p.info["cmdline"] or [])
        )
        and (str(root) in (p.info["cwd"] or "") or str(root) in " ".join(p.info["cmdline"] or []))
    ]


def test_git_push_through_gunicorn_runs_the_pushed_commit_on_a_worker_process(procs, tmp_path):
    from git_env import commit, git, init_repo

    data = tmp_path / "data"
    procs.env.update(STROM_DATA_DIR=str(data), STROM_WORKSPACES=json.dumps({"site": {"hosted": True}}))
    url = _web(procs)
    procs.start("scheduler", "scheduler")
    procs.start("worker", "worker", "--name", "w1")
    repo = init_repo(tmp_path / "src")
    (repo / "blob.bin").write_bytes(os.urandom(200_000))
    git(repo, "add", "blob.bin")
    sha = commit(
        repo,
        {
            ".strom/ci.yaml": """
        tasks:
          build: { flow: { show: { type: script, script: 'echo "built $STROM_SHA $(wc -c < blob.bin)"' } } }
        triggers:
          on-push: { type: push, task: build }
        """
        },
        "through gunicorn",
    )
    remote = url.replace("http://", f"http://strom:{TOKENS['operator']}@") + "/git/site.git"
    pushed = git(
        repo,
        "-c",
        "http.postBuffer=32768",
        "push",
        remote,
        "main",
        env={"GIT_TRACE_CURL": "1", "GIT_TRACE_CURL_NO_DATA": "1"},
    )
    assert "Transfer-Encoding: chunked" in pushed.stderr
    events = wait_for(
        lambda: (
            (found := requests.get(f"{url}/api/events", headers=AUTH, timeout=5).json()["events"])
            and found[0]["status"] != "queued"
            and found
        ),
        30,
        0.1,
        "the push to be processed",
    )
    assert [(e["kind"], e["sha"], e["status"]) for e in events] == [("push", sha, "done")]
    run_id = events[0]["runs"][0]
    final = wait_for(lambda: (run := _run(url, run_id))["status"] in ("succeeded", "failed") and run, 30, 0.1, "run")
    assert final["status"] == "succeeded" and final["steps"][0]["worker"] == "w1"
    lines = requests.get(f"{url}/api/runs/{run_id}/logs", params={"format": "text"}, headers=AUTH, timeout=5).text
    assert f"built {sha} 200000" in lines


def test_strom_up_starts_a_child_again_when_it_exits(service_workspace, tmp_path):
    root = service_workspace({".strom/t.yaml": WORKSPACE[".strom/t.yaml"].split("    triggers:")[0]})
    port = free_port()
    up = _strom_up(root, port, tmp_path / "up.log", STROM_WEB__READ_TIMEOUT="1")
    try:
        wait_for(lambda: _ok(f"http://127.0.0.1:{port}/api/health"), 60, 0.1, "strom up")
        auth = {"Authorization": f"Bearer {(root / '.strom-data' / 'admin-token').read_text().strip()}"}
        children = {" ".join(p.cmdline()[1:]) for p in psutil.Process(up.pid).children() if "redis" not in p.name()}
        assert children == {f"-m webhooks.serve 127.0.0.1:{port} --scheduler --steps 4"}, (
            "one process serves the web, schedules and runs the steps"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=10) as silent:
            silent.sendall(b"GET /api/health HTTP/1.1\r\n")  # and never the rest
            started = time.monotonic()
            said = b"".join(iter(lambda: silent.recv(1024), b""))  # until the server closes the connection
            assert 0.5 < time.monotonic() - started < 5, "a silent client is let go after web.read_timeout (1 s)"
            assert said == b"" or said.startswith(b"HTTP/1.1 4"), said
        (server,) = [p for p in _children_of(root) if "webhooks.serve" in p.cmdline()]
        server.kill()
        wait_for(lambda: "server started again" in (tmp_path / "up.log").read_text(), 15, 0.1, "a new server")
        assert "server exited with status -9; starting it again in 1s" in (tmp_path / "up.log").read_text()
        wait_for(lambda: _ok(f"http://127.0.0.1:{port}/api/health"), 30, 0.1, "the new server to answer")
        run = requests.post(
            f"http://127.0.0.1:{port}/api/workspaces/local/tasks/hello/execute", json={}, headers=auth
        ).json()
        wait_for(
            lambda: (
                requests.get(f"http://127.0.0.1:{port}/api/runs/{run['id']}", headers=auth).json()["status"]
                == "succeeded"
            ),
            30,
            0.1,
            "a run on the new server's steps",
        )
        assert up.poll() is None, "strom up itself goes on"
        conf = (root / ".strom-data" / "redis.conf").read_text()
        assert "maxmemory-policy noeviction" in conf and "requirepass " in conf and "appendonly yes" in conf
        assert oct((root / ".strom-data" / "redis.conf").stat().st_mode & 0o777) == "0o600"
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(30)


def test_strom_up_outlives_its_redis_killed_mid_step_and_loses_no_log_line(service_workspace, tmp_path):
    root = service_workspace(
        {
            ".strom/t.yaml": "tasks:\n  talk:\n    flow:\n      say: { type: script, script: "
            "'for i in $(seq 1 30); do echo line $i; sleep 0.1; done' }\n"
        }
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    up = _strom_up(root, port, tmp_path / "up.log")
    try:
        wait_for(lambda: _ok(f"{url}/api/health"), 60, 0.1, "strom up")
        auth = {"Authorization": f"Bearer {(root / '.strom-data' / 'admin-token').read_text().strip()}"}
        (server,) = [p for p in psutil.Process(up.pid).children() if "webhooks.serve" in p.cmdline()]
        run = requests.post(f"{url}/api/workspaces/local/tasks/talk/execute", json={}, headers=auth).json()["id"]

        def log() -> str:
            return requests.get(f"{url}/api/runs/{run}/logs", params={"format": "text"}, headers=auth, timeout=5).text

        wait_for(lambda: "line 5" in log(), 30, 0.05, "the step to talk")
        (redis,) = [p for p in psutil.Process(up.pid).children() if p.name() == "redis-server"]
        redis.kill()
        wait_for(lambda: "redis started again" in (tmp_path / "up.log").read_text(), 15, 0.1, "a new Redis")
        final = wait_for(
            lambda: (
                (r := requests.get(f"{url}/api/runs/{run}", headers=auth, timeout=5)).ok
                and r.json()["status"] in ("succeeded", "failed")
                and r.json()
            ),
            60,
            0.2,
            "the run to end",
        )
        assert final["status"] == "succeeded" and [s["attempt"] for s in final["steps"]] == [1], final
        assert log().splitlines() == [f"[say] line {i}" for i in range(1, 31)], "every line, once, in order"
        assert server.is_running() and "server exited" not in (tmp_path / "up.log").read_text(), (
            "the server waited Redis out; nothing restarted it"
        )
        said = (root / ".strom-data" / "logs" / "server.log").read_text()
        assert "Redis is unreachable" in said and "Redis is reachable again" in said, said[-3000:]
        assert "Traceback" not in said, said[-3000:]
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(60)
    assert up.returncode == 0, (tmp_path / "up.log").read_text()[-3000:]


def test_the_single_process_web_serves_and_stops_on_sigterm(procs):
    port = free_port()
    web = procs.start("web", "web", "--single-process", STROM_LISTEN=f"127.0.0.1:{port}")
    wait_for(lambda: _ok(f"http://127.0.0.1:{port}/api/health"), 30, 0.1, "the web to serve")
    assert psutil.Process(web.pid).cmdline()[1:] == ["-m", "webhooks.serve", f"127.0.0.1:{port}"], "exec'd in place"
    assert requests.get(f"http://127.0.0.1:{port}/api/runs", headers=AUTH, timeout=5).json()["runs"] == []
    web.send_signal(signal.SIGTERM)
    assert web.wait(10) == 0
    assert not _ok(f"http://127.0.0.1:{port}/api/health")
    assert "Traceback" not in procs.log("web")
