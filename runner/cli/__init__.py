"""The `strom` command. Commands parse arguments, call the library and print."""
from __future__ import annotations

import click

from .. import __version__
from .init import init_command
from .run import run_command
from .schema import schema_command
from .tasks import tasks_command
from .validate import validate_command

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="strom")
def main() -> None:
    """Strom: GitOps pipelines kept in your repository under .strom/.

    \b
    Start here:
      strom init              write a first .strom/pipeline.yaml
      strom validate          check every .strom/*.yaml, with file:line:column
      strom run TASK          run a task here, exactly as the service would
    """


main.add_command(validate_command)
main.add_command(schema_command)
main.add_command(run_command)
main.add_command(tasks_command)
main.add_command(init_command)
