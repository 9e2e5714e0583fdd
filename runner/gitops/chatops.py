"""Act on the commands of a pull request comment and answer them in the pull request.

Strom's own commands (`/approve`, `/reject`, `/run`, `/retry`, `/cancel`, `/ok-to-test`) and the
`comment` triggers of `.strom/` share one path: check who asked, act, and answer — a reaction on
the comment when something was done, a short reply with the reason when something was refused or
failed. Every command of a comment acts once: run ids derive from the comment id and the
command's position, so a redelivered or retried event finds the runs it already started.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from .. import runs
from ..engine import RunState, RunStatus, StepStatus
from ..engine.events import Cancel
from ..errors import EngineError, InputError, StromError
from ..runs.messages import ReportKind
from ..runs.orchestrator import Conflict
from ..spec.model import TriggerType
from ..store import RunFilter
from ..suggestions import suggest
from .commands import STROM_MARK, Command, key_values, unknown_command
from .gates import Gatekeeper, waiting_gates
from .match import match_event
from .outcome import Outcome, OutcomeStatus

if TYPE_CHECKING:
    from ..forges.event import PullRequest
    from ..runs.checkout import Checkout
    from ..runs.service import Service
    from .intake import _Processor

__all__ = ["PullRequestCommands", "reply_body"]

RUN_SCAN = 200  # the newest runs of a pull request that commands look at
RETRYABLE = (RunStatus.FAILED, RunStatus.TIMED_OUT)


MAX_ANSWER = 1000  # characters of one answer in a reply
MAX_REPLY = 8000  # characters of a whole reply


def reply_body(author: str, answers: list[str]) -> str:
    """One reply to a comment's commands: bounded however many there were and however long their answers."""
    answers = [a if len(a) <= MAX_ANSWER else a[: MAX_ANSWER - 1] + "…" for a in answers]
    lines = [f"@{author} " + answers[0]] if len(answers) == 1 else [f"@{author}"] + [f"- {a}" for a in answers]
    text = "\n".join(lines)
    if len(text) > MAX_REPLY:
        text = text[: MAX_REPLY - 40].rsplit("\n", 1)[0] + "\n- … (more answers left out)"
    return text + f"\n{STROM_MARK}:reply -->"


class PullRequestCommands:
    """The commands of one comment on pull request `pr`, carried out by the intake `processor`."""

    def __init__(self, processor: _Processor, pr: PullRequest):
        self.p = processor
        self.service: Service = processor.service
        self.ws = processor.ws
        self.pr = pr
        comment = processor.event.comment
        if comment is None:  # the intake hands over comment events only
            raise ValueError("pull request commands without their comment")
        self.comment = comment
        self.gatekeeper = Gatekeeper(self.service, self.ws, processor.trust)
        self._checkout: Checkout | None = None

    def run(self, commands: list[Command], limit: int = 10) -> Outcome:
        """Carry out the first `limit` commands (limits.comment_commands); the reply says if some were left out."""
        results = [(command, self.one(command)) for command in commands[:limit]]
        answers = [
            o.reply or o.reason or o.error or ""
            for _, o in results
            if not o.quiet and (o.reply or o.status in (OutcomeStatus.IGNORED, OutcomeStatus.FAILED))
        ]
        if len(commands) > limit:
            answers.append(
                f"only the first {limit} commands of a comment are carried out; the other "
                f"{len(commands) - limit} were left out"
            )
        acted = any(o.status is OutcomeStatus.DONE for _, o in results)
        if acted or answers:
            self._answer(acted, [a for a in answers if a])
        if len(results) == 1:
            return results[0][1]
        runs = [r for _, o in results for r in o.runs]
        notes = [f"/{c.name}: {o.reason or o.error or o.status}" for c, o in results]
        status = (
            OutcomeStatus.DONE
            if acted
            else OutcomeStatus.FAILED
            if any(o.status is OutcomeStatus.FAILED for _, o in results)
            else OutcomeStatus.IGNORED
        )
        return Outcome(status, "; ".join(notes), list(dict.fromkeys(runs)))

    def one(self, command: Command) -> Outcome:
        handler = {
            "approve": self.approve,
            "reject": self.reject,
            "answer": self.answer,
            "run": self.run_task,
            "retry": self.retry,
            "cancel": self.cancel,
            "ok-to-test": self.ok_to_test,
        }.get(command.name, self.custom)
        try:
            return handler(command)
        except InputError as exc:
            return self._refused(f"/{command.name}: {exc}")
        except _NoHead as exc:
            return Outcome(OutcomeStatus.FAILED, error=str(exc))

    # ------------------------------------------------------------------ answers
    def _answer(self, acted: bool, answers: list[str]) -> None:
        base = {"workspace": self.ws.name, "pr": self.pr.number}
        if self.comment.id:
            self.service.report(
                {
                    **base,
                    "kind": ReportKind.REACT,
                    "comment": self.comment.id,
                    "reaction": "+1" if acted else "confused",
                }
            )
        if answers:
            self.service.report({**base, "kind": ReportKind.REPLY, "text": reply_body(self.comment.author, answers)})

    @staticmethod
    def _refused(reason: str) -> Outcome:
        return Outcome(OutcomeStatus.IGNORED, reason)

    @staticmethod
    def _done(reason: str, runs: Iterable[str] = (), reply: str | None = None) -> Outcome:
        return Outcome(OutcomeStatus.DONE, reason, list(runs), reply=reply)

    # ------------------------------------------------------------------ who may
    def _writer_refusal(self, command: Command) -> Outcome | None:
        if self.p.trust.can_write(self.comment.author, self.comment.association):
            return None
        return self._refused(
            f"{self.comment.author} may not run /{command.name}: commands need write access to the repository"
        )

    def _untrusted_refusal(self, command: Command) -> Outcome | None:
        trusted = self.p.trust.author_trusted(self.pr)
        if trusted or self.p.trust.approved(self.pr.number, self.pr.head_sha):
            return None
        return self._refused(
            f"pull request #{self.pr.number} is untrusted: comment /ok-to-test on its head "
            f"{self.pr.head_sha[:7]} before /{command.name}"
        )

    # ------------------------------------------------------------------ the pull request's runs
    def _runs(self) -> list[RunState]:
        flt = RunFilter(workspace=self.ws.name, pr=self.pr.number)
        return self.service.runs.list(flt, limit=RUN_SCAN).runs

    def checkout(self) -> Checkout:
        if self._checkout is None:
            if not self.pr.head_sha and self.p.is_git:
                raise _NoHead(f"cannot tell the head commit of pull request #{self.pr.number}")
            self._checkout = self.p._pr_checkout(self.pr)
        return self._checkout

    # ------------------------------------------------------------------ /approve and /reject
    def approve(self, command: Command) -> Outcome:
        return self._decide(command, True)

    def reject(self, command: Command) -> Outcome:
        return self._decide(command, False)

    def answer(self, command: Command) -> Outcome:
        """`/answer [step] <answer>`: the answer is the rest of the line as written (quotes and all)."""
        return self._decide(command, True, answering=True)

    def _before_comment(self, state: RunState) -> bool:
        """Runs the commenter could have seen: created before the comment arrived."""
        return state.created_at <= self.p.received_at

    def _decide(self, command: Command, approve: bool, answering: bool = False) -> Outcome:
        runs = [s for s in self._runs() if not s.status.terminal and self._before_comment(s)]
        gates = [g for g in waiting_gates(runs) if not approve or g.question == answering]
        head = self.pr.head_sha
        stale = [g for g in gates if head and g.run.commit and g.run.commit != head]
        gates = [g for g in gates if g not in stale]
        if not gates:
            if stale:
                return self._refused(
                    f"the gates waiting on #{self.pr.number} belong to older commits than its head "
                    f"{head[:7]}; approve the runs of {head[:7]}"
                )
            waits = "an answer" if answering else "approval"
            return self._refused(f"nothing on #{self.pr.number} waits for {waits}")
        words = list(command.words)
        text = _after_first_word(command.line)
        if words and any(words[0] in (g.name, g.step.step) for g in gates):
            wanted = words.pop(0)
            gates = [g for g in gates if wanted in (g.name, g.step.step)]
            text = _after_first_word(text)
        if answering and len(gates) > 1:
            names = ", ".join(f"`{g.name}`" for g in gates)
            return self._refused(f"several questions wait ({names}): say which, `/answer <step> <answer>`")
        if answering and not text.strip():
            return self._refused("`/answer` needs the answer: `/answer [step] <answer>`")
        reason = None if answering else " ".join(words) or None
        user = self.comment.author
        acted: list[str] = []
        refusals: list[str] = []
        decided: list[str] = []
        for gate in gates:
            why = self.gatekeeper.refusal(gate, user, approve, association=self.comment.association)
            if why is None:
                try:
                    state = self.gatekeeper.decide(gate, user, approve, reason, text if answering else None)
                except EngineError as exc:
                    why = str(exc)
            if why is not None:
                refusals.append(why)
                continue
            decided.append(gate.run.id)
            step = state.steps[gate.name]
            verb = "answered" if answering else "approved" if approve else "rejected"
            still = (
                f" ({len(gate.approved_by()) + 1} of {gate.required} approvals)"
                if approve and step.approval and step.status is StepStatus.WAITING
                else ""
            )
            acted.append(f"{verb} `{gate.name}` of run {gate.run.id}{still}")
        if not acted:
            return self._refused("; ".join(refusals))
        return self._done("; ".join(acted), decided, reply="; ".join(refusals) or None)

    # ------------------------------------------------------------------ /run
    def run_task(self, command: Command) -> Outcome:
        refused = self._writer_refusal(command) or self._untrusted_refusal(command)
        if refused:
            return refused
        if not command.words:
            return self._refused("`/run` needs a task: `/run <task> [key=value ...]`")
        task, rest = command.words[0], command.words[1:]
        try:
            inputs = key_values(rest)
        except ValueError as exc:
            return self._refused(f"/run {task}: {exc}; give inputs as key=value")
        checkout = self.checkout()
        tasks = checkout.workspace.tasks
        if task not in tasks:
            hint = suggest(task, tasks)
            return self._refused(
                f"there is no task `{task}` at {self.pr.head_sha[:7] or 'the head'}"
                + (f"; {hint}" if hint else "")
                + f" (tasks: {', '.join(sorted(tasks)) or 'none'})"
            )

        job_id = self._command_id(command, "run")
        trusted = self.p.trust.author_trusted(self.pr)
        try:
            state = runs.start(
                self.service,
                self.ws.name,
                checkout,
                task,
                inputs,
                source=self.p.event.source,
                event=self.p.event_data(),
                job_id=job_id,
                trusted=trusted,
            )
        except Conflict:
            return self._done(f"run {job_id} of {task} already exists", [job_id])
        return self._done(f"started {task} as run {state.id}", [state.id])

    # ------------------------------------------------------------------ /retry and /cancel
    def retry(self, command: Command) -> Outcome:
        refused = self._writer_refusal(command)
        if refused:
            return refused
        newest: dict[str, RunState] = {}
        for state in self._runs():  # newest first
            mine = state.retry_of and state.id == self._command_id(command, state.retry_of)
            if not state.parent_job and not state.is_hook and not mine:  # a repeated /retry finds its runs
                newest.setdefault(state.task, state)
        head = self.pr.head_sha
        failed = [s for s in newest.values() if s.status in RETRYABLE and (not head or s.commit == head)]
        if not failed:
            return self._refused(
                f"no failed run of #{self.pr.number}" + (f" at {head[:7]}" if head else "") + " to retry"
            )

        started = []
        for state in sorted(failed, key=lambda s: s.task):
            job_id = self._command_id(command, state.id)
            try:
                started.append(runs.rerun(self.service, state.id, by=self.comment.author, job_id=job_id).id)
            except Conflict:
                started.append(job_id)
        return self._done(
            "retried "
            + ", ".join(f"{s.task} ({s.id} -> {n})" for s, n in zip(sorted(failed, key=lambda s: s.task), started)),
            started,
        )

    def cancel(self, command: Command) -> Outcome:
        refused = self._writer_refusal(command)
        if refused:
            return refused
        active = [
            s
            for s in self._runs()
            if not s.status.terminal and not s.parent_job and not s.is_hook and self._before_comment(s)
        ]
        if not active:
            return self._refused(f"no unfinished run of #{self.pr.number} to cancel")
        cancelled = []
        for state in active:
            reason = f"cancelled with /cancel on #{self.pr.number}"
            if self.service.orchestrator.try_apply(state.id, Cancel(reason, by=self.comment.author)) is not None:
                cancelled.append(state.id)
        return self._done(f"cancelled {', '.join(cancelled) or 'nothing (they had just finished)'}", cancelled)

    # ------------------------------------------------------------------ /ok-to-test
    def ok_to_test(self, command: Command) -> Outcome:
        refused = self._writer_refusal(command)
        if refused:
            return refused
        return self.p._ok_to_test(self.pr, list(command.words), self.comment.author)

    # ------------------------------------------------------------------ commands of .strom/
    def custom(self, command: Command) -> Outcome:
        refused = self._writer_refusal(command)
        if refused:
            refused.quiet = True  # perhaps meant for another bot: no reply to people without access
            return refused
        refused = self._untrusted_refusal(command)  # before a stranger's definitions are even read
        if refused:
            return refused
        checkout = self.checkout()
        defined = {
            (t.command or "").lower() for t in checkout.workspace.triggers.values() if t.type is TriggerType.COMMENT
        }
        if command.name not in defined:
            return self._refused(unknown_command(command.name, defined))
        event = replace(self.p.event, comment=replace(self.comment, body=command.line))
        matched, reasons = match_event(checkout.workspace.triggers.values(), event)
        trusted = self.p.trust.author_trusted(self.pr)
        return self.p._start(matched, reasons, checkout, trusted=trusted, part=command.index)

    # ------------------------------------------------------------------ shared
    def _command_id(self, command: Command, what: str) -> str:
        identity = f"strom-command:{self.ws.name}:{self.comment.id or self.p.event_id}:{command.index}:{what}"
        return uuid.uuid5(uuid.NAMESPACE_URL, identity).hex[:16]


class _NoHead(StromError):
    pass


def _after_first_word(text: str) -> str:
    parts = text.split(None, 1)
    return parts[1] if len(parts) > 1 else ""
