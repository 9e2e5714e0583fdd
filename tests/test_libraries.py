"""Libraries: actions, tasks and connection types shared by a server's workspaces as `library.item`, from a folder
or a git repository at a pinned ref: renamed with their references, source files run as written, checked on
push, and run by real workers; `strom validate` and `strom run` read the libraries of a strom.yaml beside them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import write_workspace
from git_env import commit, git, init_repo
from service_env import TOKENS, live_stack, make_config, wait_for

from runner.cli import main
from runner.engine import RunStatus
from runner.runs import execute
from runner.spec import load_texts
from runner.spec.libraries import library_files
from runner.spec.payloads import ScriptPayload, TaskPayload

LIBRARY = {
    ".strom/lib.yaml": """
connection_types:
  db: { host: { type: string, required: true } }
actions:
  notify:
    type: script
    source: scripts/notify.sh
    input: { text: { type: string } }
  hello:
    type: script
    script: 'echo "hello {{ input.who }}"; echo "OUTPUT: {\\"who\\": \\"{{ input.who }}\\"}"'
    input: { who: { type: string, default: library } }
  run-canary: { type: task, task: canary }
tasks:
  canary:
    input: { conn: { type: db, required: false } }
    on_success: [{ action: notify, input: { text: canary ok } }]
    flow:
      greet: { action: hello }
      tell: { action: notify, input: { text: "greeted {{ greet.output.who }}" }, depends_on: [greet] }
      local: { action: announce, depends_on: [tell] }
""",
    "scripts/notify.sh": 'echo "notify: $INPUT_TEXT {{ as written }}"\n',
    "scripts/unused.sh": "echo never read\n",
}

WORKSPACE = {
    ".strom/ci.yaml": """
actions:
  announce: { type: script, script: "echo announced by the workspace" }
tasks:
  deploy:
    flow:
      hi: { action: common.hello, input: { who: deploy } }
      told: { action: common.notify, input: { text: "{{ hi.output.who }} done" }, depends_on: [hi] }
  nightly:
    flow:
      canary: { action: common.run-canary }
"""
}


def _texts(workspace: dict[str, str], library: dict[str, str]) -> dict[str, str]:
    return {**{k: v.strip() + "\n" for k, v in workspace.items()}, **library_files("common", library)}


def test_a_library_is_imported_under_its_name_with_its_references_renamed():
    result = load_texts(_texts(WORKSPACE, LIBRARY))
    assert result.ok, [p.format() for p in result.problems]
    ws = result.workspace
    assert sorted(ws.actions) == ["announce", "common.hello", "common.notify", "common.run-canary"]
    assert sorted(ws.tasks) == ["common.canary", "deploy", "nightly"]
    assert list(ws.connection_types) == ["common.db"]
    canary = ws.tasks["common.canary"]
    assert canary.input["conn"].type == "common.db"
    assert {k: s.action_ref for k, s in canary.flow.items()} == {
        "greet": "common.hello",
        "tell": "common.notify",
        "local": "announce",
    }, "a library task may use the workspace's own actions, which stay the workspace's"
    assert canary.flow["local"].action is ws.actions["announce"]
    assert canary.hooks.on_success[0].action_ref == "common.notify"
    assert ws.actions["common.run-canary"].payload == TaskPayload(task="common.canary")
    notify = ws.actions["common.notify"].payload
    assert isinstance(notify, ScriptPayload) and notify.source is None and notify.literal
    assert notify.script == LIBRARY["scripts/notify.sh"], "the source file is the script, not a template"
    assert ws.tasks["deploy"].flow["told"].action is ws.actions["common.notify"]


@pytest.mark.parametrize(
    ("library", "workspace", "expected"),
    [
        (
            {".strom/lib.yaml": "tasks:\n  t:\n    flow:\n      a: { action: missing }\n"},
            WORKSPACE,
            "_libraries/common/.strom/lib.yaml:4:20: error: task 't', step 'a': action 'missing' does not exist",
        ),
        (
            {".strom/lib.yaml": "actions:\n  a: { type: script, source: '{{ input.f }}' }\n"},
            {".strom/x.yaml": "tasks:\n  t:\n    flow:\n      s: { action: common.a }\n"},
            "_libraries/common/.strom/lib.yaml:2:6: error: library 'common': the source file '{{ input.f }}'",
        ),
        (
            LIBRARY,
            {".strom/x.yaml": "tasks:\n  t:\n    flow:\n      s: { action: common.helo }\n"},
            "action 'common.helo' does not exist; did you mean \"common.hello\"?",
        ),
    ],
)
def test_problems_of_a_library_and_of_references_to_it_say_where(library, workspace, expected):
    result = load_texts(_texts(workspace, library))
    assert any(p.format().startswith(expected) or expected in p.format() for p in result.errors), [
        p.format() for p in result.problems
    ]


def test_a_git_library_at_a_tag_runs_on_workers_and_a_push_is_checked_against_it(
    tmp_path, service_workspace, redis_url
):
    upstream = tmp_path / "library.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(upstream))
    source = init_repo(tmp_path / "library")
    commit(source, LIBRARY, "the library")
    git(source, "tag", "v1")
    git(source, "remote", "add", "origin", str(upstream))
    git(source, "push", "-q", "origin", "main", "v1")
    changed = dict(LIBRARY)
    changed["scripts/notify.sh"] = 'echo "notify v2: $INPUT_TEXT"\n'
    commit(source, changed, "after the tag")
    git(source, "push", "-q", "origin", "main")

    config = make_config(
        service_workspace(WORKSPACE),
        redis_url,
        STROM_DATA_DIR=str(tmp_path / "data"),
        STROM_LIBRARIES=json.dumps({"common": {"type": "git", "url": str(upstream), "ref": "v1"}}),
        STROM_WORKSPACES=json.dumps({"local": {"folder": "."}, "site": {"hosted": True}}),
    )
    with live_stack(config) as (service, server):
        run = execute(service, "local", "deploy", {})
        state = wait_for(lambda: (s := service.runs.load(run.id)).status.terminal and s, timeout=30, what="deploy")
        assert state.status is RunStatus.SUCCEEDED, {n: r.error for n, r in state.steps.items()}
        lines = [line.text for line in service.logs.read(run.id)]
        assert "hello deploy" in lines and "notify: deploy done {{ as written }}" in lines, "the tag's script"

        nightly = execute(service, "local", "nightly", {})
        state = wait_for(lambda: (s := service.runs.load(nightly.id)).status.terminal and s, timeout=30, what="nightly")
        assert state.status is RunStatus.SUCCEEDED, {n: r.error for n, r in state.steps.items()}
        canary = state.steps["canary"].child_job
        announced = wait_for(lambda: [ln.text for ln in service.logs.read(canary, step="local")], what="announce")
        assert "announced by the workspace" in announced

        repo = init_repo(tmp_path / "pusher")
        announce = "actions:\n  announce: { type: script, script: echo hi }\n"
        commit(
            repo, {".strom/ci.yaml": announce + "tasks:\n  t:\n    flow:\n      s: { action: common.nope }\n"}, "wrong"
        )
        url = f"http://strom:{TOKENS['operator']}@127.0.0.1:{server.port}/git/site.git"
        refused = git(repo, "push", url, "main", check=False)
        assert refused.returncode != 0 and "action 'common.nope' does not exist" in refused.stderr
        commit(
            repo, {".strom/ci.yaml": announce + "tasks:\n  t:\n    flow:\n      s: { action: common.hello }\n"}, "right"
        )
        assert git(repo, "push", url, "main").returncode == 0


def test_strom_validate_and_run_read_the_libraries_of_a_strom_yaml_beside_them(tmp_path, monkeypatch):
    library = write_workspace(tmp_path / "library", LIBRARY)
    root = write_workspace(tmp_path / "ws", WORKSPACE)
    runner = CliRunner()
    monkeypatch.chdir(root)
    without = runner.invoke(main, ["validate", str(root)])
    assert without.exit_code == 1 and "if 'common' is a library, list it under `libraries:`" in without.output
    (root / "strom.yaml").write_text(json.dumps({"libraries": {"common": {"type": "folder", "path": str(library)}}}))
    valid = runner.invoke(main, ["validate", str(root)])
    assert valid.exit_code == 0, valid.output
    ran = runner.invoke(main, ["run", "deploy", "-C", str(root)])
    assert ran.exit_code == 0, ran.output
    assert "notify: deploy done {{ as written }}" in ran.output


CALLER = {
    ".strom/app.yaml": """
tasks:
  daily:
    flow:
      plan: { type: script, script: 'echo "OUTPUT: {\\"dataset\\": \\"sales\\"}"' }
      recalc:
        action: jobs.recalc
        input: { dataset: "{{ plan.output.dataset }}", db: warehouse }
        depends_on: [plan]
  typo:
    flow:
      recalc: { action: jobs.recalk, input: { dataset: x, db: warehouse } }
"""
}
OWNER = {
    ".strom/jobs.yaml": """
connection_types:
  db: { properties: { host: { type: string, required: true } } }
connections:
  warehouse: { type: db, host: warehouse.jobs.internal }
actions:
  recalc:
    type: script
    input: { dataset: { type: string, required: true }, db: { type: db } }
    env: { TOKEN: "{{ secret.jobs_token }}" }
    script: |
      echo "recalc {{ input.dataset }} on {{ input.db.host }} with $(cat queries/agg.sql) token=$TOKEN ($(printf %s "$TOKEN" | wc -c) characters)"
      echo "OUTPUT: {\\"rows\\": 42, \\"dataset\\": \\"{{ input.dataset }}\\"}"
""",
    "queries/agg.sql": "select 1",
}


def test_a_step_runs_another_workspaces_action_there_with_its_files_and_secrets(tmp_path, redis_url):
    write_workspace(tmp_path / "app", CALLER)
    write_workspace(tmp_path / "jobs", OWNER)
    config = make_config(
        tmp_path,
        redis_url,
        STROM_WORKSPACES=json.dumps({"app": {"folder": "app"}, "jobs": {"folder": "jobs"}}),
        STROM_SECRETS=json.dumps({"JOBS_TOKEN": {"env": "JOBS_SECRET", "workspaces": ["jobs"]}}),
        JOBS_SECRET="s3cr3t-of-jobs",
    )
    with live_stack(config) as (service, _server):
        run = execute(service, "app", "daily", {})
        state = wait_for(lambda: (s := service.runs.load(run.id)).status.terminal and s, timeout=30, what="daily")
        assert state.status is RunStatus.SUCCEEDED, {n: r.error for n, r in state.steps.items()}
        assert state.steps["recalc"].output == {"rows": 42, "dataset": "sales"}
        child = service.runs.load(state.steps["recalc"].child_job)
        assert (child.workspace, child.parent_job, child.source) == ("jobs", run.id, "child")
        lines = [line.text for line in service.logs.read(child.id) if line.stream == "stdout"]
        assert "recalc sales on warehouse.jobs.internal with select 1 token=*** (14 characters)" in lines, (
            "the owner's files, connection and secret"
        )

        typo = execute(service, "app", "typo", {})
        failed = wait_for(lambda: (s := service.runs.load(typo.id)).status.terminal and s, timeout=30, what="typo")
        assert failed.status is RunStatus.FAILED
        assert failed.steps["recalc"].error.endswith(
            """jobs.recalk: workspace 'jobs' has no action 'recalk'; did you mean "recalc"?"""
        )


def test_a_workspace_reference_needs_the_workspace_to_be_the_servers():
    names = load_texts(CALLER, workspaces=["app", "jobs"])
    assert names.ok, [p.format() for p in names.problems]
    step = names.workspace.tasks["daily"].flow["recalc"]
    assert step.action.payload == TaskPayload(workspace="jobs", action="recalc")
    unknown = load_texts(CALLER, workspaces=["app"])
    assert any("action 'jobs.recalc' does not exist" in p.message for p in unknown.errors)
