"""What each role may do."""

from __future__ import annotations

__all__ = ["PERMISSIONS"]

PERMISSIONS = {
    "viewer": frozenset({"read"}),
    "operator": frozenset({"read", "run"}),
    "approver": frozenset({"read", "approve"}),
    "admin": frozenset({"read", "run", "approve", "admin"}),
}
