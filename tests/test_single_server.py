"""The server of `strom web --single-process` and `strom up` (webhooks/serve.py): a thread per connection, at
most `web.connections` at once, and a process that exits when its web stops serving."""

from __future__ import annotations

import socket

import pytest
from service_env import wait_for

from runner.service.supervision import Health
from webhooks.serve import WebServer


def _hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


@pytest.fixture
def one_slot():
    server = WebServer(_hello, "127.0.0.1", 0, timeout=5, connections=1).start(Health("web"))
    yield server
    server.stop()


def _ask(conn: socket.socket) -> None:
    conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")


def test_a_connection_past_the_cap_waits_for_a_slot_and_is_then_served(one_slot):
    first = socket.create_connection(("127.0.0.1", one_slot.server_port), timeout=5)
    first.sendall(b"GET / HTTP/1.1\r\nHo")  # the rest of its headers still to come: it holds the only slot
    second = socket.create_connection(("127.0.0.1", one_slot.server_port), timeout=0.5)
    _ask(second)
    with pytest.raises(TimeoutError):
        second.recv(4096)  # no answer while the first connection holds the slot
    first.close()
    second.settimeout(5)
    assert second.recv(4096).startswith(b"HTTP/1.1 200"), "the freed slot serves the one that waited"
    second.close()


def test_the_process_is_told_to_exit_when_its_web_stops_serving():
    health = Health("server")
    server = WebServer(_hello, "127.0.0.1", 0, timeout=5, connections=4)

    def broken(poll_interval=0.5):
        raise OSError("the listening socket is gone")

    server.serve_forever = broken  # type: ignore[method-assign]
    server.start(health)
    wait_for(health.fatal.is_set, 5, 0.01, "the web's death to be fatal")
    assert health.fatal_reason == "loop web died: OSError: the listening socket is gone"
    server.stop()
    server.server_close()


@pytest.mark.parametrize("argv", [["127.0.0.1:1", "--steps", "3"], ["127.0.0.1:1", "--scheduler", "--steps", "-1"]])
def test_steps_need_the_scheduler_and_a_count_in_range(argv, capsys):
    from webhooks.serve import main

    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    assert "--steps takes N from 0 to 256, and only with --scheduler" in capsys.readouterr().err
