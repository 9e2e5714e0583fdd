from __future__ import annotations

import json

import click

from ..spec.schema import json_schema

__all__ = ["schema_command"]


@click.command("schema")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write to a file instead of stdout."
)
def schema_command(output: str | None) -> None:
    """Print the JSON Schema of .strom/*.yaml files, for editor completion.

    \b
    VS Code (YAML extension), in settings.json:
      "yaml.schemas": { "strom-schema.json": ".strom/*.yaml" }
    """
    text = json.dumps(json_schema(), indent=2) + "\n"
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
