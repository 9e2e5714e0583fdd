"""Commands that talk to a Strom server: trigger, exec, runs, status, logs, cancel, rerun, approve, reject, answer."""

from __future__ import annotations

import json
import textwrap
import time

import click
from rich.text import Text

from ..client import ApiError, Client
from ..durations import format_duration
from ..spec.inputs import parse_pairs
from ..spec.patterns import is_task_pattern
from .common import console, err_console

__all__ = ["REMOTE_COMMANDS", "follow_run"]

_MARK = {
    "done": ("✓", "green"),
    "ignored": ("↷", "bright_black"),
    "succeeded": ("✓", "green"),
    "failed": ("✗", "red"),
    "timed_out": ("⏱", "red"),
    "cancelled": ("■", "yellow"),
    "skipped": ("↷", "bright_black"),
    "waiting": ("⏸", "yellow"),
    "running": ("▶", "cyan"),
    "queued": ("…", "bright_black"),
    "pending": ("·", "bright_black"),
}


# Inside a step of a task with `api: true`, the run's own workspace (STROM_WORKSPACE_NAME) is the default.
_WORKSPACE: dict = {"default": "local", "envvar": "STROM_WORKSPACE_NAME", "show_default": True}


def _server_options(f):
    f = click.option("--token", envvar="STROM_TOKEN", metavar="TOKEN", help="API token (STROM_TOKEN).")(f)
    f = click.option(
        "--server",
        envvar="STROM_URL",
        default="http://127.0.0.1:8080",
        show_default=True,
        metavar="URL",
        help="The Strom server (STROM_URL).",
    )(f)
    return f


def _client(server: str, token: str | None) -> Client:
    return Client(server, token)


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        raise click.ClickException(str(exc)) from exc


def _mark(status: str) -> Text:
    mark, style = _MARK.get(status, ("?", ""))
    return Text(f"{mark} {status}", style=style)


def follow_run(client: Client, run_id: str) -> int:
    """Print the run's lines as they come, then its steps; the exit status is 0 only on success."""
    try:
        for event, data in client.follow(run_id):
            if event == "line":
                style = "red3" if data["stream"] == "stderr" else ("bright_black" if data["stream"] == "strom" else "")
                console.print(Text.assemble((f"{data['step']:<14} │ ", "cyan"), (data["text"], style)))
    except ApiError as exc:
        raise click.ClickException(str(exc)) from exc
    run = _call(client.run, run_id)
    while run["status"] in ("queued", "running", "waiting"):  # the stream ended with the step, not the run
        time.sleep(0.2)
        run = _call(client.run, run_id)
    _print_run(run)
    return 0 if run["status"] == "succeeded" else 1


def _approval_summary(status: str, approval: dict) -> str:
    """Who decided an approval step, or who may: "approved by alice (12:03:04), bob (12:05:10)"."""
    decisions = approval.get("decisions") or []
    said = [
        f"{'approved' if d['approved'] else 'rejected'} by {d['by']} ({(d.get('at') or '')[11:19]} UTC)"
        + (f": {d['reason']}" if d.get("reason") else "")
        for d in decisions
    ]
    if status == "waiting" and approval.get("question"):
        return "; ".join([f"asks: {approval.get('message') or ''} (answer with strom answer)", *said])
    if status == "waiting":
        who = ", ".join(approval.get("approvers") or []) or "anyone allowed to approve"
        ask = f"waiting: {approval.get('message') or ''} (needs {approval.get('required', 1)} of {who})"
        return "; ".join([ask, *said])
    return "; ".join(said) or status


def _print_run(run: dict) -> None:
    console.print(
        Text.assemble(
            ("Run ", "bold"),
            run["id"],
            "  ",
            ("Task ", "bold"),
            run["task"],
            "  ",
            _mark(run["status"]),
            f"  {format_duration(run.get('duration'))}",
        )
    )
    for step in run.get("steps", []):
        if step["index"] is not None:
            continue
        detail = step.get("error") or step.get("skip_reason") or ""
        if not detail and step.get("output") is not None:
            detail = "→ " + json.dumps(step["output"], separators=(",", ":"))[:70]
        console.print(
            Text.assemble(
                f"  {step['name']:<20} ",
                _mark(step["status"]),
                f"  {format_duration(step.get('duration')):>7}  ",
                detail,
            )
        )
        if step.get("approval"):
            console.print(
                Text(f"  {'':<20} {_approval_summary(step['status'], step['approval'])}", style="bright_black")
            )
        if step.get("summary"):
            console.print(Text(textwrap.indent(step["summary"], "    │ ", lambda _: True)))
    if run.get("error") and run["status"] != "succeeded":
        console.print(Text(f"Error: {run['error']}", style="red"))
    console.print(Text(run["url"], style="bright_black"))


@click.command("trigger")
@click.argument("task")
@click.option("-i", "--input", "pairs", multiple=True, metavar="KEY=VALUE", help="An input value; repeat for more.")
@click.option("--input-json", "raw_json", metavar="JSON", help="Inputs as a JSON object.")
@click.option("-w", "--workspace", **_WORKSPACE)
@click.option("-f", "--follow", is_flag=True, help="Follow the run's logs until it ends (exit status follows it).")
@_server_options
def trigger_command(task, pairs, raw_json, workspace, follow, server, token):
    """Start TASK on the server and print the run id.

    TASK may be a pattern, to start every matching task (a batch): globs and ^regex$, comma-separated,
    e.g. 'deploy-*' or 'deploy-eu,deploy-us'. Each task gets the inputs it declares."""
    inputs = json.loads(raw_json) if raw_json else {}
    try:
        inputs.update(parse_pairs(pairs))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="-i") from exc
    client = _client(server, token)
    if is_task_pattern(task):
        raise SystemExit(_batch(client, workspace, task, inputs, follow))
    run = _call(client.execute, workspace, task, inputs)
    if not follow:
        console.print(Text.assemble(run["id"], "  ", _mark(run["status"]), f"  {run['url']}"))
        return
    raise SystemExit(follow_run(client, run["id"]))


def _batch(client: Client, workspace: str, pattern: str, inputs: dict, follow: bool) -> int:
    """Start a batch; with `follow`, wait for its runs. 0 only if every matching task started (and succeeded)."""
    started = _call(client.batch, workspace, pattern, inputs)
    runs = started["runs"]
    for task, why in started["refused"].items():
        err_console.print(Text(f"{task}: not started: {why}", style="red"))
    if follow:
        while any(run["status"] in ("queued", "running", "waiting") for run in runs):
            time.sleep(0.3)
            runs = [_call(client.run, run["id"]) for run in runs]
    for run in runs:
        console.print(Text.assemble(f"{run['id']}  {run['task']:<20} ", _mark(run["status"]), f"  {run['url']}"))
    if started["refused"] or (follow and any(run["status"] != "succeeded" for run in runs)):
        return 1
    return 0


@click.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("--script", "script_file", type=click.File("r"), help="Run this shell script instead of COMMAND.")
@click.option("-w", "--workspace", **_WORKSPACE)
@click.option("--ref", metavar="REF", help="A branch or full commit name (default: the default branch's head).")
@click.option("--name", default="adhoc", show_default=True, help="Shown in history as `exec: NAME`.")
@click.option("--timeout", default=300, show_default=True, type=click.IntRange(1, 3600), help="Seconds.")
@click.option("-e", "--env", "env_pairs", multiple=True, metavar="KEY=VALUE", help="Environment (templates).")
@click.option("--ability", type=click.Choice(["script", "docker", "kubernetes"]), default="script", show_default=True)
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="A worker tag the step needs; repeat for more.")
@click.option("--image", help="The image, for --ability docker or kubernetes.")
@click.option("-d", "--detach", is_flag=True, help="Print the run id and return instead of following it.")
@_server_options
def exec_command(
    command, script_file, workspace, ref, name, timeout, env_pairs, ability, tags, image, detach, **server
):
    """Run a one-off COMMAND (or --script FILE) on a workspace's files, without writing a task.

    \b
      strom exec -- make clean
      strom exec -w infra --ref main -e TOKEN='{{ secret.api }}' -- ./scripts/rotate.sh prod
      strom exec --script fix.sh --timeout 900

    The run is in history as `exec: NAME`, with logs, cancel and re-run; it runs sandboxed on a worker
    like a script step. Its output is followed until it ends (exit status 0 only on success)."""
    if bool(command) == bool(script_file):
        raise click.UsageError("give a COMMAND after `--`, or --script FILE (not both)")
    try:
        env = parse_pairs(env_pairs)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="-e") from exc
    request = {"name": name, "timeout": timeout, "env": env, "ability": ability, "tags": list(tags)}
    request.update({"script": script_file.read()} if script_file else {"command": list(command)})
    if image:
        request["image"] = image
    if ref:
        request["ref"] = ref
    client = _client(server["server"], server["token"])
    run = _call(client.exec, workspace, request)
    if detach:
        console.print(Text.assemble(run["id"], "  ", _mark(run["status"]), f"  {run['url']}"))
        return
    raise SystemExit(follow_run(client, run["id"]))


@click.command("runs")
@click.option("-w", "--workspace", envvar="STROM_WORKSPACE_NAME", help="Only this workspace's (STROM_WORKSPACE_NAME).")
@click.option("-t", "--task")
@click.option("-s", "--status")
@click.option("--trigger")
@click.option("--pr", type=int, metavar="NUMBER", help="Runs of this pull request (needs --workspace).")
@click.option("-n", "--limit", default=20, show_default=True, type=click.IntRange(1, 200))
@click.option("--json", "as_json", is_flag=True)
@_server_options
def runs_command(workspace, task, status, trigger, pr, limit, as_json, server, token):
    """List runs, newest first."""
    if pr is not None and not workspace:
        raise click.UsageError("--pr needs --workspace: pull request numbers are per repository")
    data = _call(
        _client(server, token).runs, workspace=workspace, task=task, status=status, trigger=trigger, pr=pr, limit=limit
    )
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for run in data["runs"]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["created_at"]))
        console.print(
            Text.assemble(
                f"{run['id']}  {when}  {run['workspace']}/{run['task']:<16} ",
                _mark(run["status"]),
                f"  {format_duration(run.get('duration')):>7}  {run.get('source', '')}",
            )
        )
    if not data["runs"]:
        err_console.print("no runs")


@click.command("events")
@click.argument("event_id", required=False)
@click.option("-w", "--workspace", envvar="STROM_WORKSPACE_NAME", help="Only this workspace's (STROM_WORKSPACE_NAME).")
@click.option("-n", "--limit", default=20, show_default=True, type=click.IntRange(1, 200))
@click.option("--json", "as_json", is_flag=True)
@_server_options
def events_command(event_id, workspace, limit, as_json, server, token):
    """List the repository events received (webhooks, pushes, polls), newest first, with the runs
    each started or why it started none; with EVENT_ID, show one event in full."""
    client = _client(server, token)
    if event_id:
        data = _call(client.event, event_id)
        click.echo(json.dumps(data, indent=2) if as_json else _describe_event(data, full=True))
        return
    data = _call(client.events, workspace=workspace, limit=limit)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for event in data["events"]:
        console.print(_describe_event(event))
    if not data["events"]:
        err_console.print("no events")


def _describe_event(event: dict, full: bool = False) -> Text:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event["received_at"]))
    what = f"{event.get('source')} {event.get('kind')} {event.get('ref') or ''} {(event.get('sha') or '')[:7]}"
    outcome = ", ".join(event["runs"]) or event.get("error") or event.get("reason") or ""
    text = Text.assemble(
        f"{event['id']}  {when}  {event['workspace']:<12} {what.strip():<36} ", _mark(event["status"]), f"  {outcome}"
    )
    if full:
        text.append("\n" + json.dumps(event.get("event") or {}, indent=2))
    return text


@click.command("status")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True)
@_server_options
def status_command(run_id, as_json, server, token):
    """Show a run and its steps. Exit status: 0 succeeded, 1 failed or cancelled, 2 still going."""
    run = _call(_client(server, token).run, run_id)
    if as_json:
        click.echo(json.dumps(run, indent=2))
    else:
        _print_run(run)
    raise SystemExit(
        0 if run["status"] == "succeeded" else 2 if run["status"] in ("queued", "running", "waiting") else 1
    )


@click.command("logs")
@click.argument("run_id")
@click.argument("step", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the run ends.")
@_server_options
def logs_command(run_id, step, follow, server, token):
    """Print a run's log (or one step's)."""
    client = _client(server, token)
    if follow:
        try:
            for event, data in client.follow(run_id, step):
                if event == "line":
                    click.echo(data["text"] if step else f"[{data['step']}] {data['text']}")
        except ApiError as exc:
            raise click.ClickException(str(exc)) from exc
        return
    for line in _call(client.logs, run_id, step):
        click.echo(line["text"] if step else f"[{line['step']}] {line['text']}")


@click.command("cancel")
@click.argument("run_id")
@click.option("--reason", help="Why (kept with the run).")
@_server_options
def cancel_command(run_id, reason, server, token):
    """Cancel a run: running steps are stopped."""
    run = _call(_client(server, token).cancel, run_id, reason)
    console.print(
        Text.assemble(
            run["id"], "  ", _mark(run["status"]), "  (cancelling)" if run["status"] not in ("cancelled",) else ""
        )
    )


@click.command("rerun")
@click.argument("run_id")
@_server_options
def rerun_command(run_id, server, token):
    """Run a run's task again with the same inputs and commit."""
    run = _call(_client(server, token).rerun, run_id)
    console.print(Text.assemble(run["id"], "  ", _mark(run["status"]), f"  {run['url']}"))


@click.command("approve")
@click.argument("run_id")
@click.argument("step")
@_server_options
def approve_command(run_id, step, server, token):
    """Approve a waiting approval step."""
    run = _call(_client(server, token).decide, run_id, step, True)
    _print_run(run)


@click.command("reject")
@click.argument("run_id")
@click.argument("step")
@click.option("--reason", help="Why (shown on the run and to hooks).")
@_server_options
def reject_command(run_id, step, reason, server, token):
    """Reject a waiting approval step (or decline a question an agent step asked)."""
    run = _call(_client(server, token).decide, run_id, step, False, reason)
    _print_run(run)


@click.command("answer")
@click.argument("run_id")
@click.argument("step")
@click.argument("answer", nargs=-1, required=True)
@_server_options
def answer_command(run_id, step, answer, server, token):
    """Answer the question an agent step asked; the step goes on with the answer.

    \b
      strom answer 4f2a9c1e0b7d3a55 triage "yes, the staging database"
    """
    run = _call(_client(server, token).answer, run_id, step, " ".join(answer))
    _print_run(run)


def _pausable(client: Client, workspace: str, name: str, kind: str | None) -> str:
    """Whether `name` is a task or a trigger of the workspace (both: `--task` or `--trigger` says which)."""
    if kind:
        return kind
    tasks = {t["name"] for t in _call(client.tasks, workspace)["tasks"]}
    triggers = {t["name"] for t in _call(client.triggers, workspace)["triggers"]}
    if name in tasks and name in triggers:
        raise click.UsageError(f"{name!r} is a task and a trigger of {workspace!r}: add --task or --trigger")
    if name not in tasks | triggers:
        raise click.ClickException(f"no task or trigger {name!r} in workspace {workspace!r}")
    return "task" if name in tasks else "trigger"


def _pause_options(f):
    f = click.option("--trigger", "kind", flag_value="trigger", help="NAME is a trigger.")(f)
    f = click.option("--task", "kind", flag_value="task", help="NAME is a task.")(f)
    f = click.option("-w", "--workspace", **_WORKSPACE)(f)
    return click.argument("name")(f)


@click.command("pause")
@_pause_options
@click.option("--reason", help="Why (shown with the pause).")
@_server_options
def pause_command(name, workspace, kind, reason, server, token):
    """Pause a task (all its triggers) or one trigger: cron ticks, pushes, pull requests, comments, webhooks
    and job chains do not start it (each is recorded as skipped); runs started by hand still start."""
    client = _client(server, token)
    kind = _pausable(client, workspace, name, kind)
    _call(client.pause, workspace, kind, name, reason)
    console.print(f"{kind} {name} paused; `strom resume {name}` lets its triggers fire again")


@click.command("resume")
@_pause_options
@_server_options
def resume_command(name, workspace, kind, server, token):
    """Let a paused task's or trigger's triggers fire again (what they skipped meanwhile is not fired)."""
    client = _client(server, token)
    kind = _pausable(client, workspace, name, kind)
    _call(client.pause, workspace, kind, name, resume=True)
    console.print(f"{kind} {name} resumed")


REMOTE_COMMANDS = [
    trigger_command,
    exec_command,
    runs_command,
    status_command,
    logs_command,
    cancel_command,
    rerun_command,
    approve_command,
    reject_command,
    answer_command,
    pause_command,
    resume_command,
]
