"""Run `type: script` steps on this machine, sandboxed, in any supported language."""
from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..durations import format_duration
from ..engine.status import StepStatus
from ..engine.work import StepWork
from ..errors import RunnerUnavailable, StepSetupError
from ..outputs import OutputCollector
from .base import LogSink, StepResult
from .languages import cache_env, plan_script, script_name, source_path
from .process import run_process
from ..readonly import make_writable
from .sandbox import Sandbox, bwrap_available

__all__ = ["LocalSettings", "LocalExecutor", "DEFAULT_PASS_ENV"]

DEFAULT_PASS_ENV = (
    "PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
    "PYENV_ROOT", "PYENV_VERSION", "NVM_DIR", "JAVA_HOME", "GOROOT", "CARGO_HOME", "RUSTUP_HOME",
)
_CACHE_INSIDE = "/tmp/.cache"


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "strom"


@dataclass
class LocalSettings:
    sandbox: str = "auto"  # auto | bwrap | copy
    cache_dir: Path | None = field(default_factory=_default_cache)  # None: no shared package caches
    pass_env: tuple[str, ...] = DEFAULT_PASS_ENV
    kill_grace: float = 5.0
    scratch_root: Path | None = None
    hide: tuple[Path, ...] = ()  # Strom's data directory, configuration and key files

    def use_bwrap(self) -> bool:
        if self.sandbox == "copy":
            return False
        available = bwrap_available()
        if self.sandbox == "bwrap" and not available:
            raise RunnerUnavailable("sandbox 'bwrap' was requested but bubblewrap (bwrap) does not work here; "
                                    "install the bubblewrap package or use --sandbox copy")
        return available


class LocalExecutor:
    def __init__(self, settings: LocalSettings | None = None):
        self.settings = settings or LocalSettings()

    def run(self, work: StepWork, workspace: Path, logs: LogSink, cancel: threading.Event) -> StepResult:
        if work.kind != "script" or work.runner != "local":
            raise RunnerUnavailable(f"the local executor runs script steps with runner: local, not {work.kind}")
        scratch = Path(tempfile.mkdtemp(prefix="strom-step-", dir=self.settings.scratch_root))
        try:
            return self._run(work, workspace, scratch, logs, cancel)
        finally:
            make_writable(scratch / "workspace")
            shutil.rmtree(scratch, ignore_errors=True)

    def _run(self, work: StepWork, workspace: Path, scratch: Path, logs: LogSink,
             cancel: threading.Event) -> StepResult:
        use_bwrap = self.settings.use_bwrap()
        if work.untrusted and not use_bwrap:
            raise RunnerUnavailable("steps of untrusted pull requests run only in the bubblewrap sandbox, which this "
                                    "worker does not have (install bubblewrap; workers.sandbox: bwrap)")
        binds = ()
        cache = self.settings.cache_dir
        if cache is not None:
            cache.mkdir(parents=True, exist_ok=True)
            binds = ((cache, _CACHE_INSIDE),)
        if work.untrusted:
            binds = ()  # no shared package caches for code nobody vouched for
        sandbox = Sandbox(Path(workspace), scratch, use_bwrap, extra_binds=binds if use_bwrap else (),
                          hide=self.settings.hide, network=work.network)
        sandbox.prepare()
        code = scratch / "tmp" / "code"
        code.mkdir(parents=True)
        script = self._script_path(work, sandbox, code)
        env = self._env(work, sandbox, scratch)
        plan = plan_script(work.language, work.interpreter, script, list(work.args), list(work.dependencies),
                           sandbox.inside(code), search=env["PATH"])
        env.update(plan.env)
        cwd = sandbox.workspace_path
        if work.workdir:
            cwd = str(PurePosixPath(cwd) / work.workdir)
        deadline = time.monotonic() + work.timeout if work.timeout else None
        for command in plan.setup:
            logs.line("strom", "$ " + shlex.join(command))
            outcome = self._spawn(sandbox, command, plan.setup_cwd or sandbox.inside(code), env, logs, cancel,
                                  deadline, collector=None)
            if outcome.status is not StepStatus.SUCCEEDED:
                if outcome.status is StepStatus.FAILED:
                    return StepResult(StepStatus.FAILED, error=f"installing dependencies failed "
                                      f"(`{shlex.join(command[:3])} ...` exited with {outcome.exit_code})",
                                      exit_code=outcome.exit_code)
                return outcome
        collector = OutputCollector()
        result = self._spawn(sandbox, plan.run, cwd, env, logs, cancel, deadline, collector)
        if result.status is StepStatus.TIMED_OUT:
            return StepResult(StepStatus.TIMED_OUT, error=f"timed out after {format_duration(work.timeout)}",
                              exit_code=result.exit_code)
        if result.status is not StepStatus.SUCCEEDED:
            return result
        output, problem = collector.result()
        if problem:
            return StepResult(StepStatus.FAILED, error=problem, exit_code=0)
        return StepResult(StepStatus.SUCCEEDED, output=output, exit_code=0)

    def _spawn(self, sandbox: Sandbox, argv: list[str], cwd: str, env: dict, logs: LogSink,
               cancel: threading.Event, deadline: float | None, collector: OutputCollector | None) -> StepResult:
        timeout = None
        if deadline is not None:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                return StepResult(StepStatus.TIMED_OUT, error="timed out before the script started")
        command, host_cwd = sandbox.wrap(argv, cwd)

        def emit(stream: str, line: str) -> None:
            if collector is not None and stream == "stdout":
                collector.feed(line)
            logs.line(stream, line)

        outcome = run_process(command, env=env, cwd=host_cwd, emit=emit, cancel=cancel, timeout=timeout,
                              kill_grace=self.settings.kill_grace)
        if outcome.error:
            raise StepSetupError(outcome.error)
        if outcome.cancelled:
            return StepResult(StepStatus.CANCELLED, error="cancelled", exit_code=outcome.exit_code)
        if outcome.timed_out:
            return StepResult(StepStatus.TIMED_OUT, error="timed out", exit_code=outcome.exit_code)
        if outcome.exit_code != 0:
            return StepResult(StepStatus.FAILED, error=f"exit code {outcome.exit_code}", exit_code=outcome.exit_code)
        return StepResult(StepStatus.SUCCEEDED, exit_code=0)

    def _script_path(self, work: StepWork, sandbox: Sandbox, code: Path) -> str:
        if work.script is not None:
            path = code / script_name(work.language)
            path.write_text(work.script if work.script.endswith("\n") else work.script + "\n", encoding="utf-8")
            return sandbox.inside(path)
        relative = source_path(work.source)
        if not (sandbox.workspace / relative).is_file():
            raise StepSetupError(f"source file {work.source!r} does not exist in the workspace")
        if work.language == "go":
            target = code / "step.go"  # go run wants the file where it may build
            shutil.copyfile(sandbox.workspace / relative, target)
            return sandbox.inside(target)
        return str(PurePosixPath(sandbox.workspace_path) / relative)

    def _env(self, work: StepWork, sandbox: Sandbox, scratch: Path) -> dict[str, str]:
        env = {name: os.environ[name] for name in self.settings.pass_env if name in os.environ}
        env["PATH"] = sandbox.visible_path(env.get("PATH") or "/usr/local/bin:/usr/bin:/bin")
        env.setdefault("LANG", "C.UTF-8")
        tmp = sandbox.tmp_path
        env.update(HOME=f"{tmp}/home", TMPDIR=tmp)
        if self.settings.cache_dir is not None:
            env.update(cache_env(_CACHE_INSIDE if sandbox.use_bwrap else str(self.settings.cache_dir)))
        env.update(work.env)
        env["STROM_WORKSPACE"] = sandbox.workspace_path
        if work.event:
            event_file = scratch / "tmp" / "event.json"
            event_file.write_text(json.dumps(work.event, default=str), encoding="utf-8")
            env["STROM_EVENT_PATH"] = sandbox.inside(event_file)
        return env
