"""Agent steps through the official `openai` and `anthropic` SDKs against a local provider speaking their wire
formats: structured output accepted and refused, retries on 429 and 5xx, a two-turn tool loop that starts a
child run, the Messages API, the step's timeout, secrets masked in the logged conversation, token metrics, and
an unknown provider refused with a did-you-mean."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import requests
from fake_llm import FakeLLM, anthropic_reply, openai_text, openai_tools
from git_env import commit, init_repo
from service_env import TOKENS, make_config, serving, stack, wait_for

from runner import runs as run_service
from runner.agent_config import AgentProvider
from runner.engine.work import StepWork
from runner.errors import SpecError
from runner.executors.agent import AgentExecutor
from runner.git.prereceive import answer
from runner.spec.limits import SpecLimits
from runner.spec.payloads import AgentPayload
from runner.store import RunFilter

SECRET = "tok-6f1c9a55e2"
WORKSPACE = {
    ".strom/agents.yaml": """
    tasks:
      review:
        flow:
          ask:
            type: agent
            provider: gpt
            system_prompt: You review changes.
            prompt: "Summarise the change; the key is {{ secret.token }}"
            output:
              summary: { type: string }
              score: { type: integer }
      chat:
        flow:
          talk: { type: agent, provider: claude, prompt: Say hi }
      helper:
        flow:
          ask:
            type: agent
            provider: gpt
            prompt: Look up Ada
            tools: [{ task: lookup }]
            max_turns: 3
      lookup:
        description: Looks a person up
        input:
          name: { type: string, required: true }
        flow:
          find: { type: script, script: 'echo "OUTPUT: {\\"found\\": \\"{{ input.name }}\\"}"' }
      slow:
        flow:
          wait: { type: agent, provider: gpt, prompt: take your time, timeout: 2s }
    """
}
CHAT = "/v1/chat/completions"


@pytest.fixture
def llm():
    fake = FakeLLM()
    yield fake
    fake.close()


@pytest.fixture
def live(service_workspace, redis_url, llm):
    providers = [
        {"id": "gpt", "type": "openai", "api_key": "sk-test", "api_endpoint": f"{llm.url}/v1", "model": "fake-model"},
        {"id": "claude", "type": "anthropic", "api_key": "ak-test", "api_endpoint": llm.url, "model": "fake-claude"},
    ]
    config = make_config(
        service_workspace(WORKSPACE),
        redis_url,
        STROM_AGENTS=json.dumps({"providers": providers}),
        STROM_SECRET_TOKEN=SECRET,
    )
    with stack(config, abilities=("script", "agent")) as service, serving(config, service) as server:
        yield service, server


def run(service, task):
    state = run_service.execute(service, "local", task, {}, source="api")
    return wait_for(lambda: (s := service.runs.load(state.id)).status.terminal and s, 30, what=f"the {task} run")


def lines(service, run_id):
    return [line.text for line in service.logs.read(run_id)]


def test_structured_output_after_retries_with_the_secret_masked_in_the_log(live, llm):
    service, server = live
    llm.script(
        CHAT,
        (429, {"error": {"message": "slow down"}}, {"retry-after-ms": "10"}),
        (503, {"error": {"message": "busy"}}, {"retry-after-ms": "10"}),
        openai_text('{"summary": "fine", "score": 3}'),
    )
    state = run(service, "review")
    assert state.status.value == "succeeded", state.steps["ask"].error
    output = dict(state.steps["ask"].output)
    meta = output.pop("_meta")
    assert output == {"summary": "fine", "score": 3}
    assert (meta["provider"], meta["model"], meta["tokens"]) == ("gpt", "fake-model", {"input": 11, "output": 7})
    bodies = llm.bodies(CHAT)
    assert len(bodies) == 3, "the SDK retried the 429 and the 503"
    first = bodies[0]
    assert first["model"] == "fake-model" and first["messages"][0]["role"] == "system"
    assert "You review changes." in first["messages"][0]["content"] and '"score"' in first["messages"][0]["content"]
    assert first["response_format"]["json_schema"]["schema"]["required"] == ["summary", "score"]
    assert SECRET in first["messages"][1]["content"], "the provider gets the prompt as rendered"
    assert {k.lower(): v for k, v in llm.headers(CHAT)[0].items()}["authorization"] == "Bearer sk-test"
    logged = lines(service, state.id)
    assert "[user] Summarise the change; the key is ***" in logged and not any(SECRET in line for line in logged)
    assert '[assistant] {"summary": "fine", "score": 3}' in logged
    metrics = requests.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKENS['viewer']}"}).text
    assert 'strom_agent_tokens_total{kind="input",model="fake-model",provider="gpt"} 11.0' in metrics

    llm.script(CHAT, openai_text('{"summary": 5}'))
    refused = run(service, "review")
    assert refused.status.value == "failed"
    assert "does not fit the output" in refused.steps["ask"].error and "'score' is a required property" in (
        refused.steps["ask"].error
    )


def test_a_tool_call_starts_a_run_of_the_task_and_its_output_goes_back_to_the_model(live, llm):
    service, _server = live
    llm.script(CHAT, openai_tools(("call_1", "lookup", {"name": "Ada"})), openai_text("Ada was found"))
    state = run(service, "helper")
    assert state.status.value == "succeeded", state.steps["ask"].error
    assert state.steps["ask"].output["text"] == "Ada was found"
    assert state.steps["ask"].output["_meta"]["tokens"] == {"input": 31, "output": 16}, "both turns counted"
    [child] = service.runs.list(RunFilter(task="lookup")).runs
    assert (child.inputs, child.source, child.status.value) == ({"name": "Ada"}, "agent", "succeeded")
    assert child.event == {"kind": "agent_tool", "run": state.id, "step": "ask", "call": "call_1"}
    first, second = llm.bodies(CHAT)
    [tool] = first["tools"]
    assert tool["function"]["name"] == "lookup" and tool["function"]["description"] == "Looks a person up"
    assert tool["function"]["parameters"]["required"] == ["name"]
    result = second["messages"][-1]
    assert result["role"] == "tool" and result["tool_call_id"] == "call_1"
    assert json.loads(result["content"]) == {"status": "succeeded", "output": {"found": "Ada"}, "error": None}
    assert '[tool call] lookup({"name": "Ada"})' in lines(service, state.id)


def test_the_messages_api_and_a_model_that_does_not_answer_in_time(live, llm):
    service, _server = live
    llm.script("/v1/messages", anthropic_reply({"type": "text", "text": "hi there"}))
    state = run(service, "chat")
    assert state.status.value == "succeeded", state.steps["talk"].error
    assert state.steps["talk"].output["text"] == "hi there"
    assert state.steps["talk"].output["_meta"]["tokens"] == {"input": 13, "output": 5}
    [body] = llm.bodies("/v1/messages")
    assert body["model"] == "fake-claude" and body["messages"] == [{"role": "user", "content": "Say hi"}]
    sent = {k.lower(): v for k, v in llm.headers("/v1/messages")[0].items()}
    assert "ak-test" in (sent.get("x-api-key"), sent.get("authorization", "").removeprefix("Bearer "))
    assert sent["anthropic-version"], "the SDK's own request"

    llm.script(CHAT, ("sleep", 8))
    slow = run(service, "slow")
    assert slow.steps["wait"].status.value == "timed_out" and "did not answer" in slow.steps["wait"].error


def test_an_unknown_provider_is_refused_with_the_providers_there_are(service_workspace, redis_url):
    workspace = service_workspace(
        {".strom/a.yaml": "tasks:\n  t: { flow: { a: { type: agent, provider: gtp, prompt: hi } } }\n"}
    )
    providers = [{"id": "gpt", "type": "openai", "api_key": "k", "model": "m"}]
    config = make_config(workspace, redis_url, STROM_AGENTS=json.dumps({"providers": providers}))
    with stack(config, scheduler=False, workers=0) as service, pytest.raises(SpecError) as refused:
        run_service.execute(service, "local", "t", {}, source="api")
    assert "model provider 'gtp' is not configured on the server; did you mean \"gpt\"?" in str(refused.value)


def test_an_untrusted_pull_requests_agent_step_spends_no_tokens_unless_the_workspace_allows_it(llm):
    providers = {"gpt": AgentProvider("gpt", "openai", "fake-model", "sk", f"{llm.url}/v1", max_retries=0)}
    work = StepWork("run1", "ask", 1, "agent", workspace="ws", untrusted=True, payload=AgentPayload("gpt", "hi"))
    sink = type("Sink", (), {"line": lambda self, stream, text: None})()
    refused = AgentExecutor(providers).run(work, Path("."), sink, threading.Event())
    assert refused.status.value == "failed" and "pull_requests: { agents: true }" in refused.error
    assert llm.bodies(CHAT) == [], "nothing reached the provider"
    llm.script(CHAT, openai_text("fine"))
    allowed = AgentExecutor(providers, untrusted_allowed=lambda ws: ws == "ws").run(
        work, Path("."), sink, threading.Event()
    )
    assert allowed.status.value == "succeeded" and allowed.output["text"] == "fine"


def test_a_push_naming_a_provider_the_server_lacks_is_refused_by_the_pre_receive_check(tmp_path):
    repo = init_repo(tmp_path / "repo")
    sha = commit(repo, {".strom/a.yaml": "tasks:\n  t: { flow: { a: { type: agent, provider: gtp, prompt: hi } } }\n"})
    refs = f"{'0' * 40} {sha} refs/heads/main\n"
    output, status = answer(repo / ".git", refs, SpecLimits(), None, providers=["gpt", "claude"])
    assert status == 1
    assert "model provider 'gtp' is not configured on the server; did you mean \"gpt\"?" in output
    assert "push of refs/heads/main refused" in output
    assert answer(repo / ".git", refs, SpecLimits(), None, providers=["gtp"])[1] == 0
