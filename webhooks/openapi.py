"""Serves the OpenAPI description of the API (webhooks/openapi.yaml) as JSON."""
from __future__ import annotations

import functools
from pathlib import Path

from flask import Blueprint, jsonify
from ruamel.yaml import YAML

from .api.auth import requires

__all__ = ["bp", "document"]

bp = Blueprint("openapi", __name__)


@functools.lru_cache(maxsize=1)
def document() -> dict:
    return YAML(typ="safe").load((Path(__file__).parent / "openapi.yaml").read_text(encoding="utf-8"))


@bp.get("/api/openapi.json")
@requires("read")
def openapi():
    return jsonify(document())
