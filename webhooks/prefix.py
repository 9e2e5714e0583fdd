"""Serving under a path: when `public_url` has one (https://ci.example.com/strom), every URL the app makes
starts with it, whether the reverse proxy passes the prefix on or strips it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["PathPrefix"]


class PathPrefix:
    def __init__(self, app: Callable[..., Iterable[bytes]], prefix: str):
        self.app = app
        self.prefix = "/" + prefix.strip("/")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        if path == self.prefix or path.startswith(self.prefix + "/"):  # the proxy passed the prefix on
            environ["PATH_INFO"] = path[len(self.prefix) :] or "/"
        environ["SCRIPT_NAME"] = self.prefix
        return self.app(environ, start_response)
