"""The engine's rules, driven by hand: events in, state and commands out. No processes, no I/O."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from conftest import Sim

from runner.engine import (
    AwaitApproval,
    Cancel,
    CancelChild,
    CancelStep,
    ChildFinished,
    DispatchStep,
    RetryRun,
    RunFinished,
    RunHooks,
    RunStatus,
    StartChild,
    StepAbandoned,
    StepFinished,
    StepStarted,
    StepStatus,
    Tick,
    advance,
)
from runner.engine.core import LOST_GRACE, MAX_DEPTH
from runner.engine.retry import retry_delay
from runner.engine.status import RUN_TRANSITIONS, STEP_TRANSITIONS
from runner.engine.truth import is_truthy
from runner.engine.work import StepWork
from runner.errors import EngineError, InputError
from runner.spec.model import Retry

S = StepStatus

CHAIN = """
tasks:
  t:
    flow:
      a: { type: script, script: "echo a" }
      b: { type: script, script: "echo b", depends_on: [a] }
      c: { type: script, script: "echo c", depends_on: [b] }
"""


def test_readiness_follows_depends_on():
    sim = Sim(
        """
        tasks:
          t:
            flow:
              a: { type: script, script: "true" }
              b: { type: script, script: "true" }
              c: { type: script, script: "true", depends_on: [a, b] }
        """,
        "t",
    )
    sim.start()
    assert sim.dispatched() == ["a", "b"]
    assert sim.state.status is RunStatus.QUEUED
    sim.succeed("a")
    assert sim.dispatched() == [] and sim.status("c") is S.PENDING
    assert sim.state.status is RunStatus.RUNNING
    sim.succeed("b")
    assert sim.dispatched() == ["c"]
    sim.succeed("c")
    assert sim.state.status is RunStatus.SUCCEEDED
    assert [type(c) for c in sim.commands] == [RunFinished]


def test_a_failure_skips_everything_downstream_and_fails_the_run():
    sim = Sim(CHAIN, "t")
    sim.start()
    sim.fail("a", "exit code 2")
    assert sim.statuses() == {"a": "failed", "b": "skipped", "c": "skipped"}
    assert sim.state.steps["b"].skip_reason == "dependency a failed"
    assert sim.state.steps["c"].skip_reason == "dependency b was skipped after a failure"
    assert sim.state.status is RunStatus.FAILED
    assert sim.state.error == "step a failed: exit code 2"


WHEN = """
tasks:
  t:
    input:
      go: { type: string, default: "" }
    flow:
      a:
        type: script
        script: "true"
        when: "{{ input.go }}"
      b: { type: script, script: "true", depends_on: [a] }
      c: { type: script, script: "true" }
      d: { type: script, script: "true", depends_on: [a, c] }
"""


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", False),
        ("false", False),
        ("False", False),
        ("0", False),
        ("0.0", False),
        ("-0", False),
        ("null", False),
        ("NULL", False),
        ("none", False),
        ("None", False),
        ("[]", False),
        ("{}", False),
        ("  false \n", False),
        ("true", True),
        ("1", True),
        ("yes", True),
        ("no", True),
        ("[1]", True),
        ("x", True),
    ],
)
def test_when_truthiness(text, expected):
    assert is_truthy(text) is expected


@pytest.mark.parametrize(
    "value, runs", [("", False), ("false", False), ("0", False), ("none", False), ("true", True), ("deploy", True)]
)
def test_when_skips_and_the_skip_cascades_only_when_every_dependency_skipped(value, runs):
    sim = Sim(WHEN, "t", inputs={"go": value})
    sim.start()
    if runs:
        assert "a" in sim.dispatched()
        return
    assert sim.status("a") is S.SKIPPED and sim.state.steps["a"].skip_reason.startswith("condition is false")
    assert sim.status("b") is S.SKIPPED and sim.state.steps["b"].skip_reason == "all dependencies were skipped"
    assert sim.dispatched() == ["c"]
    sim.succeed("c")
    assert sim.dispatched() == ["d"], "a skipped dependency counts as satisfied when another one completed"
    sim.succeed("d")
    assert sim.state.status is RunStatus.SUCCEEDED


def test_a_when_that_cannot_render_fails_the_step():
    sim = Sim(
        """
        tasks:
          t:
            flow:
              a: { type: script, script: "true", when: "{{ input.missing == 'x' }}" }
        """,
        "t",
    )
    sim.start()
    assert sim.status("a") is S.FAILED
    assert "input has no field 'missing'" in sim.state.steps["a"].error
    assert "field 'when'" in sim.state.steps["a"].error and ".strom/test.yaml:4:" in sim.state.steps["a"].error
    assert sim.state.status is RunStatus.FAILED


def test_when_sees_step_outputs_by_underscored_name():
    sim = Sim(
        """
        tasks:
          t:
            flow:
              check-data: { type: script, script: "true" }
              big:
                type: script
                script: "echo {{ steps['check-data'].output.count }}"
                depends_on: [check-data]
                when: "{{ check_data.output.count >= 1000 }}"
        """,
        "t",
    )
    sim.start()
    sim.succeed("check-data", {"count": 1500})
    assert sim.dispatched() == ["big"]
    assert sim.work("big").payload.script == "echo 1500"


FOR_EACH = """
tasks:
  t:
    flow:
      fetch: { type: script, script: "true" }
      process:
        type: script
        depends_on: [fetch]
        for_each: "{{ fetch.output.items }}"
        script: "echo {{ each.item }} {{ each.index }}/{{ each.total }}"
      aggregate:
        type: script
        depends_on: [process]
        script: "echo {{ process.output | json_encode() }}"
"""


def test_for_each_fans_out_in_parallel_and_collects_ordered_output():
    sim = Sim(FOR_EACH, "t")
    sim.start()
    sim.succeed("fetch", {"items": ["a", "b", "c"]})
    assert sim.dispatched() == ["process[0]", "process[1]", "process[2]"]
    assert sim.work("process[1]").payload.script == "echo b 1/3"
    assert sim.work("process[1]").env["STROM_EACH_INDEX"] == "1"
    sim.succeed("process[2]", {"r": "c"})
    sim.succeed("process[0]", {"r": "a"})
    assert sim.status("process") is S.RUNNING
    sim.succeed("process[1]", {"r": "b"})
    assert sim.status("process") is S.SUCCEEDED
    assert sim.state.steps["process"].output == [{"r": "a"}, {"r": "b"}, {"r": "c"}]
    assert sim.work("aggregate").payload.script == 'echo [{"r":"a"},{"r":"b"},{"r":"c"}]'


SEQUENTIAL = """
    tasks:
      t:
        flow:
          migrate:
            type: script
            for_each: [s1, s2, s3]
            sequential: true
            script: "migrate {{ each.item }}"
    """


def test_for_each_sequential_runs_one_at_a_time_and_stops_at_a_failure():
    sim = Sim(SEQUENTIAL, "t")
    sim.start()
    assert sim.dispatched() == ["migrate[0]"]
    sim.succeed("migrate[0]")
    assert sim.dispatched() == ["migrate[1]"]
    sim.fail("migrate[1]")
    assert sim.status("migrate[2]") is S.SKIPPED
    assert sim.status("migrate") is S.FAILED
    assert sim.state.steps["migrate"].error == "1 of 3 items failed: [1] boom"
    assert sim.state.steps["migrate"].output == [None, None, None]
    assert sim.state.status is RunStatus.FAILED


def test_for_each_with_continue_on_failure_keeps_going_and_tolerates_the_failure():
    sim = Sim(
        """
        tasks:
          t:
            flow:
              each:
                type: script
                for_each: [a, b]
                sequential: true
                continue_on_failure: true
                script: "true"
              after: { type: script, script: "true", depends_on: [each] }
        """,
        "t",
    )
    sim.start()
    sim.fail("each[0]")
    assert sim.dispatched() == ["each[1]"]
    sim.succeed("each[1]", {"ok": 1})
    assert sim.status("each") is S.FAILED and sim.state.steps["each"].output == [None, {"ok": 1}]
    assert sim.dispatched() == ["after"], "a tolerated failure lets dependents run"
    sim.succeed("after")
    assert sim.state.status is RunStatus.SUCCEEDED


@pytest.mark.parametrize(
    "items, status, reason",
    [
        ("[]", S.SKIPPED, "for_each gave an empty list"),
        ('"not a list"', S.FAILED, "for_each must give a list, got str"),
        ("{ a: 1 }", S.FAILED, "for_each must give a list, got dict"),
    ],
)
def test_for_each_with_nothing_or_something_else(items, status, reason):
    sim = Sim(
        """
        tasks:
          t:
            flow:
              src: { type: script, script: "true" }
              loop:
                type: script
                depends_on: [src]
                for_each: "{{ src.output.items }}"
                script: "true"
        """,
        "t",
    )
    sim.start()
    sim.succeed("src", {"items": {"[]": [], '"not a list"': "not a list", "{ a: 1 }": {"a": 1}}[items]})
    run = sim.state.steps["loop"]
    assert run.status is status
    assert reason in (run.skip_reason or run.error)


def test_for_each_accepts_a_json_encoded_list():
    sim = Sim(
        """
        tasks:
          t:
            flow:
              loop:
                type: script
                for_each: '{{ ["x", "y"] | json_encode() }}'
                script: "echo {{ each.item }}"
        """,
        "t",
    )
    sim.start()
    assert sim.dispatched() == ["loop[0]", "loop[1]"]


def test_continue_on_failure_runs_after_a_failed_dependency_and_does_not_fail_the_run():
    sim = Sim(
        """
        tasks:
          t:
            flow:
              deploy: { type: script, script: "true" }
              notify: { type: script, script: "true", depends_on: [deploy], continue_on_failure: true }
        """,
        "t",
    )
    sim.start()
    sim.fail("deploy")
    assert sim.dispatched() == ["notify"]
    sim.fail("notify")
    assert sim.state.status is RunStatus.FAILED, "deploy's own failure is not tolerated"


def test_continue_on_failure_runs_after_a_failure_several_steps_up():
    sim = Sim(
        """
        tasks:
          t:
            flow:
              build: { type: script, script: "true" }
              deploy: { type: script, script: "true", depends_on: [build] }
              notify: { type: script, script: "true", depends_on: [deploy], continue_on_failure: true }
        """,
        "t",
    )
    sim.start()
    sim.fail("build")
    assert sim.status("deploy") is S.SKIPPED
    assert sim.dispatched() == ["notify"]


def test_a_tolerated_failure_does_not_fail_the_run():
    sim = Sim(
        """
        tasks:
          t:
            flow:
              lint: { type: script, script: "true", continue_on_failure: true }
              test: { type: script, script: "true", depends_on: [lint] }
        """,
        "t",
    )
    sim.start()
    sim.fail("lint")
    assert sim.dispatched() == ["test"]
    sim.succeed("test")
    assert sim.state.status is RunStatus.SUCCEEDED


RETRY = """
tasks:
  t:
    flow:
      flaky:
        type: script
        script: "true"
        retry: { max_attempts: 3, delay: 10s, backoff: exponential }
"""


def test_retry_counts_every_attempt_and_waits_between_them():
    sim = Sim(RETRY, "t")
    sim.start()
    sim.fail("flaky", "first")
    [dispatch] = sim.of(DispatchStep)
    assert dispatch.work.attempt == 2 and dispatch.not_before == sim.now + 10
    assert sim.status("flaky") is S.QUEUED and sim.state.steps["flaky"].error == "first"
    sim.fail("flaky", "second")
    [dispatch] = sim.of(DispatchStep)
    assert dispatch.work.attempt == 3 and dispatch.not_before == sim.now + 20
    sim.fail("flaky", "third")
    assert sim.of(DispatchStep) == [], "max_attempts: 3 means three attempts in all"
    assert sim.status("flaky") is S.FAILED and sim.state.steps["flaky"].attempt == 3
    assert sim.state.status is RunStatus.FAILED


def test_retry_ends_at_the_first_success_and_timeouts_are_retried_too():
    sim = Sim(RETRY, "t")
    sim.start()
    sim.finish("flaky", S.TIMED_OUT, error="timed out")
    assert sim.of(DispatchStep)[0].work.attempt == 2
    sim.succeed("flaky", {"ok": True})
    assert sim.state.status is RunStatus.SUCCEEDED and sim.state.output == {"ok": True}


def test_a_lost_worker_is_retried_and_an_unschedulable_step_fails_at_once():
    sim = Sim(RETRY, "t")
    sim.start()
    sim.send(StepStarted("flaky", 1))
    sim.send(StepAbandoned("flaky", 1, "worker lost: w1 stopped sending heartbeats"))
    [dispatch] = sim.of(DispatchStep)
    assert dispatch.work.attempt == 2 and sim.state.steps["flaky"].error.startswith("worker lost")
    sim.send(StepAbandoned("flaky", 2, "no live worker offers ability 'script'", retry=False))
    assert sim.status("flaky") is S.FAILED and sim.state.steps["flaky"].attempt == 2
    assert sim.state.error == "step flaky failed: no live worker offers ability 'script'"


def test_a_step_handed_back_by_a_stopping_worker_runs_again_without_using_a_try():
    sim = Sim(RETRY, "t")
    sim.start()
    sim.send(StepStarted("flaky", 1))
    sim.send(StepAbandoned("flaky", 1, "worker w1 shut down during the step and handed it back", handed_back=True))
    [dispatch] = sim.of(DispatchStep)
    assert (dispatch.work.attempt, dispatch.not_before) == (2, None), "at once: the step did not fail"
    assert sim.state.steps["flaky"].handed_back == 1 and sim.status("flaky") is S.QUEUED
    for attempt, delay in ((2, 10), (3, 20)):  # still three tries, and the first retry waits the first delay
        sim.fail("flaky")
        [dispatch] = sim.of(DispatchStep)
        assert (dispatch.work.attempt, dispatch.not_before) == (attempt + 1, sim.now + delay)
    sim.fail("flaky")
    assert sim.of(DispatchStep) == [] and sim.status("flaky") is S.FAILED and sim.state.steps["flaky"].attempt == 4


def test_hand_backs_end_after_five_and_a_cancelled_run_is_not_run_again():
    sim = Sim(RETRY, "t")
    sim.start()
    for attempt in range(1, 6):
        sim.send(StepAbandoned("flaky", attempt, "handed back", handed_back=True))
        assert sim.of(DispatchStep)[0].work.attempt == attempt + 1
    sim.send(StepAbandoned("flaky", 6, "handed back", handed_back=True))
    assert sim.state.steps["flaky"].error == "handed back (5 times)" and sim.state.steps["flaky"].handed_back == 5
    cancelled = Sim(RETRY, "t")
    cancelled.start()
    cancelled.send(StepStarted("flaky", 1))
    cancelled.send(Cancel(by="admin"))
    cancelled.send(StepAbandoned("flaky", 1, "handed back", handed_back=True))
    assert cancelled.of(DispatchStep) == [] and cancelled.status("flaky") is S.CANCELLED


def test_a_stale_report_from_an_earlier_attempt_is_refused():
    sim = Sim(RETRY, "t")
    sim.start()
    sim.fail("flaky")
    before = sim.state
    with pytest.raises(EngineError, match="attempt 1 cannot finish"):
        advance(sim.state, StepFinished("flaky", 1, S.SUCCEEDED), sim.ctx, sim.now)
    assert sim.state is before


@pytest.mark.parametrize(
    "policy, attempt, delay",
    [
        (Retry(3, 30, "fixed"), 1, 30),
        (Retry(3, 30, "fixed"), 2, 30),
        (Retry(5, 5, "exponential"), 1, 5),
        (Retry(5, 5, "exponential"), 2, 10),
        (Retry(5, 5, "exponential"), 4, 40),
        (Retry(10, 5, "exponential"), 9, 320),
        (Retry(10, 5, "exponential"), 12, 320),
        (Retry(3, 0, "exponential"), 2, 0),
    ],
)
def test_retry_delays(policy, attempt, delay):
    assert retry_delay(policy, attempt) == delay


def test_retry_jitter_stays_within_a_quarter_and_is_deterministic():
    policy = Retry(10, 10, "fixed", jitter=True)
    delays = [retry_delay(policy, 1, seed=f"job{i}:s") for i in range(200)]
    assert all(7.5 <= d <= 12.5 for d in delays)
    assert len({round(d, 6) for d in delays}) > 150
    assert retry_delay(policy, 1, seed="x") == retry_delay(policy, 1, seed="x")


def test_step_timeout_sets_the_deadline_and_a_silent_worker_is_timed_out_after_a_grace():
    sim = Sim(
        """
        tasks:
          t:
            flow:
              slow: { type: script, script: "sleep 100", timeout: 30s }
        """,
        "t",
    )
    sim.start()
    assert sim.work("slow").timeout == 30
    sim.send(StepStarted("slow", 1))
    assert sim.state.steps["slow"].deadline == sim.now + 30
    assert sim.wake_at == sim.now + 30 + LOST_GRACE
    sim.send(Tick(), at=sim.now + 30 + LOST_GRACE - 1)
    assert sim.status("slow") is S.RUNNING
    sim.send(Tick(), at=sim.now + 1)
    assert sim.status("slow") is S.TIMED_OUT
    assert any(isinstance(c, CancelStep) for c in sim.commands)
    assert sim.state.status is RunStatus.FAILED


def test_task_timeout_cancels_what_runs_and_ends_timed_out():
    sim = Sim(
        """
        tasks:
          t:
            timeout: 1m
            flow:
              a: { type: script, script: "true" }
              b: { type: script, script: "true", depends_on: [a] }
        """,
        "t",
    )
    start = sim.now
    sim.start()
    sim.send(StepStarted("a", 1))
    assert sim.wake_at == start + 60
    sim.send(Tick(), at=start + 60)
    assert [type(c) for c in sim.commands] == [CancelStep]
    assert sim.status("b") is S.CANCELLED
    assert not sim.state.status.terminal, "the run ends when the running step reports"
    sim.finish("a", S.CANCELLED, error="cancelled")
    assert sim.state.status is RunStatus.TIMED_OUT
    assert sim.state.error == "run timed out after 1m00s"


def test_cancel_stops_everything_and_is_refused_twice():
    sim = Sim(
        """
        tasks:
          t:
            flow:
              a: { type: script, script: "true" }
              b: { type: script, script: "true" }
              c: { type: script, script: "true", depends_on: [a] }
        """,
        "t",
    )
    sim.start()
    sim.send(StepStarted("a", 1))
    sim.send(Cancel("stop it", by="bob"))
    cancels = sorted((c.step, c.attempt) for c in sim.of(CancelStep))
    assert cancels == [("a", 1), ("b", 1)]
    assert sim.status("b") is S.CANCELLED and sim.status("c") is S.CANCELLED
    assert sim.status("a") is S.RUNNING
    with pytest.raises(EngineError, match="already being cancelled"):
        advance(sim.state, Cancel(), sim.ctx, sim.now)
    sim.finish("a", S.CANCELLED)
    assert sim.state.status is RunStatus.CANCELLED and sim.state.error == "stop it by bob"
    with pytest.raises(EngineError, match="already finished"):
        advance(sim.state, Cancel(), sim.ctx, sim.now)


def test_a_run_cancelled_before_it_starts_ends_cancelled():
    sim = Sim(CHAIN, "t")
    sim.send(Cancel("not needed"))
    assert sim.state.status is RunStatus.CANCELLED and sim.statuses() == {
        "a": "cancelled",
        "b": "cancelled",
        "c": "cancelled",
    }
    with pytest.raises(EngineError, match="already finished"):
        sim.start()


def test_cancel_during_a_retry_delay_cancels_the_queued_attempt():
    sim = Sim(RETRY, "t")
    sim.start()
    sim.fail("flaky")
    sim.send(Cancel())
    assert [(c.step, c.attempt) for c in sim.of(CancelStep)] == [("flaky", 2)]
    assert sim.state.status is RunStatus.CANCELLED


def test_illegal_events_raise_and_change_nothing():
    sim = Sim(CHAIN, "t")
    with pytest.raises(EngineError):
        advance(sim.state, StepStarted("a", 1), sim.ctx, sim.now)  # not dispatched yet
    sim.start()
    before = sim.state
    for event in (
        StepStarted("b", 1),
        StepFinished("zzz", 1, S.SUCCEEDED),
        StepStarted("a", 2),
        StepFinished("a", 1, S.PENDING),
        ChildFinished("a", "x", RunStatus.SUCCEEDED),
    ):
        with pytest.raises(EngineError):
            advance(sim.state, event, sim.ctx, sim.now)
        assert sim.state is before
    with pytest.raises(EngineError, match="already started"):
        sim.start()


def test_transition_tables_are_closed_and_terminal_states_are_final():
    for table in (STEP_TRANSITIONS, RUN_TRANSITIONS):
        for status, targets in table.items():
            assert targets <= set(table)
            if status.terminal:
                assert not targets


def test_the_last_leaf_gives_the_task_output_and_several_leaves_give_a_mapping():
    sim = Sim(CHAIN, "t")
    sim.start()
    for step in "abc":
        sim.succeed(step, {"from": step})
    assert sim.state.output == {"from": "c"}
    sim = Sim(
        """
        tasks:
          t:
            flow:
              a: { type: script, script: "true" }
              b: { type: script, script: "true" }
        """,
        "t",
    )
    sim.start()
    sim.succeed("a", {"x": 1})
    sim.succeed("b")
    assert sim.state.output == {"a": {"x": 1}}


def test_outputs_flow_into_templates_with_structure_kept():
    sim = Sim(
        """
        actions:
          use:
            type: script
            script: "echo {{ input.items | length }} {{ input.first }}"
            input:
              items: { type: json }
              first: { type: string }
        tasks:
          t:
            flow:
              build: { type: script, script: "true" }
              use:
                action: use
                depends_on: [build]
                input:
                  items: "{{ build.output.items }}"
                  first: "{{ build.output.items[0] }}"
        """,
        "t",
    )
    sim.start()
    sim.succeed("build", {"items": ["x", "y", "z"]})
    assert sim.work("use").payload.script == "echo 3 x"


def test_step_environment_carries_run_facts_and_action_env():
    sim = Sim(
        """
        tasks:
          t:
            input:
              region: { type: string, default: eu }
            flow:
              a:
                type: script
                script: "true"
                env:
                  REGION: "{{ input.region }}"
                  TOKEN: "{{ secret.api_token }}"
        """,
        "t",
        secrets={"API_TOKEN": "s3cr3t"},
    )
    sim.start()
    work = sim.work("a")
    assert work.env["REGION"] == "eu" and work.env["TOKEN"] == "s3cr3t"
    assert {k: work.env[k] for k in ("CI", "STROM_JOB_ID", "STROM_TASK", "STROM_STEP", "STROM_ATTEMPT")} == {
        "CI": "true",
        "STROM_JOB_ID": "job1",
        "STROM_TASK": "t",
        "STROM_STEP": "a",
        "STROM_ATTEMPT": "1",
    }
    assert "s3cr3t" in work.mask


def test_secret_inputs_are_masked_and_errors_never_show_secrets():
    sim = Sim(
        """
        tasks:
          t:
            input:
              password: { type: string, secret: true }
            flow:
              a: { type: script, script: "echo {{ throw('bad value ' ~ input.password) }}" }
        """,
        "t",
        inputs={"password": "hunter2"},
    )
    sim.start()
    run = sim.state.steps["a"]
    assert run.status is S.FAILED
    assert "hunter2" not in run.error


def test_render_errors_name_file_step_and_field():
    sim = Sim(
        """
        actions:
          say:
            type: script
            script: "echo {{ input.word }}"
            env:
              X: "{{ steps.nope.output }}"
        tasks:
          t:
            flow:
              s1: { action: say }
        """,
        "t",
    )
    sim.start()
    error = sim.state.steps["s1"].error
    assert ".strom/test.yaml:6:" in error and "step 's1'" in error and "field 'env.X'" in error
    assert "steps has no field 'nope'" in error


def test_named_action_inputs_get_defaults_and_types():
    sim = Sim(
        """
        actions:
          deploy:
            type: script
            script: "deploy {{ input.env }} x{{ input.replicas + 1 }} {{ input.dry_run }}"
            input:
              env: { type: string, default: staging }
              replicas: { type: integer }
              dry_run: { type: boolean, default: false }
        tasks:
          t:
            flow:
              d:
                action: deploy
                input:
                  replicas: "{{ 2 }}"
        """,
        "t",
    )
    sim.start()
    assert sim.work("d").payload.script == "deploy staging x3 false"


def test_inline_steps_see_the_run_inputs():
    sim = Sim(
        """
        tasks:
          t:
            input:
              name: { type: string, default: World }
            flow:
              hi: { type: script, script: "echo Hello {{ input.name }}" }
        """,
        "t",
    )
    sim.start()
    assert sim.work("hi").payload.script == "echo Hello World"


def test_task_inputs_are_checked_before_the_run_exists():
    with pytest.raises(InputError) as caught:
        Sim(
            """
            tasks:
              t:
                input:
                  env: { type: string, required: true, options: [staging, production] }
                  count: { type: integer }
                flow:
                  a: { type: script, script: "true" }
            """,
            "t",
            inputs={"count": "many", "color": "red"},
        )
    assert set(caught.value.errors) == {"env", "count", "color"}


APPROVAL = """
actions:
  gate:
    type: approval
    message: "Deploy {{ input.version }}?"
    approvers: [alice, bob, carol]
    required: 2
    timeout: 1h
tasks:
  t:
    input:
      version: { type: string, default: "1.2" }
    flow:
      approve: { action: gate, input: { version: "{{ input.version }}" } }
      deploy: { type: script, script: "deploy", depends_on: [approve] }
    on_suspended:
      - action: note
        input: { text: "{{ hook.step_name }}: {{ hook.message }}" }
  note_task:
    flow:
      n: { type: script, script: "true" }
"""
APPROVAL = APPROVAL.replace(
    "actions:\n",
    'actions:\n  note: { type: script, script: "echo {{ input.text }}", input: { text: { type: string } } }\n',
    1,
)


def test_approval_waits_needs_distinct_approvers_and_outputs_the_decision():
    sim = Sim(APPROVAL, "t")
    sim.start()
    [ask] = sim.of(AwaitApproval)
    assert (ask.step, ask.message, ask.approvers, ask.required) == (
        "approve",
        "Deploy 1.2?",
        ("alice", "bob", "carol"),
        2,
    )
    [hooks] = sim.of(RunHooks)
    assert hooks.event == "on_suspended" and hooks.calls[0].inputs == {"text": "approve: Deploy 1.2?"}
    assert sim.state.status is RunStatus.WAITING
    sim.approve("approve", "alice")
    assert sim.status("approve") is S.WAITING
    with pytest.raises(EngineError, match="alice has already approved"):
        sim.approve("approve", "alice")
    sim.approve("approve", "bob", reason="looks good")
    output = sim.state.steps["approve"].output
    assert output["approved"] is True and output["approved_by"] == "alice, bob"
    assert output["approvers"] == ["alice", "bob"] and output["reason"] == "looks good"
    assert sim.dispatched() == ["deploy"]


def test_rejection_fails_the_gate_with_the_reason():
    sim = Sim(APPROVAL, "t")
    sim.start()
    sim.approve("approve", "carol", approved=False, reason="not on a Friday")
    run = sim.state.steps["approve"]
    assert run.status is S.FAILED and run.error == "rejected by carol: not on a Friday"
    assert run.output["approved"] is False and run.output["rejected_by"] == "carol"
    assert sim.status("deploy") is S.SKIPPED and sim.state.status is RunStatus.FAILED


def test_a_rejected_gate_with_continue_on_failure_lets_the_run_go_on():
    source = APPROVAL.replace(
        'approve: { action: gate, input: { version: "{{ input.version }}" } }',
        'approve: { action: gate, input: { version: "{{ input.version }}" }, continue_on_failure: true }',
    )
    assert source != APPROVAL
    sim = Sim(source, "t")
    sim.start()
    sim.approve("approve", "carol", approved=False, reason="skip the deploy")
    assert sim.status("approve") is S.FAILED and sim.dispatched() == ["deploy"]


def test_approval_times_out():
    sim = Sim(APPROVAL, "t")
    start = sim.now
    sim.start()
    assert sim.wake_at == start + 3600
    sim.send(Tick(), at=start + 3599)
    assert sim.status("approve") is S.WAITING
    sim.send(Tick(), at=start + 3600)
    assert sim.state.steps["approve"].error == "approval timed out after 1h00m"
    assert sim.state.status is RunStatus.FAILED


TASKS = """
actions:
  run-child: { type: task, task: child }
tasks:
  child:
    input:
      env: { type: string }
    flow:
      work: { type: script, script: "echo {{ input.env }}" }
  parent:
    flow:
      build: { type: script, script: "true" }
      cleanup:
        action: run-child
        depends_on: [build]
        input: { env: "{{ build.output.env }}" }
      after:
        type: script
        depends_on: [cleanup]
        script: "echo {{ cleanup.output.done }}"
"""


def test_task_actions_start_a_child_run_and_take_its_output():
    sim = Sim(TASKS, "parent")
    sim.start()
    sim.succeed("build", {"env": "prod"})
    [start] = sim.of(StartChild)
    assert (start.task, dict(start.inputs), start.depth, start.step) == ("child", {"env": "prod"}, 1, "cleanup")
    assert sim.status("cleanup") is S.RUNNING and sim.state.steps["cleanup"].child_job == start.child_job
    sim.send(ChildFinished("cleanup", start.child_job, RunStatus.SUCCEEDED, output={"done": "yes"}))
    assert sim.state.steps["cleanup"].output == {"done": "yes"}
    assert sim.work("after").payload.script == "echo yes"


def test_a_failed_child_fails_the_parent_step_and_cancel_reaches_the_child():
    sim = Sim(TASKS, "parent")
    sim.start()
    sim.succeed("build", {"env": "prod"})
    [start] = sim.of(StartChild)
    sim.send(ChildFinished("cleanup", start.child_job, RunStatus.FAILED, error="step work failed"))
    assert sim.state.steps["cleanup"].error == f"child run {start.child_job} failed: step work failed"
    sim = Sim(TASKS, "parent")
    sim.start()
    sim.succeed("build", {"env": "prod"})
    [start] = sim.of(StartChild)
    sim.send(Cancel())
    assert [c.child_job for c in sim.of(CancelChild)] == [start.child_job]


def test_child_runs_stop_at_the_depth_limit():
    sim = Sim(TASKS, "parent")
    sim.state = replace(sim.state, depth=MAX_DEPTH)
    sim.start()
    sim.succeed("build", {"env": "prod"})
    assert sim.status("cleanup") is S.FAILED
    assert sim.state.steps["cleanup"].error == "task 'child' would nest 11 runs deep; the limit is 10"


HOOKS = """
actions:
  say: { type: script, script: "echo {{ input.text }}", input: { text: { type: string } } }
tasks:
  with-hooks:
    input:
      who: { type: string, default: me }
    flow:
      build: { type: script, script: "true" }
    on_success:
      - action: say
        input: { text: "{{ hook.task_name }} {{ hook.status }} for {{ input.who }} ({{ build.output.v }})" }
    on_error:
      - action: say
        input: { text: "failed: {{ hook.error_message }} / {{ hook.failed_steps[0].step_name }}" }
  bare:
    flow:
      build: { type: script, script: "true" }
on_success:
  - action: say
    input: { text: "workspace default for {{ hook.task_name }}" }
on_cancel:
  - action: say
    input: { text: "cancelled {{ hook.job_id }}" }
"""


def test_task_hooks_get_the_hook_context_plus_inputs_and_outputs():
    sim = Sim(HOOKS, "with-hooks")
    sim.start()
    sim.succeed("build", {"v": 7})
    [hooks] = sim.of(RunHooks)
    assert hooks.event == "on_success"
    assert [call.inputs for call in hooks.calls] == [{"text": "with-hooks succeeded for me (7)"}]
    sim = Sim(HOOKS, "with-hooks")
    sim.start()
    sim.fail("build", "exit code 1")
    [hooks] = sim.of(RunHooks)
    assert hooks.calls[0].inputs == {"text": "failed: step build failed: exit code 1 / build"}
    assert hooks.context["failed_steps"][0]["error_message"] == "exit code 1"


def test_workspace_hooks_are_the_fallback_for_top_level_runs_only():
    sim = Sim(HOOKS, "bare")
    sim.start()
    sim.succeed("build")
    [hooks] = sim.of(RunHooks)
    assert hooks.calls[0].inputs == {"text": "workspace default for bare"}
    sim = Sim(HOOKS, "bare")
    sim.state = replace(sim.state, depth=1, parent_job="p", parent_step="s")
    sim.start()
    sim.succeed("build")
    assert sim.of(RunHooks) == []
    sim = Sim(HOOKS, "bare")
    sim.state = replace(sim.state, source="hook")
    sim.start()
    sim.succeed("build")
    assert sim.of(RunHooks) == [], "hook runs never fire hooks"


def test_on_cancel_hooks_fire_when_a_run_is_cancelled():
    sim = Sim(HOOKS, "bare")
    sim.start()
    sim.send(Cancel())
    [hooks] = sim.of(RunHooks)
    assert hooks.event == "on_cancel" and hooks.calls[0].inputs == {"text": "cancelled job1"}


TASK_RETRY = """
actions:
  say: { type: script, script: "true" }
tasks:
  t:
    retry: { max_attempts: 2, delay: 1m }
    flow:
      a: { type: script, script: "true" }
    on_error: [{ action: say }]
"""


def test_task_retry_asks_for_a_new_run_and_holds_back_error_hooks():
    sim = Sim(TASK_RETRY, "t")
    sim.start()
    sim.fail("a")
    [retry] = sim.of(RetryRun)
    assert (retry.attempt, retry.not_before) == (2, sim.now + 60)
    assert sim.of(RunHooks) == []
    last = Sim(TASK_RETRY, "t")
    last.state = replace(last.state, attempt=2)
    last.start()
    last.fail("a")
    assert last.of(RetryRun) == [] and len(last.of(RunHooks)) == 1


def test_server_side_types_are_not_worker_work():
    sim = Sim(
        """
        tasks:
          t:
            flow:
              call:
                type: http
                url: "https://example.com/{{ job.id }}"
                json: { task: "{{ job.task }}", n: 1 }
              s: { type: script, script: "true", tags: [gpu] }
              d: { type: docker, image: alpine }
        """,
        "t",
    )
    sim.start()
    works = {c.work.step: c.work for c in sim.of(DispatchStep)}
    assert works["call"].ability is None and works["call"].payload.url == "https://example.com/job1"
    assert works["call"].payload.json_body == {"task": "t", "n": 1} and works["call"].payload.method == "POST"
    assert (works["s"].ability, works["s"].tags) == ("script", ("gpu",))
    assert works["d"].ability == "docker"


def test_state_round_trips_through_json():
    import json

    sim = Sim(FOR_EACH, "t")
    sim.start()
    sim.succeed("fetch", {"items": [1, 2]})
    data = json.loads(json.dumps(sim.state.to_dict()))
    again = type(sim.state).from_dict(data)
    assert again == sim.state


def test_an_untrusted_runs_steps_are_marked_for_the_strict_sandbox():
    from dataclasses import replace

    from runner.engine import RunContext

    sim = Sim(CHAIN, "t")
    sim.start()
    assert (sim.work("a").untrusted, sim.work("a").network) == (False, True)
    for allowed, network in ((False, False), (True, True)):
        sim = Sim(CHAIN, "t")
        sim.state = replace(sim.state, trusted=False)
        sim.ctx = RunContext(sim.ws, sim.ws.tasks["t"], {}, untrusted_network=allowed)
        sim.start()
        assert (sim.work("a").untrusted, sim.work("a").network) == (True, network)


def test_cancelling_a_sequential_loop_while_an_item_runs_ends_the_loop():
    """A cancelled item with the next one running once looped forever in the engine."""
    sim = Sim(SEQUENTIAL, "t")
    sim.start()
    sim.succeed("migrate[0]")
    sim.send(StepStarted("migrate[1]", 1))
    sim.send(Cancel("enough", by="tester"))
    assert [c.step for c in sim.commands if isinstance(c, CancelStep)] == ["migrate[1]"]
    sim.send(StepFinished("migrate[1]", 1, S.CANCELLED))
    assert sim.status("migrate[2]") in (S.SKIPPED, S.CANCELLED)
    assert sim.status("migrate") is S.CANCELLED and sim.state.status is RunStatus.CANCELLED


def test_step_work_travels_as_json_and_reads_its_earlier_flat_form():
    from runner.spec.payloads import HttpMethod, HttpPayload, Language, ScriptPayload

    script = StepWork(
        "j",
        "s",
        2,
        "script",
        tags=("gpu",),
        payload=ScriptPayload(script="echo", language=Language.PYTHON, args=("a",)),
    )
    call = StepWork("j", "c", 1, "http", payload=HttpPayload(url="https://x", method=HttpMethod.POST, json_body=None))
    bare = StepWork("j", "c", 1, "http", payload=HttpPayload(url="https://x"))
    for work in (script, call, bare):
        assert StepWork.from_dict(json.loads(json.dumps(work.to_dict()))) == work
    assert call.payload.has_json and not bare.payload.has_json, "JSON null is a body; no key is none"
    flat = {"job_id": "j", "step": "s", "attempt": 2, "kind": "script", "tags": ["gpu"], "script": "echo"}
    flat |= {"language": "python", "args": ["a"], "url": None, "has_json": False}
    assert StepWork.from_dict(flat) == script
    old_call = {"job_id": "j", "step": "c", "attempt": 1, "kind": "http", "url": "https://x", "method": "POST"}
    assert StepWork.from_dict(old_call | {"has_json": True, "json_body": None}) == call
    assert StepWork.from_dict(old_call | {"method": "GET", "has_json": False, "json_body": None}) == bare
    with pytest.raises(TypeError, match="a http step carries HttpPayload, not ScriptPayload"):
        call.payload_as(ScriptPayload)
