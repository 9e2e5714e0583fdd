"""What a step reports besides its logs: its output (the last `OUTPUT: {json}` line it prints on stdout), its
summary (Markdown in the file `$STROM_SUMMARY` names, and `SUMMARY: text` lines) and its task state (`STATE:
{json}` lines, deep-merged)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = [
    "MAX_STATE_DATA",
    "MAX_SUMMARY",
    "OUTPUT_PREFIX",
    "STATE_PREFIX",
    "SUMMARY_ENV",
    "SUMMARY_FILE",
    "SUMMARY_PREFIX",
    "OutputCollector",
    "artifact_path",
    "cap_summary",
    "compose_summary",
    "merge_state",
    "read_summary_file",
    "step_summaries",
]

OUTPUT_PREFIX = "OUTPUT:"
# Task state: `STATE: {json}` lines, each an object deep-merged into the ones before; kept for the task's next runs
STATE_PREFIX = "STATE:"
MAX_STATE_DATA = 64 * 1024  # bytes of the merged object as JSON
# Summaries: Markdown a step writes to `$STROM_SUMMARY` or prints as `SUMMARY:` lines, shown under the step in
# the UI, in `strom status`, pull request comments and notifications, so capped here.
SUMMARY_PREFIX = "SUMMARY:"
SUMMARY_ENV = "STROM_SUMMARY"
SUMMARY_FILE = "summary.md"  # in the step's out directory, which $STROM_SUMMARY names
MAX_SUMMARY = 16 * 1024  # characters
_CUT_NOTE = "\n\n… (summary cut at 16 KiB)"


def cap_summary(text: str | None) -> str | None:
    """`text` without trailing space, at most MAX_SUMMARY characters (saying so when cut); None when empty."""
    if not isinstance(text, str):
        return None
    text = text.strip("\n").rstrip()
    if not text:
        return None
    if len(text) > MAX_SUMMARY:
        text = text[: MAX_SUMMARY - len(_CUT_NOTE)].rstrip() + _CUT_NOTE
    return text


def step_summaries(steps, limit: int) -> list[tuple[str, str]]:
    """(step, summary) of a run's steps (StepRuns) that wrote one, each cut to `limit` characters."""
    out = []
    for name, run in steps.items():
        if run.summary:
            text = run.summary if len(run.summary) <= limit else run.summary[: limit - 1].rstrip() + "…"
            out.append((name, text))
    return out


def read_summary_file(path: Path) -> str:
    """What the step wrote to its summary file: at most a little more than MAX_SUMMARY, never through a link,
    never anything but a regular file (the step controls the path's contents)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        data = os.read(fd, MAX_SUMMARY * 4 + 4)  # UTF-8: up to 4 bytes a character
    except OSError:
        return ""
    finally:
        os.close(fd)
    return data.decode("utf-8", "replace")


def compose_summary(file_text: str, lines: list[str]) -> str | None:
    """The file's Markdown, then the `SUMMARY:` lines, capped."""
    parts = [file_text.strip("\n")] if file_text.strip() else []
    if lines:
        parts.append("\n".join(lines))
    return cap_summary("\n\n".join(parts))


def artifact_path(run_id: str, step: str, name: str) -> str:
    """Where the API serves an artifact a step of a run kept (docs/artifacts.md)."""
    return f"/api/runs/{run_id}/artifacts/{quote(step, safe='')}/{quote(name)}"


def merge_state(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` deep-merged over `base`: objects merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        out[key] = merge_state(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return out


def _preview(text: str) -> str:
    return text if len(text) <= 120 else text[:117] + "..."


def _json_problem(exc: ValueError) -> str:
    return f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)


class OutputCollector:
    """Feed stdout lines; `result()` gives (output, error) from the last OUTPUT line; `summary_lines` the text of
    the SUMMARY lines (kept up to the summary's cap); `state()` the STATE lines merged."""

    def __init__(self) -> None:
        self._last: str | None = None
        self.summary_lines: list[str] = []
        self._summary_size = 0
        self._state: dict[str, Any] | None = None
        self._state_size = 0
        self._state_problem: str | None = None

    def feed(self, line: str) -> None:
        stripped = line.lstrip()
        if stripped.startswith(OUTPUT_PREFIX):
            self._last = stripped[len(OUTPUT_PREFIX) :].strip()
        elif stripped.startswith(STATE_PREFIX):
            self._feed_state(stripped[len(STATE_PREFIX) :].strip())
        elif stripped.startswith(SUMMARY_PREFIX) and self._summary_size <= MAX_SUMMARY:
            text = stripped[len(SUMMARY_PREFIX) :].removeprefix(" ").rstrip("\r\n")
            self.summary_lines.append(text)
            self._summary_size += len(text) + 1

    def _feed_state(self, text: str) -> None:
        if self._state_problem is not None:
            return
        self._state_size += len(text)
        if self._state_size > MAX_STATE_DATA * 4:  # merged, it could only be bigger than the cap allows
            self._state_problem = f"the STATE lines are over {MAX_STATE_DATA // 1024} KiB"
            return
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as exc:
            detail = _json_problem(exc) if isinstance(exc, ValueError) else "nested too deeply"
            self._state_problem = f"a STATE line is not valid JSON ({detail}): {_preview(text)}"
            return
        if not isinstance(value, dict):
            self._state_problem = f"a STATE line must be a JSON object, not {type(value).__name__}: {_preview(text)}"
            return
        try:
            self._state = merge_state(self._state or {}, value)
        except RecursionError:
            self._state_problem = "a STATE line nests too deeply"

    def state(self) -> tuple[dict[str, Any] | None, str | None]:
        """(the STATE lines merged, or None if there were none; the problem with them, if any)."""
        if self._state_problem is not None:
            return None, self._state_problem
        if self._state is not None:
            try:
                size = len(json.dumps(self._state, separators=(",", ":")))
            except (ValueError, RecursionError):
                return None, "the STATE lines nest too deeply"
            if size > MAX_STATE_DATA:
                return None, f"the STATE lines merge to {size} bytes of JSON, over {MAX_STATE_DATA // 1024} KiB"
        return self._state, None

    def result(self) -> tuple[Any, str | None]:
        if self._last is None:
            return None, None
        try:
            return json.loads(self._last), None
        except ValueError as exc:  # a JSONDecodeError, or a plain ValueError (an integer of too many digits)
            return None, f"the last OUTPUT line is not valid JSON ({_json_problem(exc)}): {_preview(self._last)}"
