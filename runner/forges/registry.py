"""The forges Strom takes webhooks from, by name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from .errors import ForgeError
from .event import RepoEvent
from .gitea import GITEA
from .github import GITHUB
from .gitlab import GITLAB

__all__ = ["ALIASES", "FORGES", "Forge", "UnknownForge", "parser_for"]


class Forge(Protocol):
    name: str

    def delivery_id(self, headers: Mapping[str, str]) -> str | None: ...

    def event_name(self, headers: Mapping[str, str]) -> str: ...

    def repository(self, headers: Mapping[str, str], body: bytes) -> str | None: ...

    def verify_headers(self, headers: Mapping[str, str]) -> str:
        """What a signed request carries (its signature or token); VerificationError when it is missing."""

    def verify(self, headers: Mapping[str, str], body: bytes, secrets: Sequence[str]) -> None: ...

    def parse(self, headers: Mapping[str, str], body: bytes) -> RepoEvent: ...


FORGES: dict[str, Forge] = {"github": GITHUB, "gitlab": GITLAB, "gitea": GITEA}
ALIASES = {"forgejo": "gitea"}


class UnknownForge(ForgeError, KeyError):
    """A forge name Strom does not know (also a KeyError, as for a missing dict key)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def parser_for(name: str) -> Forge:
    """The forge called `name` (case-insensitive; "forgejo" is Gitea)."""
    key = (name or "").strip().lower()
    key = ALIASES.get(key, key)
    if key not in FORGES:
        known = ", ".join([*FORGES, *ALIASES])
        raise UnknownForge(f"unknown forge {name!r}: Strom takes webhooks from {known}")
    return FORGES[key]
