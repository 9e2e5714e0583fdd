"""Templates in workflow files: a sandboxed Jinja2 environment that also speaks Tera.

- `render(source, context, where)` -> text.
- `render_value(value, context, where)` renders every string inside lists and mappings. A string
  that is exactly one `{{ expression }}` whose value is a list or mapping keeps its structure
  (Strøm's rule), so `for_each: "{{ build.output.items }}"` yields a list, not its text.
- `syntax_problems(source)` checks a template without running it (used while loading).

Undefined values are errors when rendered, compared or iterated, so a typo fails loudly; they
are falsy in `{% if %}` and replaced by `default`, as in Tera.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import (
    ChainableUndefined,
    StrictUndefined,
    TemplateSyntaxError,
    Undefined,
    nodes,
    pass_context,
    pass_environment,
)
from jinja2 import filters as jf
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.exceptions import TemplateError as JinjaTemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from .errors import TemplateError
from .template_limits import (
    MAX_ITEMS,
    MAX_TEXT,
    RENDER_SECONDS,
    RenderTimeout,
    TimedList,
    capped,
    check_binop,
    check_items,
    check_method,
    check_size,
    check_time,
    concat,
    guarded_iter,
    start_clock,
    stop_clock,
)
from .tera_compat import FILTERS, GLOBALS, TESTS, display, own_text
from .tera_syntax import explain_syntax_error, translate
from .vals import resolve_ref

__all__ = [
    "ENV",
    "VALS_FILES",
    "LazyNamespace",
    "Namespace",
    "SecretMap",
    "WithheldSecrets",
    "evaluate",
    "is_template",
    "render",
    "render_value",
    "syntax_problems",
    "template_name",
]


class _StromUndefined(ChainableUndefined, StrictUndefined):
    """Strict everywhere except truth tests, where a missing value is simply false, and a path below it, which
    stays missing (`{{ a.b.c | default(value="x") }}` with no `a.b` is "x", as in Tera)."""

    __slots__ = ()

    def __bool__(self) -> bool:  # type: ignore[override]  # jinja2 types the strict one as always raising
        return False


class Namespace(dict):
    """A context mapping that names itself in error messages ("input has no field ...")."""

    __slots__ = ("_label",)

    def __init__(self, label: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._label = label


class LazyNamespace(Mapping):
    """A Namespace whose contents are read the first time a template looks into it (the task state: a read
    of Redis, paid only by templates that use it)."""

    __slots__ = ("_data", "_label", "_load")

    def __init__(self, label: str, load: Callable[[], Mapping[str, Any] | None]):
        self._label, self._load = label, load
        self._data: Mapping[str, Any] | None = None

    @property
    def data(self) -> Mapping[str, Any]:
        if self._data is None:
            self._data = self._load() or {}
        return self._data

    def __getitem__(self, key):
        return self.data[key]

    def __iter__(self):
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


class SecretMap(dict):
    """Secrets by name; lookups ignore case so `secret.api_key` finds API_KEY."""

    __slots__ = ()

    def __missing__(self, key):
        if isinstance(key, str):
            for name in (key.upper(), key.lower()):
                if name != key and dict.__contains__(self, name):
                    return dict.__getitem__(self, name)
        raise KeyError(key)


class WithheldSecrets(SecretMap):
    """No secrets, with the reason why (e.g. a run of an untrusted pull request)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        super().__init__()
        self.reason = reason


def template_name(step_name: str) -> str:
    """How a step is named inside templates: hyphens become underscores (Strøm's rule)."""
    return step_name.replace("-", "_")


class _Environment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"**", "*", "+", "%"})

    def call_binop(self, context, operator, left, right):
        check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def _generate(self, source, name, filename, defer_init=False):
        """Compiled templates only (checking syntax needs none of it): every `for` loop iterates through
        guarded_iter, which watches the render's deadline; every `~` goes through concat, which bounds what
        it makes."""
        return super()._generate(_Guards().visit(source), name, filename, defer_init)

    def call(__self, __context, __obj, *args, **kwargs):
        check_time()
        target = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        owner = getattr(target, "__self__", None)
        if isinstance(owner, (str, bytes)):
            check_method(owner, getattr(target, "__name__", ""), args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj, attribute):
        # Data before methods: `output.items` is the key "items", not dict.items.
        if isinstance(obj, Mapping):
            return self._lookup(obj, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj, argument):
        if isinstance(obj, Mapping):
            return self._lookup(obj, argument)
        return super().getitem(obj, argument)

    def _lookup(self, obj: Mapping, name):
        try:
            return obj[name]
        except (KeyError, TypeError):
            return self._missing(obj, name)

    def _missing(self, obj, name):
        if isinstance(obj, WithheldSecrets):
            hint = f"secret {name!r} is withheld: {obj.reason}"
        elif isinstance(obj, SecretMap):
            env = str(name).upper()
            hint = (
                f"secret {name!r} is not set; export STROM_SECRET_{env}=..., pass --secrets FILE, "
                f"or configure it on the server"
            )
        elif isinstance(obj, (Namespace, LazyNamespace)):
            known = ", ".join(sorted(map(str, obj))[:12]) or "nothing"
            hint = f"{obj._label} has no field {name!r} (it has: {known})"
        else:
            known = ", ".join(sorted(map(str, obj))[:12]) or "no keys"
            hint = f"no key {name!r} in this mapping (it has: {known})"
        return self.undefined(hint=hint, obj=obj, name=name)


class _Guards(NodeTransformer):
    def visit_For(self, node):
        self.generic_visit(node)
        node.iter = nodes.Call(nodes.Name(_GUARD, "load"), [node.iter], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node):
        self.generic_visit(node)
        return nodes.Call(nodes.Name(_CONCAT, "load"), list(node.nodes), [], None, None, lineno=node.lineno)


def _guarded_filter(func):
    """`func` with the render's deadline checked, the lists it is given watched as it walks them, and what
    it returns held to the size limits."""
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(func)
    def guarded(*args, **kwargs):
        check_time()
        if len(args) > skip and type(args[skip]) in (list, tuple):
            args = (*args[:skip], TimedList(args[skip]), *args[skip + 1 :])
        result = func(*args, **kwargs)
        check_size(result, f"the result of a filter ({getattr(func, '__name__', 'filter')})")
        return result

    return guarded


@pass_environment
def _sum(environment, iterable, attribute=None, start=0):
    if isinstance(start, bool) or not isinstance(start, (int, float)):
        raise SecurityError("sum adds numbers: its start must be a number (use `concat` or `join` for lists and text)")
    return jf.sync_do_sum(environment, iterable, attribute, start)


def _batch(value, linecount, fill_with=None):
    if not isinstance(linecount, int) or not 0 < linecount <= MAX_ITEMS:
        raise SecurityError(f"batch takes a count from 1 to {MAX_ITEMS}, not {linecount!r}")
    return jf.do_batch(value, linecount, fill_with)


@pass_environment
def _wordwrap(environment, s, width=79, break_long_words=True, wrapstring=None, break_on_hyphens=True):
    lines = len(str(s)) // max(1, int(width)) + str(s).count("\n") + 1
    if wrapstring is not None and lines * len(str(wrapstring)) > MAX_TEXT:
        raise SecurityError("wordwrap: this wrapstring would make something too large")
    return jf.do_wordwrap(environment, s, width, break_long_words, wrapstring, break_on_hyphens)


_OVERRIDES = {"sum": _sum, "batch": _batch, "wordwrap": _wordwrap}


def _finalize(value):
    if isinstance(value, Undefined):
        return value
    return display(value)


_GUARD = "_strom_loop_guard"
_CONCAT = "_strom_concat"


VALS_FILES = "_strom_vals_files"  # where `ref+file://` may read, in a context that renders secrets


@pass_context
def _vals(context, value):
    """vals-style references (`ref+env://NAME`, `ref+file:///path`, `ref+vault://...`) to their values."""
    env = context.get("env")
    return resolve_ref(str(value), env if isinstance(env, Mapping) else None, context.get(VALS_FILES) or ())


def _make_env() -> _Environment:
    env = _Environment(
        extensions=["jinja2.ext.loopcontrols"],  # Tera's {% break %} and {% continue %}
        undefined=_StromUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_finalize,
    )
    env.filters.update(FILTERS)
    env.filters.update(_OVERRIDES)
    env.filters["vals"] = _vals
    env.filters = {name: _guarded_filter(func) for name, func in env.filters.items()}
    env.tests.update(TESTS)
    env.globals.update(GLOBALS)
    env.globals[_GUARD] = guarded_iter
    env.globals[_CONCAT] = concat
    return env


ENV = _make_env()

_MARKERS = ("{{", "{%", "{#")
_SINGLE_EXPRESSION = re.compile(r"\A\s*\{\{-?(?P<expr>.*?)-?\}\}\s*\Z", re.S)


def is_template(value: Any) -> bool:
    return isinstance(value, str) and any(m in value for m in _MARKERS)


@lru_cache(maxsize=4096)
def _compiled(source: str):
    return ENV.from_string(translate(source))


@lru_cache(maxsize=4096)
def _compiled_expression(expr: str):
    return ENV.compile_expression(expr, undefined_to_none=False)


def _single_expression(source: str) -> str | None:
    match = _SINGLE_EXPRESSION.match(source)
    if not match:
        return None
    expr = match.group("expr")
    if any(m in expr for m in ("{{", "}}", "{%", "%}")):
        return None
    return expr


def _translate(exc: Exception, where: str) -> TemplateError:
    if isinstance(exc, TemplateSyntaxError):
        return TemplateError(
            f"syntax error on template line {exc.lineno}: {explain_syntax_error(exc.message or '')}", where
        )
    if isinstance(exc, UndefinedError):
        return TemplateError(str(exc.message or exc), where)
    if isinstance(exc, SecurityError):
        return TemplateError(f"not allowed in a sandboxed template: {exc}", where)
    if isinstance(exc, JinjaTemplateError):
        return TemplateError(str(exc), where)
    return TemplateError(f"{type(exc).__name__}: {exc}", where)


def render(source: str, context: Mapping[str, Any], where: str = "") -> str:
    """Render to text. Non-template strings are returned untouched, quickly. A template with statements
    (loops, macros) gets RENDER_SECONDS; output is capped at MAX_OUTPUT characters."""
    if not is_template(source):
        return source
    clock = start_clock()
    try:
        return capped(_compiled(source).generate(context))
    except RenderTimeout:
        raise TemplateError(f"the template ran longer than {RENDER_SECONDS:g}s and was stopped", where) from None
    except Exception as exc:  # translated once, here, at the boundary
        raise _translate(exc, where) from exc
    finally:
        stop_clock(clock)


def evaluate(source: str, context: Mapping[str, Any], where: str = "") -> Any:
    """Like render, but one `{{ expression }}` yielding a list or mapping keeps its structure."""
    if not is_template(source):
        return source
    expr = _single_expression(source)
    if expr is not None:
        clock = start_clock()
        try:
            value = _compiled_expression(expr)(context)
        except TemplateSyntaxError:
            value = None  # not a lone expression after all; render as text below
        except RenderTimeout:
            raise TemplateError(f"the template ran longer than {RENDER_SECONDS:g}s and was stopped", where) from None
        except Exception as exc:
            raise _translate(exc, where) from exc
        else:
            if isinstance(value, Undefined):
                try:
                    str(value)
                except Exception as exc:
                    raise _translate(exc, where) from exc
            check_items(value)
            if isinstance(value, (list, tuple)):
                return list(value)
            if isinstance(value, Mapping):
                text = own_text(value)
                return dict(value) if text is None else text
        finally:
            stop_clock(clock)
    return render(source, context, where)


def render_value(value: Any, context: Mapping[str, Any], where: str = "") -> Any:
    """Render templates inside any structure of dicts, lists and strings."""
    if isinstance(value, str):
        return evaluate(value, context, where)
    if isinstance(value, Mapping):
        return {k: render_value(v, context, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [render_value(v, context, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


# ---------------------------------------------------------------- load-time checks

_EXPRESSION_TAG = re.compile(r"\{\{-?(.*?)-?\}\}", re.S)


@lru_cache(maxsize=65536)
def _check_expression(tag: str) -> tuple[str, ...]:
    return _check_full(tag)


@lru_cache(maxsize=16384)
def _check_full(source: str) -> tuple[str, ...]:
    try:
        tree = ENV.parse(translate(source))
    except TemplateSyntaxError as exc:
        return (f"template line {exc.lineno}: {explain_syntax_error(exc.message or '')}",)
    problems = []
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        table, kind = (ENV.filters, "filter") if isinstance(node, nodes.Filter) else (ENV.tests, "test")
        if node.name not in table:
            from .suggestions import suggest

            hint = suggest(node.name, table)
            problems.append(f"unknown {kind} {node.name!r}" + (f"; {hint}" if hint else ""))
    return tuple(problems)


def syntax_problems(source: str) -> tuple[str, ...]:
    """Messages for syntax errors and unknown filters/tests; empty when the template is fine.

    Templates made only of `{{ ... }}` tags are checked tag by tag, and each distinct tag is
    parsed once per process: large workspaces repeat the same expressions many times.
    """
    if not is_template(source):
        return ()
    if "{%" not in source and "{#" not in source:
        tags = _EXPRESSION_TAG.findall(source)
        leftover = _EXPRESSION_TAG.sub("", source)
        if "{{" not in leftover and "}}" not in leftover:
            found = [msg for tag in tags for msg in _check_expression("{{" + tag + "}}")]
            if not found:
                return ()
    return _check_full(source)
