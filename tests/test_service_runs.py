"""Runs through the service: a real Redis, the scheduler and workers (threads), real step processes."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from service_env import make_config, stack, wait_for

from runner import runs
from runner.engine import ApprovalDecision, Cancel, RunStatus, StepStarted, StepStatus
from runner.store import RunFilter, keys

S = StepStatus

PIPELINE = {
    ".strom/t.yaml": """
    actions:
      say:
        type: script
        script: 'echo "$INPUT_TEXT"'
        input: { text: { type: string } }
    tasks:
      pipeline:
        input:
          who: { type: string, default: world }
        flow:
          make: { type: script, script: "echo making; echo 'OUTPUT: {\\"items\\": [1, 2, 3]}'" }
          each:
            type: script
            depends_on: [make]
            for_each: "{{ make.output.items }}"
            script: "echo item {{ each.item }}; echo 'OUTPUT: {{ each.item * 10 }}'"
          sum:
            type: script
            depends_on: [each]
            script: "echo total {{ each.output | sum }} for {{ input.who }}"
        on_success:
          - action: say
            input: { text: "hook saw {{ hook.status }}" }
      gpu:
        flow:
          train: { type: script, script: "true", tags: [gpu] }
      slow:
        flow:
          sleep: { type: script, script: "echo started; sleep 60" }
      flaky:
        flow:
          try:
            type: script
            script: 'echo "attempt $STROM_ATTEMPT"; [ "$STROM_ATTEMPT" -ge 2 ]'
            retry: { max_attempts: 3, delay: 300ms }
      gate:
        flow:
          ask: { type: approval, message: "ok?", timeout: 1s }
          after: { type: script, script: "echo after", depends_on: [ask] }
      parent:
        flow:
          child: { type: task, task: pipeline, input: { who: child } }
      timed:
        timeout: 1s
        flow:
          sleep: { type: script, script: "sleep 30" }
      call:
        input:
          url: { type: string }
        flow:
          post:
            type: http
            url: "{{ input.url }}/hook"
            json: { run: "{{ job.id }}", task: "{{ job.task }}" }
    """
}


@pytest.fixture
def config(service_workspace, redis_url):
    return make_config(service_workspace(PIPELINE), redis_url)


def finished(service, run_id, timeout=20.0):
    return wait_for(
        lambda: (s := service.runs.load(run_id)) and s.status.terminal and s, timeout, what=f"run {run_id} to finish"
    )


def test_a_run_goes_through_workers_with_outputs_loops_logs_and_hooks(config):
    with stack(config) as service:
        state = runs.execute(service, "local", "pipeline", {"who": "you"})
        final = finished(service, state.id)
        assert final.status is RunStatus.SUCCEEDED, final.error
        assert final.steps["each"].output == [10, 20, 30]
        lines = {(ln.step, ln.text) for ln in service.logs.read(state.id)}
        assert {("make", "making"), ("each[1]", "item 2"), ("sum", "total 60 for you")} <= lines
        hook = wait_for(
            lambda: [s for s in service.runs.list(RunFilter(source="hook")).runs if s.status.terminal],
            what="the hook run",
        )[0]
        assert hook.task == "_hook:say" and hook.status is RunStatus.SUCCEEDED
        assert [ln.text for ln in service.logs.read(hook.id)] == ["hook saw succeeded"]
        assert service.redis.hlen(keys.RUNNING) == 0 and service.redis.hlen(keys.QUEUED) == 0


def test_a_step_no_live_worker_can_take_fails_naming_what_is_missing(config):
    with stack(config) as service:
        state = runs.execute(service, "local", "gpu", {})
        final = finished(service, state.id)
        error = final.steps["train"].error
        assert final.status is RunStatus.FAILED
        assert error.startswith("no live worker offers ability 'script' with tags [gpu]")
        assert "test-worker-0 [script]" in error and "strom worker --abilities" in error


def test_cancel_stops_the_process_on_the_worker(config):
    with stack(config) as service:
        state = runs.execute(service, "local", "slow", {})
        wait_for(lambda: any(ln.text == "started" for ln in service.logs.read(state.id)), what="the step to start")
        started = time.monotonic()
        service.orchestrator.apply(state.id, Cancel("enough", by="tester"))
        final = finished(service, state.id, timeout=10)
        assert time.monotonic() - started < 5
        assert final.status is RunStatus.CANCELLED and final.steps["sleep"].status is S.CANCELLED
        assert final.error == "enough by tester"


def test_retries_wait_their_delay_across_processes(config):
    with stack(config) as service:
        state = runs.execute(service, "local", "flaky", {})
        final = finished(service, state.id)
        assert final.status is RunStatus.SUCCEEDED and final.steps["try"].attempt == 2
        texts = [(ln.attempt, ln.text) for ln in service.logs.read(state.id)]
        assert texts == [(1, "attempt 1"), (2, "attempt 2")]


def test_an_approval_times_out_through_the_scheduler(config):
    with stack(config) as service:
        state = runs.execute(service, "local", "gate", {})
        assert service.runs.load(state.id).status is RunStatus.WAITING
        final = finished(service, state.id, timeout=10)
        assert final.steps["ask"].error == "approval timed out after 1s"
        assert final.steps["after"].status is S.SKIPPED


def test_an_approval_decision_resumes_the_run(config):
    with stack(config) as service:
        state = runs.execute(service, "local", "gate", {})
        service.orchestrator.apply(state.id, ApprovalDecision("ask", True, "alice"))
        final = finished(service, state.id)
        assert final.status is RunStatus.SUCCEEDED
        assert final.steps["ask"].output["approved_by"] == "alice"


def test_task_actions_run_child_runs_through_the_service(config):
    with stack(config) as service:
        state = runs.execute(service, "local", "parent", {})
        final = finished(service, state.id)
        assert final.status is RunStatus.SUCCEEDED
        child = service.runs.load(final.steps["child"].child_job)
        assert child.parent_job == state.id and child.inputs == {"who": "child"}
        assert any(ln.text == "total 60 for child" for ln in service.logs.read(child.id))


def test_a_task_timeout_stops_its_steps(config):
    with stack(config) as service:
        state = runs.execute(service, "local", "timed", {})
        final = finished(service, state.id, timeout=10)
        assert final.status is RunStatus.TIMED_OUT


def test_a_plain_rq_worker_cannot_run_a_step_rq_says_why_and_strom_hands_the_step_back(config):
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from runner.runs.service import Service
    from runner.service.worker import Worker
    from runner.store.queues import rq_queue

    with stack(config, workers=0) as service:
        state = runs.execute(service, "local", "flaky", {})
        queue = rq_queue("strom-script", service.rq_redis)
        wait_for(lambda: queue.count == 1, what="the step on its queue")
        SimpleWorker([queue], connection=service.rq_redis, serializer=JSONSerializer).work(burst=True)
        [taken] = queue.failed_job_registry.get_job_ids()
        assert taken == keys.rq_job_id(state.id, "try", 1)
        assert "not by a plain `rq worker`" in queue.fetch_job(taken).latest_result().exc_string
        assert service.runs.load(state.id).steps["try"].status is S.QUEUED, "nothing ran it"
        worker = Worker(Service(config), name="strom-worker")
        worker.start()
        try:
            final = finished(service, state.id)
        finally:
            worker.stop(2)
        assert final.status is RunStatus.SUCCEEDED
        assert (final.steps["try"].worker, final.steps["try"].attempt) == ("strom-worker", 2)


def test_a_step_whose_worker_stops_beating_is_retried_or_failed_as_lost(config):
    with stack(config, workers=0) as service:
        state = runs.execute(service, "local", "flaky", {})
        service.orchestrator.apply(state.id, StepStarted("try", 1, worker="ghost"))
        run = wait_for(
            lambda: (s := service.runs.load(state.id)).steps["try"].attempt == 2 and s,
            timeout=10,
            what="the lost step to be retried",
        )
        assert run.steps["try"].error == "worker lost: ghost stopped sending heartbeats"


class _Recorder(BaseHTTPRequestHandler):
    requests: ClassVar[list] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Recorder.requests.append((self.path, self.headers["Content-Type"], json.loads(body)))
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"accepted": true}')

    def log_message(self, *args):
        pass


def test_http_steps_run_on_the_server_never_on_a_worker(config):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Recorder.requests = []
    try:
        with stack(config, workers=0) as service:
            state = runs.execute(service, "local", "call", {"url": f"http://127.0.0.1:{server.server_port}"})
            final = finished(service, state.id)
        assert final.status is RunStatus.SUCCEEDED
        assert final.steps["post"].output == {"accepted": True}
        assert _Recorder.requests == [("/hook", "application/json", {"run": state.id, "task": "call"})]
        assert final.steps["post"].worker.endswith("-server")
    finally:
        server.shutdown()


def test_an_event_that_changes_nothing_is_logged_not_raised(config, caplog):
    with stack(config) as service:
        state = runs.execute(service, "local", "gate", {})
        service.orchestrator.apply(state.id, ApprovalDecision("ask", True, "alice"))
        caplog.set_level("INFO", logger="strom.orchestrator")
        assert service.orchestrator.try_apply(state.id, ApprovalDecision("ask", False, "bob")) is None
        dropped = [r.getMessage() for r in caplog.records if "changes nothing" in r.getMessage()]
        assert dropped and dropped[0].startswith(f"run {state.id}: ApprovalDecision changes nothing and is dropped:")
        assert finished(service, state.id).steps["ask"].output["approved_by"] == "alice"
