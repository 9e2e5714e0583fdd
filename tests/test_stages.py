"""Tasks written as stages: the loader's desugaring and its errors, how the engine runs them, and the graph."""

from __future__ import annotations

import pytest
from conftest import Sim, load

from runner.engine import RunStatus, StepStarted, StepStatus
from webhooks.ui.graph import layout, timeline

STAGED = """
tasks:
  ship:
    stages:
      - name: check
        steps:
          lint: { type: script, script: "true" }
          test: { type: script, script: "true" }
      - name: build
        steps:
          image: { type: script, script: "true" }
          sbom: { type: script, script: "true", depends_on: [image] }
      - name: audit
        enabled: false
        steps:
          scan: { type: script, script: "true" }
      - name: deploy
        steps:
          rollout: { type: script, script: "true", depends_on: [lint] }
"""


def test_each_stage_waits_for_the_whole_previous_enabled_stage():
    task = load(STAGED).workspace.tasks["ship"]
    assert task.stages == ("check", "build", "deploy")
    assert list(task.flow) == ["lint", "test", "image", "sbom", "rollout"], "a disabled stage's steps never run"
    assert {name: step.stage for name, step in task.flow.items()} == {
        "lint": "check",
        "test": "check",
        "image": "build",
        "sbom": "build",
        "rollout": "deploy",
    }
    assert task.flow["lint"].depends_on == ()
    assert task.flow["image"].depends_on == ("lint", "test") == task.flow["image"].stage_after
    assert task.flow["sbom"].depends_on == ("image", "lint", "test")
    # a step of an earlier stage it names itself is a dependency of its own, not only the stage's order
    assert task.flow["rollout"].depends_on == ("lint", "image", "sbom")
    assert task.flow["rollout"].stage_after == ("image", "sbom")


def test_steps_of_a_stage_run_in_parallel_and_the_next_stage_after_all_of_them():
    sim = Sim(STAGED, "ship")
    sim.start()
    assert sim.dispatched() == ["lint", "test"]
    sim.succeed("lint")
    assert sim.dispatched() == []
    sim.succeed("test")
    assert sim.dispatched() == ["image"]
    sim.succeed("image")
    assert sim.dispatched() == ["sbom"]
    sim.succeed("sbom")
    assert sim.dispatched() == ["rollout"]
    sim.succeed("rollout")
    assert sim.state.status is RunStatus.SUCCEEDED


def test_a_failed_stage_stops_the_later_stages_but_a_skipped_one_does_not():
    sim = Sim(STAGED, "ship")
    sim.start()
    sim.succeed("lint")
    sim.fail("test", "exit code 1")
    assert sim.statuses() == {
        "lint": "succeeded",
        "test": "failed",
        "image": "skipped",
        "sbom": "skipped",
        "rollout": "skipped",
    }
    assert sim.state.steps["image"].skip_reason == "dependency test failed"
    assert sim.state.status is RunStatus.FAILED

    skipping = Sim(
        """
        tasks:
          t:
            stages:
              - name: maybe
                steps:
                  a: { type: script, script: "true", when: "{{ false }}" }
                  b: { type: script, script: "true", when: "{{ false }}" }
              - name: always
                steps:
                  c: { type: script, script: "true" }
                  d: { type: script, script: "true", depends_on: [a] }
        """,
        "t",
    )
    skipping.start()
    assert skipping.dispatched() == ["c"], "a stage whose steps were all skipped by `when` lets the next stage run"
    assert skipping.status("d") is StepStatus.SKIPPED, "a step still follows the dependencies it names"
    assert skipping.state.steps["d"].skip_reason == "all dependencies were skipped"
    skipping.succeed("c")
    assert skipping.state.status is RunStatus.SUCCEEDED


def test_continue_on_failure_in_a_stage_lets_the_next_stage_run():
    sim = Sim(
        """
        tasks:
          t:
            stages:
              - name: one
                steps:
                  flaky: { type: script, script: "false", continue_on_failure: true }
              - name: two
                steps:
                  after: { type: script, script: "true" }
        """,
        "t",
    )
    sim.start()
    sim.fail("flaky")
    assert sim.dispatched() == ["after"]


ERRORS = {
    "flow and stages": (
        "    flow: { a: { type: script, script: x } }\n    stages: [{ name: s, steps: { b: { type: script, script: x } } }]",
        "conflict",
        (4, 5),
        "either `flow:` or `stages:`",
    ),
    "later stage": (
        "    stages:\n"
        "      - { name: one, steps: { a: { type: script, script: x, depends_on: [b] } } }\n"
        "      - { name: two, steps: { b: { type: script, script: x } } }",
        "stage-order",
        (4, 74),
        "step 'b' of the later stage 'two'",
    ),
    "disabled stage": (
        "    stages:\n"
        "      - { name: one, enabled: false, steps: { a: { type: script, script: x } } }\n"
        "      - { name: two, steps: { b: { type: script, script: x, depends_on: [a] } } }",
        "stage-order",
        (5, 74),
        "step 'a' of stage 'one', which is disabled",
    ),
    "same step in two stages": (
        "    stages:\n"
        "      - { name: one, steps: { a: { type: script, script: x } } }\n"
        "      - { name: two, steps: { a: { type: script, script: x } } }",
        "duplicate",
        (5, 31),
        "step 'a' is in stage 'one' and in stage 'two'",
    ),
    "stage without name": (
        "    stages:\n      - { steps: { a: { type: script, script: x } } }",
        "missing-field",
        (4, 9),
        "missing required field 'name'",
    ),
    "every stage disabled": (
        "    stages:\n      - { name: one, enabled: false, steps: { a: { type: script, script: x } } }",
        "missing-field",
        (4, 7),
        "every stage is disabled",
    ),
    "not a list": ("    stages: { a: 1 }", "wrong-type", (3, 13), "`stages` must be a list"),
    "unknown key in a stage": (
        "    stages:\n      - { name: one, step: { a: { type: script, script: x } } }",
        "unknown-key",
        (4, 22),
        "unknown key 'step'",
    ),
    "a disabled stage is still checked": (
        "    stages:\n"
        "      - { name: one, steps: { a: { type: script, script: x } } }\n"
        "      - { name: two, enabled: false, steps: { b: { type: scrip, script: x } } }",
        "bad-value",
        (5, 58),
        "'type' must be one of",
    ),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_stage_errors_name_the_place_and_the_fix(name):
    body, code, (line, column), words = ERRORS[name]
    result = load("tasks:\n  t:\n" + body + "\n")
    assert not result.ok
    found = [p for p in result.errors if p.code == code]
    assert found, "\n".join(p.format() for p in result.problems)
    assert (found[0].line, found[0].column) == (line, column), found[0].format()
    assert words in found[0].message
    assert not [p for p in result.errors if p.code == "cycle"], "a step naming a later stage is one error, not two"


def test_the_graph_draws_a_band_per_stage_and_only_the_edges_written():
    task = load(STAGED).workspace.tasks["ship"]
    sim = Sim(STAGED, "ship")
    sim.start()
    sim.succeed("lint")
    sim.send(StepStarted("test", 1), at=sim.now + 1)
    stage_of = {name: step.stage for name, step in task.flow.items()}
    graph = layout(
        list(task.order),
        {name: step.depends_on for name, step in task.flow.items()},
        sim.state,
        stage_of,
        {name: step.stage_after for name, step in task.flow.items()},
    )
    assert [band.name for band in graph.bands] == ["check", "build", "deploy"]
    x = {node.name: node.x for node in graph.nodes}
    for band in graph.bands:
        inside = {name for name, stage in stage_of.items() if stage == band.name}
        assert all(band.x <= x[name] < band.x + band.width for name in inside), band
        assert not any(band.x <= x[name] < band.x + band.width for name in set(x) - inside), band
    assert {(e.source, e.target) for e in graph.edges} == {("image", "sbom"), ("lint", "rollout")}
    assert min(node.y for node in graph.nodes) > 20, "room for the stage names above the steps"
    bars = timeline(sim.state, sim.now + 1, stage_of)
    assert [(bar.name, bar.stage) for bar in bars] == [("lint", "check"), ("test", "check")]


def test_the_json_schema_for_editors_knows_stages():
    import jsonschema
    from ruamel.yaml import YAML

    from runner.spec.schema import json_schema

    validator = jsonschema.Draft7Validator(json_schema())
    assert not list(validator.iter_errors(YAML(typ="safe").load(STAGED)))
    both = {"tasks": {"t": {"flow": {"a": {"type": "script", "script": "x"}}, "stages": []}}}
    unnamed = {"tasks": {"t": {"stages": [{"steps": {"a": {"type": "script", "script": "x"}}}]}}}
    assert list(validator.iter_errors(both)) and list(validator.iter_errors(unnamed))
