"""Errors of forge intake; each carries the HTTP status a receiver answers with."""

from __future__ import annotations

from ..errors import StromError

__all__ = ["ForgeError", "PayloadError", "UnknownRepository", "VerificationError"]


class ForgeError(StromError):
    status_hint = 400


class VerificationError(ForgeError):
    """The request is not signed, or not signed with a secret Strom knows."""

    status_hint = 401


class PayloadError(ForgeError):
    """The body is not what the forge sends for this event."""

    status_hint = 400


class UnknownRepository(ForgeError):
    status_hint = 404
