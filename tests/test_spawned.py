"""Children the web process starts with posix_spawn: pipes, exit statuses and inherited descriptors,
plain and under gevent (where waiting lets other greenlets run)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from webhooks.receivers.spawned import Spawned


def test_pipes_statuses_and_nothing_inherited_but_the_three_pipes(tmp_path):
    leaked = open(tmp_path / "held-open", "w")  # held open, and inheritable, while the child starts
    os.set_inheritable(leaked.fileno(), True)
    try:
        child = Spawned(["sh", "-c", "cat; echo err >&2; ls /proc/self/fd; exit 3"], {"PATH": os.environ["PATH"]})
        child.stdin.write(b"hello\n")
        child.stdin.close()
        out, err = child.stdout.read(), child.stderr.read()
        assert child.wait() == 3 and child.wait() == 3
    finally:
        leaked.close()
    lines = out.decode().splitlines()
    assert lines[0] == "hello" and err == b"err\n"
    assert sorted(int(fd) for fd in lines[1:]) == [0, 1, 2, 3], "ls's own directory is 3; nothing else came along"
    killed = Spawned(["sleep", "30"], {"PATH": os.environ["PATH"]})
    os.kill(killed.pid, signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL


def test_under_gevent_waiting_lets_others_run():
    script = textwrap.dedent(
        """
        from gevent import monkey; monkey.patch_all()
        import os, gevent
        from webhooks.receivers.spawned import Spawned
        ticks = []
        ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.01)) for _ in range(20)])
        child = Spawned(["sh", "-c", "read line; echo got $line; sleep 0.3; exit 7"], {"PATH": os.environ["PATH"]})
        child.stdin.write(b"ping\\n"); child.stdin.close()
        assert child.stdout.readline() == b"got ping\\n"
        assert child.wait() == 7 and len(ticks) >= 10, ticks
        big = os.urandom(3 << 20)  # far more than a pipe holds: written in parts, all of it arrives
        echo = Spawned(["cat"], {"PATH": os.environ["PATH"]})
        def feed():
            for i in range(0, len(big), 65536):
                echo.stdin.write(big[i : i + 65536]); echo.stdin.flush()
            echo.stdin.close()
        feeder = gevent.spawn(feed)
        assert echo.stdout.read() == big and echo.wait() == 0
        feeder.join()
        quick = Spawned(["true"], {"PATH": os.environ["PATH"]})
        gevent.sleep(0.2)  # it has exited, and the loop has reaped it, before anyone waits
        assert quick.wait() == 0
        print("ok")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "ok", proc.stderr
