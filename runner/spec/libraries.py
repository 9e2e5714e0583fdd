"""Libraries (docs/libraries.md): actions, tasks and connection types shared by every workspace of a server,
from a folder or a git repository at a pinned ref, named `library.item`.

The server adds each library's files to a workspace's definitions under `_libraries/<name>/` (its workflow
files, and the files its script actions name as `source`), so a library is part of what a run's definitions
are, hashed and stored with them. Loading then imports each library: every item is renamed `<name>.<item>`,
references between its own items are renamed with them (a name it does not define is left alone, so a library
task may call a workspace's action), and a script action's `source` file becomes its script, run as written:
a step of a library action runs in the caller's workspace, where the library's other files are not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .model import Action, ConnectionType, Hook, Hooks, InputField, Location, Step, Task, Workspace
from .payloads import ScriptPayload, TaskPayload
from .problems import Problem, Problems

__all__ = ["LIBRARY_DIR", "Imported", "import_library", "library_files", "relocated", "split_libraries"]

LIBRARY_DIR = "_libraries"


def library_files(name: str, texts: Mapping[str, str]) -> dict[str, str]:
    """`texts` (a library's files by path) as they travel in a workspace's definitions."""
    return {f"{LIBRARY_DIR}/{name}/{path}": text for path, text in texts.items()}


def split_libraries(texts: Mapping[str, str]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(the workspace's own files, each library's files by name and path)."""
    own: dict[str, str] = {}
    libraries: dict[str, dict[str, str]] = {}
    for path, text in texts.items():
        if path.startswith(LIBRARY_DIR + "/"):
            name, _, rest = path[len(LIBRARY_DIR) + 1 :].partition("/")
            if name and rest:
                libraries.setdefault(name, {})[rest] = text
                continue
        own[path] = text
    return own, libraries


@dataclass(frozen=True)
class Imported:
    actions: dict[str, Action]
    tasks: dict[str, Task]
    connection_types: dict[str, ConnectionType]


class _Renamer:
    def __init__(self, name: str, library: Workspace, files: Mapping[str, str], problems: Problems):
        self.prefix = name + "."
        self.name = name
        self.actions, self.tasks, self.types = set(library.actions), set(library.tasks), set(library.connection_types)
        self.files = files
        self.problems = problems
        self.done: dict[str, Action] = {}

    def located(self, location: Location) -> Location:
        return Location(f"{LIBRARY_DIR}/{self.name}/{location.file}", location.line, location.column)

    def field(self, field: InputField) -> InputField:
        kind = self.prefix + field.type if field.type in self.types else field.type
        return replace(field, type=kind)

    def fields(self, fields: Mapping[str, InputField]) -> dict[str, InputField]:
        return {key: self.field(value) for key, value in fields.items()}

    def action(self, action: Action, named: bool) -> Action:
        payload: Any = action.payload
        if isinstance(payload, ScriptPayload) and payload.source is not None:
            text = self.files.get(payload.source)
            if text is None:
                self.problems.error(
                    self.located(action.location),
                    "library-source",
                    f"library {self.name!r}: the source file {payload.source!r} of action {action.name!r} is not "
                    "a plain path to a file of the library",
                    "name a file of the library (without templates) as `source`, or write the script inline",
                )
                text = ""
            payload = replace(payload, script=text, source=None, literal=True)
        elif isinstance(payload, TaskPayload) and payload.task in self.tasks:
            payload = replace(payload, task=self.prefix + payload.task)
        return replace(
            action,
            name=self.prefix + action.name if named else action.name,
            payload=payload,
            input=self.fields(action.input),
            location=self.located(action.location),
        )

    def named_action(self, name: str, action: Action) -> Action:
        if name not in self.done:
            self.done[name] = self.action(action, named=True)
        return self.done[name]

    def step(self, step: Step) -> Step:
        if step.action_ref is not None and step.action_ref in self.actions:
            ref: str | None = self.prefix + step.action_ref
            action = self.named_action(step.action_ref, step.action)
        else:
            ref, action = step.action_ref, step.action if step.action_ref else self.action(step.action, named=False)
        return replace(step, action=action, action_ref=ref, location=self.located(step.location))

    def hook(self, hook: Hook) -> Hook:
        if hook.action_ref in self.actions:
            return replace(
                hook,
                action=self.named_action(hook.action_ref, hook.action),
                action_ref=self.prefix + hook.action_ref,
                location=self.located(hook.location),
            )
        return hook

    def task(self, task: Task) -> Task:
        hooks = Hooks(
            on_success=tuple(map(self.hook, task.hooks.on_success)),
            on_error=tuple(map(self.hook, task.hooks.on_error)),
            on_cancel=tuple(map(self.hook, task.hooks.on_cancel)),
            on_suspended=tuple(map(self.hook, task.hooks.on_suspended)),
        )
        return replace(
            task,
            name=self.prefix + task.name,
            flow={key: self.step(step) for key, step in task.flow.items()},
            input=self.fields(task.input),
            hooks=hooks,
            location=self.located(task.location),
        )


def import_library(name: str, library: Workspace, files: Mapping[str, str], problems: Problems) -> Imported:
    """The library's actions, tasks and connection types, renamed `<name>.<item>` (see the module's doc)."""
    renamer = _Renamer(name, library, files, problems)
    return Imported(
        actions={f"{name}.{key}": renamer.named_action(key, action) for key, action in library.actions.items()},
        tasks={f"{name}.{key}": renamer.task(task) for key, task in library.tasks.items()},
        connection_types={
            f"{name}.{key}": replace(
                kind,
                name=f"{name}.{key}",
                properties=renamer.fields(kind.properties),
                location=renamer.located(kind.location),
            )
            for key, kind in library.connection_types.items()
        },
    )


def relocated(problem: Problem, name: str) -> Problem:
    """A problem of a library's own files, naming where the file travels in the definitions."""
    return replace(problem, file=f"{LIBRARY_DIR}/{name}/{problem.file}")
