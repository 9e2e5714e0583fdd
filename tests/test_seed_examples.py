"""Every example of the Strøm action-types document loads; those needing only this machine run."""

from __future__ import annotations

import json

import jsonschema
import pytest
from conftest import FIXTURES, need, run_local
from ruamel.yaml import YAML

from runner.engine import RunStatus, StepStatus
from runner.spec import load_texts, load_workspace
from runner.spec.schema import json_schema

SEED = FIXTURES / "seed"
EXAMPLES = sorted(p.name for p in SEED.iterdir() if p.is_dir())


def _example_texts(name: str) -> dict[str, str]:
    strom = SEED / name / ".strom"
    files = {".strom/example.yaml": (strom / "example.yaml").read_text()}
    if (strom / "completion.yaml").exists():
        files[".strom/completion.yaml"] = (strom / "completion.yaml").read_text()
    return files


def test_there_are_twenty_one_examples():
    assert len(EXAMPLES) == 21


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_loads_without_errors(name):
    root = SEED / name
    result = load_texts(_example_texts(name), root=root, file_exists=lambda p: (root / p).is_file())
    assert result.ok, [p.format() for p in result.errors]


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_validates_against_the_json_schema(name):
    validator = jsonschema.Draft7Validator(json_schema())
    for rel, text in _example_texts(name).items():
        document = YAML(typ="safe").load(text)
        errors = sorted(validator.iter_errors(json.loads(json.dumps(document, default=str))), key=str)
        assert not errors, f"{rel}: {errors[0].message}"


def test_field_validity_matches_the_reference_table():
    ws = load_workspace(SEED / "10-docker-actions").raise_for_errors()
    migrate = ws.actions["migrate-db"].payload
    assert (migrate.image, migrate.cmd, migrate.entrypoint) == ("company/db-migrations:v3", None, None)
    custom = ws.actions["custom-entrypoint"].payload
    assert custom.entrypoint == ("/app/run",) and custom.cmd == "--verbose --env staging"
    pod = load_workspace(SEED / "16-manifest-resources").raise_for_errors().actions["heavy-build"].payload
    assert pod.manifest["spec"]["containers"][0]["resources"]["limits"] == {"memory": "512Mi"}
    gpu = load_workspace(SEED / "13-script-in-kubernetes").raise_for_errors().actions["gpu-test"]
    assert (gpu.ability, gpu.tags) == ("kubernetes", ("gpu",))
    lint = load_workspace(SEED / "12-script-in-docker").raise_for_errors().actions["lint-python"]
    assert lint.ability == "docker"


def test_inline_command(tmp_path):
    outcome, display = run_local(SEED / "01-inline-command", "try", {"name": "Ada"})
    assert outcome.state.status is RunStatus.SUCCEEDED
    assert display.of("greet") == ["Hello Ada"]


def test_script_file():
    outcome, display = run_local(SEED / "02-script-file", "try")
    assert outcome.state.status is RunStatus.SUCCEEDED
    assert display.of("deploy") == ["deploying to staging"]


def test_cli_arguments_become_positional_parameters():
    _outcome, display = run_local(SEED / "03-cli-arguments", "try")
    assert display.of("deploy") == ["environment=production flag=--region region=us-east-1 count=3"]


def test_environment_variables_with_a_secret_that_is_masked():
    outcome, display = run_local(SEED / "04-environment-variables", "try", secrets={"api_key": "k-123456"})
    assert outcome.state.status is RunStatus.SUCCEEDED
    assert display.of("deploy") == ["DEPLOY_ENV=staging", "API_KEY=***"]


def test_go_structured_output():
    need("go")
    outcome, _ = run_local(SEED / "08-go", "try")
    assert outcome.state.status is RunStatus.SUCCEEDED, outcome.state.error
    assert outcome.state.steps["compute"].output == {"result": 42}


def test_interpreter_override():
    need("python3.11")
    outcome, display = run_local(SEED / "09-interpreter-override", "try")
    assert outcome.state.status is RunStatus.SUCCEEDED, outcome.state.error
    assert display.of("legacy")[0].startswith("Using Python 3.11")


def test_task_action_runs_a_child_job_and_completes_with_its_output():
    outcome, display = run_local(SEED / "14-task-actions", "deploy", {"env": "qa"})
    assert outcome.state.status is RunStatus.SUCCEEDED
    assert outcome.state.steps["cleanup"].output == {"cleaned": "qa"}
    child = [r for r in outcome.runs if r.parent_job == outcome.state.id]
    assert [(c.task, c.status, c.depth, dict(c.inputs)) for c in child] == [
        ("cleanup-resources", RunStatus.SUCCEEDED, 1, {"env": "qa"})
    ]
    assert display.of("cleanup » cleanup") == ["cleaning up qa", 'OUTPUT: {"cleaned": "qa"}']


def test_basic_approval_gate_approved_and_rejected():
    outcome, display = run_local(SEED / "19-basic-approval", "deploy", approve=["approve"])
    assert outcome.state.status is RunStatus.SUCCEEDED
    assert outcome.state.steps["approve"].output["approved"] is True
    assert display.of("execute") == ["deploying latest"]
    outcome, _ = run_local(SEED / "19-basic-approval", "deploy", reject={"approve": "not now"})
    steps = outcome.state.steps
    assert outcome.state.status is RunStatus.FAILED
    assert steps["approve"].error.endswith(": not now") and steps["execute"].status is StepStatus.SKIPPED


def test_dynamic_approval_message():
    inputs = {"version": "2.0", "environment": "prod", "current_version": "1.9", "deployer_email": "a@b.c"}
    outcome, display = run_local(SEED / "20-approval-message", "deploy", inputs, approve=["approve"])
    message = outcome.state.steps["approve"].approval["message"]
    assert message.startswith("Approve deployment of **2.0** to **prod**?")
    assert "Current version: 1.9" in message and "Deployer: a@b.c" in message
    assert display.of("execute") == ["deploying 2.0"]


def test_structured_output_script_from_the_document(tmp_path):
    from conftest import write_workspace

    root = write_workspace(
        tmp_path,
        {
            ".strom/t.yaml": """
            tasks:
              t:
                flow:
                  s: { type: script, source: deploy.sh }
            """,
            "deploy.sh": '#!/bin/bash\necho "Doing work..."\necho "OUTPUT: {\\"status\\": \\"deployed\\", \\"version\\": \\"1.2.3\\"}"\n',
        },
    )
    outcome, _display = run_local(root, "t")
    assert outcome.state.steps["s"].output == {"status": "deployed", "version": "1.2.3"}
