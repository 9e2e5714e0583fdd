"""Every class of validation error names file, line and column, says what is wrong and how to fix it."""

from __future__ import annotations

import pytest
from conftest import load, write_workspace

from runner.spec import load_workspace

# (yaml, code, line, column, words that must be in the message, words that must be in the fix)
CASES = {
    "yaml syntax": (
        """
        tasks:
          t:
            flow: [a, b
        """,
        "yaml-syntax",
        4,
        1,
        "YAML syntax error",
        "indentation",
    ),
    "duplicate key": (
        """
        tasks:
          t:
            flow:
              a: { type: script, script: "true" }
              a: { type: script, script: "false" }
        """,
        "duplicate-key",
        5,
        7,
        "duplicate key 'a' (first defined at line 4, column 7)",
        "remove one",
    ),
    "unknown key with suggestion": (
        """
        tasks:
          t:
            flow:
              a:
                type: script
                script: "true"
                depnds_on: []
        """,
        "unknown-key",
        7,
        9,
        "unknown key 'depnds_on'; did you mean \"depends_on\"?",
        "spelling",
    ),
    "unknown top-level key": (
        """
        task:
          t: {}
        """,
        "unknown-key",
        1,
        1,
        'did you mean "tasks"?',
        "",
    ),
    "wrong type": (
        """
        tasks:
          t:
            flow:
              a:
                type: script
                script: "true"
                continue_on_failure: "yes"
        """,
        "wrong-type",
        7,
        30,
        "'continue_on_failure' must be true or false, got a string",
        "continue_on_failure: true",
    ),
    "field invalid for the action type": (
        """
        actions:
          a:
            type: script
            script: "true"
            image: alpine
        """,
        "invalid-field",
        5,
        5,
        "`image` only applies to runner: docker or runner: pod",
        "runner: docker",
    ),
    "field of another action type": (
        """
        actions:
          a:
            type: docker
            image: alpine
            script: "echo hi"
        """,
        "invalid-field",
        5,
        5,
        "field 'script' is not valid for an action of type 'docker' (it belongs to type script)",
        "cmd",
    ),
    "missing required field": (
        """
        actions:
          a:
            type: docker
        """,
        "missing-field",
        3,
        5,
        "missing required field 'image'",
        "image: alpine",
    ),
    "script and source both": (
        """
        actions:
          a:
            type: script
            script: "true"
            source: run.sh
        """,
        "conflict",
        5,
        5,
        "`script` and `source` cannot both be set",
        "not both",
    ),
    "unknown action": (
        """
        actions:
          build-app: { type: script, script: "true" }
        tasks:
          t:
            flow:
              a:
                action: buld-app
        """,
        "unknown-action",
        7,
        17,
        "action 'buld-app' does not exist; did you mean \"build-app\"?",
        "actions:",
    ),
    "unknown task": (
        """
        actions:
          child: { type: task, task: clenup }
        tasks:
          cleanup:
            flow:
              a: { type: script, script: "true" }
        """,
        "unknown-task",
        2,
        30,
        "task 'clenup' does not exist; did you mean \"cleanup\"?",
        "cleanup",
    ),
    "depends_on a missing step": (
        """
        tasks:
          t:
            flow:
              build: { type: script, script: "true" }
              test:
                type: script
                script: "true"
                depends_on: [biuld]
        """,
        "unknown-step",
        8,
        22,
        "depends_on names step 'biuld', which is not in the flow; did you mean \"build\"?",
        "steps in this flow: build, test",
    ),
    "dependency cycle": (
        """
        tasks:
          t:
            flow:
              a: { type: script, script: "true", depends_on: [c] }
              b: { type: script, script: "true", depends_on: [a] }
              c: { type: script, script: "true", depends_on: [b] }
        """,
        "cycle",
        4,
        7,
        "dependency cycle: a -> c -> b -> a",
        "remove one of these depends_on",
    ),
    "self-referencing task action": (
        """
        actions:
          again: { type: task, task: loop }
        tasks:
          loop:
            flow:
              a: { action: again }
        """,
        "self-reference",
        6,
        20,
        "runs task 'loop' from inside task 'loop'",
        "different task",
    ),
    "bad duration": (
        """
        tasks:
          t:
            timeout: 90 minutes
            flow:
              a: { type: script, script: "true" }
        """,
        "bad-duration",
        3,
        14,
        "'90 minutes' is not a duration",
        "1h30m",
    ),
    "duration above the maximum": (
        """
        tasks:
          t:
            flow:
              a: { type: script, script: "true", timeout: 25h }
        """,
        "bad-duration",
        4,
        51,
        "above the maximum of 24h",
        "at most 24h",
    ),
    "bad cron": (
        """
        tasks:
          t:
            flow:
              a: { type: script, script: "true" }
        triggers:
          nightly:
            type: scheduler
            task: t
            cron: "0 25 * * *"
        """,
        "bad-cron",
        9,
        11,
        "hour value 25 is out of range (0-23)",
        "minute hour day-of-month",
    ),
    "bad time zone": (
        """
        tasks:
          t:
            flow:
              a: { type: script, script: "true" }
        triggers:
          nightly:
            type: scheduler
            task: t
            cron: "0 2 * * *"
            timezone: Europe/Copenhagn
        """,
        "bad-timezone",
        10,
        15,
        "unknown time zone 'Europe/Copenhagn'",
        "IANA",
    ),
    "source leaving the workspace": (
        """
        actions:
          a:
            type: script
            source: ../../etc/passwd
        """,
        "path-escape",
        4,
        13,
        "`source` path '../../etc/passwd' leaves the workspace",
        "relative to the workspace",
    ),
    "template syntax": (
        """
        tasks:
          t:
            flow:
              a:
                type: script
                script: "true"
                when: "{{ input.x | nosuchfilter }}"
        """,
        "template",
        7,
        15,
        "invalid template in 'when': unknown filter 'nosuchfilter'",
        "Jinja2",
    ),
    "bad value": (
        """
        actions:
          a:
            type: scrpt
            script: "true"
        """,
        "bad-value",
        3,
        11,
        "'type' must be one of script, docker",
        "",
    ),
    "dependencies with shell": (
        """
        actions:
          a:
            type: script
            script: "true"
            dependencies: [requests]
        """,
        "conflict",
        5,
        5,
        "`dependencies` need a language other than shell",
        "language: python",
    ),
    "manifest without pod runner": (
        """
        actions:
          a:
            type: script
            script: "true"
            manifest: { spec: {} }
        """,
        "invalid-field",
        5,
        5,
        "`manifest` only applies to runner: pod",
        "runner: pod",
    ),
    "bad input type": (
        """
        tasks:
          t:
            input:
              items: { type: array }
            flow:
              a: { type: script, script: "true" }
        """,
        "bad-value",
        4,
        22,
        "unknown input type 'array'",
        "type: json",
    ),
    "default not fitting the input": (
        """
        tasks:
          t:
            input:
              count: { type: integer, default: many }
            flow:
              a: { type: script, script: "true" }
        """,
        "wrong-type",
        4,
        40,
        "default does not fit the input: expected a whole number, got 'many'",
        "",
    ),
    "step name with brackets": (
        """
        tasks:
          t:
            flow:
              "a[0]": { type: script, script: "true" }
        """,
        "bad-name",
        4,
        7,
        "step name 'a[0]' contains '['",
        "rename",
    ),
    "unknown action input": (
        """
        actions:
          deploy:
            type: script
            script: "echo {{ input.env }}"
            input:
              env: { type: string, required: true }
        tasks:
          t:
            flow:
              d:
                action: deploy
                input:
                  enviroment: prod
        """,
        "unknown-input",
        13,
        11,
        "action 'deploy' has no input 'enviroment'",
        "its inputs: env",
    ),
    "missing required action input": (
        """
        actions:
          deploy:
            type: script
            script: "echo {{ input.env }}"
            input:
              env: { type: string, required: true }
        tasks:
          t:
            flow:
              d: { action: deploy }
        """,
        "missing-input",
        10,
        10,
        "action 'deploy' requires input 'env'",
        "input.env",
    ),
    "action field on a referencing step": (
        """
        actions:
          a: { type: script, script: "true" }
        tasks:
          t:
            flow:
              s:
                action: a
                script: "echo hi"
        """,
        "invalid-field",
        8,
        9,
        "field 'script' belongs to the action",
        "inline",
    ),
    "reserved comment command": (
        """
        tasks:
          t: { flow: { a: { type: script, script: "true" } } }
        triggers:
          go: { type: comment, command: ok-to-test, task: t }
        """,
        "reserved",
        4,
        33,
        "/ok-to-test is Strom's own command",
        "another word",
    ),
    "reserved pull request command": (
        """
        tasks:
          t: { flow: { a: { type: script, script: "true" } } }
        triggers:
          go: { type: comment, command: retry, task: t }
        """,
        "reserved",
        4,
        33,
        "/retry is Strom's own command",
        "another word",
    ),
    "approver that is neither user nor team": (
        """
        tasks:
          t:
            flow:
              a: { type: approval, approvers: [alice, "org/team"] }
        """,
        "bad-value",
        4,
        39,
        "approver 'org/team' is neither a user name nor a team",
        '"@org/team"',
    ),
    "more approvals required than approvers": (
        """
        tasks:
          t:
            flow:
              a: { type: approval, approvers: [alice, bob], required: 3 }
        """,
        "out-of-range",
        4,
        63,
        "`required` is 3 but only 2 approver(s) are listed",
        "lower `required`",
    ),
    "event source without target": (
        """
        tasks:
          watch: { flow: { w: { type: script, script: "true" } } }
        triggers:
          feed: { type: event_source, task: watch, target_task: hadle }
        """,
        "unknown-task",
        4,
        57,
        "task 'hadle' does not exist",
        "",
    ),
    "event source consuming itself": (
        """
        tasks:
          watch: { flow: { w: { type: script, script: "true" } } }
        triggers:
          feed: { type: event_source, task: watch, target_task: watch }
        """,
        "bad-value",
        4,
        57,
        "would consume its own events",
        "name another task",
    ),
    "event source limits": (
        """
        tasks:
          watch: { flow: { w: { type: script, script: "true" } } }
          handle: { flow: { h: { type: script, script: "true" } } }
        triggers:
          feed: { type: event_source, task: watch, target_task: handle, max_in_flight: 0 }
        """,
        "out-of-range",
        5,
        80,
        "'max_in_flight' must be between 1 and 1000, got 0",
        "",
    ),
    "empty flow": (
        """
        tasks:
          t:
            flow: {}
        """,
        "missing-field",
        3,
        11,
        "`flow` has no steps",
        "at least one step",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_error_class_reports_position_message_and_fix(name):
    text, code, line, column, words, fix = CASES[name]
    result = load(text)
    matching = [p for p in result.errors if p.code == code]
    assert matching, f"no {code} error; got: " + "\n".join(p.format() for p in result.problems)
    problem = matching[0]
    assert (problem.file, problem.line, problem.column) == (".strom/test.yaml", line, column), problem.format()
    assert words in problem.message
    assert fix in problem.hint
    if name == "bad value":
        assert 'did you mean "script"?' in problem.message
    assert not result.ok


def test_all_errors_of_a_file_are_reported_in_one_run():
    result = load("""
        actions:
          a: { type: docker }
          b: { type: script, script: "true", timout: 5s }
        tasks:
          t:
            flow:
              s1: { action: nope }
              s2: { type: script, script: "true", depends_on: [ghost] }
        triggers:
          c: { type: scheduler, task: t, cron: "* * *" }
        """)
    codes = sorted(p.code for p in result.errors)
    assert codes == ["bad-cron", "missing-field", "unknown-action", "unknown-key", "unknown-step"]


def test_duplicate_names_across_files_name_both_places(tmp_path):
    root = write_workspace(
        tmp_path,
        {
            ".strom/a.yaml": """
            actions:
              build: { type: script, script: "true" }
            """,
            ".strom/sub/b.yml": """
            actions:
              build: { type: script, script: "false" }
            """,
        },
    )
    result = load_workspace(root)
    [problem] = result.errors
    assert (problem.file, problem.line, problem.column, problem.code) == (".strom/sub/b.yml", 2, 3, "duplicate-name")
    assert "action 'build' is already defined at .strom/a.yaml:2:3" in problem.message


def test_files_are_read_recursively_and_merged(tmp_path):
    root = write_workspace(
        tmp_path,
        {
            ".strom/actions.yaml": """
            actions:
              hello: { type: script, script: "echo hi" }
            on_success:
              - action: hello
            """,
            ".strom/deep/tasks.yml": """
            tasks:
              t:
                flow:
                  s: { action: hello }
            on_error:
              - action: hello
            """,
            ".strom/notes.txt": "not yaml at all: [",
        },
    )
    result = load_workspace(root)
    assert result.ok, [p.format() for p in result.problems]
    ws = result.workspace
    assert ws.files == (".strom/actions.yaml", ".strom/deep/tasks.yml")
    assert ws.tasks["t"].flow["s"].action is ws.actions["hello"]
    assert [h.action_ref for h in ws.hooks.on_success] == ["hello"]
    assert [h.action_ref for h in ws.hooks.on_error] == ["hello"]


def test_missing_source_file_is_an_error_but_an_existing_one_is_fine(tmp_path):
    root = write_workspace(
        tmp_path,
        {
            ".strom/a.yaml": """
            actions:
              ok: { type: script, source: scripts/run.sh }
              missing: { type: script, source: scripts/nope.sh }
            """,
            "scripts/run.sh": "echo hi\n",
        },
    )
    [problem] = load_workspace(root).errors
    assert problem.code == "missing-file" and (problem.line, problem.column) == (3, 36)
    assert "scripts/nope.sh" in problem.message


def test_source_through_a_symlink_out_of_the_workspace_is_refused(tmp_path):
    outside = tmp_path / "outside.sh"
    outside.write_text("echo out\n")
    root = write_workspace(tmp_path / "ws", {".strom/a.yaml": "actions:\n  a: { type: script, source: link.sh }\n"})
    (root / "link.sh").symlink_to(outside)
    [problem] = load_workspace(root).errors
    assert problem.code == "path-escape" and "through a symlink" in problem.message


def test_no_workflow_files_is_an_error_that_says_what_to_create(tmp_path):
    result = load_workspace(tmp_path)
    [problem] = result.errors
    assert problem.code == "no-files" and "pipeline.yaml" in problem.hint


def test_warnings_do_not_make_a_workspace_invalid():
    result = load("""
        secrets:
          TOKEN: hardcoded
        tasks:
          t:
            flow:
              input: { type: script, script: "true" }
        """)
    assert result.ok
    codes = sorted(p.code for p in result.warnings)
    assert codes == ["literal-secret", "reserved-name"]


def test_every_documented_stroem_field_is_accepted():
    result = load("""
        secrets:
          DB: "{{ env.DB }}"
        connection_types:
          postgres:
            properties:
              host: { type: string, required: true }
              port: { type: integer, default: 5432 }
        connections:
          main-db:
            type: postgres
            host: db.internal
        actions:
          deploy:
            name: Deploy
            description: Deploys the app
            type: script
            runner: local
            language: python
            interpreter: python3
            dependencies: [requests]
            script: print("hi")
            args: ["a"]
            env: { A: "1" }
            tags: [linux]
            timeout: 10m
            retry: { max_attempts: 3, delay: 5s, backoff: exponential, jitter: true }
            workdir: sub
            resources: { cpu: "1", memory: 1Gi }
            input:
              env:
                type: string
                name: Environment
                description: Where to deploy
                required: true
                options: [staging, production]
                allow_custom: false
                order: 1
              when: { type: datetime }
              day: { type: date, default: "2026-01-15" }
              db: { type: postgres }
              token: { type: string, secret: true }
              regions: { type: string, multiple: true, options: [eu, us], default: [eu] }
            output:
              version: { type: string, description: released version }
          ask:
            type: approval
            message: "ok?"
            timeout: 24h
          llm:
            type: agent
            provider: main
            prompt: "Classify {{ input.text }}"
            system_prompt: "You classify."
            model: small
            max_tokens: 100
            temperature: 0.2
            output: { category: { type: string, options: [a, b] } }
          child:
            type: task
            task: other
          pod:
            type: pod
            image: alpine
            cmd: "echo hi"
            entrypoint: ["/bin/sh", "-c"]
            command: ["echo", "hi"]
            manifest: { spec: { serviceAccountName: sa } }
        tasks:
          other:
            flow:
              s: { type: script, script: "true" }
          main:
            name: Main
            description: The main task
            mode: distributed
            folder: deploy/prod
            timeout: 1h
            input:
              env: { type: string, default: staging }
            flow:
              build:
                name: Build
                description: builds
                type: script
                script: "true"
                continue_on_failure: true
                when: "{{ input.env }}"
              fan-out:
                action: child
                for_each: ["a", "b"]
                sequential: true
                depends_on: [build]
                retry: { max_attempts: 2 }
            on_success: [{ action: ask }]
            on_error: [{ action: ask, input: {} }]
            on_cancel: [{ action: ask }]
            on_suspended: [{ action: ask }]
        triggers:
          nightly:
            type: scheduler
            cron: "0 0 2 * * *"
            task: main
            input: { env: prod }
            enabled: false
            timezone: Europe/Copenhagen
            concurrency: skip
          hook:
            type: webhook
            name: deploy-hook
            task: main
            secret: "{{ secret.HOOK }}"
            mode: sync
            timeout_secs: 60
        on_success:
          - action: ask
        on_error:
          - action: ask
        """)
    assert result.ok, [p.format() for p in result.problems]
    assert not result.warnings, [p.format() for p in result.warnings]
