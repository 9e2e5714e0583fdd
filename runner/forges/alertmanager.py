"""Prometheus Alertmanager's webhook notifications (format version 4), read into one checked record per alert.

Every field a stranger sends is bounded here (counts, sizes, types); what a run sees as `event` is
the alert's `status`, `fingerprint`, `labels`, `annotations`, `starts_at`, `ends_at`, `generator_url`,
and the notification's `receiver`, `external_url`, `group_key`, `group_labels` and `common_labels`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from .errors import PayloadError

__all__ = ["MAX_ALERTS", "alert_delivery", "read_notification"]

MAX_ALERTS = 1000
MAX_LABELS = 100
MAX_VALUE = 4096
MAX_URL = 4096
_STATUSES = ("firing", "resolved")


def _bad(path: str, why: str) -> PayloadError:
    return PayloadError(f"the Alertmanager notification's {path} {why}")


def _text(value: Any, path: str, limit: int, required: bool = False) -> str:
    if value is None or value == "":
        if required:
            raise _bad(path, "is missing")
        return ""
    if not isinstance(value, str):
        raise _bad(path, f"is a {type(value).__name__}, not a string")
    if len(value) > limit:
        raise _bad(path, f"is longer than {limit} characters")
    if "\x00" in value:
        raise _bad(path, "contains a NUL character")
    return value


def _labels(value: Any, path: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _bad(path, f"is a {type(value).__name__}, not an object")
    if len(value) > MAX_LABELS:
        raise _bad(path, f"has more than {MAX_LABELS} entries")
    return {_text(k, f"{path} name", 200, True): _text(v, f"{path}.{str(k)[:40]}", MAX_VALUE) for k, v in value.items()}


def _fingerprint(alert: Mapping[str, Any], labels: dict[str, str], path: str) -> str:
    """Alertmanager's own fingerprint, or (from a sender that has none) one made from the labels alike."""
    given = _text(alert.get("fingerprint"), f"{path}.fingerprint", 128)
    if given:
        return given
    return hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]


def read_notification(body: Any) -> list[dict[str, Any]]:
    """The notification's alerts, each a checked dict. Raises PayloadError naming the first field that does not fit."""
    if not isinstance(body, Mapping):
        raise PayloadError("the body is not an Alertmanager notification: send its JSON object (webhook_configs)")
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise _bad("alerts", "is missing or not a list")
    if len(alerts) > MAX_ALERTS:
        raise _bad("alerts", f"has more than {MAX_ALERTS} entries")
    shared = {
        "receiver": _text(body.get("receiver"), "receiver", 200),
        "external_url": _text(body.get("externalURL"), "externalURL", MAX_URL),
        "group_key": _text(body.get("groupKey"), "groupKey", MAX_VALUE),
        "group_labels": _labels(body.get("groupLabels"), "groupLabels"),
        "common_labels": _labels(body.get("commonLabels"), "commonLabels"),
    }
    out = []
    for index, alert in enumerate(alerts):
        path = f"alerts[{index}]"
        if not isinstance(alert, Mapping):
            raise _bad(path, f"is a {type(alert).__name__}, not an object")
        status = alert.get("status")
        if status not in _STATUSES:
            raise _bad(f"{path}.status", f"is {str(status)[:20]!r}, not firing or resolved")
        labels = _labels(alert.get("labels"), f"{path}.labels")
        out.append(
            {
                "status": status,
                "fingerprint": _fingerprint(alert, labels, path),
                "labels": labels,
                "annotations": _labels(alert.get("annotations"), f"{path}.annotations"),
                "starts_at": _text(alert.get("startsAt"), f"{path}.startsAt", 64),
                "ends_at": _text(alert.get("endsAt"), f"{path}.endsAt", 64),
                "generator_url": _text(alert.get("generatorURL"), f"{path}.generatorURL", MAX_URL),
                **shared,
            }
        )
    return out


def alert_delivery(trigger: str, alert: Mapping[str, Any]) -> str:
    """What makes an alert's notification new: its fingerprint, state and start. Alertmanager repeats a firing
    alert (repeat_interval, other alerts of its group changing) with all three alike: one run, not one per repeat.
    A resolved alert that fires again starts anew, so it runs again."""
    identity = f"{alert['fingerprint']}|{alert['status']}|{alert['starts_at']}"
    return f"alert:{trigger}:{hashlib.sha256(identity.encode()).hexdigest()[:32]}"
