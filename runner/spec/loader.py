"""Load a workspace: read every `.strom/**/*.yaml|yml`, merge the files, build and cross-check."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import SpecError
from ..templating import is_template
from .actions import build_action
from .connections import build_connection, build_connection_type
from .context import BuildContext
from .fields import HOOK_EVENTS, TOP_LEVEL_FIELDS
from .flows import build_hooks, build_task
from .graph import find_cycle
from .layout import STROM_DIR, WORKFLOW_DIRS, WORKFLOW_SUFFIXES, is_stroem_file
from .libraries import Imported, import_library, relocated, split_libraries
from .limits import DEFAULT_LIMITS, SpecLimits
from .model import Action, Connection, ConnectionType, Hook, Hooks, Step, Task, Trigger, Workspace
from .names import name_problem
from .notify_rules import build_notify_rules
from .payloads import TaskPayload
from .problems import Problem, Problems
from .reader import Reader, describe
from .triggers import build_trigger
from .yamlnodes import LocDict, parse_yaml

__all__ = ["STROM_DIR", "LoadResult", "find_files", "load_texts", "load_workspace"]

_SECTIONS = ("actions", "tasks", "triggers", "connection_types", "connections")

Document = tuple[str, LocDict]  # a file's path (relative to the workspace) and its top-level mapping
# An entry of a section: its value as written, the mapping that holds it, and the file it is in.
Entry = tuple[Any, LocDict, str]
Sections = dict[str, dict[str, Entry]]  # section -> name -> entry, across all files

# runner/errors.py does not annotate SpecError's constructor; this is how it is called here.
_spec_error: Callable[[Iterable[Problem]], SpecError] = SpecError


@dataclass(frozen=True)
class LoadResult:
    workspace: Workspace | None
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.is_error]

    @property
    def ok(self) -> bool:
        return self.workspace is not None and not self.errors

    def raise_for_errors(self) -> Workspace:
        if self.workspace is None or not self.ok:
            raise _spec_error(self.problems)
        return self.workspace


def find_files(root: Path) -> list[Path]:
    """The workflow files of the workspace at `root`: under `.strom/`, and Strøm's `.workflows/`."""
    found = []
    for folder in WORKFLOW_DIRS:
        base = root / folder
        if base.is_dir():
            found += sorted(p for p in base.rglob("*") if p.suffix in WORKFLOW_SUFFIXES and p.is_file())
    return found


def load_workspace(root: Path | str, limits: SpecLimits = DEFAULT_LIMITS) -> LoadResult:
    """Load the workspace at `root` (the directory that holds `.strom/`)."""
    root = Path(root)
    texts: dict[str, str] = {}
    sizes: dict[str, int] = {}
    problems = Problems()
    for path in find_files(root):
        rel = path.relative_to(root).as_posix()
        try:
            sizes[rel] = path.stat().st_size
            if sizes[rel] <= limits.file_size:
                texts[rel] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.error((rel, 1, 1), "unreadable", f"cannot read {rel}: {exc}", "save the file as UTF-8 text")
    return _load(root, texts, problems, None, limits, sizes)


def load_texts(
    texts: Mapping[str, str],
    root: Path | None = None,
    file_exists: Callable[[str], bool] | None = None,
    limits: SpecLimits = DEFAULT_LIMITS,
    sizes: Mapping[str, int] | None = None,
    workspaces: Iterable[str] = (),
) -> LoadResult:
    """Load from file contents keyed by their path relative to the workspace (e.g. a pushed commit).
    `sizes` may name files left unread because of their size; `workspaces` are the server's, whose actions a
    step may name as `workspace.action`."""
    return _load(root or Path("."), dict(texts), Problems(), file_exists, limits, sizes or {}, frozenset(workspaces))


def _load(
    root: Path,
    texts: dict[str, str],
    problems: Problems,
    file_exists: Callable[[str], bool] | None,
    limits: SpecLimits,
    sizes: Mapping[str, int],
    workspaces: frozenset[str] = frozenset(),
    outside: Mapping[str, Action] | None = None,
) -> LoadResult:
    """`outside`: actions the files may use without defining them (a library's: its workspace's)."""
    texts, libraries = split_libraries(texts)
    outside = outside or {}
    if not texts and not sizes and not problems.items:
        problems.error(
            (STROM_DIR, 1, 1),
            "no-files",
            f"no workflow files found in {STROM_DIR}/ (or Strøm's .workflows/)",
            f"create {STROM_DIR}/pipeline.yaml with a `tasks:` section (see `strom init` in the docs)",
        )
        return LoadResult(None, tuple(problems.items))
    if not _within_size_limits(texts, sizes, limits, problems):
        return LoadResult(None, tuple(problems.sorted()))
    documents: list[Document] = []
    for rel, text in texts.items():
        doc = parse_yaml(text, rel, problems, limits)
        if doc is None:
            continue
        if not isinstance(doc, LocDict):
            problems.error(
                (rel, 1, 1),
                "wrong-type",
                f"a workflow file must be a mapping with actions:, tasks:, ... at the top, got {describe(doc)}",
                "start the file with `tasks:` or `actions:`",
            )
            continue
        Reader(doc, problems, rel).check_keys(TOP_LEVEL_FIELDS)
        _check_mcp_servers(Reader(doc, problems, rel))
        documents.append((rel, doc))
    sections = _merge_sections(documents, problems)
    if not _within_count_limits(sections, limits, problems):
        return LoadResult(None, tuple(problems.sorted()))
    shared = _Libraries(libraries, {name: _defined(files, limits) for name, files in libraries.items()}, limits)
    names = shared.names()
    ctx = BuildContext(
        problems=problems,
        root=root if file_exists is None else None,
        file_exists=file_exists,
        action_names=frozenset(sections["actions"]) | names["actions"] | frozenset(outside),
        task_names=frozenset(sections["tasks"]) | names["tasks"],
        connection_types=frozenset(sections["connection_types"]) | names["connection_types"],
        workspaces=workspaces,
        mcp_servers=frozenset(sections["mcp_servers"]),
    )
    workspace = _build(root, texts, documents, sections, ctx, shared, outside)
    return LoadResult(workspace, tuple(problems.sorted()))


_SHARED = ("actions", "tasks", "connection_types")


def _workflow_files(files: Mapping[str, str]) -> dict[str, str]:
    return {
        path: text
        for path, text in files.items()
        if path.startswith(tuple(f"{d}/" for d in WORKFLOW_DIRS)) and path.endswith(WORKFLOW_SUFFIXES)
    }


def _defined(files: Mapping[str, str], limits: SpecLimits) -> dict[str, set[str]]:
    """The names a library's workflow files define, per section (read again, and checked, when it is imported)."""
    names: dict[str, set[str]] = {section: set() for section in _SHARED}
    for rel, text in _workflow_files(files).items():
        doc = parse_yaml(text, rel, Problems(), limits)
        for section in _SHARED:
            entries = doc.get(section) if isinstance(doc, LocDict) else None
            if isinstance(entries, LocDict):
                names[section].update(str(name) for name in entries)
    return names


class _Libraries(NamedTuple):
    files: Mapping[str, Mapping[str, str]]  # each library's files by path
    defined: Mapping[str, dict[str, set[str]]]  # each library's names per section (`_defined`)
    limits: SpecLimits

    def names(self) -> dict[str, frozenset[str]]:
        """Every library's item names as the workspace uses them (`<library>.<item>`), per section."""
        out: dict[str, set[str]] = {section: set() for section in _SHARED}
        for name, sections in self.defined.items():
            for section, names in sections.items():
                out[section].update(f"{name}.{item}" for item in names)
        return {section: frozenset(names) for section, names in out.items()}


def _import_libraries(libraries: _Libraries, problems: Problems, outside: Mapping[str, Action]) -> Imported:
    """Every library's items, renamed `<library>.<item>`; a library's own problems are the workspace's. Its
    tasks may use the workspace's actions (`outside`), which stay the workspace's."""
    merged = Imported({}, {}, {})
    for name, files in sorted(libraries.files.items()):
        own = Problems()
        workflows = _workflow_files(files)
        result = _load(Path("."), workflows, own, files.__contains__, libraries.limits, {}, outside=outside)
        for problem in result.problems:
            problems.items.append(relocated(problem, name))
        if result.workspace is None:
            continue
        defined = libraries.defined[name]["actions"]
        library = replace(result.workspace, actions={k: a for k, a in result.workspace.actions.items() if k in defined})
        imported = import_library(name, library, files, problems)
        merged.actions.update(imported.actions)
        merged.tasks.update(imported.tasks)
        merged.connection_types.update(imported.connection_types)
    return merged


def _within_size_limits(
    texts: Mapping[str, str], sizes: Mapping[str, int], limits: SpecLimits, problems: Problems
) -> bool:
    """Files too large to parse, and all of them together, are refused before any parser runs."""
    sizes = {**{rel: len(text.encode("utf-8", "surrogateescape")) for rel, text in texts.items()}, **sizes}
    if len(sizes) > limits.files:
        problems.error(
            (STROM_DIR, 1, 1),
            "too-large",
            f"there are more than {limits.files} workflow files",
            "merge or remove some, or raise limits.workflow_files in the server configuration",
        )
        return False
    ok = True
    for rel, size in sorted(sizes.items()):
        if size > limits.file_size:
            problems.error(
                (rel, 1, 1),
                "too-large",
                f"the file is {size} bytes, above the limit of {limits.file_size}",
                "split it, or raise limits.workflow_file_size in the server configuration",
            )
            ok = False
    total = sum(sizes.values())
    if total > limits.total_size:
        problems.error(
            (STROM_DIR, 1, 1),
            "too-large",
            f"the workflow files hold {total} bytes, above the limit of {limits.total_size}",
            "remove some, or raise limits.workflow_total_size in the server configuration",
        )
        ok = False
    return ok


def _check_mcp_servers(r: Reader) -> None:
    """`mcp_servers: {name: {command: ..., args: [...], env: {...}} | {url: ..., headers: {...}}}` (agent tools)."""
    servers = r.mapping("mcp_servers", "{ files: { command: mcp-files, args: [--root, .] } }")
    if servers is None:
        return
    for name, server in servers.items():
        where = f"{r.what}: mcp_servers.{name}"
        if not isinstance(server, LocDict):
            r.problems.error(servers.at(name), "wrong-type", f"{where} must be a mapping", "give `command:` or `url:`")
            continue
        sub = Reader(server, r.problems, where)
        sub.check_keys({"command", "args", "env", "url", "headers", "description"})
        if sub.has("command") == sub.has("url"):
            sub.error(None, "missing-field", "an MCP server has `command` (stdio) or `url` (streamable HTTP)")
        sub.string("command", "mcp-files")
        sub.string_list("args", "[--root, .]")
        sub.scalar_map("env")
        sub.template("url", '"https://mcp.example.com/mcp"')
        sub.scalar_map("headers", '{ Authorization: "Bearer {{ secret.mcp_token }}" }')


def _within_count_limits(sections: Sections, limits: SpecLimits, problems: Problems) -> bool:
    """At most `limits.tasks` tasks and `limits.steps` steps; the first one past a limit is named."""
    steps = 0
    for index, (name, (data, parent, _)) in enumerate(sections["tasks"].items()):
        flow = data.get("flow") if isinstance(data, dict) else None
        steps += len(flow) if isinstance(flow, dict) else 0
        for count, limit, what, setting in (
            (index + 1, limits.tasks, "tasks", "limits.tasks"),
            (steps, limits.steps, "steps", "limits.steps"),
        ):
            if count > limit:
                problems.error(
                    parent.key_at(name),
                    "too-many",
                    f"the workspace defines more than {limit} {what} (task {name!r} is past the limit)",
                    f"remove some, or raise {setting} in the server configuration",
                )
                return False
    return True


def _merge_sections(documents: list[Document], problems: Problems) -> Sections:
    """Each section's entries across files; a name defined twice is reported with both places."""
    merged: Sections = {section: {} for section in _SECTIONS}
    merged["secrets"], merged["mcp_servers"] = {}, {}
    for rel, doc in documents:
        for section in _SECTIONS + ("secrets", "mcp_servers"):
            value = doc.get(section)
            if value is None:
                continue
            if not isinstance(value, LocDict):
                problems.error(
                    doc.at(section),
                    "wrong-type",
                    f"`{section}` must be a mapping of names, got {describe(value)}",
                    f"write it like `{section}:` followed by indented `name:` entries",
                )
                continue
            singular = section.rstrip("s").replace("_", " ")
            for name in value:
                if name in merged[section]:
                    _, first_doc, first_rel = merged[section][name]
                    first = first_doc.key_at(name)
                    if is_stroem_file(rel) and is_stroem_file(first_rel):  # Strøm's rule for its own files
                        problems.warning(
                            value.key_at(name),
                            "duplicate-name",
                            f"{singular} {name!r} is also defined at {first[0]}:{first[1]}:{first[2]}; "
                            "the later file wins (as in Strøm)",
                            "rename one of them or remove the duplicate",
                        )
                        merged[section][name] = (value[name], value, rel)
                        continue
                    problems.error(
                        value.key_at(name),
                        "duplicate-name",
                        f"{singular} {name!r} is already defined at {first[0]}:{first[1]}:{first[2]}",
                        "rename one of them or remove the duplicate",
                    )
                    continue
                merged[section][name] = (value[name], value, rel)
    return merged


def _build(
    root: Path,
    texts: Mapping[str, str],
    documents: list[Document],
    sections: Sections,
    ctx: BuildContext,
    libraries: _Libraries,
    outside: Mapping[str, Action],
) -> Workspace:
    problems = ctx.problems
    connection_types: dict[str, ConnectionType] = {}
    for name, (data, parent, _) in sections["connection_types"].items():
        if _mapping_entry(parent, name, data, "connection type", problems):
            connection_types[name] = build_connection_type(data, name, ctx)
    own_actions: dict[str, Action] = {}
    for name, (data, parent, _) in sections["actions"].items():
        if _named_entry(parent, name, data, "action", problems):
            action = build_action(data, name, ctx, f"action {name!r}")
            if action is not None:
                own_actions[name] = action
    imported = (
        _import_libraries(libraries, problems, {**outside, **own_actions}) if libraries.files else Imported({}, {}, {})
    )
    connection_types.update(imported.connection_types)
    connections: dict[str, Connection] = {}
    for name, (data, parent, _) in sections["connections"].items():
        if _mapping_entry(parent, name, data, "connection", problems):
            connections[name] = build_connection(data, name, ctx, connection_types)
    actions: dict[str, Action] = {**outside, **imported.actions, **own_actions}
    tasks: dict[str, Task] = dict(imported.tasks)
    for name, (data, parent, _) in sections["tasks"].items():
        if _named_entry(parent, name, data, "task", problems):
            task = build_task(data, name, ctx, actions)
            if task is not None:
                tasks[name] = task
    triggers: dict[str, Trigger] = {}
    for name, (data, parent, _) in sections["triggers"].items():
        if _named_entry(parent, name, data, "trigger", problems):
            trigger = build_trigger(data, name, ctx)
            if trigger is not None:
                triggers[name] = trigger
    secrets = _secrets(sections["secrets"], problems)
    mcp_servers = {  # plain JSON values (checked by _check_mcp_servers); templates render with the step
        name: json.loads(json.dumps(data, default=str))
        for name, (data, _, _) in sections["mcp_servers"].items()
        if isinstance(data, dict)
    }
    hooks = _workspace_hooks(documents, ctx, actions)
    notify = tuple(rule for rel, doc in documents for rule in build_notify_rules(doc, "notify", ctx, rel) or ())
    _check_task_calls(tasks, sections["tasks"], problems)
    return Workspace(
        root=root,
        files=tuple(texts),
        actions=actions,
        tasks=tasks,
        triggers=triggers,
        secrets=secrets,
        connection_types=connection_types,
        connections=connections,
        mcp_servers=mcp_servers,
        hooks=hooks,
        notify=notify,
    )


def _mapping_entry(parent: LocDict, name: str, data: Any, kind: str, problems: Problems) -> bool:
    if not isinstance(data, dict):
        problems.error(
            parent.at(name),
            "wrong-type",
            f"{kind} {name!r} must be a mapping, got {describe(data)}",
            f"write its fields indented under `{name}:`",
        )
        return False
    return True


def _named_entry(parent: LocDict, name: str, data: Any, kind: str, problems: Problems) -> bool:
    problem = name_problem(name, kind)
    if problem:
        problems.error(parent.key_at(name), "bad-name", problem, f"rename the {kind}")
        return False
    return _mapping_entry(parent, name, data, kind, problems)


def _secrets(entries: dict[str, Entry], problems: Problems) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (value, parent, _) in entries.items():
        secret = _secret(name, name, value, parent, problems, 0)
        if secret is not None:
            out[name] = secret
    return out


MAX_SECRET_DEPTH = 4


def _secret(name: str, key: str, value: Any, parent: LocDict, problems: Problems, depth: int) -> Any:
    """A secret's reference, or a mapping of them (`db: { user: ..., pass: ... }`, read as `secret.db.user`);
    `name` is its dotted name, `key` its key in `parent`."""
    if isinstance(value, LocDict) and value and depth < MAX_SECRET_DEPTH:
        inner = {k: _secret(f"{name}.{k}", k, item, value, problems, depth + 1) for k, item in value.items()}
        return {k: item for k, item in inner.items() if item is not None}
    if isinstance(value, (dict, list)) or value is None:
        problems.error(
            parent.at(key),
            "wrong-type",
            f"secret {name!r} must be a string reference, or a mapping of them (at most {MAX_SECRET_DEPTH} deep)",
            f'write it like `{key}: "{{{{ env.{key.upper()} }}}}"`',
        )
        return None
    text = str(value)
    if not is_template(text):
        problems.warning(
            parent.key_at(key),
            "literal-secret",
            f"secret {name!r} has its value written in the repository",
            f'read it from the environment instead: `{key}: "{{{{ env.{key} }}}}"`',
        )
    else:
        Reader(parent, problems, f"secret {name!r}").check_template(text, parent.at(key), name)
    return text


def _workspace_hooks(documents: list[Document], ctx: BuildContext, actions: dict[str, Action]) -> Hooks:
    merged: dict[str, tuple[Hook, ...]] = dict.fromkeys(HOOK_EVENTS, ())
    for rel, doc in documents:
        hooks = build_hooks(doc, ctx, actions, f"{rel}")
        for event in HOOK_EVENTS:
            merged[event] += hooks.for_event(event)
    return Hooks(**merged)


def _calls(step: Step) -> tuple[str, ...]:
    """The tasks a step runs as children: its task action's one, or those its pattern matches."""
    payload = step.action.payload
    if isinstance(payload, TaskPayload) and payload.workspace is None:  # another workspace's: no cycle here
        return (payload.task,) if payload.task else tuple(step.for_each or ())
    return ()


def _check_task_calls(tasks: dict[str, Task], entries: dict[str, Entry], problems: Problems) -> None:
    calls = {name: sorted({called for s in task.flow.values() for called in _calls(s)}) for name, task in tasks.items()}
    cycle = find_cycle(calls)
    if cycle and len(cycle) > 2:
        _data, parent, _ = entries[cycle[0]]
        problems.warning(
            parent.key_at(cycle[0]),
            "task-cycle",
            f"tasks call each other in a loop: {' -> '.join(cycle)}",
            "a run stops at the nesting limit of 10 unless a `when` condition ends the recursion",
        )
