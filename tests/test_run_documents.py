"""A run's JSON document as this process remembers it: the same text and state as building it anew,
re-encoding only what changed, and never trusting a memory Redis no longer holds."""

from __future__ import annotations

import json
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from runner.engine.state import RunState, StepRun
from runner.engine.status import RunStatus, StepStatus
from runner.store.documents import Documents

_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
_CHANGES = st.lists(
    st.tuples(st.integers(0, 9), st.sampled_from(list(StepStatus)), _VALUES, st.integers(0, 3)), max_size=12
)


def _run(steps: int) -> RunState:
    runs = {f"s{i}": StepRun(name=f"s{i}", step=f"s{i}") for i in range(steps)}
    return RunState(id="r1", workspace="w", task="t", created_at=1.0, steps=runs, inputs={"x": [1, {"y": None}]})


@settings(max_examples=60, deadline=None)
@given(changes=_CHANGES)
def test_each_document_is_the_run_as_a_whole_encoding_gives_it(changes):
    documents, reader = Documents(), Documents()
    state = _run(10)
    for index, status, output, attempt in changes:
        name = f"s{index}"
        step = replace(state.steps[name], status=status, output=output, attempt=attempt)
        state = replace(state, steps={**state.steps, name: step}, status=RunStatus.RUNNING, output=output)
        text = documents.render(state)
        assert json.loads(text) == json.loads(json.dumps(state.to_dict(), default=str))
        parsed = reader.parse(state.id, text)
        assert parsed.to_dict() == RunState.from_dict(json.loads(text)).to_dict()


def test_unchanged_steps_are_not_encoded_again_and_a_changed_document_is_parsed_again(monkeypatch):
    documents = Documents()
    state = _run(200)
    text = documents.render(state)
    assert documents.parse(state.id, text) is state, "the text this process wrote: the state it wrote"

    encoded = []
    real = StepRun.to_dict
    monkeypatch.setattr(StepRun, "to_dict", lambda self: encoded.append(self.name) or real(self))
    changed = replace(state.steps["s7"], status=StepStatus.RUNNING, attempt=1)
    newer = replace(state, steps={**state.steps, "s7": changed})
    documents.render(newer)
    assert encoded == ["s7"]

    elsewhere = json.loads(text)  # another process wrote the run meanwhile
    elsewhere["steps"][3]["status"] = "succeeded"
    theirs = documents.parse(state.id, json.dumps(elsewhere))
    assert theirs.steps["s3"].status is StepStatus.SUCCEEDED and theirs is not newer


def test_memory_is_bounded_in_runs_and_in_text():
    documents = Documents(size=3)
    for i in range(10):
        documents.render(replace(_run(1), id=f"r{i}"))
    assert list(documents._runs) == ["r7", "r8", "r9"]
    small = len(documents.render(replace(_run(1), id="probe")))
    documents = Documents(size=100, text=small * 5)
    for i in range(10):
        documents.render(replace(_run(1), id=f"r{i}"))
    assert list(documents._runs) == [f"r{i}" for i in range(5, 10)]
    huge = _run(200)
    text = documents.render(huge)
    assert len(text) > small * 5 // 4 and "r1" not in documents._runs and huge.id not in documents._runs
    assert documents.parse(huge.id, text).to_dict() == huge.to_dict(), "too large to remember: parsed each time"
