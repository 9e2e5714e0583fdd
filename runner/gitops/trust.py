"""Who may run code: pull request authors with write access run at once; others wait for `/ok-to-test`.

A maintainer's `/ok-to-test` trusts one head commit of one pull request (or, with the workspace's
`sticky_trust`, every later commit of it too). Trust is recorded in Redis for 30 days.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..forges.event import PullRequest
from ..store import keys

if TYPE_CHECKING:
    from ..runs.service import Service
    from ..workspace_config import WorkspaceConfig

__all__ = ["STICKY", "TRUSTED_ASSOCIATIONS", "Trust"]

log = logging.getLogger("strom.intake")
TRUSTED_ASSOCIATIONS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})
STICKY = "*"
TRUST_TTL = 30 * 86400
ACCESS_TTL = 60  # seconds a forge's answer about someone's access is reused


class Trust:
    def __init__(self, service: Service, ws: WorkspaceConfig):
        self.service = service
        self.ws = ws
        self._writers: dict[str, bool] = {}

    def can_write(self, user: str, association: str | None) -> bool:
        """Whether `user` has write access: from the payload's association, else asked of the forge."""
        if association is not None:
            return association.upper() in TRUSTED_ASSOCIATIONS
        if not user:
            return False
        if user not in self._writers:
            self._writers[user] = self.ask_forge(f"write:{user.lower()}", lambda api: api.can_write(user))
        return self._writers[user]

    def can_write_strictly(self, user: str, association: str | None) -> bool:
        """Write access as the forge API tells it (GitHub's MEMBER means any member of the organisation
        and COLLABORATOR includes read-only ones): the payload's association only rules a user out.
        Without a forge API, the association is all there is."""
        if association is not None and association.upper() not in TRUSTED_ASSOCIATIONS:
            return False
        if not user:
            return False
        if self.service.forge_api(self.ws) is None:
            return association is not None
        return self.ask_forge(f"write:{user.lower()}", lambda api: api.can_write(user))

    def in_team(self, team: str, user: str) -> bool:
        return self.ask_forge(f"team:{team.lower()}:{user.lower()}", lambda api: api.in_team(team, user))

    def ask_forge(self, question: str, ask) -> bool:
        """A yes/no question about access, asked of the forge API and remembered for ACCESS_TTL seconds.
        No forge, or one that cannot answer, means "no", never "yes" (and that answer is not kept)."""
        key = keys.access(self.ws.name, question)
        known = self.service.redis.get(key)
        if known is not None:
            return known == "1"
        api = self.service.forge_api(self.ws)
        if api is None:
            return False
        try:
            answer = bool(ask(api))
        except Exception as exc:  # noqa: BLE001 - the forge cannot answer: not trusted, and said why
            log.warning("workspace %s: cannot check %s: %s", self.ws.name, question, exc)
            return False
        self.service.redis.set(key, "1" if answer else "0", ex=ACCESS_TTL)
        return answer

    def author_trusted(self, pr: PullRequest) -> bool:
        """On GitHub and GitLab a branch of the repository itself needs write access to push. Gitea and
        Forgejo let anyone who can read open one inside the repository (AGit), so there, and for forks,
        the author's own access decides."""
        if not pr.from_fork and self.ws.forge != "gitea":
            return True
        return self.can_write(pr.author, pr.author_association)

    def approved(self, number: int, sha: str) -> bool:
        redis = self.service.redis
        if redis.exists(keys.trust(self.ws.name, number, sha)):
            return True
        return self.ws.sticky_trust and bool(redis.exists(keys.trust(self.ws.name, number, STICKY)))

    def approve(self, number: int, sha: str, by: str) -> None:
        with self.service.redis.pipeline() as pipe:
            pipe.set(keys.trust(self.ws.name, number, sha), by, ex=TRUST_TTL)
            pipe.set(keys.trust(self.ws.name, number, STICKY), by, ex=TRUST_TTL)
            pipe.execute()
