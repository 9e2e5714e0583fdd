"""Process a stored repository event: fetch its commit, load that commit's .strom/, match the
triggers, and start the runs, exactly once however often the event (or a poll) reports the commit.

Run ids derive from the workspace, the trigger and what the event is about (ref and sha, pull
request action and head, or comment id), so a redelivered webhook, a poll that saw the same push
and a retried event all name the same run, and only the first creates it.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .. import runs
from ..engine.events import Cancel
from ..engine.status import StepStatus
from ..errors import SpecError, StromError
from ..forges.event import EventKind, PullRequest, RepoEvent, asks_to_skip
from ..git.mirrors import ZERO_SHA, GitError
from ..git.objects import is_sha
from ..git.repos import pr_head_ref
from ..runs import messages
from ..runs.checkout import Checkout
from ..runs.messages import ReportKind
from ..runs.orchestrator import Conflict
from ..spec.globs import included
from ..spec.model import Concurrency, Trigger, TriggerType
from ..store import RunFilter, keys
from ..store.connection import is_outage
from ..store.locks import redis_lock
from ..store.runs import branch_row, pull_row
from .chatops import PullRequestCommands
from .commands import is_stroms_own, parse_commands
from .match import Matched, alert_mismatch, hook_trigger, match_event
from .outcome import Outcome, OutcomeStatus
from .pulls import Pulls
from .trust import Trust

if TYPE_CHECKING:
    from ..runs.service import Service
    from ..spec.model import Workspace
    from ..workspace_config import WorkspaceConfig

__all__ = ["RETRY_DELAYS", "Outcome", "process", "run_id"]

log = logging.getLogger("strom.intake")
RETRY_DELAYS = (2.0, 5.0, 15.0, 30.0, 60.0)
CRASHES_BEFORE_QUARANTINE = 2  # an event whose processing killed its process this often is not tried again


def run_id(workspace: str, trigger: str, event: RepoEvent, event_id: str = "", part: int = 0) -> str:
    """`part`: which command of a comment (a comment may hold several)."""
    if event.kind in (EventKind.WEBHOOK, EventKind.ALERT):  # an alert's delivery is its fingerprint and state
        identity = f"{event.kind}:{event.delivery or event_id}"
    elif event.kind is EventKind.COMMENT:
        comment_id = event.comment.id if event.comment is not None else None
        identity = f"comment:{comment_id or event.delivery}" + (f":{part}" if part else "")
    elif event.pr is not None:
        identity = f"pr:{event.pr.number}:{event.pr.action}:{event.pr.head_sha}"
    else:
        identity = f"{event.kind}:{event.ref}:{event.sha}"
    return uuid.uuid5(uuid.NAMESPACE_URL, f"strom-event:{workspace}:{trigger}:{identity}").hex[:16]


def process(service: Service, event_id: str, now: float | None = None) -> dict | None:
    """Process queued event `event_id`; a transient failure (git, network) is retried later."""
    store = service.repo_events
    record = store.load(event_id)
    if record is None or record["status"] != "queued":
        return record
    ws = service.config.workspaces.get(record["workspace"])
    if ws is None:
        return store.update(event_id, status="failed", error=f"workspace {record['workspace']!r} is not configured")
    starts = service.redis.incr(keys.event_starts(event_id))
    service.redis.expire(keys.event_starts(event_id), 86400)
    if starts > CRASHES_BEFORE_QUARANTINE:
        log.error("event %s: its processing stopped a scheduler %d times; quarantined", event_id, starts - 1)
        service.redis.delete(keys.event_starts(event_id))
        return store.update(
            event_id,
            status="failed",
            error=f"quarantined: processing this event stopped the process handling it {starts - 1} times",
        )
    try:
        return _process(service, ws, record, event_id, now)
    finally:
        service.redis.delete(keys.event_starts(event_id))  # it ended (a crash never gets here)


def _process(service: Service, ws: WorkspaceConfig, record: dict, event_id: str, now: float | None) -> dict | None:
    store = service.repo_events
    event = RepoEvent.from_dict(record["event"])
    try:
        outcome = _Processor(service, ws, event, event_id, record.get("extra") or {}, record["received_at"]).run()
    except SpecError as exc:
        problems = [p.format() for p in exc.problems if p.is_error]
        outcome = Outcome(
            OutcomeStatus.FAILED, error=f"invalid .strom/ at {(event.head_sha or '')[:12]}: " + "; ".join(problems)
        )
        service.report(
            {
                "kind": ReportKind.INVALID,
                "workspace": ws.name,
                "sha": event.head_sha,
                "event": event_id,
                "problems": problems,
            }
        )
    except GitError as exc:
        return _retry_later(service, record, str(exc), now) or store.update(event_id, status="failed", error=str(exc))
    except StromError as exc:
        outcome = Outcome(OutcomeStatus.FAILED, error=str(exc))
    except Exception as exc:  # full disks, bugs: try again, and say so
        if is_outage(exc):
            raise  # not the event's fault: it goes back to the queue until Redis answers
        log.exception("event %s: processing failed", event_id)
        error = f"{type(exc).__name__}: {exc}"
        return _retry_later(service, record, error, now) or store.update(event_id, status="failed", error=error)
    log.info(
        "event %s (%s %s): %s %s",
        event_id,
        event.source,
        event.kind,
        outcome.status,
        outcome.reason or outcome.error or ", ".join(outcome.runs),
    )
    return store.update(
        event_id, status=outcome.status.value, reason=outcome.reason, error=outcome.error, runs=outcome.runs
    )


def _retry_later(service: Service, record: dict, error: str, now: float | None) -> dict | None:
    """Schedule another attempt; None when the attempts are used up."""
    attempts = record.get("attempts", 0) + 1
    if attempts > len(RETRY_DELAYS):
        return None
    delay = RETRY_DELAYS[attempts - 1]
    service.redis.zadd(
        keys.DELAYED, {_retry_message(record["id"], attempts): (time.time() if now is None else now) + delay}
    )
    log.warning("event %s: %s (retry %d in %ss)", record["id"], error, attempts, delay)
    return service.repo_events.update(record["id"], attempts=attempts, error=error)


def _bad_commit_names(event: RepoEvent) -> str | None:
    """A sha field that is not a sha (it would reach git's command line and the snapshot path)."""
    for value in (event.sha, event.before, event.pr.head_sha if event.pr else None):
        if value and not is_sha(value):
            return value
    return None


def _retry_message(event_id: str, attempt: int) -> str:
    return messages.encode({"kind": messages.MessageKind.INTAKE, "event": event_id, "attempt": attempt})


class _Processor:
    def __init__(
        self,
        service: Service,
        ws: WorkspaceConfig,
        event: RepoEvent,
        event_id: str,
        extra: dict[str, Any],
        received_at: float,
    ):
        self.extra = extra
        self.received_at = received_at
        self.service = service
        self.ws = ws
        self.event = event
        self.event_id = event_id
        self.pulls = Pulls(service.redis, ws.name)
        self.trust = Trust(service, ws)

    @property
    def is_git(self) -> bool:
        return self.ws.kind in ("git", "hosted")

    def run(self) -> Outcome:
        kind = self.event.kind
        bad = _bad_commit_names(self.event)
        if bad:
            return Outcome(OutcomeStatus.FAILED, error=f"the event names {bad!r} where a commit sha belongs")
        if kind is EventKind.DELETE:
            return self._deleted()
        if kind in (EventKind.PUSH, EventKind.TAG):
            return self._push()
        if kind is EventKind.PULL_REQUEST:
            return self._pull_request()
        if kind is EventKind.COMMENT:
            return self._comment()
        if kind is EventKind.WEBHOOK:
            return self._webhook()
        if kind is EventKind.ALERT:
            return self._alert()
        return Outcome(OutcomeStatus.IGNORED, f"Strom does not act on {kind} events")

    # ------------------------------------------------------------------ pushes
    def _deleted(self) -> Outcome:
        what = f"branch {self.event.branch!r}" if self.event.branch else f"tag {self.event.tag!r}"
        if self.event.branch:
            self.service.redis.hdel(keys.heads(self.ws.name), self.event.branch)
            self.service.runs.forget_row(self.ws.name, branch_row(self.event.branch))
        return Outcome(OutcomeStatus.IGNORED, f"{what} deleted: no trigger runs on deletions")

    def _push(self) -> Outcome:
        event = self.event
        sha = event.sha
        if not sha or sha == ZERO_SHA:
            return Outcome(OutcomeStatus.IGNORED, "the event names no commit")
        if event.kind is EventKind.PUSH and self.ws.branches and not included(event.branch or "", self.ws.branches):
            return Outcome(
                OutcomeStatus.IGNORED,
                f"branch {event.branch!r} is not followed by workspace {self.ws.name!r} "
                f"(branches: {', '.join(self.ws.branches)})",
            )
        checkout = self._checkout(sha, [event.ref or sha], ref=event.ref, branch=event.branch, tag=event.tag)
        if checkout.commit and checkout.commit != sha:  # an annotated tag: run its commit
            sha = checkout.commit
            event = self.event = replace(event, sha=sha)
        if event.kind is EventKind.PUSH:
            self.service.redis.hset(keys.heads(self.ws.name), event.branch, sha)
        message = event.message or (checkout.git or {}).get("message", "")
        if asks_to_skip(message):
            return Outcome(OutcomeStatus.IGNORED, "the commit message asks to skip CI ([skip ci])")
        changed = event.changed_files
        if changed is None and event.kind is EventKind.PUSH and checkout.mirror is not None:
            changed = tuple(checkout.mirror.changed_files(event.before, sha))
        self.event = replace(event, message=message, changed_files=changed)
        matched, reasons = match_event(checkout.workspace.triggers.values(), self.event)
        return self._start(matched, reasons, checkout, trusted=True)

    # ------------------------------------------------------------------ pull requests
    def _pull_request(self) -> Outcome:
        if self.event.pr is None:  # the forges' parsers give every pull request event its pull request
            raise ValueError("a pull_request event without its pull request")
        self.pulls.remember(self.event.pr)
        pr = self.pulls.complete(self.event.pr)
        self.event = replace(self.event, pr=pr)
        if self.pulls.track(pr):
            self.pulls.clear(pr.number, "pending")
            self.service.runs.forget_row(self.ws.name, pull_row(pr.number))
        if pr.action == "synchronize" and self.ws.cancel_waiting_on_push:
            self._cancel_waiting(pr)
        trusted = self.trust.author_trusted(pr)
        if not trusted and not self.trust.approved(pr.number, pr.head_sha):
            # The head's .strom/ is a stranger's: it is not even read before someone trusts it. Whether it
            # would run anything is told by the base branch's definitions.
            base = self._base_definitions(pr)
            if base is not None:
                matched, reasons = match_event(base.triggers.values(), self.event)
                if not matched:
                    return Outcome(OutcomeStatus.IGNORED, "; ".join(reasons))
            return self._wait_for_trust(pr)
        checkout = self._pr_checkout(pr)
        if asks_to_skip(pr.title) or asks_to_skip((checkout.git or {}).get("message")):
            return Outcome(OutcomeStatus.IGNORED, "the pull request title or head commit asks to skip CI ([skip ci])")
        self._pr_changed_files(checkout, pr)
        matched, reasons = match_event(checkout.workspace.triggers.values(), self.event)
        if not matched:
            return Outcome(OutcomeStatus.IGNORED, "; ".join(reasons))
        return self._start(matched, reasons, checkout, trusted=trusted)

    def _base_definitions(self, pr: PullRequest) -> Workspace | None:
        """The definitions of the pull request's base branch (None when there is none to read)."""
        if not pr.base_ref:
            return None
        try:
            return self.service.checkouts.head(self.ws, branch=pr.base_ref, fetch=self.is_git).workspace
        except (StromError, GitError):
            return None

    def _wait_for_trust(self, pr: PullRequest) -> Outcome:
        self.pulls.set(pr.number, "pending", self.event_id)
        reason = (
            f"pull request #{pr.number} by {pr.author or 'an unknown author'} comes from a fork or an author "
            f"without write access: a maintainer must comment /ok-to-test to run commit {pr.head_sha[:7]}"
        )
        self.service.report(
            {
                "kind": ReportKind.WAITING,
                "workspace": self.ws.name,
                "pr": pr.number,
                "sha": pr.head_sha,
                "event": self.event_id,
                "text": reason,
            }
        )
        return Outcome(OutcomeStatus.WAITING, reason)

    def _cancel_waiting(self, pr: PullRequest) -> None:
        """A new head supersedes the gates of older ones: runs of earlier events with a step waiting for
        approval (in the run itself or in a child run) are cancelled. Gates reached later refuse
        /approve on their own (they are not on the head)."""
        flt = RunFilter(workspace=self.ws.name, pr=pr.number)
        targets: dict[str, None] = {}
        for state in self.service.runs.list(flt, limit=200).runs:
            if state.status.terminal or state.commit == pr.head_sha:
                continue
            if (state.event or {}).get("received_at", 0) >= self.received_at:
                continue  # a newer event's run: this (late) event supersedes nothing
            if any(run.status is StepStatus.WAITING for run in state.steps.values()):
                targets[state.parent_job or state.id] = None
        reason = f"superseded: #{pr.number} moved to {pr.head_sha[:7]} while waiting for approval"
        for job_id in targets:
            self.service.orchestrator.try_apply(job_id, Cancel(reason))

    def _pr_checkout(self, pr: PullRequest) -> Checkout:
        refs = [pr_head_ref(self.ws.forge, pr.number)]
        if pr.base_ref:
            refs.append(f"refs/heads/{pr.base_ref}")
        return self._checkout(pr.head_sha, refs, ref=pr_head_ref(self.ws.forge, pr.number), branch=pr.head_ref)

    def _pr_changed_files(self, checkout: Checkout, pr: PullRequest) -> None:
        if self.event.changed_files is not None or checkout.mirror is None or not pr.base_ref:
            return
        base = checkout.mirror.resolve(f"refs/heads/{pr.base_ref}")
        if base:
            self.event = replace(self.event, changed_files=tuple(checkout.mirror.changed_since_fork(base, pr.head_sha)))

    # ------------------------------------------------------------------ comments
    def _comment(self) -> Outcome:
        comment = self.event.comment
        if comment is None:  # the forges' parsers give every comment event its comment
            raise ValueError("a comment event without its comment")
        commands = parse_commands(comment.body)
        if not commands:
            return Outcome(OutcomeStatus.IGNORED, "the comment has no /command line")
        if comment.is_bot or is_stroms_own(comment.body):
            return Outcome(OutcomeStatus.IGNORED, f"comment by bot {comment.author!r}")
        if self.event.pr is None:  # and the pull request it is on
            raise ValueError("a comment event without its pull request")
        pr = self._known_pr(self.event.pr)
        self.event = replace(self.event, pr=pr, sha=pr.head_sha or self.event.sha)
        return PullRequestCommands(self, pr).run(commands, self.service.config.comment_commands)

    def _known_pr(self, pr: PullRequest) -> PullRequest:
        """The pull request with what the comment's payload lacks: from earlier events, else from git."""
        pr = self.pulls.complete(pr)
        if not pr.head_sha and self.is_git:
            mirror = self.service.repos.mirror(self.ws)
            ref = pr_head_ref(self.ws.forge, pr.number)
            mirror.fetch(ref)
            pr = replace(pr, head_sha=mirror.resolve(ref) or "", from_fork=True)
        elif not self.pulls.get(pr.number, "facts") and not pr.head_sha:
            pr = replace(pr, from_fork=True)  # nothing known: treat it as untrusted
        return pr

    def _ok_to_test(self, pr: PullRequest, words: list[str], who: str) -> Outcome:
        """Trust the pull request's head (`/ok-to-test <sha>` names the commit that was reviewed), as `who` asks."""
        pending_id = self.pulls.get(pr.number, "pending")
        pending = self.service.repo_events.load(pending_id) if pending_id else None
        sha = (pending or {}).get("event", {}).get("sha") or pr.head_sha
        if not sha:
            return Outcome(OutcomeStatus.FAILED, error=f"cannot tell the head commit of pull request #{pr.number}")
        if words and not (len(words[0]) >= 7 and sha.startswith(words[0].lower())):
            return Outcome(
                OutcomeStatus.IGNORED,
                f"the head of #{pr.number} is {sha[:7]}, not {words[0][:40]}: "
                f"look at it and comment /ok-to-test {sha[:7]}",
            )
        self.trust.approve(pr.number, sha, who)
        # An event still being processed has not written "waiting" yet: queue it again as well.
        if pending_id is None or pending is None or pending.get("status") not in ("waiting", "queued"):
            return Outcome(OutcomeStatus.DONE, f"{who} trusted commit {sha[:7]} of #{pr.number}; nothing was waiting")
        self.pulls.clear(pr.number, "pending")
        self.service.repo_events.requeue(pending_id)
        return Outcome(
            OutcomeStatus.DONE, f"{who} trusted commit {sha[:7]} of #{pr.number}: event {pending_id} runs now"
        )

    # ------------------------------------------------------------------ generic webhooks
    def _webhook(self) -> Outcome:
        name = self.extra.get("hook")
        checkout = self.service.checkouts.head(self.ws, fetch=False)
        trigger = hook_trigger(checkout.workspace.triggers.values(), TriggerType.WEBHOOK, name)
        if trigger is not None and trigger.force_refresh and self.is_git:  # the newest commit's definitions
            checkout = self.service.checkouts.head(self.ws, fetch=True)
            trigger = hook_trigger(checkout.workspace.triggers.values(), TriggerType.WEBHOOK, name)
        if trigger is None:
            return Outcome(
                OutcomeStatus.IGNORED, f"no webhook trigger named {name!r} in workspace {self.ws.name!r} any more"
            )
        return self._start([Matched(trigger)], [], checkout, trusted=True)

    # ------------------------------------------------------------------ Alertmanager
    def _alert(self) -> Outcome:
        checkout = self.service.checkouts.head(self.ws, fetch=False)
        name = self.extra.get("hook")
        trigger = hook_trigger(checkout.workspace.triggers.values(), TriggerType.ALERT, name)
        if trigger is None:
            return Outcome(OutcomeStatus.IGNORED, f"no alert trigger {name!r} in workspace {self.ws.name!r} any more")
        why_not = alert_mismatch(trigger, self.extra)
        if why_not:
            return Outcome(OutcomeStatus.IGNORED, f"trigger {trigger.name!r}: {why_not}")
        return self._start([Matched(trigger)], [], checkout, trusted=True)

    # ------------------------------------------------------------------ shared
    def _checkout(
        self, sha: str, refs: list[str], *, ref: str | None = None, branch: str | None = None, tag: str | None = None
    ) -> Checkout:
        if not self.is_git:  # a folder: its files as they are, with the event's commit for information
            folder = self.service.checkouts.folder(self.ws)
            sha = sha or ""
            git = {
                "sha": sha,
                "short_sha": sha[:7],
                "ref": ref or sha,
                "branch": branch or "",
                "tag": tag or "",
                "message": self.event.message,
                "title": self.event.message.splitlines()[0] if self.event.message else "",
                "author": self.event.actor,
                "author_email": "",
                "dirty": False,
            }
            return replace(folder, git=git, commit=sha or None)
        mirror = self.service.repos.mirror(self.ws)
        commit = mirror.resolve(sha)  # peels an annotated tag to its commit
        if commit is None:
            mirror.fetch(*refs)
            commit = mirror.resolve(sha)
        if commit is None:
            mirror.fetch(sha)
            commit = mirror.resolve(sha)
        if commit is None:
            raise GitError(f"commit {sha} is not in {self.ws.url or self.ws.name} (fetched {', '.join(refs)})")
        return self.service.checkouts.commit(self.ws, commit, ref=ref, branch=branch, tag=tag)

    def event_data(self) -> dict:
        """The event as runs keep it (and templates see it as `event`)."""
        return {**self.event.to_dict(), **self.extra, "id": self.event_id, "received_at": self.received_at}

    def _start(
        self, matched: list[Matched], reasons: list[str], checkout: Checkout, trusted: bool, part: int = 0
    ) -> Outcome:
        if not matched:
            return Outcome(OutcomeStatus.IGNORED, "; ".join(reasons))
        started, errors, notes = [], [], []
        event = {**self.event.to_dict(), **self.extra}
        event_data = self.event_data()
        for match in matched:
            trigger = match.trigger
            job_id = run_id(self.ws.name, trigger.name, self.event, self.event_id, part)
            paused = self.service.pauses.why(self.ws.name, trigger, f"event:{self.event_id}")
            if paused:
                notes.append(f"trigger {trigger.name!r}: skipped: {paused}")
                continue
            if self.service.runs.exists(job_id):
                started.append(job_id)
                notes.append(f"trigger {trigger.name!r}: run {job_id} already exists")
                continue
            try:
                if match.group:
                    with redis_lock(self.service.redis, keys.group_lock(self.ws.name, match.group)):
                        why_not = self._concurrency(trigger, match.group)
                        if why_not is None:
                            started.append(self._start_one(match, checkout, event, event_data, job_id, trusted))
                else:
                    why_not = None
                    started.append(self._start_one(match, checkout, event, event_data, job_id, trusted))
                if why_not:
                    notes.append(f"trigger {trigger.name!r}: {why_not}")
            except StromError as exc:
                errors.append(f"trigger {trigger.name!r} could not start {trigger.task!r}: {exc}")
        if started:
            return Outcome(OutcomeStatus.DONE, "; ".join(notes) or None, started, "; ".join(errors) or None)
        if errors:
            return Outcome(OutcomeStatus.FAILED, "; ".join(notes) or None, [], "; ".join(errors))
        return Outcome(OutcomeStatus.IGNORED, "; ".join(notes))

    def _start_one(
        self, match: Matched, checkout: Checkout, event: dict, event_data: dict, job_id: str, trusted: bool
    ) -> str:

        trigger = match.trigger
        inputs = {**self._inputs(trigger, checkout, event), **match.args}
        try:
            return runs.start(
                self.service,
                self.ws.name,
                checkout,
                trigger.task,
                inputs,
                source=self.event.source,
                trigger=trigger.name,
                event=event_data,
                allow_extra=True,
                job_id=job_id,
                trusted=trusted,
                group=match.group,
            ).id
        except Conflict:
            return job_id

    def _inputs(self, trigger: Trigger, checkout: Checkout, event: dict) -> dict:
        """The trigger's `input` rendered over `event` (the normalised event and its extras) and `git`."""
        request = {}
        if self.event.kind is EventKind.WEBHOOK:  # Strøm's names for the request
            request = {k: self.extra.get(k) for k in ("body", "headers", "query", "method")}
        return runs.trigger_inputs(trigger, event, checkout.git, **request)

    def _concurrency(self, trigger: Trigger, group: str) -> str | None:
        """Apply the trigger's concurrency to the group's unfinished runs; the reason not to start, or None.

        Only older events' runs are cancelled: a late event (a retried fetch, a slow thread) never
        cancels or races the run of a newer one."""
        page = self.service.runs.list(RunFilter(workspace=self.ws.name, trigger=trigger.name), limit=100)
        active = [s for s in page.runs if not s.status.terminal and s.group == group]
        newer = [s for s in active if (s.event or {}).get("received_at", 0) > self.received_at]
        if newer:
            return f"skipped: run {newer[0].id} of a newer event is already going ({group})"
        if active and trigger.concurrency is Concurrency.SKIP:
            return f"skipped: run {active[0].id} of {group} is still going"
        if trigger.concurrency is Concurrency.CANCEL_PREVIOUS:
            for state in active:
                self.service.orchestrator.try_apply(state.id, Cancel(f"superseded by a newer event ({self.event_id})"))
        return None
