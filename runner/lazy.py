"""Package exports imported on first use, so a process loads only the parts it touches."""
from __future__ import annotations

import sys
from importlib import import_module
from typing import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str | None]) -> tuple[Callable, Callable, list[str]]:
    """(__getattr__, __dir__, __all__) for `package`. `exports` maps a name to the submodule that
    defines it, or to None when the name is itself a submodule."""
    names = sorted(exports)

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = exports[name]
        value = import_module(f"{package}.{name}") if module is None else \
            getattr(import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return names

    return __getattr__, __dir__, names
