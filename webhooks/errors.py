"""HTTP errors: every failure answers JSON `{"error": {"code", "message", ...}}` with a fitting status."""

from __future__ import annotations

import logging
import time

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from runner.errors import InputError, SpecError, StromError
from runner.store.connection import RedisUnavailable, is_outage

__all__ = ["ApiError", "register_error_handlers"]

log = logging.getLogger("strom.web")
RETRY_AFTER = 5  # seconds, in 503 answers while Redis is unreachable


class ApiError(StromError):
    """An error with its HTTP status and a machine-readable code."""

    def __init__(self, status: int, code: str, message: str, **details):
        super().__init__(message)
        self.status_hint = status
        self.code = code
        self.details = details


def _body(status: int, code: str, message: str, **details):
    return jsonify(error={"code": code, "message": message, **details}), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return _body(exc.status_hint, exc.code, str(exc), **exc.details)

    @app.errorhandler(InputError)
    def input_error(exc: InputError):
        return _body(422, "invalid_input", f"invalid input for task {exc.task!r}", fields=exc.errors)

    @app.errorhandler(SpecError)
    def spec_error(exc: SpecError):
        problems = [p.to_dict() for p in exc.problems if p.is_error]
        return _body(422, "invalid_definitions", f"{len(problems)} problem(s) in .strom definitions", problems=problems)

    @app.errorhandler(StromError)
    def strom_error(exc: StromError):
        code = type(exc).__name__.replace("Error", "").lower() or "error"
        return _body(exc.status_hint, code, str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.blueprint == "ui":  # people get a page, programs get JSON
            page = render_template("error.html", code=exc.code, name=exc.name, description=exc.description)
            response = app.make_response((page, exc.code or 500))
        else:
            response = app.make_response(
                _body(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"), exc.description or exc.name)
            )
        for name, value in exc.get_headers():  # e.g. Allow on a 405
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        if is_outage(exc):
            return unavailable(exc)
        log.exception("unexpected error")
        return _body(500, "internal", "internal error; the server log has the details")

    def unavailable(exc: Exception):
        """Redis cannot be reached: try again soon (forges show a failed delivery that can be redelivered)."""
        _outage_logged(exc)
        message = "the service cannot reach its store (Redis) right now; try again shortly"
        if request.blueprint == "ui":
            response = app.make_response(
                (render_template("error.html", code=503, name="Service Unavailable", description=message), 503)
            )
        else:
            response = app.make_response(_body(503, "unavailable", message))
        response.headers["Retry-After"] = str(RETRY_AFTER)
        return response

    app.register_error_handler(RedisUnavailable, unavailable)


_last_outage_log = [0.0]


def _outage_logged(exc: Exception) -> None:
    """One log line per outage, not one per request."""
    now = time.monotonic()
    if now - _last_outage_log[0] > 30:
        log.warning("Redis is unreachable (%s): answering 503", exc)
    _last_outage_log[0] = now
