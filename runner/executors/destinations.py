"""Where `http` steps may connect: the public internet, and the private addresses an operator allows.

Loopback, link-local (cloud metadata services), private, shared and reserved addresses are refused
unless `http.allow` (CIDRs) in the server configuration lists them, so a step cannot reach Strom's
Redis, the web process or a metadata endpoint. Every address a name resolves to is checked
before connecting, and the connected socket's address once more, on every connection a request makes
(redirects included): a name that resolves to a public address when asked and a private one when
used gains nothing, and a refused address never sees a connection.
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache

__all__ = ["EVERYWHERE", "Destinations", "guarded_session"]


class Destinations:
    def __init__(self, allow: tuple[str, ...] = ()):
        self.allow = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in allow)

    def refusal(self, address: str) -> str | None:
        """Why a step may not connect to `address`, or None."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.allow):
            return None
        if not ip.is_global or ip.is_multicast:
            return (
                f"{ip} is not a public address (loopback, private, link-local or reserved); steps may reach it "
                f"only if the server configuration allows it (http: {{ allow: [{ip}/32] }})"
            )
        return None


EVERYWHERE = Destinations(("0.0.0.0/0", "::/0"))  # `strom run`: the steps are the user's own, on their machine


def _resolved_refusal(destinations: Destinations, host: str, port: int) -> str | None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return None  # the connection attempt reports the failure
    for info in infos:
        refusal = destinations.refusal(str(info[4][0]))  # an IP address: an inet socket address starts with it
        if refusal:
            return refusal
    return None


@lru_cache(maxsize=16)
def _adapter_class(destinations: Destinations):
    from requests.adapters import HTTPAdapter  # imported on the first request: processes that make none stay small
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
    from urllib3.exceptions import NewConnectionError

    class Guarded(HTTPConnection):
        def _new_conn(self):
            refusal = _resolved_refusal(destinations, self._dns_host, self.port)
            if refusal:  # before connecting: a refused address sees no connection (and no port scan)
                raise NewConnectionError(self, f"refused: {refusal}")
            sock = super()._new_conn()  # checked again once connected: the name may resolve anew
            refusal = destinations.refusal(sock.getpeername()[0])
            if refusal:
                sock.close()
                raise NewConnectionError(self, f"refused: {refusal}")
            return sock

    class GuardedTls(Guarded, HTTPSConnection):  # Guarded's check before HTTPSConnection's own connection
        pass

    class Pool(HTTPConnectionPool):
        ConnectionCls = Guarded

    class TlsPool(HTTPSConnectionPool):
        ConnectionCls = GuardedTls

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TlsPool}

    return Adapter


def guarded_session(destinations: Destinations, max_redirects: int = 5):
    """A requests session of its own for one step: no cookies from other steps, no proxies or .netrc from the
    worker's environment, every connection checked against `destinations`."""
    import requests

    session = requests.Session()
    session.trust_env = False
    session.max_redirects = max_redirects
    adapter = _adapter_class(destinations)()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
