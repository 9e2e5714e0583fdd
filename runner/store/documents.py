"""A run's JSON document, written and read so that an event on a big run costs what it changes.

A run is one JSON document in Redis (every process reads it in one GET). Building it anew for each
event costs time in proportion to the run's steps, so a 200-step chain paid ten times per step what a
20-step one did. This process remembers the last runs it wrote or read: the document's text, the state
parsed from it, and each step's JSON. Reading a document that is still exactly the remembered text
costs a comparison; writing one re-encodes only the steps that changed (a StepRun never changes: a
changed step is a new object).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from ..engine.state import RunState, StepRun

__all__ = ["Documents"]

REMEMBERED = 64  # runs; the unfinished ones a scheduler works on
REMEMBERED_TEXT = 16 << 20  # characters of documents, at most: a few huge runs must not fill the memory


@dataclass
class _Remembered:
    text: str  # the document as read or written
    state: RunState
    steps: dict[str, tuple[StepRun, str]] = field(default_factory=dict)  # name -> (step, its JSON)


class Documents:
    def __init__(self, size: int = REMEMBERED, text: int = REMEMBERED_TEXT):
        self._runs: OrderedDict[str, _Remembered] = OrderedDict()
        self._size = size
        self._text = text
        self._held = 0  # characters of the remembered documents
        self._lock = threading.Lock()

    def _recall(self, run_id: str) -> _Remembered | None:
        with self._lock:
            found = self._runs.get(run_id)
            if found is not None:
                self._runs.move_to_end(run_id)
            return found

    def _remember(self, run_id: str, entry: _Remembered) -> None:
        with self._lock:
            old = self._runs.pop(run_id, None)
            if old is not None:
                self._held -= len(old.text)
            if len(entry.text) > self._text // 4:  # one run this large is encoded in full each time
                return
            self._runs[run_id] = entry
            self._held += len(entry.text)
            while len(self._runs) > self._size or self._held > self._text:
                self._held -= len(self._runs.popitem(last=False)[1].text)

    def parse(self, run_id: str, text: str) -> RunState:
        """The run stored as `text`."""
        known = self._recall(run_id)
        if known is not None and known.text == text:
            return known.state
        state = RunState.from_dict(json.loads(text))
        self._remember(run_id, _Remembered(text, state))
        return state

    def render(self, state: RunState) -> str:
        """The document of `state`, re-encoding only the steps that are not the ones last rendered."""
        known = self._recall(state.id)
        before = known.steps if known is not None else {}
        steps: dict[str, tuple[StepRun, str]] = {}
        for name, run in state.steps.items():
            old = before.get(name)
            steps[name] = old if old is not None and old[0] is run else (run, json.dumps(run.to_dict(), default=str))
        head = json.dumps(state.head(), default=str)
        text = f'{head[:-1]}, "steps": [{", ".join(encoded for _, encoded in steps.values())}]}}'
        self._remember(state.id, _Remembered(text, state, steps))
        return text
