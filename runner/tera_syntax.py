"""Tera's template syntax where it differs from Jinja2's, rewritten before a template is compiled.

- `{% for key, value in map %}` iterates a mapping's pairs (Jinja2 would give its keys): the iterable
  goes through the `tera_pairs` filter, which makes a mapping its items and leaves a list alone.
- `{{ self::macro(...) }}` calls a macro of the same template: `self::` is dropped.
- `{% break %}` and `{% continue %}` are Jinja2's loop controls (an extension the environment loads).

What cannot be had (`{% set_global %}`, `{% import %}` of another file) stays a syntax error, explained.
"""

from __future__ import annotations

import re

__all__ = ["explain_syntax_error", "tera_pairs", "translate"]

_PAIR_LOOP = re.compile(r"\{%(?P<l>-?)\s*for\s+(?P<k>\w+)\s*,\s*(?P<v>\w+)\s+in\s+(?P<what>.+?)\s*(?P<r>-?)%\}", re.S)
_SELF_CALL = re.compile(r"\bself::(?=\w+\s*\()")


def _pairs(match: re.Match) -> str:
    what = match["what"]
    if re.search(r"\s(if|recursive)\b", what):  # a filtered or recursive loop: left as Jinja2 reads it
        return match.group(0)
    return f"{{%{match['l']} for {match['k']}, {match['v']} in ({what}) | tera_pairs {match['r']}%}}"


def translate(source: str) -> str:
    if "{%" in source and " for " in source.replace("{%-", "{% "):
        source = _PAIR_LOOP.sub(_pairs, source)
    if "self::" in source:
        source = _SELF_CALL.sub("", source)
    return source


def tera_pairs(value):
    """A mapping's (key, value) pairs; anything else (a list of pairs) as it is."""
    return list(value.items()) if hasattr(value, "items") and callable(value.items) else value


_EXPLAINED = {
    "set_global": "Tera's set_global is not supported: keep a value across loop turns in a namespace, "
    "`{% set ns = namespace(total=0) %}` ... `{% set ns.total = ns.total + 1 %}` ... `{{ ns.total }}`",
    "import": "templates cannot import other files: define the macro in the same template",
    "include": "templates cannot include other files",
    "extends": "templates cannot extend other files",
}


def explain_syntax_error(message: str) -> str:
    """A clearer message for the Tera constructs that have no Jinja2 form."""
    for tag, why in _EXPLAINED.items():
        if f"'{tag}'" in message:
            return why
    return message
