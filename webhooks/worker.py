"""The gunicorn worker class of `strom web`: gevent, so a connection costs a greenlet, not a thread.

A client that sends its request slowly, or stops, holds nothing anyone else needs: headers must
arrive within `web.read_timeout` (passed as gunicorn's keep-alive, which also ends idle
connections), and any read or write that waits longer than that ends the connection. Long log
streams are not affected: they write at least every heartbeat.
"""

from __future__ import annotations

from gunicorn.workers.ggevent import GeventWorker

__all__ = ["StromWorker"]


class StromWorker(GeventWorker):
    def handle(self, listener, client, addr):
        client.settimeout(float(self.cfg.keepalive or 20))
        super(GeventWorker, self).handle(listener, client, addr)  # gunicorn's own would make the socket block forever
