"""Redis persistence: runs and their indexes, definitions, logs, workers, events, timers.

Names are imported on first use (a worker needs logs and the registry, not the definitions).
"""
from importlib import import_module

_EXPORTS = {
    "connect": "connection", "Definitions": "definitions", "JobStore": "jobs", "RunFilter": "jobs",
    "RunPage": "jobs", "LogStore": "logs", "LogLine": "logs", "WorkerInfo": "workers", "WorkerRegistry": "workers",
    "keys": None,
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = _EXPORTS[name]
    value = import_module(f"{__name__}.{name}") if module is None else getattr(import_module(f"{__name__}.{module}"),
                                                                                name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
