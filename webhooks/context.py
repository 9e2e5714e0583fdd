"""The Strom service of the running web application, typed, for every blueprint."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from flask import Flask, current_app

if TYPE_CHECKING:
    from runner.runs.service import Service

__all__ = ["EXTENSION", "current_service"]

EXTENSION = "strom"  # the key of the service in `app.extensions`


def current_service(app: Flask | None = None) -> Service:
    """The service of `app`, else of the application handling the current request."""
    return cast("Service", (app or current_app).extensions[EXTENSION])
