"""The service processes: `strom up`, `strom web`, `strom worker`, `strom scheduler`."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from ..errors import StromError

if TYPE_CHECKING:
    from ..config import Config
    from ..runs.service import Service

__all__ = ["scheduler_command", "up_command", "web_command", "worker_command"]

config_option = click.option(
    "--config",
    "config_path",
    metavar="FILE",
    envvar="STROM_CONFIG",
    help="Server configuration (default: ./strom.yaml if present; STROM_CONFIG).",
)


def _config(path: str | None) -> Config:
    from ..config import ConfigError, load_config  # not in `strom up`'s supervisor: its children read it

    try:
        return load_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _service(path: str | None) -> Service:
    from ..runs.service import Service

    config = _config(path)
    try:
        return Service(config)
    except StromError as exc:
        raise click.ClickException(str(exc)) from exc


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )


health_option = click.option(
    "--health-port",
    type=click.IntRange(0, 65535),
    envvar="STROM_HEALTH_PORT",
    metavar="PORT",
    help="Serve /livez, /readyz and /health on this port (for Kubernetes probes; STROM_HEALTH_PORT).",
)


def _steps_option(text: str):
    """`--steps N`: script and agent steps run in the process that says so, N at a time."""
    return click.option("--steps", default=0, show_default=True, type=click.IntRange(0, 256), metavar="N", help=text)


@click.command("web")
@config_option
@click.option("--listen", metavar="HOST:PORT", help="Address to serve on (default from config: 127.0.0.1:8080).")
@click.option("--access-log", is_flag=True, help="Log every request.")
@click.option(
    "--single-process",
    is_flag=True,
    help="Serve from this one process (threads) instead of gunicorn's master and gevent workers: less memory, "
    "no restart of a hung worker.",
)
@click.option(
    "--scheduler",
    "with_scheduler",
    is_flag=True,
    help="Be the scheduler too, in the same process (implies --single-process; what `strom up` runs).",
)
@_steps_option("With --scheduler: also run script (and agent) steps here, N at a time, as a worker would.")
def web_command(config_path, listen, access_log, single_process, with_scheduler, steps):
    """Serve the API and the UI (gunicorn with gevent workers). Needs STROM_REDIS_URL.

    \b
    strom web                                  gunicorn: web.workers processes, a greenlet per connection
    strom web --single-process                 one process, a thread per connection
    strom web --scheduler --steps 4            one process for the web, the scheduler and 4 steps at once"""
    if config_path:
        os.environ["STROM_CONFIG"] = str(Path(config_path).resolve())
    from ..service.webserver import exec_gunicorn, exec_single

    if steps and not with_scheduler:
        raise click.BadParameter("runs steps only with --scheduler", param_hint="--steps")
    config = _config(config_path)
    _service(config_path)  # fail early, with a clear message, if Redis is unreachable
    if with_scheduler:
        exec_single(config, bind=listen, access_log=access_log, steps=steps)
    elif single_process:
        exec_single(config, bind=listen, access_log=access_log)
    else:
        exec_gunicorn(config, bind=listen, access_log=access_log)  # STROM_* and --config carry over


@click.command("worker")
@config_option
@click.option(
    "--abilities",
    default="script",
    show_default=True,
    metavar="LIST",
    help="Comma-separated: script, docker, kubernetes, agent (agent is added by itself when agents.providers "
    "is configured and this option is not given).",
)
@click.option("--tags", default="", metavar="LIST", help="Comma-separated tags; steps with these tags can run here.")
@click.option("--exclusive", is_flag=True, help="Only take steps that carry all of this worker's tags.")
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 256), help="Steps at once.")
@click.option("--name", help="Worker name (default host-pid).")
@health_option
@click.option("-v", "--verbose", is_flag=True)
def worker_command(config_path, abilities, tags, exclusive, concurrency, name, health_port, verbose):
    """Run steps from the queues of these abilities and tags.

    On SIGTERM or SIGINT the worker takes no new step, lets running ones end within
    workers.shutdown_grace (30s), hands back the rest to run elsewhere, and exits 0."""
    from ..service.lifetime import serve_until_stopped
    from ..service.worker import ABILITIES, Worker, default_abilities

    _logging(verbose)
    wanted = [a.strip() for a in abilities.split(",") if a.strip()]
    for ability in wanted:
        if ability not in ABILITIES:
            raise click.BadParameter(
                f"unknown ability {ability!r} (abilities: script, docker, kubernetes, agent)", param_hint="--abilities"
            )
    service = _service(config_path)
    if click.get_current_context().get_parameter_source("abilities") is ParameterSource.DEFAULT:
        wanted = default_abilities(service.config)
    _check_abilities(service.config, wanted)
    worker = Worker(
        service,
        abilities=wanted,
        tags=[t.strip() for t in tags.split(",") if t.strip()],
        exclusive=exclusive,
        concurrency=concurrency,
        name=name,
    )
    worker.start()
    click.echo(f"worker {worker.name}: {', '.join(worker.queue_names)}", err=True)
    serve_until_stopped(worker, worker.health, health_port)


def _check_abilities(config, wanted) -> None:
    """Refuse, with the reason, an ability whose engine or cluster this worker cannot reach."""
    from ..errors import RunnerUnavailable

    checks = {}
    if "docker" in wanted:
        from ..executors.docker import DockerExecutor

        checks["docker"] = lambda: f"engine {DockerExecutor(config.docker).check()}"
    if "kubernetes" in wanted:
        from ..executors.kubernetes import PodExecutor

        checks["kubernetes"] = lambda: f"API {PodExecutor(config.kubernetes).check()}"
    for ability, check in checks.items():
        try:
            click.echo(f"{ability}: {check()}", err=True)
        except RunnerUnavailable as exc:
            raise click.BadParameter(f"this worker cannot offer {ability!r}: {exc}", param_hint="--abilities") from exc


@click.command("scheduler")
@config_option
@health_option
@_steps_option(
    "Also run script (and agent) steps here, N at a time, as a worker would: one process less; separate "
    "`strom worker` processes scale further."
)
@click.option("-v", "--verbose", is_flag=True)
def scheduler_command(config_path, health_port, steps, verbose):
    """Apply events, fire cron triggers, time out approvals, retry, recover lost steps, prune old runs."""
    from ..service.lifetime import serve_until_stopped
    from ..service.scheduler import Scheduler

    _logging(verbose)
    scheduler = Scheduler(_service(config_path), steps=steps)
    scheduler.start()
    if scheduler.steps is not None:
        click.echo(f"scheduler {scheduler.name} runs steps too: {', '.join(scheduler.steps.queue_names)}", err=True)
    serve_until_stopped(scheduler, scheduler.health, health_port)


@click.command("up")
@click.option("-C", "--workspace", "path", default=".", metavar="PATH", help="The workspace to serve as 'local'.")
@click.option(
    "--data-dir",
    default=".strom-data",
    show_default=True,
    metavar="DIR",
    help="Where Redis keeps the history (relative to the workspace).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Step runners: the first in the server's process (web, scheduler), each further one a worker process.",
)
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 256), help="Steps per worker.")
@click.option("--redis-url", envvar="STROM_REDIS_URL", help="Use this Redis instead of a private one.")
@config_option
@click.option("--run", "run_task", metavar="TASK", help="Once up, run TASK and follow its logs.")
@click.option("--exit", "exit_after", is_flag=True, help="With --run: stop everything when the run ends.")
def up_command(path, data_dir, host, port, workers, concurrency, redis_url, config_path, run_task, exit_after):
    """Start Strom here: Redis, and one process serving the web, scheduling and running steps. Ctrl-C stops all.

    \b
    The current directory is served as workspace 'local'; the URL and an admin token are printed.
    Run history is kept under --data-dir and is there again on the next start.
    """
    from ..service.up import Supervisor, UpError  # the supervisor stays up: no terminal renderer, no HTTP client

    workspace = Path(path).resolve()
    supervisor = Supervisor(
        data_dir=(workspace / data_dir).resolve(),
        workspace=workspace,
        host=host,
        port=port,
        workers=workers,
        concurrency=concurrency,
        redis_url=redis_url,
        config_file=config_path,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # from here on, a signal stops everything cleanly
        signal.signal(sig, lambda *_: stop.set())
    status = 0
    try:
        try:
            info = supervisor.start()
        except (UpError, OSError) as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(click.style("Strom is up ", fg="green", bold=True) + f"at {info['url']}")
        for line in _workspace_lines(supervisor, info, workspace):
            click.echo(line)
        click.echo(f"  data:            {supervisor.data_dir}  (logs in {supervisor.data_dir / 'logs'})")
        click.echo(f"  admin token:     {info['token']}  (sign in at {info['url']}/login with it)")
        click.secho(f"  export STROM_URL={info['url']} STROM_TOKEN={info['token']}", fg="bright_black")
        if run_task and not stop.is_set():
            status = _run_and_follow(info, run_task)
            if exit_after:
                stop.set()
        if not stop.is_set():
            click.secho("Press Ctrl-C to stop.", fg="bright_black")
        while not stop.wait(0.5):
            for news in supervisor.tend():
                click.secho(f"! {news}", fg="red" if "exited" in news else "yellow", err=True)
    finally:
        click.echo("stopping ...")
        supervisor.stop()
    sys.exit(status)


def _workspace_lines(supervisor, info: dict, folder: Path) -> list[str]:
    """How to reach each workspace the server loaded (a folder's path, a hosted one's git remote)."""
    answer = supervisor.get("/api/workspaces", info["token"])
    if answer is None:
        return [f"  workspace local: {folder}"]
    lines = []
    for ws in answer["workspaces"]:
        if ws["kind"] == "hosted":
            where = f"git remote add strom {info['url']}/git/{ws['name']}.git  (password: the admin token)"
        else:
            where = ws.get("path") or ws.get("url") or ""
        lines.append(f"  workspace {ws['name']}: {where}")
    return lines


def _run_and_follow(info: dict, task: str) -> int:
    """`strom trigger TASK --follow` as a process of its own: the supervisor, which stays up, keeps no HTTP
    client or terminal renderer of runs in memory."""
    import subprocess

    env = {**os.environ, "STROM_URL": info["url"], "STROM_TOKEN": info["token"]}
    follow = [sys.executable, "-m", "runner.cli", "trigger", task, "--workspace", "local", "--follow"]
    return subprocess.run(follow, env=env).returncode
