from __future__ import annotations

from pathlib import Path

import click

from ..spec import STROM_DIR

__all__ = ["STARTER", "init_command"]

STARTER = """\
# A first Strom pipeline. Run it with:  strom run hello
# Reference: docs/workflow-format.md
tasks:
  hello:
    description: Say hello, then show what the workspace looks like.
    input:
      name: { type: string, default: world }
    flow:
      greet:
        type: script
        script: |
          echo "Hello, {{ input.name }}!"
          echo 'OUTPUT: {"greeted": "{{ input.name }}"}'
      look:
        type: script
        depends_on: [greet]
        script: |
          echo "Greeted {{ greet.output.greeted }}; the workspace (read-only) holds:"
          ls /workspace 2>/dev/null || ls "$STROM_WORKSPACE"
"""


@click.command("init")
@click.argument("path", required=False, default=".")
@click.option("--force", is_flag=True, help="Overwrite an existing .strom/pipeline.yaml.")
def init_command(path: str, force: bool) -> None:
    """Write a starter .strom/pipeline.yaml into PATH (default: here)."""
    target = Path(path) / STROM_DIR / "pipeline.yaml"
    if target.exists() and not force:
        raise click.ClickException(f"{target} already exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(STARTER, encoding="utf-8")
    click.echo(f"wrote {target}\nnext: strom run hello")
