"""Slow and stalled clients against `strom web`, as deployed (gunicorn, gevent workers) and as `strom up` runs it
(one process, a thread per connection, the scheduler and steps beside): they cost the others nothing.

100 connections trickle their headers or bodies a byte at a time while /api/health is timed; a
connection that stops sending is dropped after web.read_timeout; a chunked body over the cap is
answered 413 however it is sent.
"""

from __future__ import annotations

import http.client
import socket
import statistics
import threading
import time

import psutil
import pytest
import requests
from service_env import Procs, free_port, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(params=[(), ("--scheduler", "--steps", "2")], ids=["gunicorn", "single-process"])
def web(request, service_workspace, redis_url, tmp_path):
    (tmp_path / "logs").mkdir()
    procs = Procs(
        service_workspace(
            {
                ".strom/t.yaml": "tasks:\n  t: { flow: { s: { type: script, script: 'true' } } }\n"
                "triggers:\n  h: { type: webhook, name: h, task: t }\n"
            }
        ),
        redis_url,
        tmp_path / "logs",
    )
    port = free_port()
    procs.start(
        "web",
        "web",
        *request.param,
        STROM_LISTEN=f"127.0.0.1:{port}",
        STROM_WEB__READ_TIMEOUT="3s",
        STROM_LIMITS__WEBHOOK_BODY_SIZE="1MiB",
    )
    wait_for(lambda: _health(port) is not None, 30, 0.1, "the web server to serve")
    yield port, procs
    procs.stop_all()


def _health(port: int) -> float | None:
    start = time.monotonic()
    try:
        requests.get(f"http://127.0.0.1:{port}/api/health", timeout=5).raise_for_status()
    except requests.RequestException:
        return None
    return time.monotonic() - start


def _timings(port: int, count: int = 30) -> list[float]:
    return [_health(port) for _ in range(count)]


def _web_rss(procs: Procs) -> int:
    master = psutil.Process(procs.procs["web"].pid)
    return sum(p.memory_info().rss for p in [master, *master.children(recursive=True)])


class Trickle(threading.Thread):
    """Connections that send a request one byte every `every` seconds: half their headers, half a body."""

    def __init__(self, port: int, count: int, every: float = 0.5):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.sockets, self.every = [], every
        for i in range(count):
            sock = socket.create_connection(("127.0.0.1", port))
            if i % 2:  # its headers are complete, its body never will be
                sock.sendall(
                    b"POST /hooks/h HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 100000\r\n\r\n{"
                )
            else:
                sock.sendall(b"GET /api/health HTTP/1.1\r\nHo")
            self.sockets.append(sock)

    def run(self) -> None:
        while not self.stop.wait(self.every):
            for sock in self.sockets:
                try:
                    sock.send(b"a")
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        for sock in self.sockets:
            sock.close()


def test_a_hundred_slow_connections_do_not_delay_anyone_else(web):
    port, procs = web
    before = _timings(port)
    rss = _web_rss(procs)
    trickle = Trickle(port, 100)
    trickle.start()
    try:
        time.sleep(
            1
        )  # the hundred requests have arrived (their handlers ran up to their bodies); now they only trickle
        during = _timings(port, 60)
    finally:
        trickle.close()
    figures = (statistics.median(before), max(before), statistics.median(during), max(during))
    # most answers as quick as before; a server that waited on a slow connection would hold a request for the
    # trickle's 0.5 s or the read timeout's 3 s, not for the 0.1 s a busy 2-core machine may take once
    assert statistics.quantiles(during, n=10)[-1] - max(before) < 0.1, figures
    assert max(during) < 0.5, figures
    assert _web_rss(procs) - rss < 50 * 2**20


def test_a_stalled_connection_is_dropped_after_the_read_timeout(web):
    port, _ = web
    for start in (
        b"GET /api/health HTTP/1.1\r\nHo",  # stalls in its headers
        b"POST /hooks/h HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
    ):  # in its body
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(start)
        sock.settimeout(10)
        began = time.monotonic()
        try:
            while sock.recv(65536):  # an answer (408 or 400), then the close
                pass
        except ConnectionResetError:
            pass
        # after web.read_timeout (3s here) of silence; a stalled body is answered 408 first, and the connection
        # ends when the next read_timeout passes without the rest of that body
        assert 2.5 < time.monotonic() - began < 7.5, "dropped after web.read_timeout, not before, not never"
        sock.close()


def test_a_body_over_the_limit_is_413_whether_its_length_is_declared_or_it_is_chunked(web):
    port, _ = web
    declared = requests.post(f"http://127.0.0.1:{port}/hooks/h", data=b"x" * (2 * 2**20), timeout=30)
    assert declared.status_code == 413
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    chunk = b"y" * 65536
    connection.request(
        "POST",
        "/hooks/h",
        body=(chunk for _ in range(800)),
        encode_chunked=True,  # 50 MiB
        headers={"Content-Type": "application/json"},
    )
    answer = connection.getresponse()
    assert answer.status == 413 and b"larger than 1048576 bytes" in answer.read()


def test_a_chunked_sign_in_form_is_cut_off_at_the_body_cap(web):
    port, procs = web
    rss = _web_rss(procs)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    chunk = b"a=" + b"y" * 65534
    connection.request(
        "POST",
        "/login",
        body=(chunk for _ in range(1600)),
        encode_chunked=True,  # 100 MiB
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    answer = connection.getresponse()
    assert answer.status == 413, answer.read()[:300]
    assert _web_rss(procs) - rss < 30 * 2**20, "the form was not read into memory"


def test_a_body_that_trickles_in_is_cut_off_after_four_read_timeouts(web):
    port, _ = web
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /hooks/h HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    began, answer = time.monotonic(), b""
    sock.settimeout(0.1)
    while b"\r\n\r\n" not in answer and time.monotonic() - began < 30:
        sock.send(b" ")  # a byte a second: every read is within web.read_timeout (3s here)
        try:
            answer += sock.recv(65536)
        except TimeoutError:
            time.sleep(0.9)  # the client's pace, not synchronisation
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert 11.5 < time.monotonic() - began < 16, "four read timeouts (12 s), whatever the pace"
