"""`create_app(config)`: the Flask application factory of the web process."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, jsonify
from flask.json.provider import DefaultJSONProvider

from runner import __version__
from runner.config import Config, load_config
from runner.runs.service import Service

from .access.session import secret_key
from .api import bp as api
from .context import EXTENSION
from .errors import register_error_handlers
from .mcp import bp as mcp
from .metrics import bp as metrics
from .openapi import bp as openapi
from .prefix import PathPrefix
from .receivers import alerts, forges, git, hooks
from .receivers.bodies import MAX_BODY
from .ui import bp as ui
from .ui.badges import bp as badges

__all__ = ["create_app"]


def create_app(config: Config | Mapping[str, Any] | None = None, service: Service | None = None) -> Flask:
    """Build the app. `config` is a Config, or Flask settings (e.g. TESTING) to combine with load_config()."""
    settings: Mapping[str, Any] = {}
    if not isinstance(config, Config):
        settings, config = dict(config or {}), None
    service = service or Service(config or load_config())
    app = Flask("strom", static_folder=None)
    app.config.update(settings)
    app.config["JSON_SORT_KEYS"] = False
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY  # webhooks and git pushes set their own limits
    app.secret_key = secret_key(service.config.data_dir)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="strom_session",
        SESSION_COOKIE_SECURE=service.config.public_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=12 * 3600,
    )
    if isinstance(app.json, DefaultJSONProvider):  # Flask's own, unless an app class names another
        app.json.sort_keys = False
    app.extensions[EXTENSION] = service
    register_error_handlers(app)
    app.register_blueprint(api)
    app.register_blueprint(metrics)
    app.register_blueprint(openapi)
    for receiver in (forges, hooks, alerts, git):
        app.register_blueprint(receiver)
    app.register_blueprint(ui)
    app.register_blueprint(badges)
    app.register_blueprint(mcp)
    prefix = urlsplit(service.config.public_url).path.rstrip("/")
    if prefix:
        app.wsgi_app = PathPrefix(app.wsgi_app, prefix)  # type: ignore[method-assign]

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok", version=__version__)

    return app
