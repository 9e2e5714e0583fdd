"""Pull request commands: which lines of a comment are commands, and the words Strom answers itself.

A command is a line that starts with `/` (after indentation), outside fenced code blocks and
quotes, so a reply that quotes someone's `/approve` never acts twice. Pure functions.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from ..suggestions import suggest

__all__ = ["BUILTIN", "STROM_MARK", "Command", "is_stroms_own", "key_values", "parse_commands", "unknown_command"]

# Strom's own pull request commands and what they do (for help and "did you mean").
BUILTIN = {
    "approve": "`/approve [step] [note]`: approve the waiting approval steps of this pull request's runs",
    "reject": "`/reject [step] [reason]`: reject them (the gate fails with the reason)",
    "answer": "`/answer [step] <answer>`: answer the question an agent step of this pull request's runs asked",
    "run": "`/run <task> [key=value ...]`: run a task on the pull request's head commit",
    "retry": "`/retry`: run this pull request's failed runs again",
    "cancel": "`/cancel`: cancel this pull request's unfinished runs",
    "ok-to-test": "`/ok-to-test [sha]`: trust the head commit of a pull request from a fork or outside author",
}
COMMAND_WORD = re.compile(r"[a-z][a-z0-9_-]*")  # so "/usr/bin is missing" is prose, not a command
# Every comment Strom writes carries this mark, so its own words never act as commands.
STROM_MARK = "<!-- strom"


@dataclass(frozen=True)
class Command:
    name: str  # lower case, without the slash
    words: tuple[str, ...]
    line: str  # the line as written
    index: int  # its position among the comment's commands (0 for the first)


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # an unbalanced quote: plain words
        return text.split()


def parse_commands(body: str | None) -> list[Command]:
    """Every command line of a comment, in order. Fenced and indented code, and quotes, never count."""
    found: list[Command] = []
    fence = ""  # the open fence (``` or ~~~ run), if inside one
    for raw in (body or "").splitlines():
        stripped = raw.lstrip(" ")
        indent = len(raw) - len(stripped)
        marker = stripped[:3]
        if marker in ("```", "~~~") and indent < 4:
            run = len(stripped) - len(stripped.lstrip(marker[0]))
            if not fence:
                fence = marker[0] * run
            elif stripped.startswith(fence) and not stripped.strip(marker[0]).strip():
                fence = ""
            continue
        if fence or indent >= 4 or raw.startswith("\t"):
            continue
        line = stripped.strip()
        if not line.startswith("/") or len(line) < 2 or line[1].isspace():
            continue
        words = _words(line[1:])
        if words and COMMAND_WORD.fullmatch(words[0].lower()):
            found.append(Command(words[0].lower(), tuple(words[1:]), line, len(found)))
    return found


def is_stroms_own(body: str | None) -> bool:
    return STROM_MARK in (body or "")


def key_values(words: Iterable[str]) -> dict[str, str]:
    """`key=value` words as a mapping; raises ValueError naming the first word that is not one."""
    out: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{word!r} is not key=value")
        out[key.strip()] = value
    return out


def unknown_command(name: str, custom: Iterable[str]) -> str:
    """The answer to a command nobody defined: the valid ones, with a suggestion."""
    custom = sorted(set(custom) - set(BUILTIN))
    hint = suggest(name, [*BUILTIN, *custom])
    lines = [f"`/{name}` is not a command here" + (f"; {hint}" if hint else "."), "", "Commands:"]
    lines += [f"- {text}" for text in BUILTIN.values()]
    lines += [f"- `/{word}`: defined by a `comment` trigger in `.strom/`" for word in custom]
    return "\n".join(lines)
