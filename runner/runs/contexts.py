"""RunContexts for runs stored in Redis: their definitions, task and secrets."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from ..engine import HOOK_TASK_PREFIX, HookCall, RunContext, hook_task
from ..engine.state import RunState
from ..secrets import resolve_workspace_secrets
from ..spec.adhoc import exec_task, is_exec_task
from ..templating import WithheldSecrets

if TYPE_CHECKING:
    from ..spec.model import Workspace
    from .service import Service

__all__ = ["Contexts"]


class Contexts:
    def __init__(self, service: Service):
        self.service = service
        self._secrets: dict[tuple[str, str | None], dict[str, str]] = {}
        self._lock = threading.Lock()

    def workspace(self, state: RunState) -> Workspace:
        if state.definitions is None:
            raise KeyError(f"run {state.id} names no definitions")
        return self.service.definitions.workspace(state.definitions, state.snapshot or ".")

    def secrets(self, name: str, definitions: str | None, workspace: Workspace) -> dict[str, str]:
        """The secrets of workspace `name` with `definitions`: the server's (those scoped to it), and the
        references its definitions declare."""
        key = (name, definitions)
        with self._lock:
            cached = self._secrets.get(key)
        if cached is None:
            config = self.service.config
            environ = {name: os.environ[name] for name in config.expose_env if name in os.environ}
            cached, _ = resolve_workspace_secrets(
                workspace.secrets, config.secrets_for(name), environ, config.vals_files
            )
            with self._lock:
                self._secrets[key] = cached
        return cached

    def for_run(self, state: RunState, workspace: Workspace) -> dict[str, str]:
        """The secrets a run may see: none for an untrusted pull request unless its workspace allows them."""
        if not state.trusted:
            config = self.service.config.workspaces.get(state.workspace)
            if config is None or not config.untrusted_secrets:
                return WithheldSecrets(
                    "runs of untrusted pull requests get no secrets (the workspace's "
                    "`pull_requests: { secrets: true }` allows them)"
                )
        return self.secrets(state.workspace, state.definitions, workspace)

    def for_state(self, state: RunState) -> RunContext:
        workspace = self.workspace(state)
        if state.task.startswith(HOOK_TASK_PREFIX):
            ref = state.task[len(HOOK_TASK_PREFIX) :]
            task = hook_task(HookCall(ref, workspace.actions[ref], state.inputs), workspace)
        elif is_exec_task(state.task):
            task = exec_task(state.inputs)
        else:
            task = workspace.tasks[state.task]
        config = self.service.config.workspaces.get(state.workspace)
        return RunContext(
            workspace,
            task,
            self.for_run(state, workspace),
            job_url=self.service.config.run_url(state.id),
            untrusted_network=bool(config and config.untrusted_network),
            task_state=lambda: self.service.task_states.latest(state.workspace, state.task),
        )
