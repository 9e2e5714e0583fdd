"""How `strom web` starts gunicorn on the web process's WSGI app (named, not imported: `runner`
never imports `webhooks`). The command replaces itself with gunicorn, so the master process holds
only gunicorn and the app is loaded in the workers. Workers are gevent workers (webhooks/worker.py):
a connection, a slow one or a live log stream, costs a greenlet, not a thread. `--single-process` replaces it
with `python -m webhooks.serve` instead: one process, threads, and optionally the scheduler in it.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the supervisor of `strom up` imports this module and keeps no configuration parser
    from ..config import Config

__all__ = ["SINGLE_SERVER", "WSGI_APP", "exec_gunicorn", "exec_single", "gunicorn_argv", "single_argv"]

WSGI_APP = "webhooks.wsgi:app"
WORKER_CLASS = "webhooks.worker.StromWorker"
SINGLE_SERVER = "webhooks.serve"  # one process serving with threads (`strom web --single-process`), `strom up`'s


def gunicorn_argv(config: Config, bind: str | None = None, access_log: bool = False) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--worker-class",
        WORKER_CLASS,
        "--workers",
        str(config.web_workers),
        "--worker-connections",
        str(config.web_connections),
        "--bind",
        bind or config.listen,
        "--timeout",
        "60",
        "--graceful-timeout",
        "5",
        "--keep-alive",
        str(int(config.web_read_timeout)),
        "--log-level",
        "warning",
        "--error-logfile",
        "-",
        "--name",
        "strom-web",
    ]
    if access_log:
        argv += ["--access-logfile", "-"]
    return argv + [WSGI_APP]


def exec_gunicorn(config: Config, bind: str | None = None, access_log: bool = False) -> None:
    argv = gunicorn_argv(config, bind, access_log)
    os.execv(argv[0], argv)


def single_argv(listen: str, access_log: bool = False, scheduler: bool = False, steps: int = 0) -> list[str]:
    """The one process that serves the app itself (no gunicorn master); with `scheduler`, the scheduler's too, and
    with `steps`, N steps at a time."""
    argv = [sys.executable, "-m", SINGLE_SERVER, listen] + (["--access-log"] if access_log else [])
    return argv + (["--scheduler", "--steps", str(steps)] if scheduler else [])


def exec_single(config: Config, bind: str | None = None, access_log: bool = False, steps: int | None = None) -> None:
    """Replace this process with the single-process server (`steps` not None: the scheduler too)."""
    argv = single_argv(bind or config.listen, access_log, scheduler=steps is not None, steps=steps or 0)
    os.execv(argv[0], argv)
