"""Executors run rendered steps: locally (subprocess in a sandbox), over HTTP, and more.

Names are imported on first use: a worker that runs only scripts never loads the HTTP client.
"""
from importlib import import_module

_EXPORTS = {
    "Executor": "base", "LogSink": "base", "MaskedLogs": "base", "StepResult": "base", "execute": "base",
    "HttpExecutor": "http", "LocalExecutor": "local", "LocalSettings": "local",
    "Unavailable": "unavailable", "missing_runner": "unavailable",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
