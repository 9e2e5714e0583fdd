"""Whether gevent has patched a standard module in this process (gunicorn's gevent workers), asked without
importing gevent: the single-process server never loads it."""

from __future__ import annotations

import sys

__all__ = ["gevent_patched"]


def gevent_patched(module: str) -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched(module))
