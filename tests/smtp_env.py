"""A real SMTP server on localhost (aiosmtpd) that keeps what it receives, for notification tests."""

from __future__ import annotations

import email
import email.policy
import threading
from dataclasses import dataclass

from aiosmtpd.controller import Controller
from service_env import free_port, wait_for

__all__ = ["Mail", "SmtpServer"]


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: list[str]
    subject: str
    body: str
    content_type: str


class SmtpServer:
    def __init__(self):
        self.port = free_port()
        self.mails: list[Mail] = []
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        part = message.get_body(("plain", "html")) or message
        with self._lock:
            self.mails.append(
                Mail(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    str(message["Subject"]),
                    part.get_content(),
                    part.get_content_type(),
                )
            )
        return "250 OK"

    def url(self, to: str = "ops@example.com") -> str:
        """An Apprise mailto:// URL that sends here, plain SMTP."""
        return f"mailto://strom@127.0.0.1:{self.port}?to={to}&from=strom@example.com"

    def wait_for_mails(self, count: int, timeout: float = 15.0) -> list[Mail]:
        wait_for(lambda: len(self.mails) >= count, timeout, what=f"{count} mail(s)")
        with self._lock:
            return list(self.mails)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._controller.stop()
