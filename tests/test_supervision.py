"""The pieces that keep processes whole under faults, against a real redis-server that is stopped and
started again: supervised loops, the worker's outbox and spool, capped step logs, consumers that
hand back what an outage interrupted, retention that keeps up, cron hand-overs."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
import redis as redis_lib
from service_env import RedisServer, wait_for

from runner.engine.events import StepFinished, StepStarted
from runner.engine.status import StepStatus
from runner.service.consumer import QueueConsumer
from runner.service.outbox import Outbox
from runner.service.steplog import LINE_OVERHEAD, LogBudget, LogLimits, StepLog
from runner.service.supervision import Health, Loop
from runner.spec.cron import ticks_between
from runner.store import keys
from runner.store.logs import LogStore
from runner.store.repo_events import RepoEventStore


@pytest.fixture
def server(tmp_path):
    redis = RedisServer(directory=tmp_path, appendonly=True)
    yield redis
    if redis.proc.poll() is None:
        redis.stop()


def client(server):
    return redis_lib.Redis.from_url(server.url, decode_responses=True, socket_connect_timeout=1)


# ----------------------------------------------------------------------------- loops


def test_a_loop_waits_out_an_outage_logs_it_once_and_resumes(server, caplog):
    redis, health, stop = client(server), Health("test"), threading.Event()
    passes = []

    def one_pass():
        redis.incr("passes")
        passes.append(time.monotonic())
        return 0.01

    caplog.set_level(logging.WARNING, "strom.health")
    Loop(health, "counter", one_pass, stop).start()
    wait_for(lambda: len(passes) > 3, what="passes")
    server.stop()
    wait_for(lambda: health.loops["counter"].state == "waiting-for-redis", what="the loop to notice")
    snapshot = health.snapshot()
    assert snapshot["redis"] == "unreachable" and snapshot["ok"]
    time.sleep(2)  # the outage goes on: the loop keeps trying, quietly
    server.start()
    back = time.monotonic()
    wait_for(lambda: passes[-1] > back, 5, what="the loop to resume")
    assert passes[-1] - back < 2.5
    stop.set()
    assert health.snapshot()["redis"] == "ok" and health.loops["counter"].state in ("running", "stopped")
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unreachable" in m for m in messages) == 1 and sum("reachable again" in m for m in messages) == 1


def test_a_failing_loop_retries_and_logs_a_repeated_error_once(caplog):
    health, stop, calls = Health("test"), threading.Event(), []

    def one_pass():
        calls.append(1)
        if len(calls) < 3:
            raise ValueError("bad data")
        stop.set()

    caplog.set_level(logging.ERROR, "strom.health")
    import runner.service.supervision as supervision

    saved, supervision.ERROR_BACKOFF = supervision.ERROR_BACKOFF, (0.01,)
    try:
        Loop(health, "picky", one_pass, stop).start().join(5)
    finally:
        supervision.ERROR_BACKOFF = saved
    assert len(calls) == 3 and not health.fatal.is_set()
    assert [r.getMessage() for r in caplog.records] == ["test: loop picky failed; retrying"]


def test_a_loop_that_dies_marks_its_process_fatal():
    health, stop = Health("test"), threading.Event()

    def one_pass():
        raise SystemExit("gone")

    Loop(health, "doomed", one_pass, stop).start().join(5)
    assert health.fatal.is_set() and health.fatal_reason == "loop doomed died: SystemExit: gone"
    assert not health.ok and health.snapshot()["loops"]["doomed"]["state"] == "dead"


# ----------------------------------------------------------------------------- outbox


def test_the_outbox_keeps_lines_and_reports_in_order_through_an_outage(server, tmp_path):
    redis = client(server)
    outbox = Outbox(redis, LogStore(redis), tmp_path / "spool", spool_after=0.0)
    outbox.line("run1", "s", 1, "stdout", "before", time.time(), 70)
    outbox.one_pass()
    server.stop(9)
    outbox.report("run1", StepStarted("s", 1, worker="w"))
    for i in range(3):
        outbox.line("run1", "s", 1, "stdout", f"during {i}", time.time(), 70)
    outbox.report("run1", StepFinished("s", 1, StepStatus.SUCCEEDED, {"ok": True}, None, 0))
    with pytest.raises(redis_lib.ConnectionError):
        outbox.one_pass()
    assert outbox.pending_attempts() == [("run1", "s", 1)]
    spooled = list((tmp_path / "spool").glob("*.json"))
    assert len(spooled) == 1 and json.loads(spooled[0].read_text())["step"] == "s"
    server.start()
    assert outbox.drain(5)
    assert [f["l"] for _, f in redis.xrange(keys.log("run1"))] == ["before", "during 0", "during 1", "during 2"]
    events = [json.loads(raw)["event"] for raw in redis.lrange(keys.EVENTS, 0, -1)]
    assert [e["type"] for e in events] == ["StepStarted", "StepFinished"]
    assert json.loads(redis.get(keys.result("run1", "s", 1)))["event"]["status"] == "succeeded"
    assert outbox.pending_attempts() == [] and not list((tmp_path / "spool").glob("*.json"))


def test_lines_beyond_the_outbox_room_during_an_outage_become_one_notice(server):
    redis = client(server)
    outbox = Outbox(redis, LogStore(redis), None, max_pending=300)
    server.stop(9)
    with pytest.raises(redis_lib.ConnectionError):
        outbox.report("run1", StepStarted("s", 1)) or outbox.one_pass()
    for i in range(10):
        outbox.line("run1", "s", 1, "stdout", f"line {i}", time.time(), 100)
    outbox.report("run1", StepFinished("s", 1, StepStatus.SUCCEEDED))
    server.start()
    assert outbox.drain(5)
    texts = [f["l"] for _, f in redis.xrange(keys.log("run1"))]
    assert texts[:3] == ["line 0", "line 1", "line 2"]
    assert texts[3] == "[strom] 7 line(s) (700 B) of this step could not be kept while Redis was unreachable"


def test_a_spooled_report_is_delivered_by_the_next_worker_on_the_machine(server, tmp_path):
    redis = client(server)
    first = Outbox(redis, LogStore(redis), tmp_path / "spool", spool_after=0.0)
    server.stop(9)
    first.report("run1", StepFinished("s", 2, StepStatus.FAILED, None, "exit code 3", 3))
    first.drain(0.1)  # the worker stops while Redis is away: its report is spooled
    server.start()
    second = Outbox(redis, LogStore(redis), tmp_path / "spool")
    assert second.load_spool("w2") == 1 and second.pending_attempts() == [("run1", "s", 2)]
    assert second.drain(5)
    event = json.loads(redis.lpop(keys.EVENTS))["event"]
    assert (event["step"], event["attempt"], event["error"]) == ("s", 2, "exit code 3")
    assert not list((tmp_path / "spool").iterdir())


# ----------------------------------------------------------------------------- capped step logs


class Collector:
    def __init__(self):
        self.lines = []

    def line(self, job_id, step, attempt, stream, text, at, size):
        self.lines.append((stream, text))


def test_a_step_log_keeps_its_head_and_tail_and_says_what_was_cut():
    out = Collector()
    size = 10 + LINE_OVERHEAD
    log = StepLog(out, "run1", "s", 1, LogLimits(step=10 * size, run=10**9, tail=3 * size), lambda wanted: wanted)
    for i in range(100):
        log.line("stdout", f"line {i:05d}")
    log.close()
    texts = [text for _, text in out.lines]
    assert texts[:7] == [f"line {i:05d}" for i in range(7)]
    assert texts[7] == (
        "[strom] 90 line(s) (900 B) cut here: the log reached its limit (logs.max_step_size is "
        "740 B a step, logs.max_run_size bounds the run); its last 3 line(s) follow"
    )
    assert texts[8:] == ["line 00097", "line 00098", "line 00099"]


def test_parallel_steps_share_their_runs_log_budget(redis_url):
    redis = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    budget = LogBudget(redis, run_limit=3 * 1024 * 1024).for_run(keys.log_bytes("run1"))
    outs = [Collector() for _ in range(4)]
    logs = [
        StepLog(out, "run1", f"s{i}", 1, LogLimits(step=10**9, run=3 * 1024 * 1024, tail=4096), budget)
        for i, out in enumerate(outs)
    ]
    line = "x" * 1000
    for _ in range(2000):  # each step prints about 2 MiB, together 8 MiB
        for log in logs:
            log.line("stdout", line)
    for log in logs:
        log.close()
    stored = sum(len(text) + LINE_OVERHEAD for out in outs for _, text in out.lines)
    assert stored <= 3 * 1024 * 1024 + 4 * 300, stored  # the run's limit, and a notice for each step
    assert int(redis.get(keys.log_bytes("run1"))) <= 3 * 1024 * 1024
    for out in outs:  # each step keeps its beginning, a notice, and its end
        texts = [text for _, text in out.lines]
        assert texts[0] == line and texts[-4].startswith("[strom]") and texts[-3:] == [line] * 3


def test_a_step_whose_run_has_no_budget_left_keeps_only_a_notice():
    out = Collector()
    log = StepLog(out, "run1", "s", 1, LogLimits(step=10**6, run=1000, tail=100), lambda wanted: 0)
    log.line("stdout", "anything")
    log.close()
    assert [text for _, text in out.lines] == [
        "[strom] 1 line(s) (8 B) cut here: the log reached its limit (logs.max_step_size is 976.6 KiB a step, "
        "logs.max_run_size bounds the run); its last 0 line(s) follow"
    ]


# ----------------------------------------------------------------------------- consumers, retention, cron


def test_an_item_whose_handling_an_outage_cut_short_is_handled_again(server):
    redis = client(server)
    redis.rpush("queue", "a", "b")
    seen, cut = [], [True]

    def handle(raw):
        if raw == "a" and cut[0]:
            cut[0] = False
            server.stop(9)
            redis.ping()
        seen.append(raw)

    consumer = QueueConsumer(redis, "queue", "busy", handle, "items")
    with pytest.raises(redis_lib.ConnectionError):
        consumer.one_pass()
    server.start()
    consumer.one_pass()
    consumer.one_pass()
    assert seen == ["a", "b"] and redis.llen("busy") == 0 and redis.llen("queue") == 0


def test_retention_deletes_every_old_event_in_one_pass(redis_url):
    redis = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    store = RepoEventStore(redis, delivery_ttl=3 * 86400)
    for i in range(2500):
        store.receive("ws", {"source": "github", "kind": "push", "delivery": f"d{i}"}, now=1000.0 + i, ignored="old")
    store.receive("ws", {"source": "github", "kind": "push", "delivery": "new"}, now=time.time())
    assert store.delete_older_than(time.time() - 86400) == 2500
    assert redis.zcard(keys.EVENT_LOG) == 1 and redis.zcard(keys.repo_events_of("ws")) == 1
    assert 3 * 86400 - 5 < redis.ttl(keys.delivery("github", "ws", "new")) <= 3 * 86400


def test_a_hand_over_fires_every_tick_since_the_last_one():
    assert ticks_between("* * * * * *", "UTC", 1000.0, 1004.5) == [1001.0, 1002.0, 1003.0, 1004.0]
    assert ticks_between("*/5 * * * * *", "UTC", 1000.0, 1012.0) == [1005.0, 1010.0]
    assert ticks_between("* * * * * *", "UTC", 1000.0, 1000.9) == []
    assert len(ticks_between("* * * * * *", "UTC", 0.0, 5000.0, limit=100)) == 100
