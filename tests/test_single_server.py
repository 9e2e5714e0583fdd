"""The server of `strom web --single-process` and `strom up` (webhooks/serve.py): a thread per connection, at
most `web.connections` at once, and a process that exits when its web stops serving."""

from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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


VALID = b"POST /hooks/h?x=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def _mutated(data: st.DataObject) -> bytes:
    raw = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(raw)))
        kind = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = data.draw(st.binary(min_size=1, max_size=64) | st.sampled_from([b"\r\n", b":", b" ", b"\x00", b"%"]))
        if kind == "insert":
            raw[at:at] = piece
        elif kind == "delete":
            del raw[at : at + len(piece)]
        else:
            raw[at : at + len(piece)] = piece
    return bytes(raw)


def _exchange(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(raw + b"\r\n\r\n")
        conn.shutdown(socket.SHUT_WR)  # all there is: the server never waits out a read timeout
        return b"".join(iter(lambda: conn.recv(65536), b""))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_request_head_a_stranger_sends_gets_a_5xx_or_stops_the_server(one_slot, data):
    raw = data.draw(
        st.one_of(
            st.builds(_mutated, st.data()),
            st.binary(max_size=2048),
            st.builds(
                lambda method, path, version, headers: (
                    method + b" " + path + b" " + version + b"\r\n" + b"".join(headers)
                ),
                st.sampled_from([b"GET", b"POST", b"PUT", b"\xff", b"G ET", b""]),
                st.binary(max_size=300),
                st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/9.9", b"HTTP/1.x", b"HTTP/01.1", b""]),
                st.lists(st.binary(max_size=200).map(lambda h: h + b"\r\n"), max_size=120),
            ),
        )
    )
    answer = _exchange(one_slot.server_port, raw)
    status = answer.split(b"\r\n", 1)[0]
    assert not status.startswith(b"HTTP/1.1 5") and b"Error code: 5" not in answer, (raw[:200], answer[:300])
    assert _exchange(one_slot.server_port, b"GET / HTTP/1.1\r\nHost: x").startswith(b"HTTP/1.1 200"), "still serving"
