"""Bounds on what a template may cost: size of what it makes, and time.

Templates are written by anyone who can push (and by pull requests once trusted), and some are
rendered in the web process and the scheduler. So the sandbox checks, before they run, the
operations that make something huge in one step of C code (`**` and `*` on numbers, `*`, `+` and
`~` on strings, bytes and lists, `%` and `format` with widths or many fields, str methods that pad,
expand, replace or join, filters that pad, repeat, join or indent), and every filter's result.
Time is checked cooperatively, which works in threads and in the web's greenlets alike: every
call a template makes (functions, methods, macros, filters), every 256th item of every `for` loop
(the sandbox wraps each loop's iterable) and of every list a filter walks looks at the render's
deadline; regular expressions run with a timeout of their own. Output is capped as it is produced.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping

from jinja2.exceptions import SecurityError

__all__ = [
    "MAX_INT_BITS",
    "MAX_ITEMS",
    "MAX_OUTPUT",
    "MAX_TEXT",
    "RENDER_SECONDS",
    "RenderTimeout",
    "TimedList",
    "capped",
    "check_binop",
    "check_format",
    "check_items",
    "check_join",
    "check_method",
    "check_replace",
    "check_size",
    "check_time",
    "check_width",
    "concat",
    "guarded_iter",
    "joined",
    "search",
    "start_clock",
    "stop_clock",
]

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
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else None


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
        left_size, right_size = _size(left), _size(right)
        if left_size is not None and right_size is not None and left_size + right_size > _limit(left):
            raise _refuse("this concatenation")
    elif operator == "%" and isinstance(left, (str, bytes)):
        check_format(left, right)


def _limit(seq) -> int:
    return MAX_TEXT if isinstance(seq, (str, bytes)) else MAX_ITEMS


_FORMAT_NUMBERS = re.compile(r"%[#0 +\-]*(\d*|\*)(?:\.(\d*|\*))?|\{[^{}]*:[^{}]*?(\d+)[^{}]*\}")
_NESTED_FIELD = re.compile(r"\{[^{}]*:[^{}]*\{")
_FIELDS = re.compile(r"%[^%]|\{[^{}]*\}")


def check_format(template, args=None) -> None:
    """Refuse %-style or {}-style formats whose widths or precisions would make huge text, whose widths
    come from their arguments, or that repeat large arguments into something huge."""
    if isinstance(template, bytes):
        template = template.decode("latin-1")
    if _NESTED_FIELD.search(template):
        raise SecurityError("a format field inside a format spec: write the width itself")
    for match in _FORMAT_NUMBERS.finditer(template):
        for number in match.groups():
            if number == "*":
                raise SecurityError("a '*' width in a format: write the width itself")
            digits = (number or "").lstrip("0")
            if len(digits) > 5 or (digits and int(digits) > MAX_WIDTH):
                raise _refuse(f"a width of {number}")
    values = args.values() if isinstance(args, Mapping) else args if isinstance(args, tuple) else (args,)
    largest = max((_size(v) or 0 for v in values), default=0)
    if len(template) + len(_FIELDS.findall(template)) * largest > MAX_TEXT:
        raise _refuse("this format")


def check_width(width, what: str) -> None:
    if isinstance(width, int) and width > MAX_WIDTH:
        raise _refuse(f"{what} to a width of {width}")


_WIDTH_METHODS = {"center", "ljust", "rjust", "zfill"}


def check_method(obj, name: str, args, kwargs) -> None:
    """Refuse str (and bytes) methods that pad, expand or replace into something huge."""
    if not isinstance(obj, (str, bytes)):
        return
    if name in _WIDTH_METHODS:
        for value in (*args, *kwargs.values()):
            check_width(value, f"{type(obj).__name__}.{name}")
    elif name == "expandtabs":
        size = _first(args, kwargs, "tabsize", 8)
        if isinstance(size, int):
            tabs = obj.count("\t") if isinstance(obj, str) else obj.count(b"\t")
            if tabs * size > MAX_TEXT:
                raise _refuse("expanding these tabs")
    elif name == "replace" and len(args) >= 2 and _size(args[0]) is not None and _size(args[1]) is not None:
        check_replace(obj, args[0], args[1])
    elif name == "translate" and isinstance(obj, str) and args and isinstance(args[0], Mapping):
        longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
        if len(obj) * longest > MAX_TEXT:
            raise _refuse("this translation")
    elif name == "join" and args:
        check_join(obj, args[0])
    elif name in ("format", "format_map"):
        check_format(obj, args[0] if name == "format_map" and args else tuple(args) + tuple(kwargs.values()))


def _first(args, kwargs, name: str, default):
    return args[0] if args else kwargs.get(name, default)


def check_replace(text, old, new) -> None:
    grows = text.count(old) * max(0, len(new) - len(old)) if old else len(text) * len(new)
    if len(text) + grows > MAX_TEXT:
        raise _refuse("this replacement")


def check_join(separator, items) -> None:
    """Refuse joining `items` (a list or tuple) with `separator` into something huge."""
    if isinstance(items, (list, tuple)):
        total = len(separator) * len(items) + sum(_size(item) or 0 for item in items)
        if total > MAX_TEXT:
            raise _refuse(f"joining {len(items)} items")


def joined(separator: str, items, what: str = "this join") -> str:
    """`separator.join(str(item) for item in items)`, refused once it passes MAX_TEXT, checking the deadline."""
    out, size = [], 0
    for item in guarded_iter(items):
        text = item if isinstance(item, str) else str(item)
        size += len(text) + len(separator)
        if size > MAX_TEXT + len(separator):
            raise _refuse(what)
        out.append(text)
    return separator.join(out)


def concat(*parts) -> str:
    """The `~` operator: each part as text, joined, refused once it passes MAX_TEXT."""
    return joined("", parts, "this concatenation (~)")


def check_size(value, what: str) -> None:
    size = _size(value)
    if size is not None and size > _limit(value):
        raise _refuse(what)


def check_items(value, budget: int = MAX_ITEMS * 10) -> None:
    """Refuse a structure of lists and mappings with more than `budget` items in all (a list that holds the
    same big list many times is small in memory, huge once written out)."""
    stack, seen = [value], 0
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            seen += len(item)
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            seen += len(item)
            stack.extend(item)
        if seen > budget:
            raise _refuse(f"a structure of more than {budget} items")


PATTERN_SECONDS = 0.25


def search(pattern: str, subject: str) -> bool:
    """Whether `pattern` matches somewhere in `subject`: at most MAX_SUBJECT characters searched for at most
    PATTERN_SECONDS (the `regex` engine stops a search that backtracks for ever, and lets other threads run)."""
    import regex

    if len(subject) > MAX_SUBJECT:
        raise SecurityError(f"a pattern may search at most {MAX_SUBJECT} characters, not {len(subject)}")
    try:
        return regex.search(pattern, subject, timeout=PATTERN_SECONDS, concurrent=True) is not None
    except TimeoutError:
        raise SecurityError(
            f"the pattern {pattern[:60]!r} took longer than {PATTERN_SECONDS}s (it backtracks too "
            "much); write it without nested or overlapping repetition"
        ) from None
    except regex.error as exc:
        raise SecurityError(f"the pattern {pattern[:60]!r} is not a regular expression: {exc}") from None


class TimedList(list):
    """A list handed to a filter: iterating it checks the render's deadline, so no filter loops for ever."""

    __slots__ = ()

    def __iter__(self):
        return guarded_iter(list.__iter__(self))


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
