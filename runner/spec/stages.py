"""A task written as `stages:`: the stages' steps as one flow, and which stage each step belongs to.

Steps inside a stage run in parallel (unless they name each other in `depends_on`); each stage
starts when the previous enabled stage has ended. The ordering is added as `Step.stage_after`
(see flows.py), so it blocks on a failure like a dependency but, unlike one, does not skip the
next stage when every step of the previous stage was skipped by its `when`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .fields import STAGE_FIELDS
from .names import name_problem
from .problems import Problems
from .reader import Reader, describe
from .yamlnodes import LocDict, LocList

__all__ = ["Stages", "read_stages"]


@dataclass
class Stages:
    """The enabled stages' steps merged into one flow (with their positions), in stage order."""

    flow: LocDict
    stage_of: dict[str, str]  # step name -> stage name (disabled stages' steps too)
    names: tuple[str, ...]  # enabled stages, in order
    disabled: dict[str, LocDict]  # step name -> the steps of its disabled stage (validated, never run)


def read_stages(items: LocList, problems: Problems, what: str) -> Stages:
    flow = LocDict()
    flow.pos, flow.key_pos, flow.val_pos = items.pos, {}, {}
    stages = Stages(flow, {}, (), {})
    names: list[str] = []
    seen_stage: set[str] = set()
    seen_step = stages.stage_of
    for index, item in enumerate(items):
        if not isinstance(item, LocDict):
            problems.error(
                items.at(index),
                "wrong-type",
                f"{what}: stages[{index}] must be a mapping, got {describe(item)}",
                "write it like `- { name: build, steps: { compile: { type: script, script: make } } }`",
            )
            continue
        r = Reader(item, problems, f"{what}, stages[{index}]")
        r.check_keys(STAGE_FIELDS)
        name = r.string("name", "build") if r.require("name", "name the stage, e.g. `name: build`") else None
        if name is not None:
            problem = name_problem(name, "stage")
            if problem:
                r.error("name", "bad-name", problem, "rename the stage, e.g. build")
            elif name in seen_stage:
                r.error("name", "duplicate", f"stage {name!r} is written twice", "give each stage its own name")
            seen_stage.add(name)
        enabled = r.boolean("enabled", True)
        if not r.require("steps", "add `steps:` with at least one step"):
            continue
        steps = r.mapping("steps", "{ compile: { type: script, script: make } }")
        if steps is None:
            continue
        if not steps:
            r.error("steps", "missing-field", "the stage has no steps", "add a step, or remove the stage")
            continue
        label = name or f"stages[{index}]"
        for step_name in steps:
            if step_name in seen_step:
                problems.error(
                    steps.key_at(step_name),
                    "duplicate",
                    f"{what}: step {step_name!r} is in stage {seen_step[step_name]!r} and in stage {label!r}",
                    "step names are unique across a task's stages; rename one",
                )
                continue
            seen_step[step_name] = label
            if enabled:
                flow[step_name] = steps[step_name]
                flow.key_pos[step_name], flow.val_pos[step_name] = steps.key_at(step_name), steps.at(step_name)
            else:
                stages.disabled[step_name] = steps
        if enabled:
            names.append(label)
    stages.names = tuple(names)
    return stages
