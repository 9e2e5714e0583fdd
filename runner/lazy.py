"""Package exports imported on first use, so a process loads only the parts it touches.

A package lists its exports once, as imports under `if TYPE_CHECKING:` (what a type checker and a
reader see); `lazy_exports` reads that block and imports each name only when it is first used.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any

__all__ = ["declared_exports", "lazy_exports"]


def declared_exports(init_file: str | Path) -> dict[str, str | None]:
    """The names a package's `if TYPE_CHECKING:` block imports: name -> submodule that defines it, or
    None when the name is itself a submodule (`from . import keys`)."""
    tree = ast.parse(Path(init_file).read_text(encoding="utf-8"))
    exports: dict[str, str | None] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for statement in node.body:
                if not isinstance(statement, ast.ImportFrom) or statement.level != 1:
                    raise ValueError(f"{init_file}: only `from .module import name` belongs in TYPE_CHECKING")
                for alias in statement.names:
                    exports[alias.asname or alias.name] = statement.module
    return exports


def lazy_exports(package: str) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """(__getattr__, __dir__, __all__) for `package`, from the imports of its `if TYPE_CHECKING:` block."""
    exports = declared_exports(sys.modules[package].__file__ or "")
    names = sorted(exports)

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = exports[name]
        value = (
            import_module(f"{package}.{name}")
            if module is None
            else getattr(import_module(f"{package}.{module}"), name)
        )
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__, names
