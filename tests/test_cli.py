"""The `strom` command: exit statuses, messages, JSON output."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
from click.testing import CliRunner
from conftest import write_workspace

from runner.cli import main

VALID = {
    ".strom/ci.yaml": """
    actions:
      greet:
        type: script
        script: "echo Hello {{ input.name }}"
        input:
          name: { type: string, required: true }
    tasks:
      hello:
        description: Say hello
        input:
          name: { type: string, default: World }
          shout: { type: boolean, default: false }
        flow:
          say:
            action: greet
            input: { name: "{{ input.name | upper if input.shout else input.name }}" }
      deploy:
        input:
          env: { type: string, required: true, options: [staging, production] }
        flow:
          gate: { type: approval, message: "Deploy to {{ input.env }}?" }
          go: { type: script, script: "echo deploying $INPUT_ENV", depends_on: [gate], input: { env: "{{ input.env }}" } }
      broken:
        flow:
          fail: { type: script, script: "echo oops >&2; exit 3" }
    triggers:
      nightly: { type: scheduler, cron: "0 2 * * *", task: hello }
    """
}

INVALID = {
    ".strom/ci.yaml": """
    tasks:
      t:
        flow:
          a:
            type: script
            scrpt: "echo hi"
    """
}


def invoke(*args, input=None):
    result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.output


def test_validate_valid_workspace(tmp_path):
    root = write_workspace(tmp_path, VALID)
    code, out = invoke("validate", str(root))
    assert code == 0
    assert "✓ 1 file(s): 3 task(s), 1 action(s), 1 trigger(s) - valid" in out


def test_validate_invalid_workspace_prints_position_problem_and_fix(tmp_path):
    root = write_workspace(tmp_path, INVALID)
    code, out = invoke("validate", str(root / ".strom"))
    assert code == 1
    assert ".strom/ci.yaml:6:9: error: task 't', step 'a': unknown key 'scrpt'; did you mean \"script\"?" in out
    assert ".strom/ci.yaml:5:9: error: task 't', step 'a': a script action needs `script` (inline code)" in out
    assert "✗ 2 error(s), 0 warning(s)" in out


def test_validate_json_for_machines(tmp_path):
    root = write_workspace(tmp_path, INVALID)
    code, out = invoke("validate", "--json", str(root))
    data = json.loads(out)
    assert code == 1 and data["valid"] is False and data["files"] == [".strom/ci.yaml"]
    assert {p["code"] for p in data["problems"]} == {"unknown-key", "missing-field"}
    assert {"file", "line", "column", "severity", "code", "message", "hint"} == set(data["problems"][0])


def test_validate_strict_fails_on_warnings(tmp_path):
    root = write_workspace(
        tmp_path,
        {".strom/a.yaml": "secrets:\n  X: plain\ntasks:\n  t:\n    flow:\n      a: { type: script, script: 'true' }\n"},
    )
    assert invoke("validate", str(root))[0] == 0
    assert invoke("validate", "--strict", str(root))[0] == 1


def test_schema_is_valid_json_schema(tmp_path):
    code, out = invoke("schema")
    assert code == 0
    jsonschema.Draft7Validator.check_schema(json.loads(out))
    target = tmp_path / "schema.json"
    assert invoke("schema", "-o", str(target))[0] == 0
    assert json.loads(target.read_text())["title"] == "Strom workflow file (.strom/*.yaml)"


def test_run_succeeds_with_exit_zero_and_a_summary(tmp_path):
    root = write_workspace(tmp_path, VALID)
    code, out = invoke("run", "hello", "-C", str(root), "-i", "name=ada", "-i", "shout=yes")
    assert code == 0, out
    assert "say" in out and "Hello ADA" in out
    assert "Status: succeeded ✓" in out


def test_run_failure_exits_one(tmp_path):
    root = write_workspace(tmp_path, VALID)
    code, out = invoke("run", "broken", "-C", str(root))
    assert code == 1
    assert "oops" in out and "Status: failed ✗" in out and "exit code 3" in out


def test_run_rejects_bad_inputs_before_running_with_exit_two(tmp_path):
    root = write_workspace(tmp_path, VALID)
    code, out = invoke("run", "deploy", "-C", str(root), "-i", "env=prod", "-i", "colour=red")
    assert code == 2
    assert "invalid input for task 'deploy':" in out
    assert "env: 'prod' is not one of the options (staging, production)" in out
    assert "colour: unknown input" in out
    assert "-i env=<string>   (required; one of staging, production)" in out
    assert "deploying" not in out


def test_run_unknown_task_suggests_a_name(tmp_path):
    root = write_workspace(tmp_path, VALID)
    code, out = invoke("run", "helo", "-C", str(root))
    assert code == 2 and 'did you mean "hello"?' in out and "Tasks: broken, deploy, hello" in out


def test_run_on_an_invalid_workspace_runs_nothing(tmp_path):
    root = write_workspace(tmp_path, INVALID)
    code, out = invoke("run", "t", "-C", str(root))
    assert code == 1 and "unknown key 'scrpt'" in out and "nothing was run" in out


def test_run_approvals_from_flags(tmp_path):
    root = write_workspace(tmp_path, VALID)
    code, out = invoke("run", "deploy", "-C", str(root), "-i", "env=staging", "--approve", "gate")
    assert code == 0 and "deploying staging" in out
    code, out = invoke("run", "deploy", "-C", str(root), "-i", "env=staging", "--reject", "gate=too late")
    assert code == 1 and "rejected by" in out and "too late" in out


def test_run_json_prints_the_final_state(tmp_path):
    root = write_workspace(tmp_path, VALID)
    result = CliRunner().invoke(main, ["run", "hello", "-C", str(root), "--json"])
    data = json.loads(result.stdout)
    assert data["status"] == "succeeded" and data["steps"][0]["name"] == "say"


def test_input_json_and_secrets_file(tmp_path):
    root = write_workspace(
        tmp_path,
        {
            ".strom/a.yaml": """
        tasks:
          t:
            input:
              items: { type: json }
            flow:
              s:
                type: script
                script: 'echo "{{ input.items | length }} $TOKEN"'
                env: { TOKEN: "{{ secret.token }}" }
        """,
            "secrets.env": "TOKEN=abc123secret\n",
        },
    )
    code, out = invoke(
        "run", "t", "-C", str(root), "--input-json", '{"items": [1, 2, 3]}', "--secrets", str(root / "secrets.env")
    )
    assert code == 0, out
    assert "3 ***" in out and "abc123secret" not in out


def test_tasks_lists_tasks_inputs_and_triggers(tmp_path):
    root = write_workspace(tmp_path, VALID)
    code, out = invoke("tasks", str(root))
    assert code == 0
    hello = next(line for line in out.splitlines() if line.startswith("hello"))
    assert "name:string" in hello and "nightly (scheduler: At" in hello and "Say hello" in hello
    assert "02:00, UTC)" in out, 'the schedule in English ("At 02:00"), with its time zone'
    assert "env*:string" in next(line for line in out.splitlines() if line.startswith("deploy"))


def test_init_writes_a_pipeline_that_runs(tmp_path):
    code, out = invoke("init", str(tmp_path))
    assert code == 0 and "strom run hello" in out
    assert invoke("init", str(tmp_path))[0] == 1
    code, out = invoke("run", "hello", "-C", str(tmp_path), "-i", "name=tester")
    assert code == 0 and "Hello, tester!" in out


def test_help_is_helpful():
    code, out = invoke("--help")
    assert code == 0 and "strom run TASK" in out and "validate" in out
    code, out = invoke("run", "--help")
    assert "--approve STEP" in out and "Examples:" in out


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "runner.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "strom, version" in out.stdout


def test_web_steps_only_with_the_scheduler():
    code, out = invoke("web", "--steps", "2")
    assert code == 2 and "Invalid value for --steps: runs steps only with --scheduler" in out


def test_web_and_scheduler_in_one_process_is_argued_to_the_single_server():
    from runner.service.webserver import single_argv

    assert single_argv("127.0.0.1:9000", scheduler=True, steps=3)[1:] == [
        "-m",
        "webhooks.serve",
        "127.0.0.1:9000",
        "--scheduler",
        "--steps",
        "3",
    ]
    assert single_argv("[::1]:9000", access_log=True)[1:] == ["-m", "webhooks.serve", "[::1]:9000", "--access-log"]
