"""Faults production sees, with real processes and a real redis-server: Redis stopped under a busy
service, the scheduler away while steps finish, workers dying between taking and starting a step,
a step printing far too much, a scheduler failing over mid-cron. Nothing may be lost, stuck or
done twice, and no Strom process is restarted by the test to get there.

Every step appends "run step attempt" to a marks file on the host (the copy sandbox lets it), so
the tests count how often each step really ran.
"""

from __future__ import annotations

import json
import signal
import textwrap
import threading
import time
from collections import Counter

import psutil
import pytest
import redis as redis_lib
import requests
from service_env import TOKENS, Procs, RedisServer, free_port, wait_for

from runner.store import keys

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {TOKENS['admin']}"}
MARK = 'echo "$STROM_JOB_ID $STROM_STEP $STROM_ATTEMPT" >> {marks}'


def workspace(marks) -> dict[str, str]:
    mark = MARK.format(marks=marks)
    return {
        ".strom/t.yaml": textwrap.dedent(f"""
        tasks:
          tick:
            flow:
              s: {{ type: script, script: '{mark}' }}
          short:
            flow:
              s: {{ type: script, retry: {{ max_attempts: 2, delay: 0s }}, script: 'sleep 3; {mark}' }}
          long:
            flow:
              s: {{ type: script, retry: {{ max_attempts: 2, delay: 0s }}, script: 'sleep 10; {mark}' }}
          once:
            flow:
              s: {{ type: script, script: 'sleep 6; {mark}' }}
          quick:
            flow:
              s: {{ type: script, retry: {{ max_attempts: 2, delay: 0s }}, script: '{mark}' }}
          chatty:
            flow:
              talk:
                type: script
                script: 'for i in $(seq 1 80); do echo "line $i"; sleep 0.25; done; {mark}'
          delivered:
            input:
              n: {{ type: string }}
            flow:
              s: {{ type: script, script: '{mark}' }}
          flood:
            flow:
              s: {{ type: script, script: 'head -c 200000000 /dev/zero | tr "\\\\0" x; echo; echo the end' }}
          orphans:
            flow:
              s: {{ type: script, script: 'sleep 319 & sleep 320' }}
        triggers:
          every-second: {{ type: scheduler, cron: "* * * * * *", task: tick }}
          deliveries: {{ type: webhook, name: deliveries, task: delivered, input: {{ n: "{{{{ body.n }}}}" }} }}
        """)
    }


class Faults:
    """A private redis-server (AOF on, as `strom up` runs it) and Strom processes against it."""

    def __init__(self, tmp_path, service_workspace):
        self.marks = tmp_path / "marks"
        self.marks.touch()
        self.marks.chmod(0o666)  # steps of a root worker run as uids of their own
        (tmp_path / "redis").mkdir()
        (tmp_path / "logs").mkdir()
        self.redis = RedisServer(directory=tmp_path / "redis", appendonly=True)
        self.client = redis_lib.Redis.from_url(self.redis.url, decode_responses=True)
        root = service_workspace(workspace(self.marks))
        self.procs = Procs(root, self.redis.url, tmp_path / "logs")
        self.procs.env.update(STROM_WORKERS__SANDBOX="copy", STROM_DATA_DIR=str(tmp_path / "data"))
        self.url = ""

    def web(self, **env) -> str:
        port = free_port()
        self.procs.start("web", "web", STROM_LISTEN=f"127.0.0.1:{port}", **env)
        self.url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{self.url}/api/health"), 30, 0.1, "gunicorn to serve")
        return self.url

    def execute(self, task: str) -> str:
        answer = requests.post(
            f"{self.url}/api/workspaces/local/tasks/{task}/execute", json={}, headers=AUTH, timeout=10
        )
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    def run(self, run_id: str) -> dict:
        return requests.get(f"{self.url}/api/runs/{run_id}", headers=AUTH, timeout=10).json()

    def all_finished(self) -> list[dict]:
        runs = requests.get(f"{self.url}/api/runs", params={"limit": 200}, headers=AUTH, timeout=10).json()["runs"]
        return runs if all(r["status"] in ("succeeded", "failed", "cancelled", "timed_out") for r in runs) else []

    def marked(self) -> Counter:
        return Counter(tuple(line.split()[:2]) for line in self.marks.read_text().splitlines())

    def close(self) -> None:
        self.procs.stop_all()
        self.redis.stop()


@pytest.fixture
def faults(tmp_path, service_workspace):
    env = Faults(tmp_path, service_workspace)
    yield env
    env.close()


def _answers(url) -> bool:
    try:
        return requests.get(url, timeout=5).ok
    except requests.RequestException:  # not listening yet, or too busy starting to answer
        return False


def _each_step_ran_once(faults, runs: list[dict]) -> None:
    marked = faults.marked()
    assert all(count == 1 for count in marked.values()), {k: c for k, c in marked.items() if c > 1}
    for run in runs:
        for step in faults.run(run["id"])["steps"]:
            assert step["status"] == "succeeded", (run["task"], run["id"], step["error"], step)
            assert marked[(run["id"], step["name"])] == 1, (run["task"], step)
            assert "worker lost" not in (step["error"] or "")


class Deliveries(threading.Thread):
    """Posts a generic webhook every 50 ms, each with its own Idempotency-Key, and keeps every answer."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.answers, self.stop = url, [], threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.wait(0.05):
            n += 1
            try:
                answer = requests.post(
                    f"{self.url}/hooks/deliveries", json={"n": str(n)}, headers={"Idempotency-Key": f"d{n}"}, timeout=10
                )
                self.answers.append(
                    (time.monotonic(), n, answer.status_code, answer.json(), answer.headers.get("Retry-After"))
                )
            except requests.RequestException as exc:
                self.answers.append((time.monotonic(), n, None, str(exc), None))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_redis_outage_under_load_loses_nothing_and_heals_without_restarts(faults, sig):
    url = faults.web()
    probe_port = free_port()
    faults.procs.start("scheduler", "scheduler", "--health-port", str(probe_port))
    faults.procs.start("worker", "worker", "--name", "w1", "--concurrency", "8")
    chatty = faults.execute("chatty")
    workers = [faults.execute("short") for _ in range(3)]
    deliveries = Deliveries(url)
    deliveries.start()
    wait_for(
        lambda: (
            "line 8"
            in requests.get(f"{url}/api/runs/{chatty}/logs", params={"format": "text"}, headers=AUTH, timeout=5).text
        ),
        20,
        0.05,
        "the chatty step to talk",
    )
    faults.redis.stop(sig)
    during = wait_for(
        lambda: (a := requests.get(f"{url}/api/ready", timeout=5)).status_code == 503 and [a],
        10,
        0.05,
        "the web to notice",
    )[0]
    assert during.headers["Retry-After"] == "5"
    time.sleep(15)  # the outage itself: Redis stays away this long
    assert requests.get(f"http://127.0.0.1:{probe_port}/readyz", timeout=5).status_code == 503
    assert requests.get(f"http://127.0.0.1:{probe_port}/livez", timeout=5).status_code == 200
    faults.redis.start()
    back = time.monotonic()
    first_ok = wait_for(
        lambda: next((at for at, _, status, _, _ in deliveries.answers if at > back and status == 202), None),
        10,
        0.05,
        "a delivery to be taken again",
    )
    assert first_ok - back <= 5, f"deliveries resumed {first_ok - back:.1f}s after Redis came back"
    wait_for(
        lambda: faults.client.zrangebyscore(keys.runs_by("trigger", "local", "every-second"), time.time() - 1, "+inf"),
        10,
        0.1,
        "cron to fire again",
    )
    wait_for(
        lambda: requests.get(f"http://127.0.0.1:{probe_port}/readyz", timeout=5).status_code == 200,
        5,
        0.1,
        "the scheduler to be ready again",
    )
    deliveries.stop.set()
    deliveries.join(15)
    runs = wait_for(faults.all_finished, 60, 0.2, "every run to finish")

    statuses = Counter(status for _, _, status, _, _ in deliveries.answers)
    assert set(statuses) <= {202, 503}, statuses  # never a 500, never a hang
    assert all(retry == "5" for _, _, status, _, retry in deliveries.answers if status == 503)
    acknowledged = [body["run"] for _, _, status, body, _ in deliveries.answers if status == 202]
    assert acknowledged and set(acknowledged) <= {r["id"] for r in runs}, "every acknowledged delivery has its run"
    assert {r["id"] for r in runs} >= {chatty, *workers}
    _each_step_ran_once(faults, runs)
    lines = requests.get(f"{url}/api/runs/{chatty}/logs", params={"format": "text"}, headers=AUTH).text.splitlines()
    assert lines == [f"[talk] line {i}" for i in range(1, 81)], "every line written during the outage is kept"
    for name in ("scheduler", "worker"):
        log = faults.procs.log(name)
        assert log.count("Redis is unreachable") == 1 and log.count("Redis is reachable again") == 1, log[-3000:]
        assert "Traceback" not in log, log[-3000:]
    health = requests.get(f"{url}/api/processes", headers=AUTH, timeout=5).json()["processes"]
    assert {p["kind"] for p in health} == {"scheduler", "worker"}
    assert all(p["ok"] and not p["problems"] for p in health), health


def test_finished_steps_are_not_lost_or_repeated_while_the_scheduler_is_away(faults):
    faults.web()
    faults.procs.start("scheduler", "scheduler")
    faults.procs.start("worker", "worker", "--name", "w1", "--concurrency", "8")
    ids = [faults.execute("short") for _ in range(5)] + [faults.execute("long") for _ in range(2)]
    wait_for(lambda: all(faults.run(i)["steps"][0]["status"] == "running" for i in ids), 20, 0.1, "steps to start")
    faults.procs.kill("scheduler")
    time.sleep(8)  # the scheduler stays away four times lost_after (2s): short steps end, long ones go on
    faults.procs.start("scheduler-2", "scheduler")
    runs = wait_for(faults.all_finished, 40, 0.2, "every run to finish")
    assert set(ids) <= {r["id"] for r in runs}
    _each_step_ran_once(faults, runs)
    assert all(faults.run(i)["steps"][0]["attempt"] == 1 for i in ids)


@pytest.mark.parametrize("failpoint", ["worker-after-take", "worker-after-claim"])
def test_workers_dying_between_taking_and_starting_a_step_leave_nothing_queued(faults, failpoint):
    faults.web()
    faults.procs.start("scheduler", "scheduler")
    ids = [faults.execute("quick") for _ in range(3)]
    for i in range(3):  # each dies taking one step; its step must be handed back to the next
        doomed = faults.procs.start(
            f"doomed-{i}", "worker", "--name", f"doomed-{i}", "--concurrency", "1", STROM_FAILPOINTS=f"{failpoint}=exit"
        )
        assert doomed.wait(30) == 137
    healthy = time.monotonic()
    faults.procs.start("worker", "worker", "--name", "healthy")
    runs = wait_for(faults.all_finished, 2 + 30, 0.2, "every run to finish (lost_after + 30 s)")
    assert time.monotonic() - healthy < 32
    assert set(ids) <= {r["id"] for r in runs}
    _each_step_ran_once(faults, runs)
    assert {faults.run(i)["steps"][0]["worker"] for i in ids} == {"healthy"}
    assert "handed back" in faults.procs.log("scheduler")


def test_a_200_mb_step_log_is_cut_to_its_limit_and_reading_it_costs_the_web_little(faults):
    url = faults.web(STROM_WEB__WORKERS="1")
    faults.procs.start("scheduler", "scheduler")
    faults.procs.start("worker", "worker", "--name", "w1")
    run_id = faults.execute("flood")
    final = wait_for(lambda: (r := faults.run(run_id))["status"] in ("succeeded", "failed") and r, 120, 0.2, "flood")
    assert final["status"] == "succeeded", final
    stored = faults.client.memory_usage(keys.log(run_id))
    assert stored < 70 * 1024 * 1024, f"{stored / 2**20:.0f} MiB stored for a 64 MiB limit"
    pages, after, texts = 0, "0", []
    master = psutil.Process(faults.procs.procs["web"].pid)
    web = list(master.children(recursive=True)) or [master]
    before = sum(p.memory_info().rss for p in web)
    with requests.get(
        f"{url}/api/runs/{run_id}/logs", params={"format": "text"}, headers=AUTH, stream=True, timeout=60
    ) as text:
        size = sum(len(chunk) for chunk in text.iter_content(1 << 20))
    assert 60 * 2**20 < size < 66 * 2**20
    while True:
        page = requests.get(f"{url}/api/runs/{run_id}/logs", params={"after": after}, headers=AUTH, timeout=60).json()
        pages += 1
        texts += [line["text"][:200] for line in page["lines"] if len(line["text"]) < 1000]
        after = page["next"]
        if not page["more"]:
            break
    growth = sum(p.memory_info().rss for p in web) - before
    assert growth < 50 * 2**20, f"the web grew {growth / 2**20:.0f} MiB reading the log"
    assert pages >= 10, "JSON pages are bounded in bytes"
    notice = [t for t in texts if t.startswith("[strom]")]
    assert len(notice) == 1 and "cut here: the log reached its limit (logs.max_step_size is 64.0 MiB" in notice[0], (
        texts
    )
    assert texts[-1] == "the end"


def test_a_killed_worker_takes_its_steps_processes_with_it_without_a_sandbox(faults):
    faults.web()
    faults.procs.start("scheduler", "scheduler")
    faults.procs.start("worker", "worker", "--name", "w1")
    started = time.time() - 1
    faults.execute("orphans")
    sleeps = wait_for(
        lambda: len(found := _processes(started, "sleep 319", "sleep 320")) == 2 and found,
        20,
        0.05,
        "the step's processes",
    )
    worker = faults.procs.procs.pop("worker")
    worker.send_signal(signal.SIGKILL)  # the worker only: its steps lead process groups of their own
    worker.wait(10)
    wait_for(
        lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in sleeps),
        5,
        0.05,
        "the step's processes to die with their worker",
    )


def _processes(since: float, *commands: str) -> list[psutil.Process]:
    return [
        p
        for p in psutil.process_iter(["cmdline", "create_time"])
        if " ".join(p.info["cmdline"] or []) in commands and p.info["create_time"] >= since
    ]


def test_cron_fires_every_tick_exactly_once_across_a_scheduler_failover(faults):
    first = faults.procs.start("scheduler-1", "scheduler")
    second = faults.procs.start("scheduler-2", "scheduler")
    index = keys.runs_by("trigger", "local", "every-second")
    wait_for(lambda: faults.client.zcard(index) >= 3, 15, 0.05, "ticks while both run")
    holder = faults.client.get(keys.CRON_LEASE)
    doomed = "scheduler-1" if f"-{first.pid}-" in holder else "scheduler-2"
    assert f"-{(first if doomed == 'scheduler-1' else second).pid}-" in holder
    faults.procs.kill(doomed)
    killed = time.time()
    wait_for(lambda: faults.client.zcount(index, killed + 12, "+inf") >= 2, 30, 0.1, "the other to take over")
    ids = faults.client.zrange(index, 0, -1)
    ticks = sorted(json.loads(faults.client.get(keys.job(i)))["event"]["scheduled_at"] for i in ids)
    assert len(set(ticks)) == len(ticks), "no tick fired twice"
    assert ticks == [ticks[0] + i for i in range(len(ticks))], "no tick was skipped during the hand-over"


def test_a_loop_that_dies_takes_its_process_down_for_its_supervisor(faults):
    proc = faults.procs.start("scheduler", "scheduler", STROM_FAILPOINTS="loop:timers=raise")
    assert proc.wait(20) == 70
    assert "loop timers died: SystemExit: failpoint loop:timers" in faults.procs.log("scheduler")


def test_a_dead_step_loop_takes_a_scheduler_with_steps_down_too(faults):
    """`strom scheduler --steps N` (and `strom up`'s server) run steps as a worker would: a step loop that
    dies stops the process, as it stops a worker's."""
    proc = faults.procs.start("scheduler", "scheduler", "--steps", "1", STROM_FAILPOINTS="loop:slot-0=raise")
    assert proc.wait(20) == 70
    log = faults.procs.log("scheduler")
    assert "slot-0 died: SystemExit: failpoint loop:slot-0; exiting with status 70" in log


def _stop_a_worker_mid_step(faults, task: str, grace: str) -> str:
    """Run `task` on worker "leaving", SIGTERM it while the step runs, and see it exit 0: the run's id."""
    faults.web()
    faults.procs.start("scheduler", "scheduler")
    leaving = faults.procs.start("leaving", "worker", "--name", "leaving", STROM_WORKERS__SHUTDOWN_GRACE=grace)
    run_id = faults.execute(task)
    wait_for(lambda: faults.run(run_id)["steps"][0]["status"] == "running", 20, 0.1, "the step to start")
    leaving.send_signal(signal.SIGTERM)
    assert leaving.wait(30) == 0
    return run_id


def test_a_worker_stopped_mid_step_hands_it_back_and_exits_0(faults):
    run_id = _stop_a_worker_mid_step(faults, "once", grace="1s")
    faults.procs.start("staying", "worker", "--name", "staying")
    runs = wait_for(faults.all_finished, 30, 0.2, "the run to finish")
    _each_step_ran_once(faults, runs)
    step = faults.run(run_id)["steps"][0]
    assert (step["worker"], step["attempt"], step["handed_back"]) == ("staying", 2, 1)
    assert f"handed back attempt 1 of {run_id}/s" in faults.procs.log("leaving")


def test_a_worker_stopped_mid_step_lets_it_finish_within_its_grace(faults):
    run_id = _stop_a_worker_mid_step(faults, "short", grace="30s")
    run = wait_for(lambda: (r := faults.run(run_id))["status"] != "running" and r, 10, 0.2, "the run to finish")
    _each_step_ran_once(faults, [run])  # (cron's runs wait for a worker: this test has none left)
    step = run["steps"][0]
    assert (step["status"], step["worker"], step["attempt"], step["handed_back"]) == ("succeeded", "leaving", 1, 0)
