"""The forge payload fixtures (tests/fixtures/forges) as test cases: the headers each forge sends
with each file (from the fixtures' READMEs) and the fields Strom reads from it."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "forges"
SECRET = "It's a Secret to Everybody"
OLD_SECRET = "the secret before rotation"
ZERO = "0" * 40
DELIVERY = {
    "github": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    "gitlab": "9b1e7a5c-2f4d-4e1b-8a6e-3c5d7f9a1b2c",  # Idempotency-Key
    "gitea": "f6266f16-1bf3-46a5-9ea4-602e06ead473",
}
GITLAB_EVENT_UUID = "0f5c3c6e-66c1-4b0a-9d3e-5e7f0e2d4a11"


@dataclass(frozen=True)
class Case:
    path: str
    event: str  # X-GitHub-Event, X-Gitlab-Event or X-Gitea-Event
    kind: str
    repo: str = ""
    actor: str = ""
    ignored: str | None = None
    branch: str | None = None
    tag: str | None = None
    sha: str | None = None
    before: str | None = None
    changed_files: tuple[str, ...] | None = None
    pr: tuple | None = None  # (number, action, from_fork, head_sha)
    comment: str | None = None  # the start of the comment's body
    event_type: str | None = None  # Gitea's X-Gitea-Event-Type, when it differs from the event

    @property
    def forge(self) -> str:
        return self.path.split("/")[0]

    @property
    def forgejo(self) -> bool:
        return "forgejo" in self.path

    def body(self) -> bytes:
        return (FIXTURES / self.path).read_bytes()

    def __str__(self) -> str:
        return self.path


def _other(path, event, repo, actor, ignored=None):
    forge = {"github": "GitHub", "gitlab": "GitLab", "gitea": "Gitea"}[path.split("/")[0]]
    return Case(path, event, "other", repo, actor, ignored or f"Strom does not act on {forge} {event!r} events")


HELLO = "Codertocat/Hello-World"
EC26 = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
CREATE_IGNORED = "GitHub 'create' events are ignored: the push event for the same ref is used"
DELETE_IGNORED = "GitHub 'delete' events are ignored: the push event for the same ref is used"
ISSUE_COMMENT = "comment on an issue, not a pull request"

GITHUB_CASES = [
    Case("github/ping.json", "ping", "ping", "Octocoders/Hello-World", "Codertocat"),
    Case("github/ping.with-app_id.json", "ping", "ping", "Octocoders/Hello-World", "Codertocat"),
    Case("github/ping.with-organization.json", "ping", "ping", "", "Codertocat"),
    Case(
        "github/push.branch.json",
        "push",
        "push",
        "woodpecker-ci/woodpecker",
        "6543",
        branch="main",
        sha="366701fde727cb7a9e7f21eb88264f59f6f9b89c",
        before="2f780193b136b72bfea4eeb640786a8c4450c7a2",
        changed_files=("pipeline/shared/replace_secrets.go", "pipeline/shared/replace_secrets_test.go"),
    ),
    Case(
        "github/push.branch-create.json",
        "push",
        "push",
        HELLO,
        "Codertocat",
        branch="master",
        sha="6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        before=ZERO,
        changed_files=("README.md",),
    ),
    Case(
        "github/push.force.json",
        "push",
        "push",
        "6543/oxiduct",
        "6543",
        branch="main",
        sha="f7220f1f753260bf6f1c533357c70213e9fd4abe",
        before="5ea737297f2e2e88f4cdf796e72cbcb12d40fd9c",
    ),
    Case(
        "github/push.tag-create.json",
        "push",
        "tag",
        "6543/test_ci_tmp",
        "6543",
        tag="the-tag-v1",
        sha="67012991d6c69b1c58378346fca366b864d8d1a1",
        before=ZERO,
    ),
    Case(
        "github/push.tag-delete.json",
        "push",
        "delete",
        HELLO,
        "Codertocat",
        tag="simple-tag",
        before="6113728f27ae82c7b1a177c8d03f9e96e0adf246",
    ),
    Case(
        "github/push.branch-delete.json",
        "push",
        "delete",
        "bradrydzewski/drone-test-go",
        "bradrydzewski",
        branch="feature-branch",
        before="d2b75aa7797ec26b088fa2dd527e9d2c052fcedd",
    ),
    Case(
        "github/pull_request.opened.json",
        "pull_request",
        "pull_request",
        HELLO,
        "Codertocat",
        branch="changes",
        sha=EC26,
        pr=(2, "opened", False, EC26),
    ),
    Case(
        "github/pull_request.synchronize.json",
        "pull_request",
        "pull_request",
        HELLO,
        "Codertocat",
        branch="changes",
        sha=EC26,
        before="f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
        pr=(2, "synchronize", False, EC26),
    ),
    Case(
        "github/pull_request.reopened.json",
        "pull_request",
        "pull_request",
        HELLO,
        "Codertocat",
        branch="changes",
        sha=EC26,
        pr=(2, "reopened", False, EC26),
    ),
    Case(
        "github/pull_request.closed.json",
        "pull_request",
        "pull_request",
        HELLO,
        "Codertocat",
        branch="changes",
        sha=EC26,
        pr=(2, "closed", False, EC26),
    ),
    Case(
        "github/pull_request.closed.merged.json",
        "pull_request",
        "pull_request",
        "anbraten/test-ready-release-go",
        "anbraten",
        branch="anbraten-patch-3",
        sha="c88b9ee719285134957cbc698c9b7ef9b78007bf",
        pr=(62, "merged", False, "c88b9ee719285134957cbc698c9b7ef9b78007bf"),
    ),
    Case(
        "github/pull_request.labeled.json",
        "pull_request",
        "pull_request",
        HELLO,
        "Codertocat",
        branch="changes",
        sha=EC26,
        pr=(2, "labeled", False, EC26),
    ),
    Case(
        "github/pull_request.edited.json",
        "pull_request",
        "pull_request",
        "bradrydzewski/drone-test-go",
        "bradrydzewski",
        branch="master",
        sha="d2b75aa7797ec26b088fa2dd527e9d2c052fcedd",
        pr=(1, "edited", False, "d2b75aa7797ec26b088fa2dd527e9d2c052fcedd"),
    ),
    Case(
        "github/issue_comment.created.pull_request.json",
        "issue_comment",
        "comment",
        "chhsia0/knative-route-demo",
        "chhsia0",
        pr=(3, "created", False, ""),
        comment="/build",
    ),
    _other("github/issue_comment.created.json", "issue_comment", HELLO, "Codertocat", ISSUE_COMMENT),
    _other(
        "github/issue_comment.edited.json",
        "issue_comment",
        HELLO,
        "Codertocat",
        "comment edited (only new comments are read)",
    ),
    _other(
        "github/issue_comment.deleted.json",
        "issue_comment",
        HELLO,
        "Codertocat",
        "comment deleted (only new comments are read)",
    ),
    _other("github/pull_request_review.submitted.json", "pull_request_review", HELLO, "Codertocat"),
    _other("github/create.tag.json", "create", HELLO, "Codertocat", CREATE_IGNORED),
    _other("github/create.branch.json", "create", "bradrydzewski/drone-test-go", "bradrydzewski", CREATE_IGNORED),
    _other("github/delete.tag.json", "delete", HELLO, "Codertocat", DELETE_IGNORED),
    _other("github/delete.branch.json", "delete", "bradrydzewski/drone-test-go", "bradrydzewski", DELETE_IGNORED),
    _other("github/check_suite.requested.json", "check_suite", HELLO, "Codertocat"),
    _other("github/check_suite.completed.json", "check_suite", HELLO, "Codertocat"),
    _other("github/check_suite.rerequested.json", "check_suite", HELLO, "octocoders-linter[bot]"),
    _other("github/check_run.created.json", "check_run", HELLO, "Codertocat"),
    _other("github/check_run.completed.json", "check_run", HELLO, "Codertocat"),
    _other("github/check_run.rerequested.json", "check_run", "github/hello-world", "octocat"),
    _other("github/status.json", "status", HELLO, "Codertocat"),
    _other("github/release.published.json", "release", HELLO, "Codertocat"),
    _other("github/workflow_run.requested.json", "workflow_run", "octo-org/octo-repo", "Codertocat"),
    _other("github/workflow_run.completed.json", "workflow_run", "octo-org/octo-repo", "Codertocat"),
    _other("github/workflow_run.completed.with-pull-requests.json", "workflow_run", "octo-org/octo-repo", "Codertocat"),
]

GITLAB_CASES = [
    Case(
        "gitlab/push.json",
        "Push Hook",
        "push",
        "mike/diaspora",
        "jsmith",
        branch="master",
        sha="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        before="95790bf891e76fee5e1747ab589903a6a1f80f22",
    ),
    Case(
        "gitlab/tag_push.json",
        "Tag Push Hook",
        "tag",
        "jsmith/example",
        "",
        tag="v1.0.0",
        sha="82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
        before=ZERO,
    ),
    Case(
        "gitlab/merge_request.json",
        "Merge Request Hook",
        "pull_request",
        "gitlabhq/gitlab-test",
        "root",
        branch="ms-viewport",
        sha="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        pr=(1, "opened", False, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"),
    ),
    Case(
        "gitlab/merge_request.open.captured.json",
        "Merge Request Hook",
        "pull_request",
        "demoaccount2-commits-group/test_ci_tmp",
        "real6543",
        branch="real6543-main-patch-42541",
        sha="2f7670508b771e7e77839402be8b34b13787aba8",
        pr=(3, "opened", False, "2f7670508b771e7e77839402be8b34b13787aba8"),
    ),
    Case(
        "gitlab/note.merge_request.json",
        "Note Hook",
        "comment",
        "gitlab-org/gitlab-test",
        "root",
        branch="master",
        sha="562e173be03b8ff2efb05345d12df18815438a4b",
        pr=(1, "created", False, "562e173be03b8ff2efb05345d12df18815438a4b"),
        comment="This MR needs work.",
    ),
    _other(
        "gitlab/note.commit.json", "Note Hook", "gitlabhq/gitlab-test", "root", "note on a commit, not a merge request"
    ),
    _other(
        "gitlab/note.issue.json", "Note Hook", "gitlab-org/gitlab-test", "root", "note on an issue, not a merge request"
    ),
    _other("gitlab/pipeline.json", "Pipeline Hook", "gitlab-org/gitlab-test", "root"),
    _other("gitlab/job.captured-edited.json", "Job Hook", "", "jsmithy2"),
]

GITEA_CASES = [
    Case(
        "gitea/push.json",
        "push",
        "push",
        "Test-CI/multi-line-secrets",
        "test-user",
        branch="main",
        sha="29be01c073851cf0db0c6a466e396b725a670453",
        before="6efcf5b7c98f3e7a491675164b7a2e7acac27941",
        changed_files=("aa", "aaa"),
    ),
    Case(
        "gitea/push.branch-create.json",
        "push",
        "push",
        "example/example",
        "example",
        branch="master",
        sha="67b56589a45103f891bdee7c0546e5d40bc02001",
        before=ZERO,
        changed_files=("example",),
    ),
    Case(
        "gitea/push.branch-create.forgejo-codeberg.json",
        "push",
        "push",
        "meisam/woodpecktester",
        "6543",
        branch="fdsafdsa",
        sha="28c3613ae62640216bea5e7dc71aa65356e4298b",
        before=ZERO,
    ),
    Case(
        "gitea/push.doc-gitea.json",
        "push",
        "push",
        "gitea/webhooks",
        "gitea",
        branch="develop",
        sha="bffeb74224043ba2feb48d137756c8a9331c449a",
        before="28e1879d029cb852e4844d9c718537df08844e03",
    ),
    Case(
        "gitea/push.doc-forgejo.json",
        "push",
        "push",
        "forgejo/webhooks",
        "forgejo",
        branch="develop",
        sha="bffeb74224043ba2feb48d137756c8a9331c449a",
        before="28e1879d029cb852e4844d9c718537df08844e03",
    ),
    Case(
        "gitea/pull_request.opened.json",
        "pull_request",
        "pull_request",
        "example/example",
        "example2",
        branch="master",
        sha="48e773f892a831faa47c0a160d1b7f0cd369ae2a",
        pr=(2, "opened", True, "48e773f892a831faa47c0a160d1b7f0cd369ae2a"),
    ),
    Case(
        "gitea/pull_request.synchronized.json",
        "pull_request",
        "pull_request",
        "Test-CI/multi-line-secrets",
        "test",
        branch="test-patch-1",
        sha="788ed8d02d3b7fcfcf6386dbcbca696aa1d4dc25",
        pr=(2, "synchronize", False, "788ed8d02d3b7fcfcf6386dbcbca696aa1d4dc25"),
        event_type="pull_request_sync",
    ),
    Case(
        "gitea/pull_request.closed.merged.json",
        "pull_request",
        "pull_request",
        "anbraten/test-repo",
        "anbraten",
        branch="anbraten-patch-1",
        sha="d555a5dd07f4d0148a58d4686ec381502ae6a2d4",
        pr=(1, "merged", False, "d555a5dd07f4d0148a58d4686ec381502ae6a2d4"),
    ),
    Case(
        "gitea/pull_request.reopened.forgejo-codeberg.json",
        "pull_request",
        "pull_request",
        "test_it/test_ci_thing",
        "6543",
        branch="6543-patch-1",
        sha="36b5813240a9d2daa29b05046d56a53e18f39a3e",
        pr=(1, "reopened", False, "36b5813240a9d2daa29b05046d56a53e18f39a3e"),
    ),
    Case(
        "gitea/issue_comment.created.pull_request.json",
        "issue_comment",
        "comment",
        "example/example",
        "example",
        pr=(2, "created", False, ""),
        comment="example",
        event_type="pull_request_comment",
    ),
    _other("gitea/issue_comment.created.issue.json", "issue_comment", "example/example", "example", ISSUE_COMMENT),
]

CASES = GITHUB_CASES + GITLAB_CASES + GITEA_CASES
NOT_JSON = "gitlab/job.doc-verbatim.jsonc"


def _hex(secret: str, body: bytes, digest=hashlib.sha256) -> str:
    return hmac.new(secret.encode(), body, digest).hexdigest()


def forge_headers(case: Case, body: bytes, secret: str | None = SECRET, delivery: str | None = None) -> dict[str, str]:
    """The headers the forge sends with `body`, signed with `secret` (None: the webhook has no secret)."""
    delivery = delivery or DELIVERY[case.forge]
    if case.forge == "github":
        headers = {
            "X-GitHub-Event": case.event,
            "X-GitHub-Delivery": delivery,
            "X-GitHub-Hook-ID": "109948940",
            "X-GitHub-Hook-Installation-Target-Type": "repository",
            "X-GitHub-Hook-Installation-Target-ID": "1296269",
            "User-Agent": "GitHub-Hookshot/044aadd",
            "Content-Type": "application/json",
        }
        if secret is not None:
            headers["X-Hub-Signature"] = "sha1=" + _hex(secret, body, hashlib.sha1)
            headers["X-Hub-Signature-256"] = "sha256=" + _hex(secret, body)
        return headers
    if case.forge == "gitlab":
        headers = {
            "X-Gitlab-Event": case.event,
            "X-Gitlab-Event-UUID": GITLAB_EVENT_UUID,
            "Idempotency-Key": delivery,
            "X-Gitlab-Webhook-UUID": "7a2c1f0e-1d9b-4c39-b5f5-0c1e6d2f8a90",
            "X-Gitlab-Instance": "https://gitlab.example.com",
            "User-Agent": "GitLab/17.4.0",
            "Content-Type": "application/json",
        }
        if secret is not None:
            headers["X-Gitlab-Token"] = secret
        return headers
    event_type = case.event_type or case.event
    signature = _hex(secret, body) if secret is not None else ""
    headers = {"Content-Type": "application/json", "User-Agent": "Go-http-client/1.1"}
    for prefix in ("Gitea", "Gogs") + (("Forgejo",) if case.forgejo else ()):
        headers.update(
            {
                f"X-{prefix}-Event": case.event,
                f"X-{prefix}-Event-Type": event_type,
                f"X-{prefix}-Delivery": delivery,
                f"X-{prefix}-Signature": signature,
            }
        )
    headers.update(
        {
            "X-GitHub-Event": case.event,
            "X-GitHub-Event-Type": event_type,
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature": "sha1=" + (_hex(secret, body, hashlib.sha1) if secret is not None else ""),
            "X-Hub-Signature-256": "sha256=" + signature,
        }
    )
    return headers


def case_named(path: str) -> Case:
    return next(c for c in CASES if c.path == path)
