"""Ad-hoc runs (`strom exec`): a one-off command or script on a workspace, without writing a task.

The request is checked here and kept as the run's inputs; the run's task (`exec: NAME`, one script step
`exec`) is made from them with the workflow loader, so a re-run makes the same task again. The command
reaches the step by reference (`{{ input.script }}`), never rendered as a template itself; the
environment's values are templates (secrets available), like a script step's `env`.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..errors import InputError
from .model import Task
from .names import name_problem

__all__ = [
    "EXEC_ABILITIES",
    "EXEC_STEP",
    "EXEC_TASK_PREFIX",
    "MAX_EXEC_SCRIPT",
    "MAX_EXEC_TIMEOUT",
    "exec_inputs",
    "exec_task",
    "is_exec_task",
]

EXEC_TASK_PREFIX = "exec: "
EXEC_STEP = "exec"
DEFAULT_EXEC_TIMEOUT = 300
MAX_EXEC_TIMEOUT = 3600
MAX_EXEC_SCRIPT = 64 * 1024
MAX_EXEC_ENV = 100
EXEC_ABILITIES = {"script": "local", "docker": "docker", "kubernetes": "pod"}  # ability -> the step's runner
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_KEYS = ("name", "command", "script", "timeout", "env", "ability", "tags", "image")


def is_exec_task(task: str) -> bool:
    return task.startswith(EXEC_TASK_PREFIX)


def exec_inputs(request: Mapping[str, Any]) -> dict[str, Any]:
    """The run inputs of an exec request (`command` as a list, or `script`; `name`, `timeout`, `env`,
    `ability`, `tags`, `image`). Raises InputError naming every problem."""
    problems: dict[str, str] = {}
    for key in request:
        if key not in _KEYS:
            problems[str(key)[:40]] = f"unknown field; fields: {', '.join(_KEYS)}"
    script = _script(request, problems)
    name = request.get("name", "adhoc")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        problems["name"] = "up to 63 letters, digits, '.', '-' and '_', starting with a letter or digit (clear-cache)"
    timeout = request.get("timeout", DEFAULT_EXEC_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= MAX_EXEC_TIMEOUT:
        problems["timeout"] = f"whole seconds from 1 to {MAX_EXEC_TIMEOUT} (default {DEFAULT_EXEC_TIMEOUT})"
    env = request.get("env") or {}
    if (
        not isinstance(env, dict)
        or len(env) > MAX_EXEC_ENV
        or not all(isinstance(k, str) and k.isidentifier() and isinstance(v, str) for k, v in env.items())
    ):
        problems["env"] = f"a mapping of up to {MAX_EXEC_ENV} NAME: value strings (values are templates)"
    ability = request.get("ability") or "script"
    if not isinstance(ability, str) or ability not in EXEC_ABILITIES:
        problems["ability"] = f"one of {', '.join(EXEC_ABILITIES)}"
    tags = request.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) and not name_problem(t, "tag") for t in tags):
        problems["tags"] = "a list of worker tags, e.g. [gpu]"
    image = request.get("image")
    if image is not None and (not isinstance(image, str) or not image.strip() or ability == "script"):
        problems["image"] = "an image name, for ability docker or kubernetes"
    if problems:
        raise InputError("exec", problems)
    inputs: dict[str, Any] = {"name": name, "script": script, "timeout": timeout, "env": env, "ability": ability}
    if tags:
        inputs["tags"] = tags
    if image:
        inputs["image"] = image
    exec_task(inputs)  # templates in env are checked now, not when the step starts
    return inputs


def _script(request: Mapping[str, Any], problems: dict[str, str]) -> str:
    command, script = request.get("command"), request.get("script")
    if (command is None) == (script is None):
        problems["command"] = "give either `command` (a list of words) or `script` (shell text)"
        return ""
    if command is not None:
        if not isinstance(command, list) or not command or not all(isinstance(w, str) for w in command):
            problems["command"] = 'a non-empty list of words, e.g. ["make", "clean"]'
            return ""
        script = shlex.join(command)
    if not isinstance(script, str) or not script.strip():
        problems["script"] = "shell text to run, e.g. `make clean`"
        return ""
    if len(script.encode()) > MAX_EXEC_SCRIPT or "\0" in script:
        problems["script"] = f"at most {MAX_EXEC_SCRIPT // 1024} KiB of text without NUL characters"
        return ""
    return script


def exec_task(inputs: Mapping[str, Any]) -> Task:
    """The task an exec run runs, made from its inputs. Raises InputError if they do not make one."""
    from .loader import load_texts  # the loader imports this module's neighbours; loaded when first needed

    step: dict[str, Any] = {
        "type": "script",
        "script": "{{ input.script }}",
        "runner": EXEC_ABILITIES.get(inputs.get("ability") or "script", "local"),
    }
    for key in ("env", "tags", "image"):
        if inputs.get(key):
            step[key] = inputs[key]
    document = {
        "tasks": {
            "adhoc": {
                "input": {"script": {"type": "string", "required": True}},
                "timeout": f"{inputs['timeout']}s",  # the run times out (not only its step)
                "flow": {EXEC_STEP: step},
            }
        }
    }
    result = load_texts({".strom/exec.yaml": json.dumps(document)})
    if not result.ok or result.workspace is None:
        raise InputError("exec", {"env": "; ".join(p.message.split("step 'exec': ", 1)[-1] for p in result.errors)})
    return replace(result.workspace.tasks["adhoc"], name=f"{EXEC_TASK_PREFIX}{inputs['name']}")
