from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import click
from rich.text import Text

from ..engine.status import RunStatus
from ..errors import InputError
from ..executors import LocalExecutor, LocalSettings
from ..gitinfo import git_context
from ..localrun import Approvals, Display, LocalRunner
from ..secrets import SecretsFileError, read_secrets_file, resolve_workspace_secrets, secrets_from_env
from ..spec import ABSENT
from ..spec.inputs import parse_pairs
from ..suggestions import suggest
from .common import console, err_console, load_or_exit, local_config, resolve_workspace

__all__ = ["run_command"]


def _inputs(pairs: tuple[str, ...], raw_json: str | None) -> dict:
    values: dict = {}
    if raw_json:
        text = raw_json
        if raw_json.startswith("@"):
            try:
                text = Path(raw_json[1:]).read_text(encoding="utf-8")
            except OSError as exc:
                raise click.BadParameter(f"cannot read {raw_json[1:]}: {exc.strerror}", param_hint="--input") from exc
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--input") from exc
        if not isinstance(loaded, dict):
            raise click.BadParameter("must be a JSON object of input names to values", param_hint="--input")
        values.update(loaded)
    try:
        values.update(parse_pairs(pairs))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="-i") from exc
    return values


def _rejections(values: tuple[str, ...]) -> dict[str, str | None]:
    out = {}
    for value in values:
        step, _, reason = value.partition("=")
        out[step] = reason or None
    return out


def _secrets(ws, files: tuple[str, ...]) -> dict[str, str]:
    provided = secrets_from_env()
    for path in files:
        try:
            provided.update(read_secrets_file(Path(path)))
        except SecretsFileError as exc:
            raise click.BadParameter(str(exc), param_hint="--secrets") from exc
    # on your own machine, `ref+file://` reads your files, as `vals` does
    secrets, problems = resolve_workspace_secrets(ws.secrets, provided, vals_files=("/",))
    for name, problem in problems.items():
        err_console.print(Text(f"! secret {name} is not available: {problem}", style="yellow"))
    return secrets


@click.command("run")
@click.argument("task")
@click.option(
    "-i",
    "--input",
    "pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="An input value; repeat for more (a repeated key makes a list).",
)
@click.option(
    "--input-json", "--inputs", "raw_json", metavar="JSON|@FILE", help="Inputs as a JSON object, or @file.json."
)
@click.option("-C", "--workspace", "path", metavar="PATH", help="The workspace directory (default: here).")
@click.option(
    "-j", "--jobs", default=4, show_default=True, type=click.IntRange(1, 256), help="How many steps may run at once."
)
@click.option(
    "--secrets",
    "secret_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A file of secrets (YAML, JSON or NAME=value lines). STROM_SECRET_<NAME> variables also count.",
)
@click.option(
    "--approve", multiple=True, metavar="STEP", help="Approve this approval step without asking ('*' for all)."
)
@click.option("--reject", multiple=True, metavar="STEP[=REASON]", help="Reject this approval step without asking.")
@click.option(
    "--sandbox",
    type=click.Choice(["auto", "bwrap", "copy"]),
    default="auto",
    show_default=True,
    help="How steps see the workspace read-only: bubblewrap, or a throw-away copy.",
)
@click.option("-q", "--quiet", is_flag=True, help="Do not print step output, only status changes and the summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the final run state as JSON on stdout.")
def run_command(task, pairs, raw_json, path, jobs, secret_files, approve, reject, sandbox, quiet, as_json):
    """Run TASK of the workspace here, exactly as the service would.

    Independent steps run in parallel; each line of output is prefixed with its step.
    Inputs are checked before anything runs. The exit status is 0 only if the task
    succeeded.

    \b
    Examples:
      strom run hello
      strom run deploy -i env=staging -i version=1.4.2
      strom run deploy --input-json '{"env": "prod"}' --approve approve
    """
    root = resolve_workspace(path)
    ws = load_or_exit(root)
    if task not in ws.tasks:
        hint = suggest(task, ws.tasks)
        known = ", ".join(sorted(ws.tasks)) or "(none)"
        raise click.UsageError(f"no task {task!r} in {root}" + (f"; {hint}" if hint else "") + f"\nTasks: {known}")
    values = _inputs(pairs, raw_json)
    secrets = _secrets(ws, secret_files)
    display = Display(err_console if as_json else console, quiet=quiet)
    approvals = Approvals(
        set(approve), _rejections(reject), interactive=sys.stdin.isatty(), prompt=display.prompt_approval
    )
    steps = LocalExecutor(LocalSettings(sandbox=sandbox, own_uids=False))  # your own steps run as you
    runner = LocalRunner(
        ws,
        root,
        display=display,
        approvals=approvals,
        secrets=secrets,
        jobs=jobs,
        local_executor=steps,
        agent_executor=_agent_executor(root, steps),
        git=git_context(root),
    )
    previous = signal.signal(signal.SIGINT, lambda *_: runner.interrupt())
    try:
        outcome = runner.run(task, values)
    except InputError as exc:
        display.stop()
        err_console.print(Text(f"✗ {exc}", style="red"))
        err_console.print(Text(_input_help(ws.tasks[task]), style="bright_black"))
        raise SystemExit(2) from exc
    finally:
        signal.signal(signal.SIGINT, previous)
        display.stop()
    display.summary(outcome.state, outcome.runs)
    if as_json:
        click.echo(json.dumps(outcome.state.to_dict(), indent=2, default=str))
    if outcome.interrupted:
        raise SystemExit(130)
    raise SystemExit(0 if outcome.state.status is RunStatus.SUCCEEDED else 1)


def _input_help(task) -> str:
    if not task.input:
        return f"task {task.name} takes no inputs"
    lines = [f"task {task.name} takes:"]
    for name, field in task.input.items():
        extra = []
        if field.required:
            extra.append("required")
        if field.options:
            extra.append("one of " + ", ".join(map(str, field.options)))
        if field.default is not ABSENT:
            extra.append(f"default {field.default!r}")
        lines.append(f"  -i {name}=<{field.type}>" + (f"   ({'; '.join(extra)})" if extra else ""))
    return "\n".join(lines)


def _agent_executor(root: Path, steps: LocalExecutor):
    """Agent steps run here with the providers of a `strom.yaml` beside .strom/ (keys from your environment), their
    stdio MCP servers in the sandbox as on a worker; questions and task tools need the service."""
    config = local_config(root)
    if config is None or not config.agent_providers:
        return None
    from ..executors.agent import AgentExecutor

    return AgentExecutor(config.agent_providers, mcp_launch=steps.mcp_launch)
