"""Tell the subscribed channels about runs, off the runs' path.

When a run finishes (its last attempt) or a gate starts waiting, and its task (or the workspace)
has `notify:` rules, the same transaction that records it puts a job on the `strom-notify` RQ
queue. The scheduler's notifier runs those jobs one by one, as RQ jobs: it works out which rules fire
(`recovered` is the first success after failures on the same branch), renders the message,
masks the run's secrets, and delivers it with retries and a timeout. What happened is written
to the run's log (step `(notify)`) and counted in the metrics; it never changes the run.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..engine import RunState, RunStatus
from ..engine.context import run_masker
from ..engine.hooks import hook_context
from ..errors import StromError
from ..forges.links import commit_url
from ..spec.globs import included
from ..spec.model import NotifyEvent
from ..store import RunFilter, keys
from ..store.runs import branch_of
from ..templating import render
from .messages import run_message, waiting_message
from .send import Delivery, Message, deliver, deliver_to

if TYPE_CHECKING:
    from ..runs.service import Service

__all__ = [
    "FUNCTION",
    "LOG_STEP",
    "QUEUE",
    "Notifier",
    "count_deliveries",
    "deliver_job",
    "describe_delivery",
    "record_deliveries",
    "rules_for",
    "stage_notification",
]

log = logging.getLogger("strom.notify")
QUEUE = "strom-notify"
FUNCTION = "runner.notify.notifier.deliver_job"
LOG_STEP = "(notify)"
FAILING = (RunStatus.FAILED, RunStatus.TIMED_OUT)
HISTORY = 50  # earlier runs looked at to tell a recovery


def rules_for(state: RunState, ctx) -> tuple:
    """The task's rules, else the workspace's defaults (top-level runs only; never for hooks, nor for
    untrusted pull requests, whose definitions nobody vouched for)."""
    if state.is_hook or state.parent_job or not state.trusted:
        return ()
    own = ctx.task.notify
    return tuple(own) if own is not None else tuple(ctx.workspace.notify)


def stage_notification(pipe, redis, state: RunState, event: NotifyEvent, step: str | None = None) -> None:
    """Queue a notification job (inside the transaction `pipe` that records the change)."""
    from ..store.queues import rq_queue

    payload = {"job": state.id, "event": event.value, "step": step}
    job_id = f"n-{state.id}-{event}-{step or ''}"
    rq_queue(QUEUE, redis).enqueue_call(
        FUNCTION,
        args=(payload,),
        job_id=job_id,
        timeout=-1,
        result_ttl=0,
        failure_ttl=3600,
        description=f"notify {event} of run {state.id}",
        pipeline=pipe,
    )


def deliver_job(payload: dict) -> None:
    """The function of a `strom-notify` RQ job: the scheduler's notifier runner carries it out."""
    from ..store.rqrunner import current_host

    current_host().handle(payload)


def describe_delivery(result: Delivery) -> str:
    if result.ok:
        return f"sent to {result.channel} ({result.target})"
    return f"to {result.channel} ({result.target}) failed after {result.attempts} attempt(s): {result.error}"


def count_deliveries(redis, results: list[Delivery]) -> None:
    """The counters behind strom_notifications_sent_total / _failed_total."""
    sent = sum(1 for r in results if r.ok)
    with redis.pipeline() as pipe:
        if sent:
            pipe.hincrby(keys.COUNTERS, "notifications_sent", sent)
        if len(results) - sent:
            pipe.hincrby(keys.COUNTERS, "notifications_failed", len(results) - sent)
        pipe.execute()


def record_deliveries(service: Service, job_id: str, what: str, results: list[Delivery]) -> None:
    """One log line per delivery on the run (step `(notify)`), and the counters."""
    now = time.time()
    if results:
        service.logs.append(job_id, [(LOG_STEP, 1, "strom", f"{what} {describe_delivery(r)}", now) for r in results])
    count_deliveries(service.redis, results)
    for result in results:
        if not result.ok:
            log.warning("run %s: %s to %s failed: %s", job_id, what, result.channel, result.error)


class Notifier:
    def __init__(self, service: Service, send=deliver):
        self.service = service
        self.settings = service.config.notifications
        self.send = send

    def handle(self, payload: dict) -> None:
        state = self.service.runs.load(payload["job"])
        if state is None:
            return
        try:
            ctx = self.service.contexts.for_state(state)
        except StromError as exc:
            log.warning("run %s: cannot load its definitions to notify: %s", state.id, exc)
            return
        try:
            event = NotifyEvent(payload["event"])
        except ValueError:  # no rule can ask for what this version does not know
            return
        events = [event]
        if event is NotifyEvent.SUCCEEDED and self.recovered(state):
            events.insert(0, NotifyEvent.RECOVERED)
        branch = branch_of(state)
        masker = run_masker(state, ctx)
        for rule in rules_for(state, ctx):
            fired = next((e for e in events if e in rule.events), None)
            if fired is None or (rule.branches and not included(branch, rule.branches)):
                continue
            message = self.message(state, ctx, rule, fired, payload.get("step"), masker).masked(masker)
            results = deliver_to(self.settings, rule.channels, message, self.send)
            record_deliveries(self.service, state.id, f"{fired} notification", results)

    # ------------------------------------------------------------------ what happened before
    def recovered(self, state: RunState) -> bool:
        """Whether the previous finished run of the task on the same branch failed or timed out.
        Cancelled runs say nothing either way; the run's own earlier attempts (task `retry`) were
        never announced, so they do not count, while a re-run of a failed run recovers it."""
        attempts, current = set(), state
        while current.attempt > 1 and current.retry_of and current.retry_of not in attempts:
            attempts.add(current.retry_of)
            current = self.service.runs.load(current.retry_of) or current
        branch = (state.git or {}).get("branch") or ""
        page = self.service.runs.list(
            RunFilter(workspace=state.workspace, task=state.task), limit=HISTORY, before=state.created_at
        )
        for earlier in page.runs:
            if earlier.id == state.id or earlier.id in attempts or earlier.parent_job or earlier.is_hook:
                continue
            if not earlier.status.terminal or earlier.status in (RunStatus.CANCELLED, RunStatus.SKIPPED):
                continue
            if ((earlier.git or {}).get("branch") or "") != branch:
                continue
            return earlier.status in FAILING
        return False

    # ------------------------------------------------------------------ the message
    def message(self, state: RunState, ctx, rule, event: NotifyEvent, step: str | None, masker) -> Message:
        config = self.service.config
        ws = config.workspaces.get(state.workspace)
        link = commit_url(ws.forge, ws.forge_api, ws.repo, state.commit) if ws else None
        url = config.run_url(state.id)
        if event is NotifyEvent.WAITING and step is not None and step in state.steps:
            default = waiting_message(state, step, url, link)
        else:
            default = run_message(state, event, url, link)
        if not rule.title and not rule.body:
            return default
        context = hook_context(
            state, ctx, masker, {"event": event.value, "step_name": step or "", "url": url, "commit_url": link or ""}
        )
        try:
            title = render(rule.title, context, f"{rule.location} (notify title)") if rule.title else default.title
            body = render(rule.body, context, f"{rule.location} (notify body)") if rule.body else None
        except Exception as exc:  # noqa: BLE001 - a broken template still tells people, with the default words
            self.service.logs.append(
                state.id,
                [
                    (
                        LOG_STEP,
                        1,
                        "strom",
                        f"notify template error, default message sent instead: {masker.mask(str(exc))}",
                        time.time(),
                    )
                ],
            )
            return default
        if body is None:
            return Message(title, default.markdown, default.text, default.kind)
        return Message(title, body, body, default.kind)
