"""Steps that try to get out, run for real: with a root worker (steps get uids of their own), with a
worker that is a normal user, and in containers. Every attempt must fail, and the step must still
run to its end (so a test cannot pass because the step never ran).

Each escape prints ESCAPED-<what> when it works. What is tried: remounting /workspace, writing the
host outside /tmp (even a directory open to all), unmounting a hidden file and reading it, reading
/etc/shadow, Docker's socket, Strom's Redis (socket and TCP, password-protected as `strom up` runs
it), new namespaces, any capability, the worker's environment; then forking past the pids limit,
filling /tmp past its cap, allocating past the memory limit; `source:` links out of the workspace;
`http` steps aimed at loopback, link-local and private addresses, and cookies between steps.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import need
from service_env import free_port, redis_binary, wait_for
from step_work import step_work

from runner.container_config import DockerConfig
from runner.engine import StepStatus, StepWork
from runner.executors import LocalExecutor, LocalSettings, execute
from runner.executors.destinations import Destinations
from runner.executors.http import HttpExecutor
from runner.executors.sandbox import StepLimits, count_processes

S = StepStatus
NOBODY = 65534
CONFIG_SECRET = "t0ps3cret-config-token"
KEY_SECRET = "PRIVATE-KEY-material"
ENV_SECRET = "worker-env-secret-0451"

ESCAPES = r"""set +e
mount -o remount,rw /workspace 2>/dev/null && echo ESCAPED-remount-workspace
mount -o remount,rw,bind /workspace 2>/dev/null && echo ESCAPED-remount-bind-workspace
touch /workspace/escaped 2>/dev/null && echo ESCAPED-write-workspace
for d in /etc /usr /var /opt /root "$OPEN_DIR"; do touch "$d/strom-escape" 2>/dev/null && echo "ESCAPED-write-$d"; done
umount /workspace/strom.yaml 2>/dev/null; umount -l "$KEY_FILE" 2>/dev/null
grep -qs "$CONFIG_SECRET" /workspace/strom.yaml && echo ESCAPED-hidden-config
grep -qs "$KEY_SECRET" "$KEY_FILE" && echo ESCAPED-hidden-key
grep -qs "run history" "$DATA_DIR/appendonly.aof" && echo ESCAPED-data-dir
cat /etc/shadow >/dev/null 2>&1 && echo ESCAPED-shadow
for s in /var/run/docker.sock /run/docker.sock; do
  curl -s -m 3 --unix-socket "$s" http://docker/version >/dev/null 2>&1 && echo "ESCAPED-docker-$s"
done
python3 - <<'PY'
import os, socket
def ask(family, address):
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(3)
        s.connect(address)
        s.sendall(b"KEYS *\r\n")
        return s.recv(200)
    except OSError:
        return b""
tcp = ask(socket.AF_INET, ("127.0.0.1", int(os.environ["REDIS_PORT"])))
if tcp and not tcp.startswith(b"-NOAUTH"):
    print("ESCAPED-redis-tcp", tcp[:40])
unix = ask(socket.AF_UNIX, os.environ["REDIS_SOCKET"])
if unix and not unix.startswith(b"-NOAUTH"):
    print("ESCAPED-redis-socket", unix[:40])
PY
unshare -U true 2>/dev/null && echo ESCAPED-user-namespace
unshare -m true 2>/dev/null && echo ESCAPED-mount-namespace
grep -q '^CapEff:[[:space:]]*0000000000000000$' /proc/self/status || echo ESCAPED-capabilities
for p in /proc/[0-9]*; do grep -qsa "$ENV_HEAD$ENV_TAIL" "$p/environ" && echo "ESCAPED-environ-$p"; done
echo "ran as $(id -u)"
"""


@pytest.fixture(scope="module")
def host():
    """Strom's files on the host as a worker has them: a folder workspace holding the server configuration,
    a key file and a data directory elsewhere, a Redis like `strom up`'s, a directory anyone may write."""
    need("bwrap")
    need("curl")
    root = Path(tempfile.mkdtemp(prefix="strom-escapes-"))
    root.chmod(0o755)
    ws = root / "ws"
    ws.mkdir()
    (ws / "strom.yaml").write_text(f"tokens: [{{name: a, role: admin, token: {CONFIG_SECRET}}}]\n")
    (ws / "data.txt").write_text("original\n")
    keys, data = root / "keys", root / "data"
    for directory in (keys, data):
        directory.mkdir(mode=0o755)
    (keys / "deploy_key").write_text(KEY_SECRET + "\n")
    (keys / "deploy_key").chmod(0o644)  # readable by anyone on the host: only the sandbox hides it
    (data / "appendonly.aof").write_text("run history\n")
    (data / "appendonly.aof").chmod(0o644)
    open_dir = Path(tempfile.mkdtemp(prefix="strom-open-", dir="/var/tmp"))
    open_dir.chmod(0o1777)
    port, socket_path = free_port(), data / "redis.sock"
    redis = subprocess.Popen(
        [
            redis_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--unixsocket",
            str(socket_path),
            "--unixsocketperm",
            "777",
            "--requirepass",
            "s3cret-redis-pass",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(socket_path.exists, 10, what="redis-server")
    env = {
        "OPEN_DIR": str(open_dir),
        "KEY_FILE": str(keys / "deploy_key"),
        "DATA_DIR": str(data),
        "CONFIG_SECRET": CONFIG_SECRET,
        "KEY_SECRET": KEY_SECRET,
        "ENV_HEAD": ENV_SECRET[:9],
        "ENV_TAIL": ENV_SECRET[9:],
        "REDIS_PORT": str(port),
        "REDIS_SOCKET": str(socket_path),
    }
    os.environ["STROM_ESCAPE_CANARY"] = ENV_SECRET  # in the worker's environment, never passed to steps
    try:
        yield {"ws": ws, "hide": (ws / "strom.yaml", keys / "deploy_key", data), "env": env, "open": open_dir}
    finally:
        os.environ.pop("STROM_ESCAPE_CANARY", None)
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(open_dir, ignore_errors=True)


def _step(script: str, env: dict, **fields) -> StepWork:
    return step_work(job_id="escape", step="try", attempt=1, kind="script", script=script, env=env, **fields)


def _run_local(host, script: str, limits: StepLimits | None = None, **fields) -> tuple[str, list[str], str]:
    lines: list[tuple[str, str]] = []
    sink = type("Sink", (), {"line": lambda self, stream, text: lines.append((stream, text))})()
    settings = LocalSettings(sandbox="bwrap", hide=host["hide"], cache_dir=None, limits=limits or StepLimits())
    result = execute(LocalExecutor(settings), _step(script, host["env"], **fields), host["ws"], sink, threading.Event())
    return result.status.value, [text for stream, text in lines if stream == "stdout"], result.error or ""


def _as_normal_user(function):
    """`function()` in a child process of this one that has become uid/gid 65534 (a worker started as a normal
    user): its result, through a pipe."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no threads of the parent's run here, only this one
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.environ["HOME"] = "/tmp"
            payload = json.dumps({"ok": function()})
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the test with it
            payload = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        with os.fdopen(write, "w") as out:
            out.write(payload)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        data = json.loads(answer.read() or '{"error": "the child said nothing"}')
    os.waitpid(pid, 0)
    assert "error" not in data, data.get("error")
    return data["ok"]


WORKERS = ["root", "normal-user"]


def _in(worker: str, function):
    if worker == "root":
        if os.geteuid() != 0:
            pytest.skip("this machine runs the tests as a normal user: the root worker is not tried")
        return function()
    if os.geteuid() != 0:
        return function()  # the tests themselves run as a normal user
    return _as_normal_user(function)


@pytest.mark.parametrize("worker", WORKERS)
def test_no_escape_works_from_a_sandboxed_step(host, worker):
    status, out, error = _in(worker, lambda: list(_run_local(host, ESCAPES)))
    assert status == "succeeded", error
    assert [line for line in out if "ESCAPED" in line] == [], out
    expected_uid = NOBODY if worker == "normal-user" else None
    ran_as = int(out[-1].removeprefix("ran as "))
    assert ran_as != 0 and (expected_uid is None or ran_as == expected_uid), out[-1]
    assert not any(p.exists() for p in (host["open"] / "strom-escape", Path("/etc/strom-escape"))), (
        "nothing was written outside the step's /tmp"
    )
    assert (host["ws"] / "strom.yaml").read_text().count(CONFIG_SECRET) == 1 and not (host["ws"] / "escaped").exists()


@pytest.mark.parametrize("worker", WORKERS)
def test_untrusted_steps_get_the_same_sandbox_and_no_network(host, worker):
    script = ESCAPES + "curl -s -m 3 http://127.0.0.1:$REDIS_PORT/ >/dev/null 2>&1; [ $? = 7 ] || echo ESCAPED-net\n"
    status, out, error = _in(worker, lambda: list(_run_local(host, script, untrusted=True, network=False)))
    assert status == "succeeded", error
    assert [line for line in out if "ESCAPED" in line] == [], out


LIMITS = StepLimits(processes=64, memory=256 * 1024**2, tmp=8 * 1024**2, shm=4 * 1024**2)
BOUNDED = r"""set +e
python3 - <<'PY'
import os, signal, time
children = []
for _ in range(200):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    children.append(pid)
print(f"processes={len(children) + 1}")
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
PY
dd if=/dev/zero of=/tmp/fill bs=1M count=32 2>/dev/null
echo "tmp=$(du -k /tmp/fill | cut -f1)"
dd if=/dev/zero of=/dev/shm/fill bs=1M count=32 2>/dev/null
echo "shm=$(du -k /dev/shm/fill | cut -f1)"
python3 -c 'b = bytearray(512 * 1024 * 1024); print("allocated")' 2>/dev/null || echo "memory=refused"
echo done
"""


@pytest.mark.parametrize("worker", WORKERS)
def test_a_step_is_held_to_its_process_tmp_and_memory_limits(host, worker):
    running = count_processes()
    status, out, error = _in(worker, lambda: list(_run_local(host, BOUNDED, limits=LIMITS)))
    assert status == "succeeded", error
    figures = dict(line.split("=", 1) for line in out if "=" in line)
    # a uid of the step's own: 64 processes; sharing the worker's uid: 64 more than the machine ran at its start
    cap = 64 if worker == "root" else 64 + max(running, count_processes()) + 16
    assert 32 < int(figures["processes"]) <= min(cap, 199), out
    assert 4 * 1024 < int(figures["tmp"]) <= 8 * 1024 and 2 * 1024 < int(figures["shm"]) <= 4 * 1024, out
    assert figures["memory"] == "refused" and "allocated" not in out, out
    assert out[-1] == "done"


def test_sources_that_link_out_of_the_workspace_are_refused(host, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "cfg.go").symlink_to(host["env"]["KEY_FILE"])
    (ws / "tool.sh").symlink_to(host["env"]["KEY_FILE"])
    (ws / "inner.sh").write_text("echo inner\n")
    (ws / "alias.sh").symlink_to("inner.sh")
    for source, language, message in (
        ("cfg.go", "go", "is a symbolic link"),
        ("tool.sh", "shell", "does not exist in the workspace"),
    ):
        lines: list = []
        sink = type("Sink", (), {"line": lambda self, stream, text: lines.append(text)})()
        work = step_work(job_id="j", step="s", attempt=1, kind="script", source=source, language=language)
        result = execute(
            LocalExecutor(LocalSettings(sandbox="bwrap", cache_dir=None)), work, ws, sink, threading.Event()
        )
        assert result.status is S.FAILED and message in result.error, result.error
        assert not any(KEY_SECRET in line for line in lines)
    work = step_work(job_id="j", step="s", attempt=1, kind="script", source="alias.sh")
    lines = []
    sink = type("Sink", (), {"line": lambda self, stream, text: lines.append(text)})()
    result = execute(LocalExecutor(LocalSettings(sandbox="bwrap", cache_dir=None)), work, ws, sink, threading.Event())
    assert result.status is S.SUCCEEDED and lines == ["inner"], "a link inside the workspace is fine"


# ------------------------------------------------------------------------------------------ http steps


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list] = []

    def do_GET(self):
        type(self).seen.append((self.path, self.headers.get("Cookie")))
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", "session=trusted-run-cookie; Path=/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass


@pytest.fixture
def recorder():
    _Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def _http(executor, url: str, **fields):
    lines: list = []
    sink = type("Sink", (), {"line": lambda self, stream, text: lines.append(text)})()
    work = step_work(job_id="j", step="call", attempt=1, kind="http", url=url, **fields)
    return execute(executor, work, Path("."), sink, threading.Event())


def test_http_steps_cannot_reach_loopback_link_local_or_private_addresses(recorder):
    executor = HttpExecutor(Destinations())
    for url, address in (
        (f"http://127.0.0.1:{recorder}/admin", "127.0.0.1"),
        (f"http://localhost:{recorder}/admin", "127.0.0.1"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://10.1.2.3:6379/", "10.1.2.3"),
        ("http://[::1]:6379/", "::1"),
        ("http://0.0.0.0:6379/", "0.0.0.0"),
    ):
        result = _http(executor, url)
        assert result.status is S.FAILED, url
        assert f"failed: {address} is not a public address" in result.error, result.error
    assert _Recorder.seen == [], "a refused address never sees a connection"
    untrusted = _http(
        HttpExecutor(Destinations(("127.0.0.0/8",))), f"http://127.0.0.1:{recorder}/x", untrusted=True, network=False
    )
    assert untrusted.status is S.FAILED and "may not use the network" in untrusted.error


def test_an_allowed_private_address_is_reached_and_no_cookie_passes_between_steps(recorder):
    executor = HttpExecutor(Destinations(("127.0.0.0/8",)))
    first = _http(executor, f"http://127.0.0.1:{recorder}/first")
    second = _http(executor, f"http://127.0.0.1:{recorder}/second")
    assert (first.status, second.status) == (S.SUCCEEDED, S.SUCCEEDED)
    assert _Recorder.seen == [("/first", None), ("/second", None)], "each step has a session of its own"


# ------------------------------------------------------------------------------------------ containers


def test_no_escape_works_from_a_container_step(host):
    from docker_env import IMAGE, busybox_image, docker_client

    from runner.executors.docker import DockerExecutor

    client = docker_client()
    busybox_image(client)
    settings = DockerConfig(
        network="none", pull="never", runner_image=IMAGE, pids=64, memory=256 * 1024**2, tmp=8 * 1024**2
    )
    script = r"""set +e
touch /workspace/escaped 2>/dev/null && echo ESCAPED-write-workspace
mount -o remount,rw /workspace 2>/dev/null && echo ESCAPED-remount
grep -qs "$CONFIG_SECRET" /workspace/strom.yaml && echo ESCAPED-hidden-config
umount /workspace/strom.yaml 2>/dev/null; grep -qs "$CONFIG_SECRET" /workspace/strom.yaml && echo ESCAPED-unmounted
touch /etc/escaped /strom/escaped 2>/dev/null && echo ESCAPED-write-root
ls /var/run/docker.sock /run/docker.sock >/dev/null 2>&1 && echo ESCAPED-docker-socket
grep -q '^CapEff:[[:space:]]*0000000000000000$' /proc/self/status || echo ESCAPED-capabilities
( for i in $(seq 200); do sleep 30 & done ) 2>/dev/null
set -- /proc/[0-9]*
echo "processes=$#"
for p in /proc/[0-9]*; do [ "${p#/proc/}" = "$$" ] || kill -9 "${p#/proc/}" 2>/dev/null; done
dd if=/dev/zero of=/tmp/fill bs=1M count=32 2>/dev/null
echo "tmp=$(du -k /tmp/fill | cut -f1)"
echo "ran as $(id -u)"
"""
    for untrusted in (False, True):
        lines: list = []
        sink = type("Sink", (), {"line": lambda self, stream, text: lines.append((stream, text))})()
        executor = DockerExecutor(settings, "escape-worker", hide=host["hide"])
        work = step_work(
            job_id="escape",
            step="try",
            attempt=1,
            kind="script",
            runner="docker",
            script=script,
            env=host["env"],
            untrusted=untrusted,
            network=not untrusted,
        )
        result = execute(executor, work, host["ws"], sink, threading.Event())
        out = [text for stream, text in lines if stream == "stdout"]
        assert result.status is S.SUCCEEDED, (result.error, lines)
        assert [line for line in out if "ESCAPED" in line] == [], out
        figures = dict(line.split("=", 1) for line in out if "=" in line)
        assert 32 < int(figures["processes"]) <= 64 and 4 * 1024 < int(figures["tmp"]) <= 8 * 1024, out
        assert out[-1] == f"ran as {NOBODY}"
    root = DockerExecutor(DockerConfig(network="none", pull="never", runner_image=IMAGE, user="0:0"))
    for untrusted, uid in ((False, 0), (True, NOBODY)):
        lines = []
        sink = type("Sink", (), {"line": lambda self, stream, text: lines.append(text)})()
        work = step_work(
            job_id="escape",
            step="who",
            attempt=1,
            kind="script",
            runner="docker",
            script="id -u",
            untrusted=untrusted,
            network=False,
        )
        assert execute(root, work, host["ws"], sink, threading.Event()).status is S.SUCCEEDED
        assert lines[-1] == str(uid), "untrusted steps never run as root, whatever docker.user says"
