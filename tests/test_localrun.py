"""`strom run`'s driver with real processes: parallelism, retries, hooks, child runs, approvals, interrupts."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from conftest import RecordingDisplay, run_local

from runner.engine import RunStatus, StepStatus
from runner.errors import InputError
from runner.executors import LocalExecutor, LocalSettings
from runner.localrun import Approvals, LocalRunner
from runner.spec import load_workspace

S = StepStatus


def test_independent_steps_run_in_parallel_and_jobs_bounds_them(workspace):
    root = workspace(
        {
            ".strom/t.yaml": """
        tasks:
          t:
            flow:
              a: { type: script, script: "sleep 0.6; echo a" }
              b: { type: script, script: "sleep 0.6; echo b" }
              c: { type: script, script: "sleep 0.6; echo c" }
        """
        }
    )
    started = time.monotonic()
    outcome, _ = run_local(root, "t", jobs=3)
    parallel = time.monotonic() - started
    assert outcome.state.status is RunStatus.SUCCEEDED
    starts = sorted(r.started_at for r in outcome.state.steps.values())
    assert starts[-1] - starts[0] < 0.4, "all three started together"
    assert parallel < 1.6
    outcome, _ = run_local(root, "t", jobs=1)
    runs = sorted(outcome.state.steps.values(), key=lambda r: r.started_at)
    for first, second in itertools.pairwise(runs):
        assert second.started_at >= first.finished_at - 0.05, "with --jobs 1 steps do not overlap"


def test_output_passes_between_real_steps(workspace):
    root = workspace(
        {
            ".strom/t.yaml": """
        tasks:
          t:
            flow:
              make:
                type: script
                script: |
                  echo 'OUTPUT: {"files": ["a.txt", "b.txt"], "n": 2}'
              each:
                type: script
                depends_on: [make]
                for_each: "{{ make.output.files }}"
                script: 'echo "file {{ each.index }}: $INPUT_NAME"; echo "OUTPUT: {\\"ok\\": \\"{{ each.item }}\\"}"'
                input: { name: "{{ each.item }}" }
              sum:
                type: script
                depends_on: [each]
                script: echo '{{ each.output | json_encode() }}'
        """
        }
    )
    outcome, display = run_local(root, "t")
    assert outcome.state.status is RunStatus.SUCCEEDED, outcome.state.error
    assert display.of("each[0]") == ["file 0: a.txt", 'OUTPUT: {"ok": "a.txt"}']
    assert display.of("sum") == ['[{"ok":"a.txt"},{"ok":"b.txt"}]']


def test_a_flaky_step_is_retried_with_a_real_delay(workspace):
    root = workspace(
        {
            ".strom/t.yaml": """
        tasks:
          t:
            flow:
              flaky:
                type: script
                script: 'echo "attempt $STROM_ATTEMPT"; [ "$STROM_ATTEMPT" -ge 3 ]'
                retry: { max_attempts: 3, delay: 200ms }
        """
        }
    )
    started = time.monotonic()
    outcome, display = run_local(root, "t")
    assert outcome.state.status is RunStatus.SUCCEEDED
    assert outcome.state.steps["flaky"].attempt == 3
    assert display.of("flaky") == ["attempt 1", "attempt 2", "attempt 3"]
    assert time.monotonic() - started >= 0.4
    assert "↻ attempt 1 failed: exit code 1; retrying (attempt 2)" in display.text()


def test_hooks_run_as_their_own_runs_and_never_change_the_result(workspace):
    root = workspace(
        {
            ".strom/t.yaml": """
        actions:
          report:
            type: script
            script: 'echo "report: $INPUT_TEXT"; exit 1'
            input: { text: { type: string } }
        tasks:
          t:
            flow:
              work: { type: script, script: 'echo "OUTPUT: {\\"v\\": 7}"' }
            on_success:
              - action: report
                input: { text: "{{ hook.task_name }} {{ hook.status }} v={{ work.output.v }} {{ hook.is_success }}" }
        """
        }
    )
    outcome, display = run_local(root, "t")
    assert outcome.state.status is RunStatus.SUCCEEDED
    [hook] = [r for r in outcome.runs if r.source == "hook"]
    assert (hook.task, hook.status, hook.trigger) == ("_hook:report", RunStatus.FAILED, "t/on_success")
    assert display.of("on_success:report » report") == ["report: t succeeded v=7 true"]


def test_inputs_are_checked_before_anything_runs(workspace):
    root = workspace(
        {
            ".strom/t.yaml": """
        tasks:
          t:
            input:
              env: { type: string, required: true }
            flow:
              s: { type: script, script: "echo ran" }
        """
        }
    )
    with pytest.raises(InputError) as caught:
        run_local(root, "t", {"nope": 1})
    assert set(caught.value.errors) == {"env", "nope"}


def test_approval_without_a_terminal_or_answer_is_rejected_with_how_to_answer(workspace):
    root = workspace(
        {
            ".strom/t.yaml": """
        tasks:
          t:
            flow:
              gate: { type: approval, message: "go?" }
              after: { type: script, script: "echo after", depends_on: [gate] }
        """
        }
    )
    outcome, _ = run_local(root, "t")
    assert outcome.state.steps["gate"].error == (
        "rejected by strom: nobody to ask: this is not a terminal; pass --approve gate or --reject gate"
    )
    outcome, display = run_local(root, "t", approve=["*"])
    assert outcome.state.status is RunStatus.SUCCEEDED and display.of("after") == ["after"]


def test_an_interrupt_cancels_running_steps_and_runs_on_cancel_hooks(workspace):
    root = workspace(
        {
            ".strom/t.yaml": """
        actions:
          bye: { type: script, script: "echo cleaning up after {{ input.why }}", input: { why: { type: string } } }
        tasks:
          t:
            flow:
              long: { type: script, script: "echo started; sleep 30" }
              later: { type: script, script: "echo later", depends_on: [long] }
            on_cancel:
              - action: bye
                input: { why: "{{ hook.status }}" }
        """
        }
    )
    ws = load_workspace(root).raise_for_errors()
    display = RecordingDisplay()
    runner = LocalRunner(
        ws, root, display=display, approvals=Approvals(), local_executor=LocalExecutor(LocalSettings(kill_grace=1.0))
    )

    def interrupt_when_started():
        end = time.monotonic() + 10
        while "started" not in [t for _, _, t in display.lines] and time.monotonic() < end:
            time.sleep(0.02)
        runner.interrupt()

    threading.Thread(target=interrupt_when_started, daemon=True).start()
    started = time.monotonic()
    outcome = runner.run("t", {})
    assert time.monotonic() - started < 8
    assert outcome.interrupted and outcome.state.status is RunStatus.CANCELLED
    assert outcome.state.steps["long"].status is S.CANCELLED and outcome.state.steps["later"].status is S.CANCELLED
    assert display.of("on_cancel:bye » bye") == ["cleaning up after cancelled"]


def test_task_timeout_ends_a_real_run_as_timed_out(workspace):
    root = workspace(
        {
            ".strom/t.yaml": """
        tasks:
          t:
            timeout: 1s
            flow:
              long: { type: script, script: "sleep 20" }
        """
        }
    )
    started = time.monotonic()
    outcome, _ = run_local(root, "t")
    assert outcome.state.status is RunStatus.TIMED_OUT
    assert time.monotonic() - started < 6


def test_runners_this_machine_lacks_fail_with_what_is_missing(workspace, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")  # an engine that does not answer
    root = workspace(
        {
            ".strom/t.yaml": """
        tasks:
          t:
            flow:
              box: { type: docker, image: "alpine:3.20" }
              pod: { type: script, runner: pod, script: "true" }
              ai: { type: agent, provider: main, prompt: "hi" }
        """
        }
    )
    outcome, _ = run_local(root, "t")
    errors = {name: run.error for name, run in outcome.state.steps.items()}
    assert errors["box"].startswith("cannot reach the Docker engine at tcp://127.0.0.1:9: ")
    assert errors["pod"] == "this step needs a Kubernetes cluster (runner: pod), which this machine does not offer"
    assert (
        errors["ai"] == "agent steps need an LLM provider configured on the server; provider 'main' is not configured"
    )


def test_summary_table_lists_steps_statuses_durations_and_results(workspace):
    root = workspace(
        {
            ".strom/t.yaml": """
        tasks:
          t:
            flow:
              plan: { type: script, script: "echo 'OUTPUT: {\\"add\\": 3}'" }
              gate: { type: approval, depends_on: [plan] }
              apply: { type: script, script: "exit 4", depends_on: [gate] }
              notify: { type: script, script: "true", depends_on: [apply] }
        """
        }
    )
    _outcome, display = run_local(root, "t", approve=["gate"])
    text = display.text()
    assert "Task: t" in text and "Status: failed ✗" in text
    lines = [line for line in text.splitlines() if line[:1].isdigit()]
    assert lines[0].split()[:4] == ["1", "plan", "✓", "succeeded"] and '→ {"add":3}' in lines[0]
    assert lines[1].split()[:4] == ["2", "gate", "✓", "approved"] and "approved by" in lines[1]
    assert lines[2].split()[:4] == ["3", "apply", "✗", "failed"] and lines[2].rstrip().endswith("exit code 4")
    assert lines[3].split()[:4] == ["4", "notify", "↷", "skipped"] and "dependency apply failed" in lines[3]
    assert "Total duration:" in text and "Error: step apply failed: exit code 4" in text


def test_a_run_ends_when_its_steps_end_not_when_their_deadlines_pass(workspace):
    root = workspace(
        {
            ".strom/t.yaml": """
        tasks:
          t:
            timeout: 1h
            flow:
              quick: { type: script, script: "true", timeout: 10m }
              gate: { type: approval, timeout: 1h }
        """
        }
    )
    started = time.monotonic()
    outcome, _ = run_local(root, "t", approve=["gate"])
    assert outcome.state.status is RunStatus.SUCCEEDED
    assert time.monotonic() - started < 5
