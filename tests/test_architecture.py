"""The architecture's rules, read from the code: layers, no cycles, a pure engine, honest exports."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from runner.lazy import declared_exports

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("runner", "webhooks")
LAYER_ROW = re.compile(r"^\| (\d+) [^|]*\| ([^|]*)\|")
IO_MODULES = {
    "redis",
    "rq",
    "flask",
    "werkzeug",
    "requests",
    "urllib3",
    "docker",
    "kubernetes",
    "subprocess",
    "socket",
    "git",
    "apprise",
    "gunicorn",
    "psutil",
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (or module.name: what `from x import name` may mean)
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_only(tree: ast.Module) -> set[int]:
    """Ids of the import nodes inside `if TYPE_CHECKING:` blocks: they name types and never run."""
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            hidden.update(id(child) for statement in node.body for child in ast.walk(statement))
    return hidden


def imports_of(path: Path) -> list[Import]:
    """Every import a module makes at run time, at module level or inside functions."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hidden = _type_only(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.Import):
            found += [Import(name, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (
                ".".join(package[: len(package) - node.level + 1] + [node.module or ""]).strip(".")
                if node.level
                else node.module or ""
            )
            found += [
                Import(name, f"{base}.{alias.name}" if node.module is None else base, node.lineno)
                for alias in node.names
            ]
    return found


def all_imports() -> list[Import]:
    return [
        found for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py")) for found in imports_of(path)
    ]


def read_layers() -> dict[str, int]:
    """Unit -> layer number, from the table in docs/development.md."""
    layers = {}
    for line in (ROOT / "docs" / "development.md").read_text(encoding="utf-8").splitlines():
        match = LAYER_ROW.match(line)
        if match:
            for unit in re.findall(r"`([\w.]+)`", match.group(2)):
                layers[unit] = int(match.group(1))
    return layers


def unit_of(module: str, layers: dict[str, int]) -> str | None:
    """The longest unit of the layer table that `module` belongs to."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in layers:
            return ".".join(parts[:end])
    return None


def edges(layers: dict[str, int]) -> dict[tuple[str, str], Import]:
    """(importing unit, imported unit) -> one import that makes the edge."""
    out: dict[tuple[str, str], Import] = {}
    for found in all_imports():
        if found.target.split(".")[0] not in PACKAGES:
            continue
        source, target = unit_of(found.source, layers), unit_of(found.target, layers)
        if source != target and source is not None and target is not None:
            out.setdefault((source, target), found)
    return out


def test_the_layer_table_places_every_package_and_module():
    layers = read_layers()
    assert len(layers) > 30 and min(layers.values()) == 1
    units = {module_name(p) for package in PACKAGES for p in (ROOT / package).glob("*.py")}
    units |= {module_name(p.parent) for package in PACKAGES for p in (ROOT / package).glob("*/__init__.py")}
    assert sorted(units - set(layers)) == [], "add these to the layer table in docs/development.md"
    assert sorted(set(layers) - units) == [], "the layer table names what does not exist"
    missing_init = [
        str(d.relative_to(ROOT))
        for package in PACKAGES
        for d in (ROOT / package).rglob("*")
        if d.is_dir() and any(d.glob("*.py")) and not (d / "__init__.py").exists()
    ]
    assert missing_init == []


def test_modules_import_only_from_lower_layers():
    layers = read_layers()
    upward = [
        f"{found.source}:{found.line} imports {found.target} (layer {layers[source]} -> {layers[target]})"
        for (source, target), found in edges(layers).items()
        if layers[target] >= layers[source]
    ]
    assert upward == []


def test_packages_import_each_other_without_cycles():
    """Also what the layer rule implies, checked on its own so a table edit cannot hide a cycle."""
    graph: dict[str, set[str]] = {}
    for source, target in edges(read_layers()):
        graph.setdefault(source, set()).add(target)
    state: dict[str, int] = {}

    def visit(unit: str, path: list[str]) -> list[str] | None:
        state[unit] = 1
        for nxt in sorted(graph.get(unit, ())):
            if state.get(nxt) == 1:
                return path + [unit, nxt]
            if nxt not in state and (cycle := visit(nxt, path + [unit])):
                return cycle
        state[unit] = 2
        return None

    cycles = [cycle for unit in sorted(graph) if unit not in state and (cycle := visit(unit, []))]
    assert cycles == []


def test_the_runner_never_imports_the_web_layer():
    bad = [
        f"{f.source}:{f.line} imports {f.target}"
        for f in all_imports()
        if f.source.startswith("runner") and f.target.split(".")[0] in ("webhooks", "flask", "werkzeug")
    ]
    assert bad == []


def test_the_engine_loads_no_io_library():
    engine = sorted(module_name(p) for p in (ROOT / "runner" / "engine").glob("*.py"))
    assert len(engine) > 10
    code = (
        f"import importlib, sys\nfor m in {engine!r}: importlib.import_module(m)\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {IO_MODULES!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def _views(module) -> set[str]:
    """Functions a Flask blueprint routes to (`@bp.get(...)`): their names are their endpoints'."""
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        for decorator in node.decorator_list
        if isinstance(decorator, ast.Call)
        and isinstance(decorator.func, ast.Attribute)
        and isinstance(decorator.func.value, ast.Name)
        and decorator.func.value.id == "bp"
    }


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package)
        names += [info.name for info in pkgutil.walk_packages([str(ROOT / package)], f"{package}.")]
    return sorted(names)


LAZY_PACKAGES = sorted(
    module_name(p.parent)
    for package in PACKAGES
    for p in (ROOT / package).rglob("__init__.py")
    if "lazy_exports(" in p.read_text(encoding="utf-8")
)


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_a_lazy_package_exports_exactly_what_it_declares(package):
    module = importlib.import_module(package)
    declared = declared_exports(module.__file__)
    assert module.__all__ == sorted(declared) and dir(module) == module.__all__
    for name, submodule in declared.items():
        value = getattr(module, name)
        if submodule is not None:
            assert value is getattr(importlib.import_module(f"{package}.{submodule}"), name)
            assert name in importlib.import_module(f"{package}.{submodule}").__all__, f"{package}.{submodule}"
    with pytest.raises(AttributeError, match="has no attribute"):
        module.not_an_export  # noqa: B018 - the access is the test


def test_every_all_lists_names_that_exist_and_every_public_definition():
    """As httpx checks its exports: what a module lists is there, and what it defines in public is listed."""
    problems = []
    for name in _modules():
        if name in ("runner.cli.__main__", "webhooks.wsgi"):  # they run the command line, and build the app
            continue
        module = importlib.import_module(name)
        exported = getattr(module, "__all__", None)
        if exported is None:
            if not hasattr(module, "__path__") and not _views(module):
                problems.append(f"{name}: no __all__")
            continue
        problems += [f"{name}.__all__ names {e!r}, which is not there" for e in exported if not hasattr(module, e)]
        if hasattr(module, "__path__"):
            continue
        defined = [
            n
            for n, v in vars(module).items()
            if not n.startswith("_")
            and (inspect.isclass(v) or inspect.isfunction(v))
            and getattr(v, "__module__", None) == name
            and v.__name__ == n
        ]  # defined here under this name, not an alias
        problems += [
            f"{name}.{n} is public but not in __all__" for n in defined if n not in exported and n not in _views(module)
        ]
    assert problems == []
