"""`create_app(config)`: the Flask application factory."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask, jsonify

from runner import __version__

__all__ = ["create_app"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask("strom")
    app.config.update(config or {})

    @app.get("/healthz")
    def health():
        return jsonify(status="ok", version=__version__)

    return app
