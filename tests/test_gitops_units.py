"""The pure parts of repository intake: globs, trigger matching, commands, the event store, config."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
from conftest import load
from hypothesis import example, given
from hypothesis import strategies as st
from service_env import wait_for

from runner.config import ConfigError, load_config
from runner.forges.event import Comment, PullRequest, RepoEvent
from runner.gitops.match import match_event, parse_command
from runner.spec.globs import glob_regex, included
from runner.store.repo_events import RepoEventStore

TRIGGERS = """
    tasks:
      ci: { flow: { s: { type: script, script: "true" } } }
      deploy:
        input: { env: { type: string }, region: { type: string, default: eu } }
        flow: { s: { type: script, script: "true" } }
    triggers:
      main: { type: push, task: ci, branches: [main, "release/*"], paths: ["src/**", "!src/gen/**"] }
      anything: { type: push, task: ci, concurrency: cancel_previous }
      off: { type: push, task: ci, enabled: false }
      tags: { type: tag, task: ci, tags: ["v*", "!v*-rc*"] }
      prs: { type: pull_request, task: ci, branches: [main], concurrency: skip }
      closed: { type: pull_request, task: ci, actions: [closed] }
      deploy: { type: comment, command: deploy, task: deploy, args: [env, region] }
    """


@pytest.mark.parametrize(
    "value, patterns, expected",
    [
        ("main", [], True),
        ("main", ["main"], True),
        ("feature/x", ["main"], False),
        ("release/1.2", ["release/*"], True),
        ("release/1/2", ["release/*"], False),
        ("release/1/2", ["release/**"], True),
        ("src/a/b.py", ["**/*.py"], True),
        ("b.py", ["**/*.py"], True),
        ("docs/a.md", ["!docs/**"], False),
        ("src/a.md", ["!docs/**"], True),
        ("src/gen/x.py", ["src/**", "!src/gen/**"], False),
        ("src/gen/keep.py", ["src/**", "!src/gen/**", "src/gen/keep.py"], True),
        ("v1.0", ["v[0-9]*"], True),
        ("vx", ["v[0-9]*"], False),
        ("vx", ["v[!x]"], False),
        ("a.b", ["a?b"], True),
        ("a/b", ["a?b"], False),
        ("weird[", ["weird["], True),
    ],
)
def test_globs(value, patterns, expected):
    assert included(value, patterns) is expected


def names(matched):
    return sorted(m.trigger.name for m in matched)


def push(branch="main", files=("src/app.py",)):
    return RepoEvent(
        source="github", kind="push", ref=f"refs/heads/{branch}", branch=branch, sha="a" * 40, changed_files=files
    )


def test_push_triggers_filter_by_branch_and_paths_and_say_why_not():
    triggers = load(TRIGGERS).raise_for_errors().triggers.values()
    matched, reasons = match_event(triggers, push())
    assert names(matched) == ["anything", "main"]
    assert [m.group for m in matched if m.trigger.name == "anything"] == ["anything:main"]
    assert reasons == ["trigger 'off' is disabled"]
    matched, reasons = match_event(triggers, push("dev"))
    assert names(matched) == ["anything"]
    assert "trigger 'main': branch 'dev' is not in [main, release/*]" in reasons
    matched, reasons = match_event(triggers, push("release/2.0", ("src/gen/api.py", "README.md")))
    assert names(matched) == ["anything"]
    assert (
        "trigger 'main': no changed file matches paths [src/**, !src/gen/**] (changed: src/gen/api.py, README.md)"
        in reasons
    )
    unknown = push(files=None)
    assert names(match_event(triggers, unknown)[0]) == ["anything", "main"], "unknown files do not filter"


def test_tag_triggers_and_exclusions():
    triggers = load(TRIGGERS).raise_for_errors().triggers.values()
    tag = RepoEvent(source="git", kind="tag", ref="refs/tags/v1.0", tag="v1.0", sha="b" * 40)
    assert names(match_event(triggers, tag)[0]) == ["tags"]
    rc = RepoEvent(source="git", kind="tag", ref="refs/tags/v1.0-rc1", tag="v1.0-rc1", sha="b" * 40)
    assert match_event(triggers, rc) == ([], ["trigger 'tags': tag 'v1.0-rc1' is not in [v*, !v*-rc*]"])


def pull(action="opened", base="main"):
    return RepoEvent(
        source="github",
        kind="pull_request",
        sha="c" * 40,
        pr=PullRequest(number=5, action=action, head_sha="c" * 40, head_ref="topic", base_ref=base),
    )


def test_pull_request_triggers_default_to_opened_synchronize_reopened_and_closed_covers_merged():
    triggers = load(TRIGGERS).raise_for_errors().triggers.values()
    assert names(match_event(triggers, pull("opened"))[0]) == ["prs"]
    assert [m.group for m in match_event(triggers, pull("synchronize"))[0]] == ["prs:pr5"]
    assert names(match_event(triggers, pull("merged"))[0]) == ["closed"]
    matched, reasons = match_event(triggers, pull("labeled"))
    assert matched == [] and "trigger 'prs': action 'labeled' is not in [opened, synchronize, reopened]" in reasons
    matched, reasons = match_event(triggers, pull("opened", base="dev"))
    assert matched == [] and "trigger 'prs': base branch 'dev' is not in [main]" in reasons


def test_comment_commands_fill_args_in_order_and_the_last_takes_the_rest():
    triggers = load(TRIGGERS).raise_for_errors().triggers.values()

    def comment(body):
        return RepoEvent(
            source="github",
            kind="comment",
            pr=PullRequest(number=5, action="created"),
            comment=Comment(body=body, author="ada", association="MEMBER"),
        )

    [matched], _ = match_event(triggers, comment("/deploy prod us east\nthanks!"))
    assert (matched.trigger.name, dict(matched.args), matched.group) == (
        "deploy",
        {"env": "prod", "region": "us east"},
        None,
    )
    [matched], _ = match_event(triggers, comment('/Deploy "staging one"'))
    assert dict(matched.args) == {"env": "staging one"}
    assert match_event(triggers, comment("please /deploy")) == ([], ["trigger 'deploy': the comment is not /deploy"])
    [matched], _ = match_event(triggers, comment("Looks good.\n\n/deploy prod"))
    assert dict(matched.args) == {"env": "prod"}


@pytest.mark.parametrize(
    "body, expected",
    [
        ("/ok-to-test", ("ok-to-test", [])),
        ("\n  /retest  unit  \n", ("retest", ["unit"])),
        ("/deploy 'a b' c", ("deploy", ["a b", "c"])),
        ("/deploy 'unbalanced", ("deploy", ["'unbalanced"])),
        ("lgtm\n/deploy", ("deploy", [])),
        ("```\n/deploy\n```\n> /approve\n/retest now", ("retest", ["now"])),
        ("/ deploy", None),
        ("/", None),
        ("", None),
    ],
)
def test_parse_command(body, expected):
    assert parse_command(body) == expected


def test_the_event_store_keeps_one_event_per_delivery_even_under_races(redis_url):
    import redis

    store = RepoEventStore(redis.Redis.from_url(redis_url, decode_responses=True))
    event = push().to_dict() | {"delivery": "d-1"}
    results = []

    def receive():
        results.append(store.receive("app", event))

    threads = [threading.Thread(target=receive) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = {event_id for event_id, _ in results}
    assert len(ids) == 1 and sorted(dup for _, dup in results) == [False] + [True] * 7
    [record] = store.list("app")
    assert record["status"] == "queued" and record["event"]["delivery"] == "d-1"
    assert store.redis.lrange("strom:intake", 0, -1) == [record["id"]]
    other_id, duplicate = store.receive("mirror-of-app", event)
    assert not duplicate and other_id != record["id"], "each workspace following the repository gets it"
    store.redis.delete("strom:intake")
    store.redis.rpush("strom:intake", record["id"])
    ignored_id, _ = store.receive("app", push().to_dict(), ignored="not followed")
    assert store.load(ignored_id)["status"] == "ignored" and store.redis.llen("strom:intake") == 1
    assert [r["id"] for r in store.list("app")] == [ignored_id, record["id"]]


def config_with(workspaces, tmp_path, **env):
    return load_config(environ={"STROM_WORKSPACES": json.dumps(workspaces), **env}, base_dir=tmp_path)


def test_workspace_configuration(tmp_path):
    key = tmp_path / "deploy_key"
    key.write_text("-----BEGIN-----\n")
    config = config_with(
        {
            "app": {
                "git": "https://github.com/octo/app.git",
                "branches": ["main", "release/*"],
                "credentials": {"token": {"env": "GH_TOKEN"}},
                "poll": "1m",
                "forge": {"type": "github", "webhook_secrets": [{"env": "NEW_SECRET"}, "old-secret"]},
                "pull_requests": {"sticky_trust": True},
            },
            "lab": {
                "git": "git@gitlab.example.com:group/sub/lab.git",
                "credentials": {"ssh_key": {"file": str(key)}},
                "forge": {"type": "gitlab", "api": "https://gitlab.example.com/api/v4/"},
            },
            "site": {"hosted": True},
            "here": {
                "folder": ".",
                "forge": {"type": "forgejo", "repo": "me/here", "api": "https://codeberg.org/api/v1"},
            },
        },
        tmp_path,
        GH_TOKEN="ghp_x",
        NEW_SECRET="new-secret",
    )
    app, lab, site, here = (config.workspaces[n] for n in ("app", "lab", "site", "here"))
    assert (app.kind, app.repo, app.default_branch, app.poll_interval, app.sticky_trust) == (
        "git",
        "octo/app",
        "main",
        60.0,
        True,
    )
    assert (app.token, app.forge_token, app.forge_api) == ("ghp_x", "ghp_x", "https://api.github.com")
    assert app.webhook_secrets == ("new-secret", "old-secret")
    assert (lab.repo, lab.forge_api, lab.ssh_key) == ("group/sub/lab", "https://gitlab.example.com/api/v4", key)
    assert (site.kind, site.poll_interval, site.default_branch) == ("hosted", 30.0, "main")
    assert (here.kind, here.forge, here.repo) == ("folder", "gitea", "me/here")


def test_workspace_configuration_errors_say_what_to_fix(tmp_path):
    with pytest.raises(ConfigError) as caught:
        config_with(
            {
                "both": {"git": "https://x/y.git", "hosted": True},
                "folder-with-branches": {"folder": ".", "branches": ["main"]},
                "gitea-without-api": {"hosted": True, "forge": {"type": "gitea", "repo": "a/b"}},
                "typo": {"hosted": True, "pol": "1m"},
            },
            tmp_path,
        )
    text = str(caught.value)
    assert "a workspace is exactly one of `folder: <path>`, `git: <url>` or `hosted: true`" in text
    assert "`branches` applies to git and hosted workspaces, not to folders" in text
    assert "a Gitea or Forgejo forge needs `api:`" in text
    assert "unknown key 'pol'" in text and "did you mean" in text


def test_a_snapshot_is_the_whole_tree_whatever_gitattributes_says(tmp_path):
    from git_env import commit, init_repo

    from runner.git.mirrors import Mirror
    from runner.git.snapshots import Snapshots

    repo = init_repo(tmp_path / "repo")
    sha = commit(
        repo,
        {
            ".gitattributes": "tests export-ignore\nVERSION export-subst\n",
            "tests/test_x.py": "assert True\n",
            "VERSION": "$Format:%H$\n",
        },
    )
    mirror = Mirror(tmp_path / "mirror.git", url=str(repo))
    mirror.fetch("main")
    snapshot = Snapshots(tmp_path / "snapshots").materialise(mirror, sha)
    assert (snapshot / "tests" / "test_x.py").read_text() == "assert True\n"
    assert (snapshot / "VERSION").read_text() == "$Format:%H$\n"
    assert not os.access(snapshot / "VERSION", os.W_OK) or os.geteuid() == 0
    assert oct((snapshot / "VERSION").stat().st_mode & 0o222) == "0o0", "snapshots are read-only"


@example("[1-0]")
@example("[z-a]*")
@example("[!]")
@given(st.text(max_size=40))
def test_any_glob_a_workflow_file_writes_compiles_and_matches_without_raising(pattern):
    assert glob_regex(pattern).pattern.endswith("\\Z")
    assert included("main", [pattern]) in (True, False)
    assert included("main", ["!" + pattern]) in (True, False)


def test_a_push_in_flight_is_renewed_until_it_finishes_and_never_after(redis_url, monkeypatch):
    import redis

    from runner.gitops import polling
    from runner.store import keys

    monkeypatch.setattr(polling, "PUSH_RENEW", 0.02)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    push = polling.PushInFlight(client, "site", "push-1")
    first = client.zscore(keys.pushes("site"), "push-1")
    assert first is not None and first > time.time() + polling.PUSH_GRACE - 5
    wait_for(lambda: (client.zscore(keys.pushes("site"), "push-1") or 0) > first, 5, 0.01, "a renewal")
    push.finish()
    push.renewer.join(5)
    assert not push.renewer.is_alive() and client.zcard(keys.pushes("site")) == 0
    push.finish()  # again: nothing to do
