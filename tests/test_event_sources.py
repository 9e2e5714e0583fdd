"""Event source triggers against a real Redis, scheduler and worker: every OUTPUT line of the consumer starts its
target run exactly once, across a scheduler replaced mid-stream; `max_in_flight` holds lines back; the consumer
is restarted as `restart_policy` says; removing the trigger cancels the consumer; the API shows the source."""

from __future__ import annotations

import itertools
import json
import re
import textwrap

import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from service_env import TOKENS, make_config, serving, signed_in, stack, wait_for

from runner.engine import RunStatus
from runner.runs.service import Service
from runner.service.event_sources import parse_event
from runner.service.scheduler import Scheduler
from runner.store import RunFilter, keys

FEED = """
    tasks:
      watch:
        flow:
          w:
            type: script
            script: |
              for i in 1 2 3 4 5; do echo "OUTPUT: {\\"n\\": $i}"; echo "noise $i"; sleep 0.3; done
              sleep 60
      handle:
        input: { n: { type: integer } }
        flow:
          h: { type: script, script: 'echo "handled {{ input.n }}"' }
    triggers:
      feed: { type: event_source, task: watch, target_task: handle, backoff_secs: 1 }
    """

BURSTS = """
    tasks:
      burst:
        input: { gen: { type: integer } }
        flow:
          b:
            type: script
            script: |
              for i in 1 2 3; do echo "OUTPUT: {\\"n\\": $i}"; done
              echo "OUTPUT: not json"
              echo 'OUTPUT: [1, 2]'
              exit {{ 3 if input.gen == 1 else 0 }}
      slow:
        input: { n: { type: integer } }
        flow:
          s: { type: script, script: 'sleep 0.3; echo "slow {{ input.n }}"' }
    triggers:
      bursts:
        type: event_source
        task: burst
        input: { gen: "{{ event.generation }}" }
        target_task: slow
        max_in_flight: 1
        restart_policy: on_failure
        backoff_secs: 0
    """


def runs_of(service, task):
    return service.runs.list(RunFilter(workspace="local", task=task), limit=100).runs


def test_each_line_starts_its_run_once_across_a_replaced_scheduler_and_removal_cancels(service_workspace, redis_url):
    root = service_workspace({".strom/feed.yaml": FEED})
    config = make_config(root, redis_url)
    with stack(config, scheduler=False) as service, serving(config, service) as server:
        first = Scheduler(Service(config))
        first.start()
        try:
            wait_for(lambda: runs_of(service, "handle"), 30, what="the first event's run")
        finally:
            first.stop()  # mid-stream: the consumer goes on printing
        second = Scheduler(Service(config))
        second.start()
        try:
            done = wait_for(
                lambda: (
                    (found := runs_of(service, "handle"))
                    and len(found) >= 5
                    and all(s.status.terminal for s in found)
                    and found
                ),
                30,
                what="five handled events",
            )
            [consumer] = runs_of(service, "watch")
            assert sorted(s.inputs["n"] for s in done) == [1, 2, 3, 4, 5], "every line once: none lost, none twice"
            assert {s.status for s in done} == {RunStatus.SUCCEEDED}
            assert {(s.source, s.trigger, s.event["source_run"]) for s in done} == {
                ("event_source", "feed", consumer.id)
            }
            assert consumer.status is RunStatus.RUNNING and consumer.event == {
                "kind": "event_source",
                "trigger": "feed",
                "generation": 1,
            }
            answer = requests.get(
                f"{server.url}/api/workspaces/local/triggers",
                headers={"Authorization": f"Bearer {TOKENS['viewer']}"},
                timeout=10,
            ).json()
            [feed] = answer["triggers"]
            assert feed["target_task"] == "handle" and feed["restart_policy"] == "always"
            source = feed["event_source"]
            assert (source["consumer_run"], source["consumer_status"], source["delivered"]) == (
                consumer.id,
                "running",
                5,
            )

            page = signed_in(server, "viewer").get(f"{server.url}/tasks", timeout=10).text
            shown = re.search(r'<span class="event-source" data-source="feed">(.*?)</span>\s*</li>', page, re.S).group(
                1
            )
            assert f'href="/runs/{consumer.id}"' in shown and "5 delivered" in shown and "running" in shown
            assert "each OUTPUT line starts <b>handle</b>" in page

            end = service.redis.hget(keys.event_source("local", "feed"), "cursor")
            service.redis.hset(keys.event_source("local", "feed"), "cursor", "0-0")  # as if saving it never happened
            wait_for(lambda: service.redis.hget(keys.event_source("local", "feed"), "cursor") >= end, 10, what="reread")
            assert len(runs_of(service, "handle")) == 5, "lines read again start nothing again"

            (root / ".strom/feed.yaml").write_text(textwrap.dedent(FEED).split("triggers:")[0])  # the trigger goes
            wait_for(
                lambda: service.runs.load(consumer.id).status is RunStatus.CANCELLED, 20, what="the consumer stops"
            )
            wait_for(lambda: not service.redis.exists(keys.event_source("local", "feed")), 10, what="forgotten")
            assert "gone from the workspace's definitions" in service.runs.load(consumer.id).error
            assert len(runs_of(service, "handle")) == 5
        finally:
            second.stop()


def test_max_in_flight_holds_lines_back_and_on_failure_restarts_until_a_consumer_succeeds(service_workspace, redis_url):
    config = make_config(service_workspace({".strom/bursts.yaml": BURSTS}), redis_url)
    with stack(config) as service:
        key = keys.event_source("local", "bursts")
        wait_for(lambda: service.redis.hget(key, "stopped"), 60, what="the source to stop by its policy")
        state = service.redis.hgetall(key)
        assert state["stopped"] == "the consumer run succeeded; restart_policy: on_failure"
        consumers = sorted(runs_of(service, "burst"), key=lambda s: s.created_at)
        assert [(s.event["generation"], s.status) for s in consumers] == [
            (1, RunStatus.FAILED),
            (2, RunStatus.SUCCEEDED),
        ], "the failed consumer was started again, the succeeded one was not"
        slow = wait_for(
            lambda: (
                (found := runs_of(service, "slow"))
                and len(found) == 6
                and all(s.status.terminal for s in found)
                and found
            ),
            30,
            what="three events of each consumer",
        )
        slow.sort(key=lambda s: s.created_at)
        assert [s.inputs["n"] for s in slow] == [1, 2, 3, 1, 2, 3], "in order, the first consumer's lines first"
        for before, after in itertools.pairwise(slow):
            assert after.created_at >= before.finished_at, "max_in_flight: 1 - one run at a time"
        assert (state["delivered"], state["refused"]) == ("6", "4")
        assert "must be a JSON object" in state["last_error"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        JSON.map(json.dumps),
        st.text(max_size=200),
        st.integers(1, 100_000).map(lambda depth: "[" * depth + "]" * depth),
        st.integers(1, 100_000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
    )
)
def test_an_output_line_gives_an_object_as_inputs_or_a_reason_and_never_raises(raw):
    inputs, problem = parse_event(raw)
    if inputs is None:
        assert problem and len(problem) < 300
    else:
        assert isinstance(inputs, dict) and problem is None and inputs == json.loads(raw)
