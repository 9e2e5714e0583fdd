"""What a step reports besides its logs: its output (the last `OUTPUT: {json}` line it prints on stdout) and
its summary (Markdown in the file `$STROM_SUMMARY` names, and `SUMMARY: text` lines)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_SUMMARY",
    "OUTPUT_PREFIX",
    "SUMMARY_ENV",
    "SUMMARY_FILE",
    "SUMMARY_PREFIX",
    "OutputCollector",
    "cap_summary",
    "compose_summary",
    "read_summary_file",
    "step_summaries",
]

OUTPUT_PREFIX = "OUTPUT:"
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


class OutputCollector:
    """Feed stdout lines; `result()` gives (output, error) from the last OUTPUT line; `summary_lines` the text of
    the SUMMARY lines (kept up to the summary's cap)."""

    def __init__(self) -> None:
        self._last: str | None = None
        self.summary_lines: list[str] = []
        self._summary_size = 0

    def feed(self, line: str) -> None:
        stripped = line.lstrip()
        if stripped.startswith(OUTPUT_PREFIX):
            self._last = stripped[len(OUTPUT_PREFIX) :].strip()
        elif stripped.startswith(SUMMARY_PREFIX) and self._summary_size <= MAX_SUMMARY:
            text = stripped[len(SUMMARY_PREFIX) :].removeprefix(" ").rstrip("\r\n")
            self.summary_lines.append(text)
            self._summary_size += len(text) + 1

    def result(self) -> tuple[Any, str | None]:
        if self._last is None:
            return None, None
        try:
            return json.loads(self._last), None
        except ValueError as exc:  # a JSONDecodeError, or a plain ValueError (an integer of too many digits)
            preview = self._last if len(self._last) <= 120 else self._last[:117] + "..."
            where = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
            return None, f"the last OUTPUT line is not valid JSON ({where}): {preview}"
