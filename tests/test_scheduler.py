"""The scheduler: cron ticks fire exactly once with two schedulers, catch up after a restart, obey concurrency."""

from __future__ import annotations

import time

import pytest
from service_env import make_config

from runner.runs.service import Service
from runner.service.scheduler import Scheduler
from runner.spec.cron import due_fire
from runner.store import RunFilter, keys

EVERY_SECOND = {
    ".strom/t.yaml": """
    tasks:
      tick:
        input:
          at: { type: string }
        flow:
          s: { type: script, script: "echo {{ input.at }}" }
      long:
        flow:
          s: { type: script, script: "sleep 30" }
    triggers:
      every-second:
        type: scheduler
        cron: "* * * * * *"
        task: tick
        input: { at: "{{ event.scheduled_at }}" }
    """
}


@pytest.mark.parametrize(
    "last, now, catch_up, expected",
    [
        (1000.0, 1000.0, "latest", None),
        (999.0, 1000.0, "latest", 1000.0),
        (900.0, 1000.4, "latest", 1000.0),
        (900.0, 1000.0, "none", 1000.0),
        (900.0, 1010.0, "none", 1010.0),
    ],
)
def test_due_fire_for_a_per_second_cron(last, now, catch_up, expected):
    assert due_fire("* * * * * *", "UTC", last, now, catch_up) == expected


def test_catch_up_none_marks_an_old_tick_handled_without_firing_it():
    hour = 1_800_000_000 - 1_800_000_000 % 3600
    assert due_fire("0 * * * *", "UTC", hour - 3 * 3600, hour + 600, "none") == -float(hour)
    assert due_fire("0 * * * *", "UTC", hour - 3 * 3600, hour + 600, "latest") == float(hour)


def test_due_fire_in_a_time_zone_and_only_the_latest_missed_tick():
    # 2026-01-15 is a Thursday; "0 2 * * *" in Copenhagen is 01:00 UTC in winter
    last = 1768438800.0  # 2026-01-15T01:00:00Z
    now = last + 3 * 86400 + 3600  # three days later, 02:00 UTC
    assert due_fire("0 2 * * *", "Europe/Copenhagen", last, now) == last + 3 * 86400


def _fired(service, workspace="local", trigger="every-second"):
    return service.runs.list(RunFilter(workspace=workspace, trigger=trigger), limit=200).runs


def test_two_schedulers_fire_each_tick_exactly_once(service_workspace, redis_url):
    config = make_config(service_workspace(EVERY_SECOND), redis_url)
    service = Service(config)
    one, two = Scheduler(Service(config)), Scheduler(Service(config))
    start = time.time()
    service.redis.set(keys.cron_last("local", "every-second"), int(start))
    for now in [start + i * 0.25 for i in range(1, 17)]:  # four seconds, both schedulers on every pass
        one.cron.fire(now)
        two.cron.fire(now)
    fired = _fired(service)
    ticks = sorted(s.event["scheduled_at"] for s in fired)
    assert ticks == [float(int(start) + i) for i in range(1, 5)]
    assert len({s.id for s in fired}) == 4
    assert {s.inputs["at"] for s in fired} == {str(t) for t in ticks}
    assert {s.source for s in fired} == {"schedule"}


def test_only_the_lease_holder_fires(service_workspace, redis_url):
    config = make_config(service_workspace(EVERY_SECOND), redis_url)
    one, two = Scheduler(Service(config)), Scheduler(Service(config))
    start = time.time()
    one.redis.set(keys.cron_last("local", "every-second"), int(start))
    assert one.cron.fire(start + 1.1) and one.lease.held
    assert two.cron.fire(start + 2.1) == [] and not two.lease.held
    one.stop()
    assert two.cron.fire(start + 3.1) and two.lease.held


def test_a_restart_fires_only_the_last_missed_tick(service_workspace, redis_url):
    config = make_config(service_workspace(EVERY_SECOND), redis_url)
    service = Service(config)
    now = time.time()
    service.redis.set(keys.cron_last("local", "every-second"), int(now) - 300)
    Scheduler(service).cron.fire(now)
    assert [s.event["scheduled_at"] for s in _fired(service)] == [float(int(now))]
    Scheduler(service).cron.fire(now + 0.1)
    assert len(_fired(service)) == 1, "the same tick is never fired twice"


def test_catch_up_none_skips_ticks_missed_while_down(service_workspace, redis_url):
    files = {".strom/t.yaml": EVERY_SECOND[".strom/t.yaml"].replace('cron: "* * * * * *"', 'cron: "0 * * * *"')}
    config = make_config(service_workspace(files), redis_url, STROM_SCHEDULER__CATCH_UP="none")
    service = Service(config)
    now = time.time()
    hour = int(now) - int(now) % 3600
    service.redis.set(keys.cron_last("local", "every-second"), hour - 3 * 3600)
    Scheduler(service).cron.fire(hour + 600)
    assert _fired(service) == []
    assert float(service.redis.get(keys.cron_last("local", "every-second"))) == float(hour)


def test_a_new_trigger_starts_counting_from_now(service_workspace, redis_url):
    service = Service(make_config(service_workspace(EVERY_SECOND), redis_url))
    assert Scheduler(service).cron.fire(time.time()) == []
    assert service.redis.get(keys.cron_last("local", "every-second")) is not None


@pytest.mark.parametrize("policy, expected", [("allow", 2), ("skip", 1), ("cancel_previous", 2)])
def test_concurrency_policies(service_workspace, redis_url, policy, expected):
    files = {
        ".strom/t.yaml": EVERY_SECOND[".strom/t.yaml"]
        .replace("task: tick", "task: long")
        .replace('input: { at: "{{ event.scheduled_at }}" }', f"concurrency: {policy}")
    }
    service = Service(make_config(service_workspace(files), redis_url))
    scheduler = Scheduler(service)
    start = time.time()
    service.redis.set(keys.cron_last("local", "every-second"), int(start))
    scheduler.cron.fire(int(start) + 1.1)
    scheduler.cron.fire(int(start) + 2.1)
    fired = sorted(_fired(service), key=lambda s: s.created_at)
    assert len(fired) == expected
    if policy == "cancel_previous":
        first = service.runs.load(fired[0].id)
        assert first.cancel_requested and first.cancel_reason == "superseded by trigger every-second"
