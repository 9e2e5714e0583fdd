"""Bounds on what a template may cost: size of what it makes, and time.

Templates are written by anyone who can push (and by pull requests once trusted), and some are
rendered in the web process and the scheduler. So the sandbox checks, before they run, the
operations that make something huge in one step of C code (`**` and `*` on numbers, `*` and `+`
on strings and lists, `%` formatting and str methods with a width, filters that pad or repeat).
Time is checked cooperatively, which works in threads and in the web's greenlets alike: every
call a template makes (functions, methods, macros) and every 256th item of every `for` loop
(the sandbox wraps each loop's iterable) looks at the render's deadline. Output is capped as it
is produced.
"""
from __future__ import annotations

import re
import threading
import time

from jinja2.exceptions import SecurityError

__all__ = ["MAX_OUTPUT", "MAX_TEXT", "MAX_ITEMS", "MAX_INT_BITS", "RENDER_SECONDS", "RenderTimeout",
           "check_binop", "check_method", "check_width", "check_pattern", "check_format", "start_clock", "stop_clock", "capped",
           "check_time", "guarded_iter"]

MAX_OUTPUT = 4 * 1024 * 1024  # characters one render may produce
MAX_TEXT = 1024 * 1024  # characters of one string made by an operation
MAX_ITEMS = 100_000  # items of one list made by an operation
MAX_INT_BITS = 64 * 1024  # bits of an integer made by an operation
MAX_WIDTH = 10_000  # a field width or padding
MAX_SUBJECT = 4096  # characters a template's regular expression may search
RENDER_SECONDS = 2.0


class RenderTimeout(Exception):
    """Raised inside a render that ran past its time."""


def _refuse(what: str) -> SecurityError:
    return SecurityError(f"{what}: templates may not make something that large")


def _size(value) -> int | None:
    return len(value) if isinstance(value, (str, list, tuple)) else None


def check_binop(operator: str, left, right) -> None:
    """Raise SecurityError when `left <operator> right` would be huge."""
    if operator == "**" and isinstance(left, int) and isinstance(right, int) and not isinstance(left, bool):
        if right > 0 and abs(left) > 1 and max(1, abs(left).bit_length()) * right > MAX_INT_BITS:
            raise _refuse(f"{left} ** {right}")
    elif operator == "*":
        for seq, times in ((left, right), (right, left)):
            size = _size(seq)
            if size is not None and isinstance(times, int) and size * max(0, times) > _limit(seq):
                raise _refuse(f"repeating a {type(seq).__name__} of {size} {times} times")
        if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise _refuse("this product")
    elif operator == "+":
        sizes = (_size(left), _size(right))
        if None not in sizes and sum(sizes) > _limit(left):
            raise _refuse("this concatenation")
    elif operator == "%" and isinstance(left, str):
        check_format(left, right)


def _limit(seq) -> int:
    return MAX_TEXT if isinstance(seq, str) else MAX_ITEMS


_FORMAT_NUMBERS = re.compile(r"%[#0 +\-]*(\d*|\*)(?:\.(\d*|\*))?|\{[^{}]*:[^{}]*?(\d+)[^{}]*\}")


def check_format(template: str, args=None) -> None:
    """Refuse %-style or {}-style formats whose widths or precisions would make huge text."""
    for match in _FORMAT_NUMBERS.finditer(template):
        for number in match.groups():
            if number == "*":
                raise SecurityError("a '*' width in a format: write the width itself")
            if number and int(number[:8]) > MAX_WIDTH:
                raise _refuse(f"a width of {number}")


def check_width(width, what: str) -> None:
    if isinstance(width, int) and width > MAX_WIDTH:
        raise _refuse(f"{what} to a width of {width}")


_WIDTH_METHODS = {"center", "ljust", "rjust", "zfill", "expandtabs"}


def check_method(obj, name: str, args, kwargs) -> None:
    """Refuse str methods that pad, or replace into something huge."""
    if not isinstance(obj, str):
        return
    if name in _WIDTH_METHODS:
        for value in (*args, *kwargs.values()):
            check_width(value, f"str.{name}")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        grows = obj.count(args[0]) * max(0, len(args[1]) - len(args[0])) if args[0] else len(obj) * len(args[1])
        if len(obj) + grows > MAX_TEXT:
            raise _refuse("this replacement")
    elif name in ("format", "format_map"):
        check_format(obj)


_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)\s*[+*{]")


def check_pattern(pattern: str, subject: str) -> None:
    """Refuse regular expressions that may backtrack for ever (a repeated group that repeats), and long subjects."""
    if _NESTED_QUANTIFIER.search(pattern):
        raise SecurityError(f"the pattern {pattern[:60]!r} repeats a group that itself repeats (it could take "
                            "for ever); write it without nested repetition")
    if len(subject) > MAX_SUBJECT:
        raise SecurityError(f"a pattern may search at most {MAX_SUBJECT} characters, not {len(subject)}")


def capped(chunks) -> str:
    """Join a render's output, refusing it once it passes MAX_OUTPUT."""
    out, size = [], 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise _refuse(f"output of more than {MAX_OUTPUT} characters")
        out.append(chunk)
    return "".join(out)


_LOCAL = threading.local()  # greenlet-local under gevent


def start_clock(seconds: float = RENDER_SECONDS) -> float | None:
    """Give the renders from now on `seconds` (unless an enclosing render set an earlier deadline);
    returns what stop_clock() restores."""
    previous = getattr(_LOCAL, "deadline", None)
    if previous is None:
        _LOCAL.deadline = time.monotonic() + seconds
    return previous


def stop_clock(previous: float | None) -> None:
    _LOCAL.deadline = previous


def check_time() -> None:
    deadline = getattr(_LOCAL, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise RenderTimeout()


def guarded_iter(iterable):
    """A `for` loop's items, checking the render's deadline every 256 of them."""
    for index, item in enumerate(iterable):
        if not index & 255:
            check_time()
        yield item
