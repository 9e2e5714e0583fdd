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
from service_env import TOKENS, csrf, make_config, remote_cli, serving, signed_in, stack, wait_for

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
      clarify:
        flow:
          ask: { type: agent, provider: claude, prompt: Draft the notice, interactive: true }
      triage:
        flow:
          ask:
            type: agent
            provider: gpt
            prompt: Which database should the migration use?
            tools: [{ task: lookup }]
            interactive: true
          after: { type: script, script: 'echo "chose {{ ask.output.text }}"', depends_on: [ask] }
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


def test_an_interactive_step_asks_waits_like_a_gate_and_goes_on_with_the_answer(live, llm):
    service, server = live
    llm.script(
        CHAT,
        openai_tools(
            ("call_q", "ask_user", {"question": "Staging or production?"}), ("call_l", "lookup", {"name": "Ada"})
        ),
        openai_text("staging it is"),
    )
    started = run_service.execute(service, "local", "triage", {}, source="api")
    asked = wait_for(
        lambda: (s := service.runs.load(started.id)).steps["ask"].status.value == "waiting" and s,
        30,
        what="the question",
    )
    assert asked.status.value == "waiting"
    assert asked.steps["ask"].approval == {
        "question": True,
        "message": "Staging or production?",
        "approvers": [],
        "required": 1,
        "decisions": [],
    }
    url = f"{server.url}/api/runs/{started.id}/steps/ask/answer"
    approver = {"Authorization": f"Bearer {TOKENS['approver']}"}
    empty = requests.post(url, json={"answer": "  "}, headers=approver, timeout=10)
    assert (empty.status_code, empty.json()["error"]["message"]) == (400, 'give the answer: {"answer": "..."}')
    viewer = requests.post(url, json={"answer": "staging"}, headers={"Authorization": f"Bearer {TOKENS['viewer']}"})
    assert viewer.status_code == 403
    approve = requests.post(
        f"{server.url}/api/runs/{started.id}/steps/ask/approve", json={"approved": True}, headers=approver, timeout=10
    )
    assert (approve.status_code, approve.json()["error"]["message"]) == (
        409,
        "step 'ask' asks a question: answer it (an empty answer is none)",
    )
    code, output = remote_cli(server, "status", started.id, token="approver")
    assert "asks: Staging or production? (answer with strom answer)" in output
    code, output = remote_cli(server, "answer", started.id, "ask", "staging,", "please", token="approver")
    assert code == 0, output
    done = wait_for(lambda: (s := service.runs.load(started.id)).status.terminal and s, 30, what="the run")
    assert done.status.value == "succeeded", done.steps["ask"].error
    step = done.steps["ask"]
    assert step.output["text"] == "staging it is"
    assert step.output["_meta"]["tokens"] == {"input": 31, "output": 16}, "both attempts' tokens"
    assert (step.attempt, step.resumed, step.approval) == (2, 1, None), "going on is not a try"
    [qa] = step.answers
    assert (qa["question"], qa["answer"], qa["by"]) == ("Staging or production?", "staging, please", "approver")
    first, second = llm.bodies(CHAT)
    assert sorted(t["function"]["name"] for t in first["tools"]) == ["ask_user", "lookup"]
    results = {m["tool_call_id"]: json.loads(m["content"]) for m in second["messages"] if m["role"] == "tool"}
    assert results["call_q"] == {"answer": "staging, please"}
    assert results["call_l"]["output"] == {"found": "Ada"}, "the other call of the turn ran before the question"
    assert second["messages"][0]["content"] == "Which database should the migration use?"
    logged = lines(service, started.id)
    assert "[question] Staging or production?" in logged and "[answer] staging, please" in logged
    assert "chose staging it is" in logged
    api = requests.get(f"{server.url}/api/runs/{started.id}", headers=approver, timeout=10).json()
    assert next(s for s in api["steps"] if s["name"] == "ask")["answers"][0]["answer"] == "staging, please"


def test_a_declined_question_fails_the_step_and_an_unanswered_one_times_out():
    from conftest import Sim

    from runner.engine.events import ApprovalDecision, StepAsked, StepStarted, Tick

    yaml = "tasks:\n  t:\n    flow:\n      a: { type: agent, provider: p, prompt: hi, interactive: true }\n"
    sim = Sim(yaml, "t")
    sim.start()
    sim.send(StepStarted("a", 1))
    sim.send(StepAsked("a", 1, "which one?"))
    assert sim.status("a").value == "waiting" and sim.state.steps["a"].deadline == sim.now + 86400
    sim.send(ApprovalDecision("a", False, "bob", "not now"))
    assert (sim.status("a").value, sim.state.steps["a"].error) == (
        "failed",
        "the question was declined by bob: not now",
    )

    late = Sim(yaml, "t")
    late.start()
    late.send(StepStarted("a", 1))
    late.send(StepAsked("a", 1, "which one?"))
    late.send(Tick(), at=late.now + 86401)
    assert late.state.steps["a"].error == "no answer to the question within 24 hours"


def test_a_question_answered_on_the_run_page_goes_back_to_claude_as_the_tools_result(live, llm):
    service, server = live
    ask = {"type": "tool_use", "id": "toolu_1", "name": "ask_user", "input": {"question": "Formal or casual?"}}
    llm.script("/v1/messages", anthropic_reply(ask), anthropic_reply({"type": "text", "text": "Dear all, ..."}))
    started = run_service.execute(service, "local", "clarify", {}, source="api")
    wait_for(lambda: service.runs.load(started.id).steps["ask"].status.value == "waiting", 30, what="the question")
    approver = signed_in(server, "approver")
    page = approver.get(f"{server.url}/runs/{started.id}?step=ask", timeout=10).text
    assert "❓ Formal or casual?" in page and 'id="answer-ask"' in page and 'name="answer"' in page
    answered = approver.post(
        f"{server.url}/runs/{started.id}/steps/ask/answer",
        data={"csrf_token": csrf(page), "answer": "formal, <b>please</b>"},
        timeout=10,
    )
    assert "Answered ask." in answered.text
    done = wait_for(lambda: (s := service.runs.load(started.id)).status.terminal and s, 30, what="the run")
    assert done.status.value == "succeeded" and done.steps["ask"].output["text"] == "Dear all, ..."
    second = llm.bodies("/v1/messages")[1]
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    [result] = second["messages"][-1]["content"]
    assert (result["type"], result["tool_use_id"]) == ("tool_result", "toolu_1")
    assert json.loads(result["content"]) == {"answer": "formal, <b>please</b>"}
    after = approver.get(f"{server.url}/runs/{started.id}?step=ask", timeout=10).text
    assert "Answered by <b>approver</b>" in after and "formal, &lt;b&gt;please&lt;/b&gt;" in after


def test_strom_run_runs_agent_steps_with_the_providers_of_a_strom_yaml_beside_strom(tmp_path, llm, monkeypatch):
    from click.testing import CliRunner

    from runner.cli import main

    (tmp_path / ".strom").mkdir()
    (tmp_path / ".strom/agents.yaml").write_text(
        "tasks:\n  t:\n    flow:\n      a: { type: agent, provider: gpt, prompt: Say hi }\n"
        "  asks:\n    flow:\n      a: { type: agent, provider: gpt, prompt: hm, interactive: true }\n"
    )
    provider = {"id": "gpt", "type": "openai", "api_key": {"env": "MY_KEY"}, "api_endpoint": f"{llm.url}/v1"}
    (tmp_path / "strom.yaml").write_text(json.dumps({"agents": {"providers": [{**provider, "model": "m"}]}}))
    monkeypatch.setenv("MY_KEY", "sk-local")
    llm.script(CHAT, openai_text("hi from here"))
    ran = CliRunner().invoke(main, ["run", "t", "-C", str(tmp_path), "--json"])
    assert ran.exit_code == 0, ran.output
    assert '"text": "hi from here"' in ran.output
    assert {k.lower(): v for k, v in llm.headers(CHAT)[0].items()}["authorization"] == "Bearer sk-local"
    asked = CliRunner().invoke(main, ["run", "asks", "-C", str(tmp_path)])
    assert asked.exit_code == 1 and "strom run cannot wait for answers" in asked.output


def test_a_question_whose_worker_died_before_the_scheduler_heard_it_is_applied_by_the_lost_step_sweep(
    service_workspace, redis_url
):
    """The worker stored its final report (StepAsked) and died: the sweep that finds the step lost applies the
    report it left instead of failing the step as lost."""
    from runner.engine.events import StepAsked, StepStarted
    from runner.runs import messages
    from runner.store import keys

    providers = [  # nobody answers: no worker takes agent steps here
        {"id": name, "type": kind, "api_key": "k", "api_endpoint": "http://127.0.0.1:9/v1", "model": "m"}
        for name, kind in (("gpt", "openai"), ("claude", "anthropic"))
    ]
    config = make_config(service_workspace(WORKSPACE), redis_url, STROM_AGENTS=json.dumps({"providers": providers}))
    with stack(config, workers=0) as service:
        state = run_service.execute(service, "local", "clarify", {}, source="api")
        service.orchestrator.apply(state.id, StepStarted("ask", 1, worker="ghost"))
        report = messages.encode(messages.event_message(state.id, StepAsked("ask", 1, "Formal or casual?")))
        service.redis.set(keys.result(state.id, "ask", 1), report)  # what the worker's outbox stores with its end
        asked = wait_for(
            lambda: (s := service.runs.load(state.id)).steps["ask"].status.value == "waiting" and s,
            timeout=15,
            what="the sweep to apply the question",
        )
        assert asked.steps["ask"].approval["message"] == "Formal or casual?"
        assert (asked.steps["ask"].attempt, asked.steps["ask"].error) == (1, None), "not lost, not retried"
