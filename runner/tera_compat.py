"""Filters, tests and functions for templates, accepting both Jinja2 and Tera spellings.

Strom renders with Jinja2; workflows written for Strøm use Tera's keyword-argument calls
(`join(sep=", ")`, `default(value="x")`, `replace(from="a", to="b")`, `json_encode()`).
Each filter here takes either form, so both kinds of workflow keep working.
"""

from __future__ import annotations

import base64
import json
import math
import random
import re
import shlex
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Undefined, pass_context, pass_environment
from jinja2 import filters as jf
from jinja2.exceptions import FilterArgumentError, SecurityError

from .template_limits import MAX_ITEMS, MAX_WIDTH, check_format, check_items, check_replace, check_width, joined, search
from .tera_syntax import tera_pairs

__all__ = ["FILTERS", "GLOBALS", "TESTS", "display", "own_text", "to_json"]

_MISSING = object()


def _arg(args, kwargs, index, *names, default=_MISSING):
    if len(args) > index:
        return args[index]
    for name in names:
        if name in kwargs:
            return kwargs[name]
    return default


def own_text(value) -> str | None:
    """The text of a mapping that has a text form of its own (a connection given to an input: its name)."""
    return str(value) if isinstance(value, Mapping) and type(value).__str__ is not dict.__str__ else None


def display(value) -> str:
    """How a value is written into text: Tera's spelling of booleans, JSON for structures."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    text = own_text(value)
    if text is not None:
        return text
    if isinstance(value, (Mapping, list, tuple)):
        return to_json(value)
    return str(value)


def _plain(value):
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Undefined):
        return None
    return value


def to_json(value, pretty: bool = False) -> str:
    check_items(value)
    if pretty:
        return json.dumps(_plain(value), indent=2, ensure_ascii=False, default=str)
    return json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False, default=str)


def _f_default(value, /, *args, **kwargs):
    fallback = _arg(args, kwargs, 0, "value", "default_value", default="")
    boolean = _arg(args, kwargs, 1, "boolean", default=False)
    if isinstance(value, Undefined) or value is None or (boolean and not value):
        return fallback
    return value


@pass_environment
def _f_join(environment, value, /, *args, **kwargs):
    sep = _arg(args, kwargs, 0, "sep", "d", default="")
    attribute = kwargs.get("attribute")
    if isinstance(value, str):  # Jinja would join its characters
        raise FilterArgumentError(f"join takes a list, not the text {value[:40]!r}; to split text, use split")
    items = value
    if attribute is not None:
        items = (_field(environment, item, attribute) for item in value)
    return joined(str(sep), (display(i) for i in items))


def _f_json_encode(value, /, *args, **kwargs):
    return to_json(value, pretty=bool(_arg(args, kwargs, 0, "pretty", default=False)))


def _f_replace(value, /, *args, **kwargs):
    old = _arg(args, kwargs, 0, "from", "old")
    new = _arg(args, kwargs, 1, "to", "new", default="")
    count = _arg(args, kwargs, 2, "count", default=None)
    text, old, new = str(value), str(old), str(new)
    check_replace(text, old, new)
    return text.replace(old, new) if count is None else text.replace(old, new, int(count))


def _f_truncate(value, /, *args, **kwargs):
    length = int(_arg(args, kwargs, 0, "length", default=255))
    end = kwargs.get("end", "…")
    text = str(value)
    return text if len(text) <= length else text[:length] + end


def _f_split(value, /, *args, **kwargs):
    pat = _arg(args, kwargs, 0, "pat", "sep", default=None)
    return str(value).split(pat)


def _f_trim_start(value, /, *_, **__):
    return str(value).lstrip()


def _f_trim_end(value, /, *_, **__):
    return str(value).rstrip()


def _f_trim_start_matches(value, /, *args, **kwargs):
    pat, text = str(_arg(args, kwargs, 0, "pat")), str(value)
    start = 0
    while pat and text.startswith(pat, start):
        start += len(pat)
    return text[start:]


def _f_trim_end_matches(value, /, *args, **kwargs):
    pat, text = str(_arg(args, kwargs, 0, "pat")), str(value)
    end = len(text)
    while pat and end >= len(pat) and text.endswith(pat, 0, end):
        end -= len(pat)
    return text[:end]


def _f_nth(value, /, *args, **kwargs):
    items = list(value)
    n = int(_arg(args, kwargs, 0, "n"))
    return items[n] if 0 <= n < len(items) else None


def _f_slice(value, /, *args, **kwargs):
    if "start" in kwargs or "end" in kwargs or not args:
        items = value if isinstance(value, str) else list(value)
        return items[kwargs.get("start", 0) : kwargs.get("end")]
    slices = _arg(args, kwargs, 0, "slices")
    if isinstance(slices, int) and slices > MAX_ITEMS:
        raise SecurityError(f"slicing into {slices} lists: templates may not make something that large")
    return list(jf.sync_do_slice(list(value), slices, _arg(args, kwargs, 1, "fill_with", default=None)))


def _f_center(value, /, width: int = 80):
    check_width(width, "center")
    return jf.do_center(str(value), width)


def _f_format(value, /, *args, **kwargs):
    check_format(str(value))
    if any(isinstance(a, int) and a > MAX_WIDTH for a in args):
        raise SecurityError("a width passed to format is too large")
    return jf.do_format(value, *args, **kwargs)


def _g_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100):
    if n > 100 or max > 1000:
        raise SecurityError("lipsum: at most 100 paragraphs of 1000 words")
    from jinja2.utils import generate_lorem_ipsum

    return generate_lorem_ipsum(n=n, html=html, min=min, max=max)


def _f_concat(value, /, *args, **kwargs):
    other = _arg(args, kwargs, 0, "with")
    extra = list(other) if isinstance(other, (list, tuple)) else [other]
    return list(value) + extra


def _field(environment, item, attribute):
    """`item.a.b` for attribute "a.b", each step through the sandbox (no `__globals__`, no methods' insides)."""
    for part in str(attribute).split("."):
        item = item.get(part) if isinstance(item, Mapping) else environment.getattr(item, part)
        if isinstance(item, Undefined):
            return None
    return item


@pass_environment
def _f_filter(environment, value, /, *args, **kwargs):
    attribute = _arg(args, kwargs, 0, "attribute")
    wanted = _arg(args, kwargs, 1, "value", default=_MISSING)
    if wanted is _MISSING:
        return [item for item in value if _field(environment, item, attribute)]
    return [item for item in value if _field(environment, item, attribute) == wanted]


@pass_environment
def _f_group_by(environment, value, /, *args, **kwargs):
    attribute = _arg(args, kwargs, 0, "attribute")
    groups: dict = {}
    for item in value:
        key = _field(environment, item, attribute)
        if key is not None:
            groups.setdefault(display(key), []).append(item)
    return groups


def _f_get(value, /, *args, **kwargs):
    key = _arg(args, kwargs, 0, "key")
    fallback = _arg(args, kwargs, 1, "default", default=_MISSING)
    if isinstance(value, Mapping) and key in value:
        return value[key]
    if fallback is _MISSING:
        raise KeyError(
            f"no key {key!r}; known keys: {', '.join(map(str, value)) if isinstance(value, Mapping) else '-'}"
        )
    return fallback


def _f_indent(value, /, *args, **kwargs):
    width = _arg(args, kwargs, 0, "width", default=4)
    check_width(width, "indent")
    prefix = str(kwargs.get("prefix", "")) or (width if isinstance(width, str) else " " * int(width or 0))
    check_replace(str(value), "\n", "\n" + prefix)
    if "prefix" in kwargs:
        prefix = str(kwargs["prefix"])
        first, blank = kwargs.get("first", False), kwargs.get("blank", False)
        lines = str(value).split("\n")
        out = []
        for i, line in enumerate(lines):
            if (i == 0 and not first) or (not line.strip() and not blank):
                out.append(line)
            else:
                out.append(prefix + line)
        return "\n".join(out)
    return jf.do_indent(str(value), *args, **kwargs)


def _f_date(value, /, *args, **kwargs):
    fmt = str(_arg(args, kwargs, 0, "format", default="%Y-%m-%d"))
    check_format(fmt)
    tz = kwargs.get("timezone")
    if isinstance(value, (int, float)):
        moment = datetime.fromtimestamp(value, UTC)
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    if tz:
        moment = moment.astimezone(ZoneInfo(tz))
    return moment.strftime(fmt)


def _f_linebreaksbr(value, /, *_, **__):
    return str(value).replace("\r\n", "<br>").replace("\n", "<br>")


def _f_slugify(value, /, *_, **__):
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _f_addslashes(value, /, *_, **__):
    return str(value).replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"')


def _f_shell_quote(value, /, *_, **__):
    """Quote for POSIX shells; a list becomes space-separated quoted words."""
    if isinstance(value, (list, tuple)):
        return " ".join(shlex.quote(display(v)) for v in value)
    return shlex.quote(display(value))


def _f_b64encode(value, /, *_, **__):
    return base64.b64encode(str(value).encode()).decode()


def _f_b64decode(value, /, *_, **__):
    return base64.b64decode(str(value).encode()).decode()


def _f_as_str(value, /, *_, **__):
    return display(value)


def _f_tojson(value, /, *args, **kwargs):
    indent = _arg(args, kwargs, 0, "indent", default=None)
    if indent is not None:
        check_width(len(indent) if isinstance(indent, str) else indent, "tojson indent")
    return json.dumps(_plain(value), indent=indent, ensure_ascii=False, default=str)


def _f_from_json(value, /, *_, **__):
    return json.loads(value)


def _f_spaceless(value, /):
    """Tera's: no whitespace between HTML tags."""
    return re.sub(r">\s+<", "><", str(value))


def _f_pluralize(value, /, *args, **kwargs):
    """Tera's: `plural` (default "s") unless the number is 1, then `singular` (default "")."""
    singular = _arg(args, kwargs, 0, "singular", default="")
    plural = _arg(args, kwargs, 1, "plural", default="s")
    try:
        return singular if abs(float(value)) == 1 else plural
    except (TypeError, ValueError):
        raise FilterArgumentError(f"pluralize takes a number, not {display(value)[:40]!r}") from None


_XML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}


def _f_escape_xml(value, /):
    return "".join(_XML.get(c, c) for c in display(value))


def _f_urlencode_strict(value, /):
    """Tera's: every character but ASCII letters and digits percent-encoded (UTF-8)."""
    return "".join(
        c if c.isascii() and c.isalnum() else "".join(f"%{b:02X}" for b in c.encode()) for c in display(value)
    )


FILTERS: dict[str, Callable[..., Any]] = {
    "default": _f_default,
    "d": _f_default,
    "join": _f_join,
    "json_encode": _f_json_encode,
    "tojson": _f_tojson,
    "to_json": _f_tojson,
    "from_json": _f_from_json,
    "replace": _f_replace,
    "truncate": _f_truncate,
    "split": _f_split,
    "trim_start": _f_trim_start,
    "trim_end": _f_trim_end,
    "trim_start_matches": _f_trim_start_matches,
    "trim_end_matches": _f_trim_end_matches,
    "nth": _f_nth,
    "slice": _f_slice,
    "concat": _f_concat,
    "filter": _f_filter,
    "group_by": _f_group_by,
    "get": _f_get,
    "indent": _f_indent,
    "center": _f_center,
    "format": _f_format,
    "date": _f_date,
    "linebreaksbr": _f_linebreaksbr,
    "slugify": _f_slugify,
    "addslashes": _f_addslashes,
    "shell_quote": _f_shell_quote,
    "b64encode": _f_b64encode,
    "b64decode": _f_b64decode,
    "as_str": _f_as_str,
    "tera_pairs": tera_pairs,
    "spaceless": _f_spaceless,
    "pluralize": _f_pluralize,
    "escape_xml": _f_escape_xml,
    "urlencode_strict": _f_urlencode_strict,
}


def _matches(pattern: str, subject: str) -> bool:
    return search(pattern, subject)


def _pattern(args, kwargs):
    return str(_arg(args, kwargs, 0, "pat", "needle", "value"))


TESTS = {
    "starting_with": lambda v, *a, **k: str(v).startswith(_pattern(a, k)),
    "ending_with": lambda v, *a, **k: str(v).endswith(_pattern(a, k)),
    "containing": lambda v, *a, **k: _arg(a, k, 0, "pat", "needle", "value") in v,
    "matching": lambda v, *a, **k: _matches(_pattern(a, k), str(v)),
    "object": lambda v: isinstance(v, Mapping),
    "map": lambda v: isinstance(v, Mapping),
    "array": lambda v: isinstance(v, (list, tuple)),
    "divisible_by": lambda v, *a, **k: v % _arg(a, k, 0, "divisor") == 0,
}


MAX_RANGE = 100_000


def _g_range(*args, **kwargs):
    if kwargs:
        start = kwargs.get("start", 0)
        end = kwargs.get("end", args[0] if args else 0)
        result = range(start, end, kwargs.get("step_by", 1))
    else:
        result = range(*args)
    if len(result) > MAX_RANGE:
        raise OverflowError(f"range too big ({len(result)} items; at most {MAX_RANGE})")
    return result


def _g_now(*_, timestamp: bool = False, utc: bool = False, **__):
    moment = datetime.now(UTC) if utc else datetime.now().astimezone()
    return moment.timestamp() if timestamp else moment.isoformat()


def _g_throw(message: str = "", **kwargs):
    raise ValueError(kwargs.get("message", message))


def _g_get_random(*args, **kwargs):
    """Tera's get_random(start=0, end=N): a whole number from start up to, not including, end."""
    start = int(_arg(args, kwargs, 0, "start", default=0))
    end = int(_arg(args, kwargs, 1, "end"))
    if end <= start:
        raise ValueError(f"get_random needs end > start, got start={start}, end={end}")
    return random.randrange(start, end)


@pass_context
def _g_get_env(context, *args, **kwargs):
    """Tera's get_env(name=..., default=...): only what the template may already read as `env` (the variables
    the server exposes to secrets), never the server's own environment."""
    name = str(_arg(args, kwargs, 0, "name"))
    env = context.get("env")
    if isinstance(env, Mapping) and name in env:
        return env[name]
    default = _arg(args, kwargs, 1, "default")
    if default is not _MISSING:
        return default
    raise ValueError(
        f"get_env: {name!r} is not among the environment variables this template may read; list it in the "
        "server's `expose_env`, or give a default"
    )


GLOBALS = {
    "range": _g_range,
    "now": _g_now,
    "throw": _g_throw,
    "inf": math.inf,
    "lipsum": _g_lipsum,
    "get_random": _g_get_random,
    "get_env": _g_get_env,
}
