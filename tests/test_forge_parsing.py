"""Forge webhooks: signatures and parsing over the payload fixtures in tests/fixtures/forges.

Each fixture is read as bytes and signed as stored. The headers are the ones each forge sends
(tests/fixtures/forges/README.md and gitlab/README.md); the expected fields come from the files.
"""

from __future__ import annotations

import hmac
import json
import re
from urllib.parse import urlencode

import pytest
from forge_fixtures import (
    CASES,
    DELIVERY,
    FIXTURES,
    HELLO,
    NOT_JSON,
    OLD_SECRET,
    SECRET,
    ZERO,
    Case,
    _hex,
    case_named,
    forge_headers,
)
from werkzeug.datastructures import Headers

from runner.forges import FORGES, ForgeError, PayloadError, VerificationError, parser_for
from runner.forges.gitea import GITEA
from runner.forges.github import GITHUB
from runner.forges.gitlab import GITLAB


def parse(path: str, **changes) -> object:
    """Parse a fixture after changing top-level fields (parsing only: nothing is signed)."""
    case = case_named(path)
    data = json.loads(case.body())
    data.update(changes)
    body = json.dumps(data).encode()
    return parser_for(case.forge).parse(forge_headers(case, body), body)


# --- every fixture ---------------------------------------------------------------------------


def test_the_table_names_every_fixture_file():
    on_disk = {p.relative_to(FIXTURES).as_posix() for p in FIXTURES.glob("*/*") if p.suffix in (".json", ".jsonc")}
    assert on_disk == {c.path for c in CASES} | {NOT_JSON}
    assert len(CASES) == len({c.path for c in CASES})


@pytest.mark.parametrize("case", CASES, ids=str)
def test_fixture_parses_to_the_expected_event(case: Case):
    body = case.body()
    event = parser_for(case.forge).parse(forge_headers(case, body), body)
    assert (event.source, event.forge_event, event.delivery) == (case.forge, case.event, DELIVERY[case.forge])
    assert (event.kind, event.ignored) == (case.kind, case.ignored)
    assert (event.repo, event.actor) == (case.repo, case.actor)
    assert (event.branch, event.tag, event.sha, event.before) == (case.branch, case.tag, case.sha, case.before)
    assert event.changed_files == case.changed_files
    if case.pr is None:
        assert event.pr is None
    else:
        assert (event.pr.number, event.pr.action, event.pr.from_fork, event.pr.head_sha) == case.pr
    if case.comment is None:
        assert event.comment is None
    else:
        assert event.comment.body.startswith(case.comment)
    assert type(event).from_dict(json.loads(json.dumps(event.to_dict()))) == event


@pytest.mark.parametrize("case", CASES, ids=str)
def test_fixture_names_its_repository(case: Case):
    body = case.body()
    assert parser_for(case.forge).repository(forge_headers(case, body), body) == (case.repo or None)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_fixture_signature_checks(case: Case):
    forge, body = parser_for(case.forge), case.body()
    headers = forge_headers(case, body)
    forge.verify(headers, body, [SECRET])
    forge.verify(headers, body, [OLD_SECRET, SECRET])
    with pytest.raises(VerificationError, match="does not match any configured webhook secret"):
        forge.verify(headers, body, [OLD_SECRET])
    if case.forge != "gitlab":
        with pytest.raises(VerificationError, match="does not match any configured webhook secret"):
            forge.verify(headers, body + b" ", [SECRET])


def test_gitlab_job_doc_example_is_not_json():
    case = Case(NOT_JSON, "Job Hook", "other")
    body = case.body()
    headers = forge_headers(case, body)
    GITLAB.verify(headers, body, [SECRET])
    with pytest.raises(PayloadError, match="body is not JSON"):
        GITLAB.parse(headers, body)
    with pytest.raises(PayloadError, match="body is not JSON"):
        GITLAB.repository(headers, body)


# --- signatures ----------------------------------------------------------------------------


def _without(headers: dict, *names: str) -> dict:
    return {k: v for k, v in headers.items() if k not in names}


def test_github_missing_signature_says_to_set_a_secret():
    case = case_named("github/push.branch.json")
    body = case.body()
    headers = forge_headers(case, body, secret=None)
    with pytest.raises(VerificationError, match=r"^missing X-Hub-Signature-256 header: set a secret on the webhook"):
        GITHUB.verify(headers, body, [SECRET])
    sha1_only = _without(forge_headers(case, body), "X-Hub-Signature-256")
    with pytest.raises(VerificationError, match="missing X-Hub-Signature-256"):
        GITHUB.verify(sha1_only, body, [SECRET])


def test_github_signature_needs_the_sha256_prefix():
    case = case_named("github/push.branch.json")
    body = case.body()
    headers = {**forge_headers(case, body), "X-Hub-Signature-256": _hex(SECRET, body)}
    with pytest.raises(VerificationError, match=r"not of the form sha256=<hex>"):
        GITHUB.verify(headers, body, [SECRET])


def test_github_signature_in_uppercase_hex_is_accepted():
    case = case_named("github/push.branch.json")
    body = case.body()
    headers = {**forge_headers(case, body), "X-Hub-Signature-256": "sha256=" + _hex(SECRET, body).upper()}
    GITHUB.verify(headers, body, [SECRET])


def test_gitlab_missing_or_wrong_token():
    case = case_named("gitlab/push.json")
    body = case.body()
    with pytest.raises(VerificationError, match=r"^missing X-Gitlab-Token header: set a secret token"):
        GITLAB.verify(forge_headers(case, body, secret=None), body, [SECRET])
    for token in (SECRET + "x", SECRET[:-1], SECRET.upper()):
        with pytest.raises(VerificationError, match="X-Gitlab-Token does not match any configured webhook secret"):
            GITLAB.verify({**forge_headers(case, body), "X-Gitlab-Token": token}, body, [SECRET])


def test_gitea_empty_signature_headers_count_as_missing():
    case = case_named("gitea/push.json")
    body = case.body()
    headers = forge_headers(case, body, secret=None)
    assert headers["X-Gitea-Signature"] == "" and headers["X-Hub-Signature-256"] == "sha256="
    with pytest.raises(VerificationError, match=r"^missing X-Gitea-Signature header \(Gitea sends it empty"):
        GITEA.verify(headers, body, [SECRET])


@pytest.mark.parametrize(
    "only", ["X-Gitea-Signature", "X-Forgejo-Signature", "X-Gogs-Signature", "X-Hub-Signature-256"]
)
def test_gitea_reads_any_of_its_signature_headers(only):
    case = case_named("gitea/push.branch-create.forgejo-codeberg.json")
    body = case.body()
    signed = forge_headers(case, body)
    signatures = ("X-Gitea-Signature", "X-Forgejo-Signature", "X-Gogs-Signature", "X-Hub-Signature-256")
    headers = {**_without(signed, *signatures), only: signed[only]}
    GITEA.verify(headers, body, [SECRET])
    with pytest.raises(VerificationError, match=f"^{only} does not match"):
        GITEA.verify(headers, body, [OLD_SECRET])


@pytest.mark.parametrize("forge", ["github", "gitlab", "gitea"])
@pytest.mark.parametrize("secrets", [[], [""], ["", ""]])
def test_no_configured_secret_is_refused(forge, secrets):
    case = next(c for c in CASES if c.forge == forge)
    body = case.body()
    with pytest.raises(VerificationError) as caught:
        parser_for(forge).verify(forge_headers(case, body), body, secrets)
    message = str(caught.value)
    assert message.startswith("no webhook secret is configured for this repository")
    assert "forge: { webhook_secrets: [{ env: HOOK_SECRET }] }" in message
    assert caught.value.status_hint == 401


def test_gitlab_empty_secret_does_not_accept_an_empty_token():
    case = case_named("gitlab/push.json")
    body = case.body()
    with pytest.raises(VerificationError, match="no webhook secret is configured"):
        GITLAB.verify({**forge_headers(case, body), "X-Gitlab-Token": ""}, body, [""])


@pytest.mark.parametrize("path", ["github/push.branch.json", "gitlab/push.json", "gitea/push.json"])
def test_every_secret_is_compared_even_after_a_match(path, monkeypatch):
    case = case_named(path)
    body = case.body()
    headers = forge_headers(case, body)
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    parser_for(case.forge).verify(headers, body, [SECRET, OLD_SECRET, "third"])
    assert len(calls) == 3


# --- bodies and headers ----------------------------------------------------------------------


def test_github_form_encoded_body():
    case = case_named("github/pull_request.opened.json")
    form = urlencode({"payload": case.body().decode()}).encode()
    headers = {**forge_headers(case, form), "Content-Type": "application/x-www-form-urlencoded"}
    GITHUB.verify(headers, form, [SECRET])
    event = GITHUB.parse(headers, form)
    assert (event.kind, event.repo, event.pr.number, event.pr.action) == ("pull_request", HELLO, 2, "opened")
    assert GITHUB.repository(headers, form) == HELLO
    with pytest.raises(VerificationError):
        GITHUB.verify(forge_headers(case, case.body()), form, [SECRET])


def test_gitea_form_encoded_body():
    case = case_named("gitea/push.json")
    form = urlencode({"payload": case.body().decode()}).encode()
    headers = {
        **_without(forge_headers(case, form), "Content-Type"),
        "content-type": "application/x-www-form-urlencoded; charset=utf-8",
    }
    GITEA.verify(headers, form, [SECRET])
    assert GITEA.parse(headers, form).changed_files == ("aa", "aaa")


def test_form_body_without_payload_field():
    headers = {"X-GitHub-Event": "push", "Content-Type": "application/x-www-form-urlencoded"}
    with pytest.raises(PayloadError, match="no `payload` field"):
        GITHUB.parse(headers, b"data=%7B%7D")


@pytest.mark.parametrize(
    "body, message",
    [(b"", "not JSON"), (b"<html>", "not JSON"), (b"[1, 2]", "not an object"), (b"\xff\xfe{", "not JSON")],
)
def test_bodies_that_are_not_a_json_object(body, message):
    for forge, headers in (
        (GITHUB, {"X-GitHub-Event": "push"}),
        (GITLAB, {"X-Gitlab-Event": "Push Hook"}),
        (GITEA, {"X-Gitea-Event": "push"}),
    ):
        with pytest.raises(PayloadError, match=message):
            forge.parse(headers, body)
        with pytest.raises(PayloadError, match=message):
            forge.repository(headers, body)


@pytest.mark.parametrize(
    "path", ["github/push.force.json", "gitlab/merge_request.json", "gitea/issue_comment.created.pull_request.json"]
)
@pytest.mark.parametrize("style", ["lower", "upper", "werkzeug"])
def test_headers_are_case_insensitive(path, style):
    case = case_named(path)
    body = case.body()
    headers = forge_headers(case, body)
    if style == "werkzeug":
        headers = Headers(list(headers.items()))
    else:
        headers = {getattr(k, style)(): v for k, v in headers.items()}
    forge = parser_for(case.forge)
    forge.verify(headers, body, [SECRET])
    assert forge.delivery_id(headers) == DELIVERY[case.forge]
    assert forge.event_name(headers) == case.event
    event = forge.parse(headers, body)
    assert (event.kind, event.sha, event.delivery) == (case.kind, case.sha, DELIVERY[case.forge])


@pytest.mark.parametrize(
    "forge, headers, expected",
    [
        (GITHUB, {"X-GitHub-Delivery": "gh-1"}, "gh-1"),
        (GITHUB, {"X-Gitea-Delivery": "gt-1"}, None),
        (GITLAB, {"Idempotency-Key": "idem-1", "X-Gitlab-Event-UUID": "uuid-1"}, "idem-1"),
        (GITLAB, {"X-Gitlab-Event-UUID": "uuid-1"}, "uuid-1"),
        (GITLAB, {"Idempotency-Key": "", "X-Gitlab-Event-UUID": "uuid-1"}, "uuid-1"),
        (GITLAB, {}, None),
        (GITEA, {"X-Gitea-Delivery": "gt-1", "X-Forgejo-Delivery": "fj-1", "X-Gogs-Delivery": "gg-1"}, "gt-1"),
        (GITEA, {"X-Forgejo-Delivery": "fj-1", "X-Gogs-Delivery": "gg-1"}, "fj-1"),
        (GITEA, {"X-Gogs-Delivery": "gg-1"}, "gg-1"),
        (GITEA, {"X-GitHub-Delivery": "gh-1"}, None),
    ],
)
def test_delivery_ids(forge, headers, expected):
    assert forge.delivery_id(headers) == expected


@pytest.mark.parametrize(
    "forge, header", [(GITHUB, "X-GitHub-Event"), (GITLAB, "X-Gitlab-Event"), (GITEA, "X-Gitea-Event")]
)
def test_missing_event_header(forge, header):
    with pytest.raises(PayloadError, match=f"^missing {header} header"):
        forge.event_name({"Content-Type": "application/json"})
    with pytest.raises(PayloadError, match=f"^missing {header} header"):
        forge.parse({}, b"{}")


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"X-Forgejo-Event": "push"}, "push"),
        ({"X-Gogs-Event": "push"}, "push"),
        ({"X-Gitea-Event": "", "X-Forgejo-Event": "pull_request"}, "pull_request"),
        ({"X-Gitea-Event-Type": "pull_request_comment"}, "issue_comment"),
        ({"X-Forgejo-Event-Type": "pull_request_sync"}, "pull_request"),
        ({"X-Gitea-Event-Type": "release"}, "release"),
    ],
)
def test_gitea_event_name_fallbacks(headers, expected):
    assert GITEA.event_name(headers) == expected


# --- registry --------------------------------------------------------------------------------


def test_registry():
    assert set(FORGES) == {"github", "gitlab", "gitea"}
    assert (parser_for("github"), parser_for("gitlab"), parser_for("gitea")) == (GITHUB, GITLAB, GITEA)
    assert parser_for("Forgejo") is GITEA and parser_for(" GitHub ") is GITHUB
    assert {name: forge.name for name, forge in FORGES.items()} == {
        "github": "github",
        "gitlab": "gitlab",
        "gitea": "gitea",
    }
    for name in ("bitbucket", "", "git"):
        with pytest.raises(ForgeError, match="unknown forge"):
            parser_for(name)
    with pytest.raises(KeyError):
        parser_for("bitbucket")


# --- fields the table does not show ------------------------------------------------------------


def test_push_commits_message_and_clone_urls():
    case = case_named("github/push.branch.json")
    event = GITHUB.parse(forge_headers(case, case.body()), case.body())
    assert event.commits == (
        {
            "id": "366701fde727cb7a9e7f21eb88264f59f6f9b89c",
            "message": "Fix multiline secrets replacer (#700)\n\n* Fix multiline secrets replacer\r\n\r\n* Add tests",
            "author": "Philipp",
            "added": [],
            "removed": [],
            "modified": ["pipeline/shared/replace_secrets.go", "pipeline/shared/replace_secrets_test.go"],
        },
    )
    assert event.message.startswith("Fix multiline secrets replacer (#700)")
    assert event.clone_urls == (
        "https://github.com/woodpecker-ci/woodpecker.git",
        "git@github.com:woodpecker-ci/woodpecker.git",
    )
    assert (event.created, event.deleted, event.forced, event.ref) == (False, False, False, "refs/heads/main")


def test_push_flags():
    force = parse("github/push.force.json")
    assert (force.forced, force.created) == (True, False)
    created = parse("github/push.branch-create.json")
    assert (created.created, created.deleted) == (True, False)
    deleted = parse("github/push.branch-delete.json")
    assert (deleted.deleted, deleted.sha, deleted.ref) == (True, None, "refs/heads/feature-branch")
    tag = parse("gitlab/tag_push.json")
    assert (tag.created, tag.ref, tag.commits) == (True, "refs/tags/v1.0.0", ())


def test_gitlab_push_fields():
    event = parse("gitlab/push.json")
    assert event.clone_urls == ("http://example.com/mike/diaspora.git", "git@example.com:mike/diaspora.git")
    assert event.message == "fixed readme"
    assert [c["author"] for c in event.commits] == ["Jordi Mallach", "GitLab dev user"]
    assert event.commits[0]["added"] == ["CHANGELOG"]


def test_gitlab_push_with_every_commit_listed_has_changed_files():
    event = parse("gitlab/push.json", total_commits_count=2)
    assert event.changed_files == ("CHANGELOG", "app/controller/application.rb")


def test_gitlab_branch_deletion_and_checkout_sha():
    deleted = parse("gitlab/push.json", after=ZERO, checkout_sha=None, commits=[], total_commits_count=0)
    assert (deleted.kind, deleted.branch, deleted.sha, deleted.deleted) == ("delete", "master", None, True)
    annotated = parse("gitlab/tag_push.json", after="a" * 40)
    assert (annotated.kind, annotated.sha) == ("tag", "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7")


def test_gitea_push_fields():
    event = parse("gitea/push.json")
    assert event.clone_urls == (
        "http://127.0.0.1:3000/Test-CI/multi-line-secrets.git",
        "ssh://git@127.0.0.1:2200/Test-CI/multi-line-secrets.git",
    )
    assert [c["id"][:7] for c in event.commits] == ["29be01c", "29cd952", "93787b8"]
    assert event.commits[1]["removed"] == ["aa"]
    assert event.message == "add some text\n"
    doc = parse("gitea/push.doc-gitea.json")
    assert doc.message == "Webhooks Yay!" and doc.commits[0]["added"] == []


def test_truncated_commit_lists_leave_changed_files_unknown():
    github = json.loads(case_named("github/push.branch.json").body())["commits"][0]
    assert parse("github/push.branch.json", commits=[github] * 19).changed_files is not None
    assert parse("github/push.branch.json", commits=[github] * 20).changed_files is None
    gitea = json.loads(case_named("gitea/push.json").body())
    assert parse("gitea/push.json", total_commits=4).changed_files is None
    five = gitea["commits"] + gitea["commits"][:2]
    assert parse("gitea/push.json", commits=five, total_commits=None).changed_files is None
    assert parse("gitea/push.json", total_commits=None).changed_files == ("aa", "aaa")


def test_push_to_a_ref_that_is_neither_branch_nor_tag():
    event = parse("github/push.branch.json", ref="refs/notes/commits")
    assert (event.kind, event.branch, event.changed_files) == ("other", None, None)
    assert event.ignored == "push to refs/notes/commits, which is neither a branch nor a tag"


@pytest.mark.parametrize(
    "path, missing",
    [
        ("github/push.branch.json", "ref"),
        ("github/push.branch.json", "after"),
        ("gitlab/push.json", "ref"),
        ("gitea/push.json", "after"),
    ],
)
def test_push_without_a_required_field(path, missing):
    with pytest.raises(PayloadError, match=f"has no `{missing}`"):
        parse(path, **{missing: None})


def test_pull_request_without_head_sha():
    case = case_named("github/pull_request.opened.json")
    data = json.loads(case.body())
    del data["pull_request"]["head"]["sha"]
    with pytest.raises(PayloadError, match=re.escape("has no `pull_request.head.sha`")):
        GITHUB.parse(forge_headers(case, b""), json.dumps(data).encode())
    with pytest.raises(PayloadError, match="has no `pull_request`"):
        parse("github/pull_request.opened.json", pull_request=None)
    with pytest.raises(PayloadError, match="has no `object_attributes`"):
        parse("gitlab/merge_request.json", object_attributes=None)


def test_github_pull_request_fields():
    event = parse("github/pull_request.opened.json")
    pr = event.pr
    assert (pr.title, pr.head_ref, pr.base_ref, pr.author, pr.author_association) == (
        "Update the README with new information.",
        "changes",
        "master",
        "Codertocat",
        "OWNER",
    )
    assert (pr.url, pr.draft, pr.merged, pr.head_repo) == (
        "https://github.com/Codertocat/Hello-World/pull/2",
        False,
        False,
        HELLO,
    )
    assert (event.ref, event.before) == ("refs/pull/2/head", None)
    merged = parse("github/pull_request.closed.merged.json").pr
    assert (merged.action, merged.merged) == ("merged", True)


def test_github_pull_request_from_a_fork():
    case = case_named("github/pull_request.opened.json")
    data = json.loads(case.body())
    data["pull_request"]["head"]["repo"]["full_name"] = "someone/Hello-World"
    event = GITHUB.parse(forge_headers(case, b""), json.dumps(data).encode())
    assert (event.pr.from_fork, event.pr.head_repo) == (True, "someone/Hello-World")
    data["pull_request"]["head"]["repo"] = None
    event = GITHUB.parse(forge_headers(case, b""), json.dumps(data).encode())
    assert (event.pr.from_fork, event.pr.head_repo) == (True, None)


def test_github_comment_fields():
    event = parse("github/issue_comment.created.pull_request.json")
    assert event.comment.body == "/build"
    assert (event.comment.author, event.comment.association, event.comment.id, event.comment.is_bot) == (
        "chhsia0",
        "OWNER",
        "546616131",
        False,
    )
    assert event.comment.url == "https://github.com/chhsia0/knative-route-demo/pull/3#issuecomment-546616131"
    assert (event.pr.title, event.pr.author, event.pr.url) == (
        "Updated to v2.",
        "chhsia0",
        "https://github.com/chhsia0/knative-route-demo/pull/3",
    )
    assert (event.ref, event.sha, event.branch) == ("refs/pull/3/head", None, None)


def test_github_comment_by_a_bot():
    case = case_named("github/issue_comment.created.pull_request.json")
    data = json.loads(case.body())
    data["comment"]["user"].update(login="renovate[bot]", type="Bot")
    event = GITHUB.parse(forge_headers(case, b""), json.dumps(data).encode())
    assert (event.comment.author, event.comment.is_bot) == ("renovate[bot]", True)


def test_github_comment_edited_on_a_pull_request_is_ignored():
    event = parse("github/issue_comment.created.pull_request.json", action="edited")
    assert (event.kind, event.comment, event.ignored) == ("other", None, "comment edited (only new comments are read)")


@pytest.mark.parametrize(
    "action, oldrev, expected",
    [
        ("open", None, "opened"),
        ("reopen", None, "reopened"),
        ("close", None, "closed"),
        ("merge", None, "merged"),
        ("update", "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", "synchronize"),
        ("update", None, "edited"),
        ("approved", None, "approved"),
        ("unapproved", None, "unapproved"),
        ("approval", None, "approval"),
    ],
)
def test_gitlab_merge_request_actions(action, oldrev, expected):
    case = case_named("gitlab/merge_request.json")
    data = json.loads(case.body())
    data["object_attributes"].update(action=action, oldrev=oldrev)
    event = GITLAB.parse(forge_headers(case, b""), json.dumps(data).encode())
    assert event.pr.action == expected
    assert event.pr.merged is (expected == "merged")
    assert event.before == oldrev


def test_gitlab_merge_request_fields():
    event = parse("gitlab/merge_request.open.captured.json")
    pr = event.pr
    assert (pr.title, pr.head_ref, pr.base_ref, pr.author, pr.author_association) == (
        "Edit README.md for more text to read",
        "real6543-main-patch-42541",
        "main",
        "real6543",
        None,
    )
    assert pr.url == "https://gitlab.com/demoaccount2-commits-group/test_ci_tmp/-/merge_requests/3"
    assert (pr.draft, pr.head_repo, event.ref) == (
        False,
        "demoaccount2-commits-group/test_ci_tmp",
        "refs/merge-requests/3/head",
    )
    doc = parse("gitlab/merge_request.json").pr
    assert (doc.author, doc.head_repo) == ("", "awesome_space/awesome_project")


def test_gitlab_merge_request_from_a_fork():
    case = case_named("gitlab/merge_request.json")
    data = json.loads(case.body())
    data["object_attributes"]["source_project_id"] = 99
    event = GITLAB.parse(forge_headers(case, b""), json.dumps(data).encode())
    assert event.pr.from_fork is True


def test_gitlab_note_fields():
    event = parse("gitlab/note.merge_request.json")
    assert (event.comment.author, event.comment.id, event.comment.association) == ("root", "1244", None)
    assert event.comment.url == "http://example.com/gitlab-org/gitlab-test/merge_requests/1#note_1244"
    assert (event.pr.head_ref, event.pr.base_ref, event.ref) == ("master", "markdown", "refs/merge-requests/1/head")
    assert event.pr.title == "Tempora et eos debitis quae laborum et."


@pytest.mark.parametrize(
    "changes, ignored",
    [
        ({"action": "update"}, "comment edited (only new comments are read)"),
        ({"system": True}, "system note (written by GitLab, not a person)"),
        ({"noteable_type": "Snippet"}, "note on a snippet, not a merge request"),
    ],
)
def test_gitlab_notes_that_are_ignored(changes, ignored):
    case = case_named("gitlab/note.merge_request.json")
    data = json.loads(case.body())
    data["object_attributes"].update(changes)
    event = GITLAB.parse(forge_headers(case, b""), json.dumps(data).encode())
    assert (event.kind, event.ignored, event.comment) == ("other", ignored, None)


def test_gitlab_note_by_a_project_bot():
    case = case_named("gitlab/note.merge_request.json")
    data = json.loads(case.body())
    data["user"]["username"] = "project_278964_bot_3f2a"
    event = GITLAB.parse(forge_headers(case, b""), json.dumps(data).encode())
    assert (event.comment.author, event.comment.is_bot) == ("project_278964_bot_3f2a", True)


def test_gitea_pull_request_fields():
    event = parse("gitea/pull_request.opened.json")
    pr = event.pr
    assert (pr.head_repo, pr.author, pr.url) == (
        "example2/example",
        "example2",
        "http://localhost:3000/example/example/pulls/2",
    )
    assert (pr.author_association, pr.draft, event.ref) == (None, False, "refs/pull/2/head")
    assert parse("gitea/pull_request.closed.merged.json").pr.merged is True
    assert parse("gitea/pull_request.opened.json", action="label_updated").pr.action == "labeled"


def test_gitea_comment_fields():
    event = parse("gitea/issue_comment.created.pull_request.json")
    assert (event.comment.author, event.comment.id, event.comment.association) == ("example", "6", None)
    assert event.comment.url == "http://localhost:3000/example/example/pulls/2#issuecomment-6"
    assert (event.pr.author, event.pr.title, event.ref) == ("example2", "update", "refs/pull/2/head")
    edited = parse("gitea/issue_comment.created.pull_request.json", action="edited")
    assert (edited.kind, edited.ignored) == ("other", "comment edited (only new comments are read)")


def test_gitea_delete_and_create_events():
    case = Case("gitea/push.json", "delete", "delete")
    repository = json.loads(case_named("gitea/push.json").body())["repository"]
    branch = {
        "ref": "feature",
        "ref_type": "branch",
        "pusher_type": "user",
        "repository": repository,
        "sender": {"login": "test-user"},
    }
    body = json.dumps(branch).encode()
    event = GITEA.parse(forge_headers(case, body), body)
    assert (event.kind, event.branch, event.ref, event.sha, event.deleted, event.actor) == (
        "delete",
        "feature",
        "refs/heads/feature",
        None,
        True,
        "test-user",
    )
    body = json.dumps({**branch, "ref": "v1", "ref_type": "tag"}).encode()
    event = GITEA.parse(forge_headers(case, body), body)
    assert (event.kind, event.tag) == ("other", None)
    assert event.ignored.startswith("Gitea 'delete' events for a tag are ignored")
    create = Case("gitea/push.json", "create", "other")
    event = GITEA.parse(forge_headers(create, body), body)
    assert event.ignored == "Gitea 'create' events are ignored: the push event for the same ref is used"


@pytest.mark.parametrize(
    "forge, headers, ignored",
    [
        (GITHUB, {"X-GitHub-Event": "star"}, "Strom does not act on GitHub 'star' events"),
        (GITLAB, {"X-Gitlab-Event": "Deployment Hook"}, "Strom does not act on GitLab 'Deployment Hook' events"),
        (GITEA, {"X-Gitea-Event": "issues"}, "Strom does not act on Gitea 'issues' events"),
    ],
)
def test_unknown_events_are_returned_with_a_reason(forge, headers, ignored):
    event = forge.parse(headers, b'{"action": "created"}')
    assert (event.kind, event.ignored, event.source, event.repo) == ("other", ignored, forge.name, "")
