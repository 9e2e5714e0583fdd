"""What `strom run` prints: step lines with a prefix, status changes, a progress line, a summary table."""

from __future__ import annotations

import json
import textwrap
import threading
import time
import zlib

from rich.console import Console
from rich.live import Live
from rich.text import Text

from ..durations import format_duration
from ..engine.commands import AwaitApproval
from ..engine.state import RunState, StepRun
from ..engine.status import RunStatus, StepStatus

__all__ = ["STATUS_MARK", "Display"]

_PALETTE = ["cyan", "magenta", "blue", "yellow", "green", "bright_cyan", "bright_magenta", "bright_blue"]
STATUS_MARK = {
    StepStatus.SUCCEEDED: ("✓", "green"),
    StepStatus.FAILED: ("✗", "red"),
    StepStatus.TIMED_OUT: ("⏱", "red"),
    StepStatus.CANCELLED: ("■", "yellow"),
    StepStatus.SKIPPED: ("↷", "bright_black"),
    StepStatus.WAITING: ("⏸", "yellow"),
    StepStatus.RUNNING: ("▶", "bright_black"),
    StepStatus.QUEUED: ("…", "bright_black"),
    StepStatus.PENDING: ("·", "bright_black"),
}
JOB_MARK = {
    RunStatus.SUCCEEDED: ("✓", "bold green"),
    RunStatus.FAILED: ("✗", "bold red"),
    RunStatus.TIMED_OUT: ("⏱", "bold red"),
    RunStatus.CANCELLED: ("■", "bold yellow"),
    RunStatus.SKIPPED: ("↷", "bold"),
    RunStatus.RUNNING: ("▶", "bold"),
    RunStatus.WAITING: ("⏸", "bold yellow"),
    RunStatus.QUEUED: ("…", "bold"),
}


def _preview(value, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def _labels(task, workspace, depth: int = 0):
    """Every prefix the run may print: its steps, and the steps of the tasks they run (a » b)."""
    for name, step in task.flow.items():
        yield name
        child = step.action.called_task if workspace is not None else None
        if child in getattr(workspace, "tasks", {}) and depth < 3:
            for inner in _labels(workspace.tasks[child], workspace, depth + 1):
                yield f"{name} » {inner}"


class _StepLogs:
    def __init__(self, display: Display, prefix: Text):
        self.display, self.prefix = display, prefix

    def line(self, stream: str, text: str) -> None:
        self.display.log_line(self.prefix, stream, text)


class Display:
    def __init__(self, console: Console | None = None, quiet: bool = False, progress: bool | None = None):
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.quiet = quiet
        self.lock = threading.RLock()
        self.width = 12
        self.live: Live | None = None
        self.show_progress = self.console.is_terminal if progress is None else progress
        self.top: RunState | None = None
        self.started = time.monotonic()

    # -- lifecycle
    def run_started(self, state: RunState, task, workspace=None) -> None:
        self.top = state
        self.width = min(36, max([8] + [len(name) for name in _labels(task, workspace)]))
        where = ""
        if state.git:
            where = f" @ {state.git.get('branch') or state.git.get('ref')} {state.git.get('short_sha', '')}"
        self.say(Text.assemble(("▶ ", "bold"), (f"task {state.task}", "bold"), f" · run {state.id}{where}"))
        if self.show_progress:
            self.live = Live(
                self._progress(),
                console=self.console,
                transient=True,
                refresh_per_second=4,
                get_renderable=self._progress,
            )
            self.live.start()

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    # -- output
    def say(self, text) -> None:
        with self.lock:
            self.console.print(text)

    def note(self, message: str) -> None:
        self.say(Text(f"! {message}", style="yellow"))

    def _prefix(self, label: str, step: str) -> Text:
        name = f"{label}{step}"
        colour = _PALETTE[zlib.crc32(name.encode()) % len(_PALETTE)]
        shown = name if len(name) <= self.width else name[: self.width - 1] + "…"
        return Text(f"{shown:<{self.width}} │ ", style=colour)

    def step_logs(self, label: str, step: str) -> _StepLogs:
        return _StepLogs(self, self._prefix(label, step))

    def log_line(self, prefix: Text, stream: str, text: str) -> None:
        if self.quiet:
            return
        body = Text.from_ansi(text) if "\x1b[" in text else Text(text)
        if stream == "stderr":
            body.stylize("red3")
        elif stream == "strom":
            body.stylize("bright_black italic")
        self.say(Text.assemble(prefix, body))

    def changed(self, before: RunState, after: RunState, label: str, is_top: bool = False) -> None:
        if is_top:
            self.top = after
        lines: list[Text] = []
        placeholders: list[Text] = []
        for name, run in after.steps.items():
            old = before.steps.get(name)
            if old is not None and old.status is run.status and old.attempt == run.attempt:
                continue
            line = self._transition(old, run)
            if line is not None:
                entry = Text.assemble(self._prefix(label, name), line)
                (placeholders if run.is_placeholder and run.status.terminal else lines).append(entry)
        for entry in lines + placeholders:  # a loop ends after its last item
            self.say(entry)

    def _transition(self, old: StepRun | None, run: StepRun) -> Text | None:
        status = run.status
        if status is StepStatus.QUEUED and run.retry_at and old is not None and old.attempt < run.attempt:
            wait = max(0.0, run.retry_at - time.time())
            return Text(
                f"↻ attempt {old.attempt} failed: {run.error}; retrying (attempt {run.attempt})"
                + (f" in {format_duration(wait)}" if wait >= 0.5 else ""),
                style="yellow",
            )
        if status in (StepStatus.PENDING, StepStatus.QUEUED):
            return None
        mark, style = STATUS_MARK[status]
        if status is StepStatus.RUNNING:
            if run.items is not None:  # a placeholder
                return Text(f"{mark} {len(run.items)} items", style=style)
            return Text(f"{mark} started" + (f" (attempt {run.attempt})" if run.attempt > 1 else ""), style=style)
        if status is StepStatus.WAITING:
            message = (run.approval or {}).get("message", "")
            return Text(f"{mark} waiting for approval: {message}", style=style)
        took = ""
        if run.started_at and run.finished_at:
            took = f" ({format_duration(run.finished_at - run.started_at)})"
        if status is StepStatus.SUCCEEDED:
            return Text(f"{mark} succeeded{took}", style=style)
        if status is StepStatus.SKIPPED:
            return Text(f"{mark} skipped: {run.skip_reason}", style=style)
        return Text(f"{mark} {status.value}{took}: {run.error or ''}".rstrip(": "), style=style)

    def run_finished(self, state: RunState, label: str, kind: str) -> None:
        if kind == "task" and not label:
            return
        mark, style = JOB_MARK[state.status]
        what = {"child": "child run", "hook": "hook"}.get(kind, "run")
        self.say(Text(f"{mark} {what} {label.rstrip(' »')} {state.status.value}", style=style))

    def _progress(self):
        state = self.top
        if state is None:
            return Text("")
        runs = [r for r in state.steps.values() if not r.is_placeholder]
        done = sum(1 for r in runs if r.status.terminal)
        running = sum(1 for r in runs if r.status is StepStatus.RUNNING)
        waiting = sum(1 for r in runs if r.status is StepStatus.WAITING)
        parts = [f"{done}/{len(runs)} steps done", f"{running} running"]
        if waiting:
            parts.append(f"{waiting} waiting for approval")
        parts.append(format_duration(time.monotonic() - self.started))
        return Text("  ".join(["⋯"] + parts), style="bright_black")

    # -- approvals
    def prompt_approval(self, command: AwaitApproval) -> tuple[bool, str | None]:
        """Ask on the terminal. The lock is not held while waiting, so other steps keep printing."""
        with self.lock:
            live, self.live = self.live, None
            if live is not None:
                live.stop()
            self.console.print(Text(f"\n⏸ Step {command.step} needs approval", style="bold yellow"))
            self.console.print(Text(command.message))
        try:
            answer = self.console.input(Text("Approve? [y/N] ")).strip().lower()
            approved = answer in ("y", "yes")
            reason = None if approved else (self.console.input(Text("Reason (optional): ")).strip() or None)
            return approved, reason
        except EOFError:
            return False, "no answer on the terminal"
        finally:
            with self.lock:
                if live is not None and self.live is None:
                    self.live = live
                    live.start()

    # -- the end
    def summary(self, state: RunState, runs: list[RunState]) -> None:
        self.stop()
        rows = []
        number = 0
        for name, run in state.steps.items():
            if run.is_instance:
                continue
            number += 1
            rows.append((str(number), name, *self._row(run)))
            for index in range(len(run.items or ())):
                child = state.steps.get(f"{name}[{index}]")
                if child is not None:
                    rows.append(("", f"  [{index}] {_preview(child.item, 20)}", *self._row(child)))
        table = self._table(("#", "Step", "Status", "Duration", "Result"), rows)
        mark, style = JOB_MARK[state.status]
        started = state.started_at or state.created_at
        total = format_duration((state.finished_at or time.time()) - started)
        self.console.print()
        self.console.print(
            Text.assemble(
                ("Task: ", "bold"),
                state.task,
                "   ",
                ("Run: ", "bold"),
                state.id,
                "   ",
                ("Status: ", "bold"),
                (f"{state.status.value} {mark}", style),
            )
        )
        for line in table:
            self.console.print(line)
        footer = f"Total duration: {total}"
        if state.git:
            footer += f"   Commit: {state.git.get('short_sha', '')} {state.git.get('title', '')[:50]}"
        self.console.print(Text(footer, style="bold"))
        extra = [r for r in runs if r.id != state.id and r.source == "hook"]
        for hook in extra:
            mark, style = JOB_MARK[hook.status]
            self.console.print(Text(f"Hook {hook.trigger} → {hook.task}: {hook.status.value} {mark}", style=style))
        for name, run in state.steps.items():
            if run.summary:
                self.console.print(Text(f"\nSummary of {name}:", style="bold"))
                self.console.print(Text(textwrap.indent(run.summary, "  │ ", lambda _: True)))
        if state.error and state.status is not RunStatus.SUCCEEDED:
            self.console.print(Text(f"Error: {state.error}", style="red"))

    def _table(self, headers: tuple[str, ...], rows: list[tuple]) -> list[Text]:
        """Fixed columns; the last one takes what is left of the line and is cut with an ellipsis."""
        cells = [[c if isinstance(c, Text) else Text(str(c)) for c in row] for row in rows]
        widths = [max([len(h)] + [len(r[i].plain) for r in cells]) for i, h in enumerate(headers[:-1])]
        room = max(20, self.console.width - sum(widths) - 2 * len(widths) - 1)
        lines = [Text("  ".join(h.ljust(w) for h, w in zip(headers, widths + [0])).rstrip(), style="bold")]
        for row in cells:
            line = Text()
            for cell, width in zip(row, widths):
                line.append_text(cell)
                line.append(" " * (width - len(cell.plain) + 2))
            last = row[-1]
            if len(last.plain) > room:
                last = last[: room - 1]
                last.append("…")
            line.append_text(last)
            line.rstrip()
            lines.append(line)
        return lines

    def _row(self, run: StepRun) -> tuple:
        mark, style = STATUS_MARK[run.status]
        label = run.status.value
        result = ""
        if run.approval and run.status is StepStatus.SUCCEEDED:
            label = "approved"
            result = f"approved by {(run.output or {}).get('approved_by', '')}"
        elif run.approval and run.status is StepStatus.FAILED and (run.output or {}).get("approved") is False:
            label = "rejected"
            result = run.error or ""
        elif run.status is StepStatus.SKIPPED:
            result = run.skip_reason or ""
        elif run.error and run.status is not StepStatus.SUCCEEDED:
            result = run.error
        elif run.output is not None:
            result = "→ " + _preview(run.output)
        if run.attempt > 1:
            label += f" (attempt {run.attempt})"
        took = format_duration(run.finished_at - run.started_at) if run.started_at and run.finished_at else "-"
        return Text(f"{mark} {label}", style=style), took, result
