"""Run `type: script` steps on this machine, sandboxed, in any supported language."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ..durations import format_duration
from ..engine.status import StepStatus
from ..engine.work import StepWork
from ..errors import RunnerUnavailable, StepSetupError
from ..outputs import SUMMARY_ENV, SUMMARY_FILE, OutputCollector, compose_summary, read_summary_file
from ..readonly import make_writable
from ..spec.payloads import Language, Runner, ScriptPayload
from .base import LogSink, StepResult, exited_cleanly, safe_cut_of
from .languages import cache_env, is_file_inside, plan_script, read_inside, script_name, source_path
from .outfiles import OUT_DIRS, STATE_DIR_ENV, kept_files, prepare_out
from .process import run_process
from .sandbox import STEP_GID, Sandbox, StepLimits, StepUsers, bwrap_available, sandbox_problem

if TYPE_CHECKING:
    from .mcp_tools import StdioLaunch

__all__ = ["DEFAULT_PASS_ENV", "LocalExecutor", "LocalSettings"]

DEFAULT_PASS_ENV = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "USER",
    "LOGNAME",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "PYENV_ROOT",
    "PYENV_VERSION",
    "NVM_DIR",
    "JAVA_HOME",
    "GOROOT",
    "CARGO_HOME",
    "RUSTUP_HOME",
)
_CACHE_INSIDE = "/tmp/.cache"


def _default_cache() -> Path:
    if os.geteuid() == 0:  # shared by the steps' uids (their common group): not under root's closed home
        return Path("/var/cache/strom/steps")
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
    limits: StepLimits = field(default_factory=StepLimits)
    own_uids: bool = True  # a root worker runs each step as a uid of its own; False: as the caller (`strom run`)

    def use_bwrap(self) -> bool:
        if self.sandbox == "copy":
            return False
        available = bwrap_available()
        if self.sandbox == "bwrap" and not available:
            raise RunnerUnavailable(
                "sandbox 'bwrap' was requested but bubblewrap (bwrap) does not work here; "
                "install the bubblewrap package or use --sandbox copy"
            )
        return available


class LocalExecutor:
    def __init__(self, settings: LocalSettings | None = None):
        self.settings = settings or LocalSettings()
        self.users = StepUsers()
        self._cache_ready = False

    def problem(self) -> str | None:
        """Why this worker cannot give steps the full sandbox, or None (checked once, by starting one)."""
        if not self.settings.use_bwrap():
            return "bubblewrap is not used here (workers.sandbox: copy, or bwrap is missing)"
        return sandbox_problem()

    def run(self, work: StepWork, workspace: Path, logs: LogSink, cancel: threading.Event) -> StepResult:
        if not isinstance(work.payload, ScriptPayload) or work.payload.runner is not Runner.LOCAL:
            raise RunnerUnavailable(f"the local executor runs script steps with runner: local, not {work.kind}")
        with self.sandboxed(work, workspace) as sandbox:
            return self._in(sandbox, work, logs, cancel)

    @contextmanager
    def sandboxed(self, work: StepWork, workspace: Path) -> Iterator[Sandbox]:
        """The sandbox `work` runs in (not prepared yet): its scratch directory, its own uid, then nothing left."""
        scratch = Path(tempfile.mkdtemp(prefix="strom-step-", dir=self.settings.scratch_root))
        uid = self.users.take() if self.settings.own_uids else None
        try:
            sandbox = self._sandbox(work, workspace, scratch, uid)
            try:
                yield sandbox
            finally:
                sandbox.close()
        finally:
            self.users.give_back(uid)
            make_writable(scratch / "workspace")
            shutil.rmtree(scratch, ignore_errors=True)

    def _cache(self) -> Path | None:
        """The package caches trusted steps share: writable by every step's uid (their common group)."""
        cache = self.settings.cache_dir
        if cache is not None and not self._cache_ready:
            cache.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                os.chown(cache, 0, STEP_GID)
                cache.chmod(0o2775)
            self._cache_ready = True
        return cache

    def mcp_launch(self, work: StepWork, workspace: Path, stack: ExitStack) -> StdioLaunch:
        """How an agent step's stdio MCP servers start: each in a sandbox of its own, as a script step of the run
        would (its uid, the workspace read-only at /workspace, no network when the step has none), gone with
        `stack`."""

        def launch(name: str, spec: Mapping[str, Any]) -> tuple[list[str], str | None, dict[str, str]]:
            sandbox = stack.enter_context(self.sandboxed(work, workspace))
            sandbox.prepare()
            env = self.step_env(work, sandbox)
            env.update({str(k): str(v) for k, v in (spec.get("env") or {}).items()})
            argv = [str(spec["command"]), *(str(a) for a in spec.get("args") or ())]
            command, cwd = sandbox.standalone(argv, sandbox.workspace_path, env["PATH"])
            return command, cwd, env

        return launch

    def _sandbox(self, work: StepWork, workspace: Path, scratch: Path, uid: int | None) -> Sandbox:
        use_bwrap = self.settings.use_bwrap()
        if work.untrusted:
            problem = self.problem()
            if problem:
                raise RunnerUnavailable(
                    f"steps of untrusted pull requests run only in the full sandbox, which this "
                    f"worker cannot give: {problem}"
                )
        cache = self._cache()
        binds = ((cache, _CACHE_INSIDE),) if cache is not None and not work.untrusted else ()  # none for strangers
        return Sandbox(
            Path(workspace),
            scratch,
            use_bwrap,
            extra_binds=binds if use_bwrap else (),
            hide=self.settings.hide,
            network=work.network,
            uid=uid,
            limits=self.settings.limits,
        )

    def _in(self, sandbox: Sandbox, work: StepWork, logs: LogSink, cancel: threading.Event) -> StepResult:
        sandbox.prepare()
        prepare_out(sandbox.out_dir, work.state_archive, sandbox.uid, empty_elsewhere=sandbox.empty_dir is not None)
        step = work.payload_as(ScriptPayload)
        script = self._script_path(step, sandbox, sandbox.code_dir)
        env = self.step_env(work, sandbox)
        plan = plan_script(
            step.language,
            step.interpreter,
            script,
            list(step.args),
            list(step.dependencies),
            sandbox.deps_path,
            search=env["PATH"],
        )
        env.update(plan.env)
        cwd = sandbox.workspace_path
        if work.workdir:
            cwd = str(PurePosixPath(cwd) / work.workdir)
        deadline = time.monotonic() + work.timeout if work.timeout else None
        collector, driver = OutputCollector(), _Driver(logs)
        argv = self._driver(sandbox, plan, cwd) if plan.setup else plan.run
        result = self._spawn(sandbox, argv, cwd, env, driver.sink(collector), cancel, deadline, safe_cut_of(logs))
        summary = compose_summary(read_summary_file(sandbox.out_dir / SUMMARY_FILE), collector.summary_lines)
        judged = replace(self._judge(work, result, driver, collector), summary=summary)
        return kept_files(judged, sandbox.out_dir, logs, work.untrusted)

    @staticmethod
    def _judge(work: StepWork, result: StepResult, driver: _Driver, collector: OutputCollector) -> StepResult:
        if driver.failed is not None:
            code, command = driver.failed
            return StepResult(
                StepStatus.FAILED,
                error=f"installing dependencies failed (`{command} ...` exited with {code})",
                exit_code=result.exit_code,
            )
        if result.status is StepStatus.TIMED_OUT:
            return StepResult(
                StepStatus.TIMED_OUT,
                error=f"timed out after {format_duration(work.timeout)}",
                exit_code=result.exit_code,
            )
        if result.status is not StepStatus.SUCCEEDED:
            return result
        return exited_cleanly(collector)

    @staticmethod
    def _driver(sandbox: Sandbox, plan, cwd: str) -> list[str]:
        """One sandbox for the whole step: a shell runs the setup commands (saying each, and which failed),
        then becomes the step. (Its /tmp lives as long as that sandbox.)"""
        lines = [
            f"mkdir -p {shlex.quote(sandbox.deps_path)} && cd {shlex.quote(plan.setup_cwd or sandbox.deps_path)}"
            " || exit 97"
        ]
        for command in plan.setup:
            said, short = shlex.quote("$ " + shlex.join(command)), shlex.quote(shlex.join(command[:3]))
            lines += [
                f"printf '\\036strom %s\\n' {said} >&2",
                f"{shlex.join(command)} || {{ s=$?; printf '\\036strom-failed %s %s\\n' \"$s\" {short} >&2; "
                f"exit $s; }}",
            ]
        lines += ["printf '\\036strom-run\\n' >&2", f"cd {shlex.quote(cwd)} || exit 97", f"exec {shlex.join(plan.run)}"]
        path = sandbox.code_dir / "setup.sh"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return ["/bin/sh", sandbox.inside(path)]

    def _spawn(
        self,
        sandbox: Sandbox,
        argv: list[str],
        cwd: str,
        env: dict,
        emit,
        cancel: threading.Event,
        deadline: float | None,
        safe_cut=None,
    ) -> StepResult:
        timeout = None
        if deadline is not None:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                return StepResult(StepStatus.TIMED_OUT, error="timed out before the script started")
        command, host_cwd = sandbox.wrap(argv, cwd, env.get("PATH", ""))
        outcome = run_process(
            command,
            env=env,
            cwd=host_cwd,
            emit=emit,
            cancel=cancel,
            timeout=timeout,
            kill_grace=self.settings.kill_grace,
            options=sandbox.process_options(),
            safe_cut=safe_cut,
        )
        if outcome.error:
            raise StepSetupError(outcome.error)
        if outcome.cancelled:
            return StepResult(StepStatus.CANCELLED, error="cancelled", exit_code=outcome.exit_code)
        if outcome.timed_out:
            return StepResult(StepStatus.TIMED_OUT, error="timed out", exit_code=outcome.exit_code)
        if outcome.exit_code != 0:
            return StepResult(StepStatus.FAILED, error=f"exit code {outcome.exit_code}", exit_code=outcome.exit_code)
        return StepResult(StepStatus.SUCCEEDED, exit_code=0)

    def _script_path(self, step: ScriptPayload, sandbox: Sandbox, code: Path) -> str:
        if step.script is not None:
            path = code / script_name(step.language)
            path.write_text(step.script if step.script.endswith("\n") else step.script + "\n", encoding="utf-8")
            return sandbox.inside(path)
        relative = source_path(step.source)
        if step.language is Language.GO:  # go run wants the file where it may build: copied, never through a link
            target = code / "step.go"
            target.write_bytes(read_inside(sandbox.workspace, relative))
            return sandbox.inside(target)
        if not is_file_inside(sandbox.workspace, relative):
            raise StepSetupError(f"source file {step.source!r} does not exist in the workspace")
        return str(PurePosixPath(sandbox.workspace_path) / relative)

    def step_env(self, work: StepWork, sandbox: Sandbox) -> dict[str, str]:
        env = {name: os.environ[name] for name in self.settings.pass_env if name in os.environ}
        env["PATH"] = sandbox.visible_path(env.get("PATH") or "/usr/local/bin:/usr/bin:/bin")
        env.setdefault("LANG", "C.UTF-8")
        tmp = sandbox.tmp_path
        env.update(HOME=f"{tmp}/home", TMPDIR=tmp)
        if self.settings.cache_dir is not None:
            env.update(cache_env(_CACHE_INSIDE if sandbox.use_bwrap else str(self.settings.cache_dir)))
        env.update(work.env)
        env["STROM_WORKSPACE"] = sandbox.workspace_path
        env[SUMMARY_ENV] = sandbox.inside(sandbox.out_dir / SUMMARY_FILE)
        env.update({name: sandbox.inside(sandbox.out_dir / where) for name, where in OUT_DIRS.items()})
        if not work.state_archive and sandbox.empty_dir is not None:  # no state files to start from
            env[STATE_DIR_ENV] = sandbox.empty_dir
        if work.event:
            event_file = sandbox.code_dir / "event.json"
            event_file.write_text(json.dumps(work.event, default=str), encoding="utf-8")
            env["STROM_EVENT_PATH"] = sandbox.inside(event_file)
        return env


class _Driver:
    """Reads what the setup driver says on stderr: the commands it runs, the one that failed, the step's start."""

    def __init__(self, logs: LogSink):
        self.logs = logs
        self.failed: tuple[str, str] | None = None
        self.running = False

    def sink(self, collector: OutputCollector):
        def emit(stream: str, line: str) -> None:
            if stream == "stderr" and line.startswith("\x1estrom") and not self.running:
                word, _, rest = line[1:].partition(" ")
                if word == "strom":
                    self.logs.line("strom", rest)
                elif word == "strom-failed":
                    code, _, command = rest.partition(" ")
                    self.failed = (code, command)
                elif word == "strom-run":
                    self.running = True
                return
            if stream == "stdout" and (self.running or self.failed is None):
                collector.feed(line)
            self.logs.line(stream, line)

        return emit
