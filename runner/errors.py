"""Every error Strom raises on purpose derives from `StromError`.

    StromError
     ├── SpecError          .strom/ definitions are invalid (carries every problem found)
     ├── TemplateError      a template failed to compile or render (names file, step, field)
     ├── InputError         task inputs do not match the task's input schema (one message per field)
     ├── EngineError        an event is illegal in the job's current state; the state is unchanged
     └── ExecutorError      a step could not be executed
          ├── RunnerUnavailable   the runner or toolchain a step needs is missing here
          └── StepSetupError      preparing the step failed (dependencies, workspace copy)

Each class carries `status_hint`, the HTTP status a web view should answer with.
"""

from __future__ import annotations

__all__ = [
    "EngineError",
    "ExecutorError",
    "InputError",
    "RunnerUnavailable",
    "SpecError",
    "StepSetupError",
    "StromError",
    "TemplateError",
]


class StromError(Exception):
    status_hint = 500


class SpecError(StromError):
    """Raised with the full list of problems of a workspace, never just the first."""

    status_hint = 422

    def __init__(self, problems):
        self.problems = list(problems)
        errors = [p for p in self.problems if p.is_error]
        lines = [p.format() for p in errors]
        super().__init__(f"{len(errors)} problem(s) in .strom definitions:\n" + "\n".join(lines))


class TemplateError(StromError):
    status_hint = 422

    def __init__(self, message: str, where: str = ""):
        self.where = where
        self.detail = message
        super().__init__(f"template error in {where}: {message}" if where else message)


class InputError(StromError):
    """`errors` maps an input name to what is wrong with it."""

    status_hint = 422

    def __init__(self, task: str, errors: dict[str, str]):
        self.task = task
        self.errors = dict(errors)
        listing = "\n".join(f"  {name}: {msg}" for name, msg in self.errors.items())
        super().__init__(f"invalid input for task {task!r}:\n{listing}")


class EngineError(StromError):
    status_hint = 409


class ExecutorError(StromError):
    pass


class RunnerUnavailable(ExecutorError):
    status_hint = 503


class StepSetupError(ExecutorError):
    pass
