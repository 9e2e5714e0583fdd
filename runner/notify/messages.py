"""Default notification messages: useful without any template. Pure functions of a run.

Markdown for chat (Slack, Discord, ...), the same facts as plain text for mail:

    ❌ deploy failed · app
    failed in 1m12s · push to main by alice
    commit 1a2b3c4 on main: Fix the login form (link)
    failed steps:
    - migrate: exit code 1 … relation "users" does not exist
    Run: https://strom.example.com/runs/ab12cd34
"""

from __future__ import annotations

from ..durations import format_duration
from ..engine import RunState, StepStatus
from ..outputs import step_summaries
from ..spec.model import NotifyEvent
from .send import Message

__all__ = ["ERROR_TAIL", "plain", "run_message", "step_message", "trigger_text", "waiting_message"]

ERROR_TAIL = 300  # characters of a failed step's error shown
NOTIFY_SUMMARY = 1000  # characters of each step's summary shown
E = NotifyEvent
ICONS = {E.FAILED: "❌", E.TIMED_OUT: "⌛", E.SUCCEEDED: "✅", E.CANCELLED: "🚫", E.RECOVERED: "💚", E.WAITING: "⏸️"}
WORDS = {
    E.FAILED: "failed",
    E.TIMED_OUT: "timed out",
    E.SUCCEEDED: "succeeded",
    E.CANCELLED: "was cancelled",
    E.RECOVERED: "recovered",
    E.WAITING: "waits for approval",
}
KIND = {
    E.FAILED: "failure",
    E.TIMED_OUT: "failure",
    E.SUCCEEDED: "success",
    E.RECOVERED: "success",
    E.CANCELLED: "info",
    E.WAITING: "warning",
}


def plain(text: str) -> str:
    """Text from outside (commit titles, errors, approval messages) that cannot ping a whole chat
    (Slack's <!channel>, <@U123>, Discord's @everyone)."""
    return (
        text.replace("<!", "<\u200b!")
        .replace("<@", "<\u200b@")
        .replace("@everyone", "@\u200beveryone")
        .replace("@here", "@\u200bhere")
    )


def trigger_text(state: RunState) -> str:
    """Who or what started the run, in a few words."""
    event = state.event or {}
    actor = event.get("actor") or ""
    by = f" by {actor}" if actor and event.get("kind") not in ("job",) else ""
    kind = event.get("kind")
    pr = event.get("pr") or {}
    if state.source == "rerun":
        return "re-run" + (f" of a {kind} run" if kind else "")
    if kind == "push":
        return f"push to {event.get('branch') or event.get('ref')}{by}"
    if kind == "tag":
        return f"tag {event.get('tag')}{by}"
    if kind == "pull_request":
        return f"pull request #{pr.get('number')} ({pr.get('action')}){by}"
    if kind == "comment":
        first = ((event.get("comment") or {}).get("body") or "").strip().splitlines()
        return f"comment {first[0][:60] if first else ''} on #{pr.get('number')}{by}".replace("  ", " ")
    if kind == "job":
        return f"after {(event.get('job') or {}).get('task')} ({state.trigger})"
    if state.source == "scheduler":
        return f"schedule {state.trigger}"
    if state.source in ("webhook", "hook"):
        return f"webhook {state.trigger or ''}".strip()
    if state.source in ("api", "manual", "cli"):
        return f"started from the {state.source.upper() if state.source == 'api' else state.source}{by}"
    return state.source + (f" {state.trigger}" if state.trigger else "")


def _duration(state: RunState) -> str | None:
    started = state.started_at or state.created_at
    if state.finished_at is None or started is None:
        return None
    return format_duration(max(0.0, state.finished_at - started))


def _commit(state: RunState, commit_url: str | None) -> tuple[str, str] | None:
    """(markdown, text) describing the commit, or None for a run without one."""
    git = state.git or {}
    sha = state.commit or git.get("sha")
    if not sha:
        return None
    short = sha[:7]
    branch = git.get("branch") or (state.event or {}).get("branch") or ""
    title = git.get("title") or (git.get("message") or "").strip().splitlines()[0:1] or [""]
    title = title[0] if isinstance(title, list) else title
    on = f" on {branch}" if branch else ""
    says = f": {plain(title)}" if title else ""
    md_sha = f"[`{short}`]({commit_url})" if commit_url else f"`{short}`"
    return f"commit {md_sha}{on}{says}", f"commit {short}{on}{says}" + (f"\n{commit_url}" if commit_url else "")


def _failed_steps(state: RunState) -> list[tuple[str, str]]:
    out = []
    for name, run in state.steps.items():
        if run.is_placeholder or run.status not in (StepStatus.FAILED, StepStatus.TIMED_OUT):
            continue
        error = plain(" ".join((run.error or run.status.value).split()))
        if len(error) > ERROR_TAIL:
            error = "…" + error[-ERROR_TAIL:]
        out.append((name, error))
    return out


def run_message(state: RunState, event: NotifyEvent, run_url: str, commit_url: str | None = None) -> Message:
    """A finished run: `event` is failed, timed_out, succeeded, cancelled or recovered."""
    title = f"{ICONS.get(event, '')} {state.task} {WORDS.get(event, event)} · {state.workspace}".strip()
    took = _duration(state)
    status = state.status.value.replace("_", " ")
    facts = f"{status}" + (f" in {took}" if took else "") + f" · {trigger_text(state)}"
    md, text = [facts], [facts]
    commit = _commit(state, commit_url)
    if commit:
        md.append(commit[0])
        text.append(commit[1])
    failed = _failed_steps(state)
    if failed:
        md.append("failed steps:")
        text.append("failed steps:")
        md += [f"- `{name}`: {error}" for name, error in failed]
        text += [f"- {name}: {error}" for name, error in failed]
    elif state.error and event not in (NotifyEvent.SUCCEEDED, NotifyEvent.RECOVERED):
        md.append(f"error: {plain(state.error[-ERROR_TAIL:])}")
        text.append(f"error: {plain(state.error[-ERROR_TAIL:])}")
    for name, summary in step_summaries(state.steps, NOTIFY_SUMMARY):
        md += [f"**{name}**:", plain(summary)]
        text += [f"{name}:", plain(summary)]
    md.append(f"[Open run {state.id}]({run_url})")
    text.append(f"Run: {run_url}")
    return Message(title, "\n".join(md), "\n".join(text), KIND.get(event, "info"))


def waiting_message(state: RunState, step: str, run_url: str, commit_url: str | None = None) -> Message:
    """A gate started waiting: its message, who may approve, and how."""
    run = state.steps[step]
    approval = dict(run.approval or {})
    who = ", ".join(approval.get("approvers") or []) or "anyone with write access"
    required = int(approval.get("required") or 1)
    pr = ((state.event or {}).get("pr") or {}).get("number")
    if approval.get("question"):
        title = f"❓ {state.task} asks a question · {state.workspace}"
        lines = [f"`{step}`: {plain(approval.get('message') or '')}", f"answer from {who} · {trigger_text(state)}"]
        verb, how_md = "answer", [f"comment `/answer {step} <your answer>` on #{pr}"] if pr else []
        how_md.append(f"`strom answer {state.id} {step} <your answer>`")
    else:
        title = f"⏸️ {state.task} waits for approval · {state.workspace}"
        lines = [
            f"`{step}`: {plain(approval.get('message') or 'approve?')}",
            f"needs {required} approval{'s' if required > 1 else ''} from {who} · {trigger_text(state)}",
        ]
        verb, how_md = "approve", [f"comment `/approve {step}` or `/reject {step} <reason>` on #{pr}"] if pr else []
        how_md.append(f"`strom approve {state.id} {step}`")
    commit = _commit(state, commit_url)
    link = f"{run_url}#step-{step}"
    md = (
        [*lines]
        + ([commit[0]] if commit else [])
        + [f"{verb}: " + ", or ".join(how_md), f"[Open run {state.id}]({link})"]
    )
    text = (
        [line.replace("`", "") for line in lines]
        + ([commit[1]] if commit else [])
        + [f"{verb}: " + ", or ".join(h.replace("`", "") for h in how_md), f"Run: {link}"]
    )
    return Message(title, "\n".join(md), "\n".join(text), "warning")


def step_message(title: str | None, body: str | None, task: str, workspace: str, step: str, run_id: str) -> Message:
    """A `notify` step's message: its rendered title and message, with defaults naming the run."""
    title = title or f"{task} · {workspace}"
    body = body or f"step {step} of run {run_id}"
    return Message(title, body, body, "info")
