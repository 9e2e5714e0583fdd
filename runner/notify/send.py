"""Deliver one message to one channel through Apprise, URL by URL, and say how each went.

Chat services get Markdown, mail gets plain text. Each URL is tried `attempts` times with
backoff, each attempt bounded by `timeout` (Apprise's connect and read timeouts). A failure is
reported with Apprise's reason, never raised; URLs are shown with their secrets hidden.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .config import Channel

__all__ = ["KINDS", "Delivery", "Message", "deliver", "deliver_to"]

KINDS = ("info", "success", "warning", "failure")
MAIL_PROTOCOLS = {"mailto", "mailtos"}
_ONE_AT_A_TIME = threading.Lock()


@dataclass(frozen=True)
class Message:
    title: str
    markdown: str
    text: str
    kind: str = "info"  # info | success | warning | failure (Apprise's notify types: colours, icons)

    def masked(self, masker) -> Message:
        return Message(masker.mask(self.title), masker.mask(self.markdown), masker.mask(self.text), self.kind)


@dataclass(frozen=True)
class Delivery:
    channel: str
    target: str  # the URL with its secrets hidden
    ok: bool
    error: str | None = None
    attempts: int = 1

    def to_dict(self) -> dict:
        return {
            "channel": self.channel,
            "target": self.target,
            "ok": self.ok,
            "error": self.error,
            "attempts": self.attempts,
        }


def _protocols(server) -> set[str]:
    out: set[str | None] = set()
    for value in (getattr(server, "protocol", None), getattr(server, "secure_protocol", None)):
        out.update(value if isinstance(value, (tuple, list)) else [value])
    return {p for p in out if p}


def _asset():
    import apprise

    return apprise.AppriseAsset(app_id="Strom", app_desc="Strom pipelines", app_url="")


def _servers(channel: Channel) -> tuple[list, list[Delivery]]:
    import apprise

    servers, bad = [], []
    for url in channel.urls:
        one = apprise.Apprise(asset=_asset())
        if one.add(url):
            servers += list(one.find())
        else:
            scheme = url.split("://", 1)[0] if "://" in url else "?"
            bad.append(
                Delivery(
                    channel.name,
                    f"{scheme}://…",
                    False,
                    f"not an Apprise URL Strom can use (scheme {scheme!r}); see the Apprise URL list",
                )
            )
    if channel.config_file is not None:
        config = apprise.AppriseConfig()
        config.add(str(channel.config_file))
        group = apprise.Apprise(asset=_asset())
        group.add(config)
        found = list(group.find(tag=list(channel.tags)) if channel.tags else group.find())
        if not found:
            bad.append(
                Delivery(
                    channel.name,
                    str(channel.config_file),
                    False,
                    "the Apprise config file has no URLs"
                    + (f" tagged {', '.join(channel.tags)}" if channel.tags else ""),
                )
            )
        servers += found
    return servers, bad


def deliver(
    channel: Channel,
    message: Message,
    *,
    timeout: float = 10.0,
    attempts: int = 3,
    backoff: float = 1.0,
    sleep: Callable[[float], object] = time.sleep,
) -> list[Delivery]:
    import apprise

    servers, results = _servers(channel)
    notify_type = {
        "success": apprise.NotifyType.SUCCESS,
        "warning": apprise.NotifyType.WARNING,
        "failure": apprise.NotifyType.FAILURE,
    }.get(message.kind, apprise.NotifyType.INFO)
    with _ONE_AT_A_TIME:  # Apprise logs to one shared logger: each failure's reason must be its own
        for server in servers:
            results.append(_deliver_one(server, channel, message, notify_type, timeout, attempts, backoff, sleep))
    return results


def _deliver_one(
    server, channel: Channel, message: Message, notify_type, timeout: float, attempts: int, backoff: float, sleep
) -> Delivery:
    import apprise

    server.socket_connect_timeout = server.socket_read_timeout = timeout
    mail = bool(_protocols(server) & MAIL_PROTOCOLS)
    body, body_format = (
        (message.text, apprise.NotifyFormat.TEXT) if mail else (message.markdown, apprise.NotifyFormat.MARKDOWN)
    )
    target = _target(server.url(privacy=True))
    attempts, error = max(1, attempts), None
    for attempt in range(1, attempts + 1):
        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
            try:
                ok = server.notify(body=body, title=message.title, notify_type=notify_type, body_format=body_format)
            except Exception as exc:  # noqa: BLE001 - a plugin bug must not stop the other URLs
                ok, error = False, f"{type(exc).__name__}: {exc}"
        if ok:
            return Delivery(channel.name, target, True, None, attempt)
        error = _reason(captured.getvalue()) or error or "Apprise reported a failure"
        if attempt < attempts:
            sleep(backoff * 2 ** (attempt - 1))
    return Delivery(channel.name, target, False, error, attempts)


def _target(url: str) -> str:
    """scheme://host[:port] only: Apprise's privacy mode leaves tokens in some URLs' paths (json://)."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}"


def _reason(log: str) -> str | None:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    return " ".join(lines[-2:])[:300] if lines else None


def deliver_to(settings, names, message: Message, send=None) -> list[Delivery]:
    """`message` to each named channel of `settings` (a NotifyConfig); an unknown name is a failed delivery."""
    send = send or deliver
    results: list[Delivery] = []
    for name in names:
        channel = settings.channels.get(name)
        if channel is None:
            results.append(Delivery(name, "-", False, f"channel {name!r} is not configured on this server"))
            continue
        results += send(channel, message, timeout=settings.timeout, attempts=settings.attempts)
    return results
