"""Tell the forge what happened: a commit status per task, and one summary comment per pull request
that is created once and edited as its runs progress.

Reports always describe a run's *current* state (read when the report is sent), so a late or
repeated report can never move a status backwards. A failing forge is logged and never touches
the run.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING

from ..engine.status import RunStatus
from ..outputs import step_summaries
from ..runs.messages import ReportKind, report_kind
from ..store import keys
from ..store.locks import LockTimeout, redis_lock
from .pulls import Pulls

if TYPE_CHECKING:
    from ..runs.service import Service

__all__ = ["MARKER", "Reporter", "commit_state", "gates_of", "summary_body"]

log = logging.getLogger("strom.reporting")
MARKER = "<!-- strom:summary -->"
LOCK_MS = 15_000
COMMENT_SUMMARY = 4000  # characters of each step summary in the comment (GitHub takes 65,536 in all)
_STATE = {
    RunStatus.QUEUED: "pending",
    RunStatus.RUNNING: "pending",
    RunStatus.WAITING: "pending",
    RunStatus.SUCCEEDED: "success",
    RunStatus.FAILED: "failure",
    RunStatus.CANCELLED: "cancelled",
    RunStatus.TIMED_OUT: "failure",
    RunStatus.SKIPPED: "success",
}
_ICON = {
    "queued": "🕓",
    "running": "🔄",
    "waiting": "⏸️",
    "succeeded": "✅",
    "failed": "❌",
    "cancelled": "🚫",
    "timed_out": "⌛",
    "skipped": "⏭️",
}


def commit_state(status: RunStatus) -> str:
    return _STATE[status]


def _describe(state, status: RunStatus) -> str:
    if status is RunStatus.QUEUED:
        return "queued"
    if status is RunStatus.RUNNING:
        return "running"
    if status is RunStatus.WAITING:
        return "waiting for approval"
    took = ""
    if state.finished_at and (state.started_at or state.created_at):
        took = f" in {max(0, int(state.finished_at - (state.started_at or state.created_at)))}s"
    text = {"timed_out": "timed out"}.get(status.value, status.value) + took
    return f"{text}: {state.error}" if state.error and status is not RunStatus.SUCCEEDED else text


def gates_of(state) -> list[dict]:
    """The approval steps of a run, as the summary comment shows them."""
    out = []
    for run in state.steps.values():
        if run.approval is None:
            continue
        approval = dict(run.approval)
        out.append(
            {
                "step": run.name,
                "status": run.status.value,
                "error": run.error,
                "question": bool(approval.get("question")),
                "message": (approval.get("message") or "").strip().splitlines()[:1],
                "approvers": list(approval.get("approvers") or []),
                "required": approval.get("required", 1),
                "decisions": [
                    {k: d.get(k) for k in ("by", "approved", "reason")} for d in approval.get("decisions", [])
                ],
            }
        )
    return out


def _gate_line(task: str, gate: dict) -> str:
    name, status = gate["step"], gate["status"]
    approved = [d["by"] for d in gate["decisions"] if d["approved"]]
    where = f"`{task}` › `{name}`"
    if status == "waiting" and gate.get("question"):
        asked = gate["message"][0][:200] if gate["message"] else ""
        return f"❓ {where} asks: {asked} Comment `/answer {name} <your answer>` or `/reject {name} <reason>`."
    if status == "waiting":
        who = ", ".join(gate["approvers"]) or "anyone with write access"
        count = f"{len(approved)} of {gate['required']} approvals, " if gate["required"] > 1 else ""
        message = f": {gate['message'][0][:200]}" if gate["message"] else ""
        return (
            f"⏸️ {where} waits for approval{message} ({count}from {who}). Comment `/approve {name}` or "
            f"`/reject {name} <reason>`."
        )
    if status == "succeeded":
        return f"✅ {where} approved by {', '.join(approved)}"
    rejected = next((d for d in gate["decisions"] if not d["approved"]), None)
    if rejected:
        return f"❌ {where} rejected by {rejected['by']}" + (f": {rejected['reason']}" if rejected["reason"] else "")
    return f"{_ICON.get(status, '')} {where} {status.replace('_', ' ')}" + (
        f": {gate['error']}" if gate["error"] else ""
    )


def _inert(markdown: str) -> str:
    """A step's summary as Markdown that cannot mention people or teams, or close or fake the comment's HTML."""
    return re.sub(r"@(?=[\w-])", "@\u200b", markdown.replace("<", "&lt;"))


def summary_body(runs: dict, notes: list[str]) -> str:
    """The pull request's summary comment: one row per task (its newest run), its gates, then any notes."""
    lines = ["### Strom", ""]
    if runs:
        lines += ["| Task | Status | Commit | Run |", "|---|---|---|---|"]
        for task in sorted(runs):
            run = runs[task]
            status = run["status"]
            lines.append(
                f"| `{task}` | {_ICON.get(status, '')} {status.replace('_', ' ')} | "
                f"`{(run.get('sha') or '')[:7]}` | [{run['id']}]({run['url']}) |"
            )
        lines.append("")
        gates = [_gate_line(task, gate) for task in sorted(runs) for gate in runs[task].get("gates", [])]
        if gates:
            lines += [*gates, ""]
        for task in sorted(runs):
            for step, text in runs[task].get("summaries", []):
                lines += [
                    f"<details><summary><code>{task}</code> › <code>{step}</code></summary>",
                    "",
                    _inert(text),
                    "",
                    "</details>",
                    "",
                ]
    lines += [f"> {note}" for note in notes]
    lines.append(MARKER)
    return "\n".join(lines)


class Reporter:
    def __init__(self, service: Service):
        self.service = service
        self.redis = service.redis

    def handle(self, message: dict) -> None:
        kind = message.get("kind")
        known = report_kind(kind)
        try:
            if known is ReportKind.RUN:
                self._run(message["job"], message.get("status"))
            elif known is ReportKind.WAITING:
                self._note(message["workspace"], message["pr"], message.get("sha"), message["text"])
            elif known is ReportKind.INVALID:
                self._invalid(message)
            elif known is ReportKind.REACT or known is ReportKind.REPLY:
                self._answer(message, known)
        except LockTimeout:  # another reporter holds this pull request's comment: try again later
            self.service.report(message)
        except Exception as exc:  # noqa: BLE001 - reporting never fails anything
            log.warning("reporting %s failed: %s", kind, exc)
            self.redis.hincrby(keys.COUNTERS, "reports_failed", 1)

    # ------------------------------------------------------------------ runs
    def _run(self, job_id: str, queued_for: str | None) -> None:
        state = self.service.runs.load(job_id)
        if state is None or not state.commit:
            return
        if state.status.terminal and queued_for and not RunStatus(queued_for).terminal:
            return  # the run finished since: its final report follows (a status never moves backwards)
        ws = self.service.config.workspaces.get(state.workspace)
        api = self.service.forge_api(ws) if ws else None
        if api is None:
            return
        status = state.status if state.status.terminal or not queued_for else RunStatus(queued_for)
        url = self.service.config.run_url(state.id)
        api.set_status(state.commit, commit_state(status), f"strom/{state.task}", _describe(state, status), url)
        pr = ((state.event or {}).get("pr") or {}).get("number")
        if pr:
            entry = {
                "id": state.id,
                "status": status.value,
                "sha": state.commit,
                "url": url,
                "created_at": state.created_at,
                "gates": gates_of(state),
                "summaries": step_summaries(state.steps, COMMENT_SUMMARY),
            }
            self._update_summary(ws, api, int(pr), task=state.task, entry=entry)

    def _invalid(self, message: dict) -> None:
        ws = self.service.config.workspaces.get(message["workspace"])
        api = self.service.forge_api(ws) if ws else None
        if api is None or not message.get("sha"):
            return
        problems = message.get("problems") or []
        api.set_status(
            message["sha"],
            "failure",
            "strom/definitions",
            f"invalid .strom/: {problems[0] if problems else 'see the event'}",
            f"{self.service.config.public_url.rstrip('/')}/api/events/{message['event']}",
        )

    def _answer(self, message: dict, kind: ReportKind) -> None:
        """A reaction on a command's comment, or a reply to it."""
        ws = self.service.config.workspaces.get(message["workspace"])
        api = self.service.forge_api(ws) if ws else None
        if api is None:
            return
        if kind is ReportKind.REACT:
            api.react(int(message["pr"]), str(message["comment"]), message["reaction"])
        else:
            api.create_comment(int(message["pr"]), message["text"])

    def _note(self, workspace: str, number: int, sha: str | None, text: str) -> None:
        ws = self.service.config.workspaces.get(workspace)
        api = self.service.forge_api(ws) if ws else None
        if api is not None:
            self._update_summary(ws, api, number, note=text)

    # ------------------------------------------------------------------ the summary comment
    def _update_summary(
        self, ws, api, number: int, *, task: str | None = None, entry: dict | None = None, note: str | None = None
    ) -> None:
        pulls = Pulls(self.redis, ws.name)
        with redis_lock(self.redis, keys.pull_request(ws.name, number) + ":lock", ttl_ms=LOCK_MS):
            runs = json.loads(pulls.get(number, "runs") or "{}")
            notes = json.loads(pulls.get(number, "notes") or "[]")
            if entry is not None:
                current = runs.get(task)
                if current and current["id"] != entry["id"] and current.get("created_at", 0) > entry["created_at"]:
                    return  # an older run's report: the newer run already owns the row
                runs[task] = entry
                notes = [n for n in notes if not n.startswith("⏸")]
            if note is not None:
                notes = [n for n in notes if not n.startswith("⏸")] + [f"⏸ {note}"]
            pulls.set(number, "runs", json.dumps(runs))
            pulls.set(number, "notes", json.dumps(notes))
            body = summary_body(runs, notes)
            comment = pulls.get(number, "comment")
            if comment:
                api.edit_comment(number, comment, body)
            else:
                pulls.set(number, "comment", api.create_comment(number, body))
