"""`type: agent` steps: a prompt to a model provider of the server's configuration, through the provider's
official SDK (`anthropic`, or `openai` for every OpenAI-compatible service).

The conversation goes to the step's log (masked like every log). With `output`, the model is asked for one JSON
object of that shape; the reply is parsed and checked, and a mismatch fails the step with the reason. Without,
the output is `{text}`. Either way `_meta` says which provider and model answered, the tokens used and how long
it took. `tools: [{task: NAME}]` offers workspace tasks as tools: a call starts a run of the task (its inputs
the call's arguments) and its output is the result; the calls of one turn run in parallel, and `max_turns`
bounds the loop. With `interactive: true` the model may call `ask_user`: the conversation is saved, the attempt
ends as WAITING with the question (the worker reports StepAsked; the run waits as for an approval), and the
attempt that the answer starts loads the conversation and goes on with the answer as the tool's result.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from jsonschema import Draft202012Validator

from ..agent_config import AgentProvider
from ..engine.status import StepStatus
from ..engine.work import StepWork
from ..errors import StromError
from ..spec.payloads import AgentPayload
from .base import LogSink, StepResult
from .mcp_tools import McpTools, StdioLaunch

__all__ = ["ASK_TOOL", "DEFAULT_TIMEOUT", "AgentExecutor", "Conversations", "ToolCall", "output_json_schema"]

DEFAULT_TIMEOUT = 300.0  # seconds, when the step sets none
DEFAULT_TURNS = 10
_TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]")
ASK_TOOL = "ask_user"
_ASK = (
    "",
    "Ask the people running this workflow a question, when you cannot go on without their answer. The answer "
    "comes back as this tool's result (it may take a while).",
    {
        "type": "object",
        "properties": {"question": {"type": "string", "description": "The question, complete in itself."}},
        "required": ["question"],
    },
)


class Conversations(Protocol):
    """Where an interactive step's conversation waits for the answer to its question (runner/service)."""

    def save(self, work: StepWork, data: dict[str, Any]) -> None: ...

    def load(self, work: StepWork) -> dict[str, Any] | None: ...


# (workspace, task, inputs, call id) -> the finished child run's (status, output, error)
ToolRunner = Callable[[StepWork, str, Mapping[str, Any], str, threading.Event], tuple[str, Any, str | None]]
TaskSchemas = Callable[[StepWork, str], tuple[str, dict[str, Any]] | None]  # task -> (description, inputs schema)


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class _Usage:
    input: int = 0
    output: int = 0


@dataclass
class _Turn:
    text: str
    calls: list[ToolCall] = field(default_factory=list)


def output_json_schema(fields: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An action's `output` fields as a JSON Schema object; a field is required unless it says
    `required: false` or has a `default`."""
    if not fields:
        return None
    properties, required = {}, []
    for name, spec in fields.items():
        spec = dict(spec or {})
        prop: dict[str, Any] = {"type": spec.get("type", "string")}
        if spec.get("description"):
            prop["description"] = str(spec["description"])
        if spec.get("options"):
            prop["enum"] = list(spec["options"])
        properties[name] = prop
        if spec.get("required", True) is not False and "default" not in spec:
            required.append(name)
    return {"type": "object", "properties": properties, "required": required}


def _reply_json(text: str) -> Any:
    """The JSON value of a reply, also when the model wrapped it in a Markdown code fence."""
    fenced = re.search(r"```(?:json)?\s*\n(.*?)\n```", text, re.S)
    return json.loads(fenced.group(1) if fenced else text.strip())


class AgentExecutor:
    def __init__(
        self,
        providers: Mapping[str, AgentProvider],
        tool_runner: ToolRunner | None = None,
        task_schemas: TaskSchemas | None = None,
        count_tokens: Callable[[str, str, int, int], None] | None = None,
        untrusted_allowed: Callable[[str], bool] = lambda workspace: False,
        conversations: Conversations | None = None,
        mcp_launch: Callable[[StepWork, Path, ExitStack], StdioLaunch] | None = None,
    ):
        self.providers = providers
        self.conversations = conversations
        self.mcp_launch = mcp_launch  # how this worker starts a step's stdio MCP servers (in its sandbox)
        self.tool_runner = tool_runner
        self.task_schemas = task_schemas
        self.count_tokens = count_tokens
        self.untrusted_allowed = untrusted_allowed
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- the step
    def run(self, work: StepWork, workspace: Path, logs: LogSink, cancel: threading.Event) -> StepResult:
        p = work.payload_as(AgentPayload)
        if work.untrusted and not self.untrusted_allowed(work.workspace):  # before any server starts, too
            return _failed(
                "agent steps do not run for untrusted pull requests: a stranger's prompt would spend the "
                "workspace's provider keys (allow it with pull_requests: { agents: true } on the workspace)"
            )
        if not p.mcp_servers:
            return self._run(work, workspace, logs, cancel, None)
        if self.mcp_launch is None:
            return _failed("this worker cannot start MCP servers (it has no local executor)")
        deadline = time.monotonic() + (work.timeout or DEFAULT_TIMEOUT)
        with ExitStack() as stack:
            try:
                launch = self.mcp_launch(work, workspace, stack)
                tools = stack.enter_context(McpTools(p.mcp_servers, launch, lambda: deadline - time.monotonic()))
            except StromError as exc:
                return _failed(str(exc))
            for name in p.mcp_servers:
                _log(logs, "mcp", f"{name}: " + ", ".join(t for t in tools.offered if t.startswith(f"{name}__")))
            return self._run(work, workspace, logs, cancel, tools)

    def _run(
        self, work: StepWork, workspace: Path, logs: LogSink, cancel: threading.Event, mcp: McpTools | None
    ) -> StepResult:
        p = work.payload_as(AgentPayload)
        provider = self.providers.get(p.provider or "")
        if provider is None:
            return _failed(
                f"model provider {p.provider!r} is not configured here (agents.providers of the configuration; "
                "for strom run, of a strom.yaml beside .strom/)"
            )
        model = p.model or provider.model
        if not model:
            return _failed(f"provider {provider.id!r} names no model: give the step `model:` or the provider one")
        if p.interactive and self.conversations is None:
            return _failed("interactive agent steps (ask_user) need the service: strom run cannot wait for answers")
        tools = self._tools(work, p)
        if isinstance(tools, str):
            return _failed(tools)
        if p.interactive:
            tools[ASK_TOOL] = _ASK
        if mcp is not None:
            tools.update({name: ("", description, schema) for name, (description, schema) in mcp.offered.items()})
        schema = output_json_schema(p.output_schema)
        deadline = time.monotonic() + (work.timeout or DEFAULT_TIMEOUT)
        system = (p.system_prompt or "").strip()
        if schema is not None:
            system = (system + "\n\n" if system else "") + (
                "Answer with one JSON object and nothing else, matching this JSON Schema:\n" + json.dumps(schema)
            )
        usage, started = _Usage(), time.monotonic()
        conversation = _Conversation(provider, system, p.prompt or "")
        first, before = 1, 0.0
        if work.answer is not None:  # this attempt goes on from the question the last one asked
            saved = self.conversations.load(work) if self.conversations is not None else None
            if saved is None:
                return _failed("the conversation this answer belongs to is gone (kept for a day and a half)")
            conversation.messages = list(saved["messages"])
            usage.input, usage.output = saved["usage"]
            first, before = saved["turn"] + 1, saved["elapsed"]
            _log(logs, "answer", work.answer)
            answered = [(ToolCall(i, n, {}), text) for i, n, text in saved["results"]]
            conversation.add_results(
                [*answered, (ToolCall(saved["call"], ASK_TOOL, {}), json.dumps({"answer": work.answer}))]
            )
        else:
            if system:
                _log(logs, "system", system)
            _log(logs, "user", p.prompt or "")
        turns = p.max_turns or DEFAULT_TURNS
        try:
            for turn_number in range(first, turns + 1):
                if cancel.is_set():
                    return StepResult(StepStatus.CANCELLED, error="cancelled")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return StepResult(StepStatus.TIMED_OUT, error="the agent step ran out of time")
                turn = self._ask(provider, model, p, conversation, tools, schema, remaining, usage, cancel)
                if turn.text:
                    _log(logs, "assistant", turn.text)
                if not turn.calls:
                    break
                if turn_number == turns:
                    return _failed(f"the model still called tools after max_turns ({turns}) turns")
                asks = [call for call in turn.calls if call.name == ASK_TOOL and p.interactive]
                others = [call for call in turn.calls if call not in asks]
                results = self._call_tools(work, others, tools, logs, cancel, mcp) if others else []
                if asks:
                    return self._ask_user(
                        work, conversation, asks, results, turn_number, usage, before + time.monotonic() - started, logs
                    )
                conversation.add_results(results)
        except _ProviderError as exc:
            return _failed(str(exc))
        except _Stopped as exc:
            return StepResult(exc.status, error=str(exc))
        finally:
            if self.count_tokens is not None and (usage.input or usage.output):
                self.count_tokens(provider.id, model, usage.input, usage.output)
        meta = {
            "provider": provider.id,
            "model": model,
            "tokens": {"input": usage.input, "output": usage.output},
            "latency_ms": round((before + time.monotonic() - started) * 1000),
        }
        return self._result(turn.text, schema, meta)

    def _ask_user(self, work, conversation, asks, results, turn_number, usage, elapsed, logs: LogSink) -> StepResult:
        """Save the conversation and end the attempt waiting with the question (one at a time: the model is told
        so of any other in the same turn)."""
        assert self.conversations is not None
        question = str(asks[0].arguments.get("question") or "").strip()
        later = [
            (call, json.dumps({"error": "one question at a time: ask it again after this one"})) for call in asks[1:]
        ]
        self.conversations.save(
            work,
            {
                "messages": conversation.messages,
                "turn": turn_number,
                "call": asks[0].id,
                "results": [[call.id, call.name, text] for call, text in [*results, *later]],
                "usage": [usage.input, usage.output],
                "elapsed": elapsed,
            },
        )
        _log(logs, "question", question)
        return StepResult(StepStatus.WAITING, output={"question": question})

    def _result(self, text: str, schema: dict[str, Any] | None, meta: dict[str, Any]) -> StepResult:
        if schema is None:
            return StepResult(StepStatus.SUCCEEDED, output={"text": text, "_meta": meta})
        try:
            value = _reply_json(text)
        except ValueError:
            return _failed(f"the model's reply is not the JSON object the output asks for: {text[:300]!r}")
        problems = [
            f"{'.'.join(str(p) for p in e.absolute_path) or 'the reply'}: {e.message[:200]}"
            for e in list(Draft202012Validator(schema).iter_errors(value))[:5]
        ]
        if problems:
            return _failed(f"the model's reply does not fit the output: {'; '.join(problems)}")
        return StepResult(StepStatus.SUCCEEDED, output={**value, "_meta": meta})

    # ----------------------------------------------------------------- tools
    def _tools(self, work: StepWork, p: AgentPayload) -> dict[str, tuple[str, str, dict[str, Any]]] | str:
        """tool name -> (task, description, parameters); or why the step cannot have them."""
        found: dict[str, tuple[str, str, dict[str, Any]]] = {}
        for tool in p.tools:
            task = tool.get("task")
            if not task:
                continue
            described = self.task_schemas(work, task) if self.task_schemas and self.tool_runner else None
            if described is None:
                return (
                    f"task {task!r} cannot be offered as a tool here (no such task, or this worker cannot start runs)"
                )
            description, parameters = described
            found[_TOOL_NAME.sub("_", task)[:64]] = (task, description, parameters)
        return found

    def _call_tools(
        self, work, calls, tools, logs: LogSink, cancel: threading.Event, mcp: McpTools | None = None
    ) -> list[tuple[ToolCall, str]]:
        def one(call: ToolCall) -> tuple[ToolCall, str]:
            _log(logs, "tool call", f"{call.name}({json.dumps(call.arguments)})")
            if mcp is not None and call.name in mcp.offered:
                text = mcp.call(call.name, call.arguments)
            elif call.name not in tools or self.tool_runner is None:
                text = json.dumps({"error": f"no tool {call.name!r}"})
            else:
                status, output, error = self.tool_runner(work, tools[call.name][0], call.arguments, call.id, cancel)
                text = json.dumps({"status": status, "output": output, "error": error}, default=str)
            _log(logs, "tool result", text)
            return call, text

        with ThreadPoolExecutor(max_workers=min(8, len(calls))) as pool:
            return list(pool.map(one, calls))

    # ----------------------------------------------------------------- providers
    def _client(self, provider: AgentProvider) -> Any:
        with self._lock:
            if provider.id not in self._clients:
                if provider.wire == "anthropic":
                    import anthropic

                    self._clients[provider.id] = anthropic.Anthropic(
                        api_key=provider.api_key or "none",
                        base_url=provider.endpoint,
                        max_retries=provider.max_retries,
                    )
                else:
                    import openai

                    self._clients[provider.id] = openai.OpenAI(
                        api_key=provider.api_key or "none",
                        base_url=provider.endpoint,
                        max_retries=provider.max_retries,
                    )
            return self._clients[provider.id]

    def _ask(self, provider, model, p: AgentPayload, conversation, tools, schema, timeout, usage, cancel) -> _Turn:
        client = self._client(provider)
        max_tokens = p.max_tokens or provider.max_tokens
        temperature = p.temperature if p.temperature is not None else provider.temperature
        if provider.wire == "anthropic":
            ask = partial(_anthropic_turn, client, model, conversation, tools, max_tokens, temperature, timeout, usage)
        else:
            ask = partial(
                _openai_turn,
                client,
                provider,
                model,
                conversation,
                tools,
                schema,
                max_tokens,
                temperature,
                timeout,
                usage,
            )
        # in a thread of its own: the step's deadline and its cancel bound the call and the SDK's retries together
        pool = ThreadPoolExecutor(max_workers=1)
        future = pool.submit(ask)
        pool.shutdown(wait=False)
        deadline = time.monotonic() + timeout
        while not future.done():
            if cancel.wait(0.05):
                raise _Stopped(StepStatus.CANCELLED, "cancelled")
            if time.monotonic() >= deadline:
                raise _Stopped(StepStatus.TIMED_OUT, f"the model did not answer within the step's {timeout:.0f}s left")
        try:
            return future.result()
        except Exception as exc:  # the SDKs' errors (after their retries): the step's reason
            status = getattr(exc, "status_code", None)
            detail = f" (HTTP {status})" if status else ""
            raise _ProviderError(f"provider {provider.id!r} failed{detail}: {str(exc)[:500]}") from exc


class _ProviderError(Exception):
    pass


class _Stopped(Exception):
    def __init__(self, status: StepStatus, why: str):
        super().__init__(why)
        self.status = status


class _Conversation:
    """The messages so far, kept in the provider's own wire shape."""

    def __init__(self, provider: AgentProvider, system: str, prompt: str):
        self.anthropic = provider.wire == "anthropic"
        self.system = system
        self.messages: list[dict[str, Any]] = []
        if system and not self.anthropic:
            self.messages.append({"role": "system", "content": system})
        self.messages.append({"role": "user", "content": prompt})

    def add_assistant(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    def add_results(self, results: list[tuple[ToolCall, str]]) -> None:
        if self.anthropic:
            blocks = [{"type": "tool_result", "tool_use_id": call.id, "content": text} for call, text in results]
            self.messages.append({"role": "user", "content": blocks})
        else:
            for call, text in results:
                self.messages.append({"role": "tool", "tool_call_id": call.id, "content": text})


def _openai_turn(
    client, provider, model, conversation, tools, schema, max_tokens, temperature, timeout, usage
) -> _Turn:
    options: dict[str, Any] = {
        "model": model,
        "messages": conversation.messages,
        "max_tokens": max_tokens,
        "timeout": timeout,
    }
    if temperature is not None:
        options["temperature"] = temperature
    if tools:
        options["tools"] = [
            {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}
            for name, (_task, description, parameters) in tools.items()
        ]
    if schema is not None and provider.type == "openai" and not tools:
        options["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    response = client.chat.completions.create(**options)
    if response.usage is not None:
        usage.input += response.usage.prompt_tokens or 0
        usage.output += response.usage.completion_tokens or 0
    message = response.choices[0].message
    calls = []
    for call in message.tool_calls or ():
        try:
            arguments = json.loads(call.function.arguments or "{}")
        except ValueError:
            arguments = {}
        calls.append(ToolCall(call.id, call.function.name, arguments if isinstance(arguments, dict) else {}))
    conversation.add_assistant(message.model_dump(exclude_none=True))
    return _Turn(message.content or "", calls)


def _anthropic_turn(client, model, conversation, tools, max_tokens, temperature, timeout, usage) -> _Turn:
    options: dict[str, Any] = {
        "model": model,
        "messages": conversation.messages,
        "max_tokens": max_tokens,
        "timeout": timeout,
    }
    if conversation.system:
        options["system"] = conversation.system
    if temperature is not None:
        options["temperature"] = temperature
    if tools:
        options["tools"] = [
            {"name": name, "description": description, "input_schema": parameters}
            for name, (_task, description, parameters) in tools.items()
        ]
    response = client.messages.create(**options)
    usage.input += response.usage.input_tokens or 0
    usage.output += response.usage.output_tokens or 0
    text = "".join(block.text for block in response.content if block.type == "text")
    calls = [
        ToolCall(block.id, block.name, dict(block.input or {}))
        for block in response.content
        if block.type == "tool_use"
    ]
    conversation.add_assistant(
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in response.content]}
    )
    return _Turn(text, calls)


def _log(logs: LogSink, role: str, text: str) -> None:
    for line in (text or "").splitlines() or [""]:
        logs.line("stdout", f"[{role}] {line}")


def _failed(error: str) -> StepResult:
    return StepResult(StepStatus.FAILED, error=error)
