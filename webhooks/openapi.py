"""Serves the OpenAPI description of the API (webhooks/openapi.yaml) as JSON."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from flask import Blueprint, jsonify
from ruamel.yaml import YAML

from .access.tokens import requires

__all__ = ["bp", "document", "query_parameters"]

bp = Blueprint("openapi", __name__)


@functools.lru_cache(maxsize=1)
def document() -> dict:
    return YAML(typ="safe").load((Path(__file__).parent / "openapi.yaml").read_text(encoding="utf-8"))


def _skeleton(path: str) -> str:
    """ "/api/runs/{run}" and "/api/runs/<run_id>" both become "/api/runs/*"."""
    return re.sub(r"\{[^}]*\}|<[^>]*>", "*", path)


@functools.lru_cache(maxsize=1)
def _documented_queries() -> dict[tuple[str, str], frozenset[str]]:
    out = {}
    for path, item in document()["paths"].items():
        shared = [p for p in item.get("parameters") or [] if isinstance(p, dict)]
        for method in ("get", "post", "put"):
            if method in item:
                params = shared + [p for p in item[method].get("parameters") or [] if isinstance(p, dict)]
                names = {_resolve(p).get("name") for p in params if _resolve(p).get("in") == "query"}
                out[(_skeleton(path), method.upper())] = frozenset(n for n in names if isinstance(n, str))
    return out


def _resolve(parameter: dict) -> dict:
    if "$ref" in parameter:
        return document()["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[-1]]
    return parameter


def query_parameters(rule: str, method: str) -> frozenset[str] | None:
    """The query parameters the document lists for this route and method (None: not documented)."""
    return _documented_queries().get((_skeleton(rule), method))


@bp.get("/api/openapi.json")
@requires("read")
def openapi():
    return jsonify(document())
