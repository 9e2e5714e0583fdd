"""The `strom` command. Commands parse arguments, call the library and print.

Subcommands are imported when used, so `strom worker` does not load what `strom run` needs.
"""

from __future__ import annotations

import importlib

import click

from .. import __version__

__all__ = ["main"]

COMMANDS = {
    "init": ("init", "init_command"),
    "validate": ("validate", "validate_command"),
    "schema": ("schema", "schema_command"),
    "tasks": ("tasks", "tasks_command"),
    "run": ("run", "run_command"),
    "up": ("service", "up_command"),
    "web": ("service", "web_command"),
    "worker": ("service", "worker_command"),
    "scheduler": ("service", "scheduler_command"),
    "trigger": ("remote", "trigger_command"),
    "exec": ("remote", "exec_command"),
    "runs": ("remote", "runs_command"),
    "events": ("remote", "events_command"),
    "status": ("remote", "status_command"),
    "logs": ("remote", "logs_command"),
    "cancel": ("remote", "cancel_command"),
    "rerun": ("remote", "rerun_command"),
    "approve": ("remote", "approve_command"),
    "reject": ("remote", "reject_command"),
    "answer": ("remote", "answer_command"),
    "pause": ("remote", "pause_command"),
    "resume": ("remote", "resume_command"),
    "state": ("state", "state_command"),
    "artifacts": ("state", "artifacts_command"),
    "notify": ("notify", "notify_command"),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="strom")
def main() -> None:
    """Strom: GitOps pipelines kept in your repository under .strom/.

    \b
    Start here:
      strom init              write a first .strom/pipeline.yaml
      strom validate          check every .strom/*.yaml, with file:line:column
      strom run TASK          run a task here, exactly as the service would
      strom up                start the service here (Redis, web, worker, scheduler)

    \b
    With a server (--server/STROM_URL, --token/STROM_TOKEN):
      strom trigger TASK -f   start a task and follow its logs
      strom runs | status RUN | logs RUN [-f] | cancel RUN | approve RUN STEP
      strom answer RUN STEP TEXT  answer the question an agent step asked
      strom events [ID]       webhooks and pushes received, and what became of them
    """
