"""The local executor with real processes: languages, the read-only workspace, timeouts, masking."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import psutil
import pytest
from conftest import REQUIRE_ALL, need
from service_env import wait_for
from step_work import step_work

from runner.engine import StepStatus
from runner.executors import LocalExecutor, LocalSettings, execute
from runner.executors.sandbox import bwrap_available

S = StepStatus
SANDBOXES = ["bwrap", "copy"]


class Lines:
    def __init__(self):
        self.items = []

    def line(self, stream, text):
        self.items.append((stream, text))

    def out(self, stream="stdout"):
        return [t for s, t in self.items if s == stream]


@pytest.fixture
def ws(tmp_path):
    root = tmp_path / "ws"
    (root / "scripts").mkdir(parents=True)
    (root / "data.txt").write_text("original\n")
    (root / "scripts" / "hello.sh").write_text('echo "hello from $0 with $# args: $1"\n')
    (root / "scripts" / "tool.py").write_text("import sys\nprint('py-args', sys.argv[1:])\n")
    (root / "sub").mkdir()
    return root


def sandbox_param(request):
    if request.param == "bwrap" and not bwrap_available():
        if REQUIRE_ALL:
            pytest.fail("bubblewrap must work here (STROM_REQUIRE_ALL=1)")
        pytest.skip("bubblewrap does not work here")
    return request.param


@pytest.fixture(params=SANDBOXES)
def sandbox(request):
    return sandbox_param(request)


def run(ws, sandbox="auto", cancel=None, **fields) -> tuple:
    work = step_work(job_id="job1", step="step", attempt=1, kind="script", **fields)
    lines = Lines()
    executor = LocalExecutor(LocalSettings(sandbox=sandbox, kill_grace=1.0))
    result = execute(executor, work, ws, lines, cancel or threading.Event())
    return result, lines


def test_shell_output_streams_and_the_last_output_line_is_the_output(ws, sandbox):
    result, lines = run(
        ws, sandbox, script="echo one\necho two >&2\necho 'OUTPUT: {\"a\": 1}'\necho 'OUTPUT: {\"a\": 2}'"
    )
    assert result.status is S.SUCCEEDED and result.output == {"a": 2} and result.exit_code == 0
    assert lines.out() == ["one", 'OUTPUT: {"a": 1}', 'OUTPUT: {"a": 2}']
    assert lines.out("stderr") == ["two"]


def test_exit_codes_fail_the_step_and_set_e_stops_at_the_first_failure(ws, sandbox):
    result, lines = run(ws, sandbox, script="echo before\nfalse\necho after")
    assert (result.status, result.exit_code, result.error) == (S.FAILED, 1, "exit code 1")
    assert lines.out() == ["before"]
    result, _ = run(ws, sandbox, script="exit 7")
    assert result.exit_code == 7


def test_invalid_output_json_fails_the_step(ws):
    result, _ = run(ws, script="echo 'OUTPUT: {not json}'")
    assert result.status is S.FAILED and "the last OUTPUT line is not valid JSON" in result.error


def test_the_workspace_is_read_only_and_a_write_fails_the_step(ws, sandbox):
    result, lines = run(ws, sandbox, script='cat data.txt\necho changed > "$STROM_WORKSPACE/data.txt"')
    assert lines.out()[0] == "original"
    assert (ws / "data.txt").read_text() == "original\n", "the workspace itself is never changed"
    if sandbox == "bwrap":
        assert result.status is S.FAILED
        assert any("Read-only file system" in t for t in lines.out("stderr"))


def test_bwrap_mounts_the_workspace_at_slash_workspace_with_a_private_tmp(ws):
    need("bwrap") if REQUIRE_ALL else None
    if not bwrap_available():
        pytest.skip("bubblewrap does not work here")
    script = (
        "pwd; echo $STROM_WORKSPACE $HOME $TMPDIR; ls /workspace; touch /tmp/mine && echo wrote-tmp; touch /x || true"
    )
    result, lines = run(ws, "bwrap", script=script)
    assert result.status is S.SUCCEEDED
    out = lines.out()
    assert out[0] == "/workspace" and out[1] == "/workspace /tmp/home /tmp"
    assert {"data.txt", "scripts", "sub"} <= set(out[2:5]) and "wrote-tmp" in out
    _second, lines2 = run(ws, "bwrap", script="ls /tmp/mine 2>&1 || echo gone")
    assert lines2.out()[-1] == "gone", "every step gets its own /tmp"


def test_copy_mode_runs_in_a_throw_away_copy(ws):
    _result, lines = run(ws, "copy", script='pwd; echo "$STROM_WORKSPACE"; cat data.txt')
    out = lines.out()
    assert out[0] == out[1] != str(ws) and out[2] == "original"
    wait_for(lambda: not Path(out[0]).exists(), what="the copy removed after the step (by the scratch pool)")


def test_stroms_own_data_inside_the_workspace_is_hidden_from_steps(ws, sandbox):
    data = ws / ".strom-data"
    data.mkdir()
    (data / "appendonly.aof").write_text("run history\n")
    work = step_work(
        job_id="job1",
        step="step",
        attempt=1,
        kind="script",
        script='ls -A "$STROM_WORKSPACE/.strom-data" 2>&1 || true; cat data.txt',
    )
    lines = Lines()
    executor = LocalExecutor(LocalSettings(sandbox=sandbox, hide=(data,)))
    result = execute(executor, work, ws, lines, threading.Event())
    assert result.status is S.SUCCEEDED
    out = lines.out()
    assert out[-1] == "original" and not any("appendonly" in line for line in out)


def test_stroms_data_elsewhere_on_the_host_is_hidden_from_sandboxed_steps(ws):
    need("bwrap")
    data = Path(tempfile.mkdtemp(prefix=".strom-test-data-", dir=Path.home()))
    try:
        (data / "admin-token").write_text("s3cret-token\n")
        work = step_work(
            job_id="job1",
            step="step",
            attempt=1,
            kind="script",
            script=f"cat {data}/admin-token 2>&1 || true; ls -A {data} 2>&1 || true; echo listed",
        )
        lines = Lines()
        result = execute(
            LocalExecutor(LocalSettings(sandbox="bwrap", hide=(data,))), work, ws, lines, threading.Event()
        )
        assert result.status is S.SUCCEEDED
        assert lines.out()[-1] == "listed" and not any("s3cret" in line for line in lines.out())
        assert (data / "admin-token").read_text() == "s3cret-token\n"
    finally:
        shutil.rmtree(data)


def test_untrusted_steps_get_no_network_unless_allowed_and_need_bubblewrap(ws):
    need("bwrap")
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    probe = (
        f"python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), timeout=5)' "
        "&& echo reached || echo unreachable"
    )
    try:
        _, cut_off = run(ws, "bwrap", script=probe, untrusted=True, network=False)
        _, allowed = run(ws, "bwrap", script=probe, untrusted=True, network=True)
        _, trusted = run(ws, "bwrap", script=probe)
    finally:
        server.close()
    assert (cut_off.out(), allowed.out(), trusted.out()) == (["unreachable"], ["reached"], ["reached"])
    result, _ = run(ws, "copy", script="echo should not run", untrusted=True, network=False)
    assert result.status is S.FAILED
    assert result.error.startswith(
        "steps of untrusted pull requests run only in the full sandbox, which this worker "
        "cannot give: bubblewrap is not used here"
    )


def test_stroms_configuration_and_key_files_are_hidden_inside_and_outside_the_workspace(ws):
    need("bwrap")
    outside = Path(tempfile.mkdtemp(prefix=".strom-test-keys-", dir=Path.home()))
    try:
        (outside / "deploy_key").write_text("PRIVATE KEY\n")
        (ws / "strom.yaml").write_text("tokens: [{name: a, role: admin, token: t0ps3cret-t0ps3cret}]\n")
        work = step_work(
            job_id="job1",
            step="step",
            attempt=1,
            kind="script",
            script=f'echo "key=[$(cat {outside}/deploy_key)] config=[$(cat strom.yaml)]"; cat data.txt',
        )
        lines = Lines()
        executor = LocalExecutor(LocalSettings(sandbox="bwrap", hide=(outside / "deploy_key", ws / "strom.yaml")))
        assert execute(executor, work, ws, lines, threading.Event()).status is S.SUCCEEDED
        assert lines.out() == ["key=[] config=[]", "original"]
    finally:
        shutil.rmtree(outside)


def test_environment_of_a_step(ws, sandbox):
    work_env = {"CI": "true", "STROM_JOB_ID": "job1", "MY_VAR": "x y"}
    _result, lines = run(
        ws,
        sandbox,
        env=work_env,
        event={"kind": "push", "sha": "abc"},
        script='echo "$CI|$STROM_JOB_ID|$MY_VAR"; cat "$STROM_EVENT_PATH"; echo; echo "${SECRET_FROM_HOST:-unset}"',
    )
    out = lines.out()
    assert out[0] == "true|job1|x y"
    assert json.loads(out[1]) == {"kind": "push", "sha": "abc"}
    assert out[2] == "unset", "the host environment is not passed on, beyond a short list"


def test_args_are_positional_parameters_and_argv(ws, sandbox):
    _, lines = run(ws, sandbox, script='echo "$1|$2|$#"', args=("a b", "--flag"))
    assert lines.out() == ["a b|--flag|2"]
    _result, lines = run(ws, sandbox, source="scripts/hello.sh", args=("x",))
    assert (
        lines.out() == ["hello from /workspace/scripts/hello.sh with 1 args: x"]
        if sandbox == "bwrap"
        else lines.out()[0].endswith("with 1 args: x")
    )


def test_source_files_run_with_the_language_of_their_extension(ws):
    need("python3")
    result, lines = run(ws, source="scripts/tool.py", language="python", args=("1", "2"))
    assert result.status is S.SUCCEEDED and lines.out() == ["py-args ['1', '2']"]


def test_workdir_is_relative_to_the_workspace(ws, sandbox):
    _result, lines = run(ws, sandbox, script="basename $(pwd)", workdir="sub")
    assert lines.out() == ["sub"]


def test_secrets_are_masked_in_every_line_and_in_errors(ws):
    secret = "hunter2-very-secret"
    multi = "-----BEGIN KEY-----\nabc123def456\n-----END KEY-----"
    _result, lines = run(
        ws, env={"S": secret, "M": multi}, mask=(secret, multi), script='echo "pw=$S"; echo "$M"; echo "$S" >&2; exit 3'
    )
    text = "\n".join(t for _, t in lines.items)
    assert secret not in text and "abc123def456" not in text
    assert lines.out()[0] == "pw=***" and lines.out()[1:] == ["***", "***", "***"]
    assert lines.out("stderr") == ["***"]


def _marker_alive(marker: str) -> bool:
    for proc in psutil.process_iter(["cmdline"]):
        if proc.info["cmdline"] and marker in " ".join(proc.info["cmdline"]):
            try:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    return True
            except psutil.Error:
                pass
    return False


def _wait_gone(marker: str, deadline: float = 5.0) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if not _marker_alive(marker):
            return True
        time.sleep(0.05)
    return False


def test_a_timeout_kills_the_whole_process_tree(ws, sandbox):
    marker = f"sleep 6{time.time_ns() % 10**6:06d}"  # its own: tests may run side by side
    started = time.monotonic()
    result, lines = run(ws, sandbox, timeout=1.0, script=f"({marker}; echo child-done) &\n{marker}\necho never")
    took = time.monotonic() - started
    assert result.status is S.TIMED_OUT and result.error == "timed out after 1s"
    assert took < 4, took
    assert "never" not in lines.out()
    assert _wait_gone(marker), "children of a timed-out step must not survive it"


def test_a_process_that_ignores_sigterm_is_killed(ws, sandbox):
    result, _ = run(ws, sandbox, timeout=0.5, script='trap "" TERM\nwhile true; do sleep 0.1; done')
    assert result.status is S.TIMED_OUT


def test_cancel_kills_the_step(ws, sandbox):
    marker = f"sleep 7{time.time_ns() % 10**6:06d}"
    cancel = threading.Event()
    holder = {}

    def go():
        holder["result"] = run(ws, sandbox, cancel=cancel, script=f"echo up\n{marker}")[0]

    thread = threading.Thread(target=go)
    thread.start()
    end = time.monotonic() + 10
    while not _marker_alive(marker) and time.monotonic() < end:
        time.sleep(0.02)
    cancel.set()
    thread.join(10)
    assert holder["result"].status is S.CANCELLED
    assert _wait_gone(marker)


def test_background_processes_do_not_outlive_their_step(ws, sandbox):
    marker = f"sleep 5{time.time_ns() % 10**6:06d}"
    result, _ = run(ws, sandbox, script=f"{marker} &\necho done")
    assert result.status is S.SUCCEEDED
    assert _wait_gone(marker)


def test_a_missing_interpreter_fails_with_what_is_missing(ws):
    result, lines = run(ws, language="python", interpreter="python9.9", script="print(1)")
    assert result.status is S.FAILED
    assert result.error == "interpreter 'python9.9' is not installed on this machine (not found on PATH)"
    assert lines.out("strom") == [result.error]


def test_python(ws, sandbox):
    need("python3")
    script = "import sys, os\nprint('argv', sys.argv[1:])\nprint('cwd', os.getcwd() == os.environ['STROM_WORKSPACE'])\nprint('OUTPUT: {\"n\": 3}')"
    result, lines = run(ws, sandbox, language="python", script=script, args=("a",))
    assert result.status is S.SUCCEEDED, lines.items
    assert lines.out()[:2] == ["argv ['a']", "cwd True"] and result.output == {"n": 3}


def test_javascript(ws):
    need("node")
    script = "const n = await Promise.resolve(21);\nconsole.log(`OUTPUT: ${JSON.stringify({n: n * 2, args: process.argv.slice(2)})}`);"
    result, lines = run(ws, language="javascript", script=script, args=("x",))
    assert result.status is S.SUCCEEDED, lines.items
    assert result.output == {"n": 42, "args": ["x"]}


def test_typescript(ws):
    if not (shutil.which("bun") or shutil.which("deno")):
        need("bun")
    script = 'const x: number = 40;\nconsole.log(`OUTPUT: {"x": ${x + 2}}`);'
    result, lines = run(ws, language="typescript", script=script)
    assert result.status is S.SUCCEEDED, lines.items
    assert result.output == {"x": 42}


def test_go(ws):
    need("go")
    script = 'package main\n\nimport (\n\t"fmt"\n\t"os"\n)\n\nfunc main() { fmt.Println("OUTPUT: {\\"result\\": 42, \\"args\\":", len(os.Args)-1, "}") }\n'
    result, lines = run(ws, language="go", script=script, args=("a", "b"), timeout=120)
    assert result.status is S.SUCCEEDED, lines.items
    assert result.output == {"result": 42, "args": 2}


def _wheel(directory: Path) -> Path:
    path = directory / "strom_testpkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("strom_testpkg/__init__.py", "VALUE = 42\n")
        zf.writestr(
            "strom_testpkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: strom-testpkg\nVersion: 1.0\n"
        )
        zf.writestr(
            "strom_testpkg-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr("strom_testpkg-1.0.dist-info/RECORD", "")
    return path


def _need_bwrap():
    if not bwrap_available():
        if REQUIRE_ALL:
            pytest.fail("bubblewrap must work here (STROM_REQUIRE_ALL=1)")
        pytest.skip("bubblewrap does not work here")


def test_python_dependencies_go_into_a_throw_away_environment(ws):
    need("python3")
    _need_bwrap()
    (ws / "pkgs").mkdir()
    wheel = _wheel(ws / "pkgs")
    script = (
        "import strom_testpkg, sys\nprint('value', strom_testpkg.VALUE)\nprint('venv', sys.prefix != sys.base_prefix)"
    )
    result, lines = run(
        ws, "bwrap", language="python", dependencies=(f"/workspace/pkgs/{wheel.name}",), script=script, timeout=120
    )
    assert result.status is S.SUCCEEDED, lines.items
    assert lines.out()[-2:] == ["value 42", "venv True"]
    _check, check_lines = run(
        ws, language="python", script="import importlib.util as u\nprint(u.find_spec('strom_testpkg') is None)"
    )
    assert check_lines.out() == ["True"], "the package was not installed anywhere lasting"


def test_javascript_dependencies_are_installed_for_the_step(ws):
    need("node")
    _need_bwrap()
    if not shutil.which("bun"):
        need("npm")
    pkg = ws / "pkgs" / "strom-testpkg"
    pkg.mkdir(parents=True)
    (pkg / "package.json").write_text('{"name": "strom-testpkg", "version": "1.0.0", "main": "index.js"}')
    (pkg / "index.js").write_text("module.exports = { value: 42 };\n")
    script = 'import pkg from "strom-testpkg";\nconsole.log(`OUTPUT: {"value": ${pkg.value}}`);'
    result, lines = run(
        ws,
        "bwrap",
        language="javascript",
        dependencies=("file:/workspace/pkgs/strom-testpkg",),
        script=script,
        timeout=120,
    )
    assert result.status is S.SUCCEEDED, lines.items
    assert result.output == {"value": 42}


def test_a_summary_comes_from_the_summary_file_and_summary_lines_masked_and_capped(ws, sandbox):
    secret = "hunter2-very-secret"
    result, lines = run(
        ws,
        sandbox=sandbox,
        env={"S": secret},
        mask=(secret,),
        script='printf "## Plan\\n\\n3 to add, key %s\\n" "$S" >> "$STROM_SUMMARY"; echo "SUMMARY: - one more"; exit 4',
    )
    assert (result.status, result.exit_code) == (S.FAILED, 4), "a failed step keeps its summary"
    assert result.summary == "## Plan\n\n3 to add, key ***\n\n- one more"
    assert "SUMMARY: - one more" in lines.out(), "SUMMARY lines stay in the log too"
    big, _ = run(ws, sandbox=sandbox, script='head -c 200000 /dev/zero | tr "\\0" x > "$STROM_SUMMARY"')
    assert big.status is S.SUCCEEDED and len(big.summary) == 16 * 1024
    assert big.summary.endswith("… (summary cut at 16 KiB)")
    none, _ = run(ws, sandbox=sandbox, script="echo quiet")
    assert none.summary is None


def test_a_summary_file_replaced_by_a_link_or_a_fifo_is_not_read(ws, sandbox, tmp_path):
    private = tmp_path / "private.txt"
    private.write_text("host secret\n")
    private.chmod(0o644)
    linked, _ = run(ws, sandbox=sandbox, script=f'ln -sf {private} "$STROM_SUMMARY"; echo "SUMMARY: said"')
    assert linked.summary == "said"
    fifo, _ = run(ws, sandbox=sandbox, script='mkfifo "$STROM_SUMMARY"')
    assert fifo.status is S.SUCCEEDED and fifo.summary is None, "reading never waits on a pipe"
