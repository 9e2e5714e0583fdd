"""`/mcp` with the MCP SDK's own client over Streamable HTTP: initialize, list the tools, start a run and read its
log, decide a gate, the roles of the tokens, refusals without a token or from a foreign Host, and a JSON-RPC
fuzz that never gets a 5xx."""

from __future__ import annotations

import asyncio
import json

import httpx2
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from service_env import TOKENS, make_config, serving, stack, wait_for

from runner.engine import RunStatus
from runner.store import RunFilter

WORKSPACE = {
    ".strom/t.yaml": """
    tasks:
      greet:
        input:
          name: { type: string, required: true }
        flow:
          hello: { type: script, script: 'echo "hello {{ input.name }}"; echo "OUTPUT: {\\"greeted\\": \\"{{ input.name }}\\"}"' }
      report:
        flow:
          make:
            type: script
            script: |
              echo "all good" > "$ARTIFACTS_DIR/summary.txt"
              printf '\\001\\002' > "$ARTIFACTS_DIR/blob.bin"
      ship:
        flow:
          ask: { type: approval, message: "Ship it?" }
          go: { type: script, script: "echo shipped", depends_on: [ask] }
    """
}
TOOLS = [
    "list_workspaces",
    "list_tasks",
    "describe_task",
    "start_run",
    "get_run",
    "read_log",
    "cancel_run",
    "decide_gate",
    "list_runs",
    "list_artifacts",
    "get_artifact",
    "list_events",
]


@pytest.fixture
def live(service_workspace, redis_url):
    config = make_config(service_workspace(WORKSPACE), redis_url, STROM_MCP__ENABLED="true")
    with stack(config) as service, serving(config, service) as server:
        yield service, server


def session(server, role: str | None = "admin", host: str | None = None) -> Client:
    headers = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}
    if host:
        headers["Host"] = host
    return Client(streamable_http_client(f"{server.url}/mcp", http_client=httpx2.AsyncClient(headers=headers)))


async def call(client: Client, tool: str, **arguments):
    result = await client.call_tool(tool, arguments)
    return result.is_error, (result.content[0].text if result.is_error else result.structured_content)


def test_an_assistant_lists_tools_starts_a_run_reads_its_log_and_decides_a_gate(live):
    service, server = live

    async def scenario():
        async with session(server) as client:
            assert client.server_info.name == "strom"
            tools = (await client.list_tools()).tools
            assert [t.name for t in tools] == TOOLS
            start = next(t for t in tools if t.name == "start_run")
            assert start.input_schema["required"] == ["workspace", "task"] and not start.annotations.read_only_hint
            error, tasks = await call(client, "list_tasks", workspace="local")
            greet = next(t for t in tasks["tasks"] if t["name"] == "greet")
            assert not error and greet["input"]["name"]["required"] is True

            error, refused = await call(client, "start_run", workspace="local", task="greet", input={})
            assert error and "name" in refused, "inputs are checked as the API checks them"
            error, run = await call(client, "start_run", workspace="local", task="greet", input={"name": "Ada"})
            assert not error and run["task"] == "greet" and run["source"] == "mcp"
            wait_for(lambda: service.runs.load(run["id"]).status.terminal, what="the run")
            error, final = await call(client, "get_run", run=run["id"])
            assert final["status"] == "succeeded" and final["steps"][0]["output"] == {"greeted": "Ada"}
            error, first = await call(client, "read_log", run=run["id"], step="hello", limit=1)
            assert [line["text"] for line in first["lines"]] == ["hello Ada"] and first["more"] is True
            error, rest = await call(client, "read_log", run=run["id"], after=first["next"])
            assert [line["text"] for line in rest["lines"]] == ['OUTPUT: {"greeted": "Ada"}'] and not rest["more"]

            error, gated = await call(client, "start_run", workspace="local", task="ship")
            wait_for(lambda: service.runs.load(gated["id"]).status is RunStatus.WAITING, what="the gate")
            error, decided = await call(client, "decide_gate", run=gated["id"], step="ask", approve=True, reason="ok")
            assert not error and decided["id"] == gated["id"]
            wait_for(lambda: service.runs.load(gated["id"]).status is RunStatus.SUCCEEDED, what="the shipped run")
            error, listed = await call(client, "list_runs", workspace="local", limit=5)
            assert {r["id"] for r in listed["runs"]} >= {run["id"], gated["id"]}
            error, bad = await call(client, "get_run", run="../../etc")
            assert error and "run" in bad

            error, made = await call(client, "start_run", workspace="local", task="report")
            wait_for(lambda: service.runs.load(made["id"]).status is RunStatus.SUCCEEDED, what="the report")
            error, kept = await call(client, "list_artifacts", run=made["id"])
            assert [(a["name"], a["step"], a["size"]) for a in kept["artifacts"]] == [
                ("blob.bin", "make", 2),
                ("summary.txt", "make", 9),
            ]
            error, text = await call(client, "get_artifact", run=made["id"], name="summary.txt")
            assert not error and text["text"] == "all good\n" and text["content_type"] == "text/plain"
            error, blob = await call(client, "get_artifact", run=made["id"], name="blob.bin")
            assert not error and blob["base64"] == "AQI="
            error, none = await call(client, "get_artifact", run=made["id"], name="nope")
            assert error and "list_artifacts" in none

        async with session(server, "viewer") as viewer:
            error, why = await call(viewer, "start_run", workspace="local", task="greet", input={"name": "Bob"})
            assert error and "may not run" in why, "a viewer's token reads, and starts nothing"
            error, seen = await call(viewer, "get_run", run=run["id"])
            assert not error and seen["id"] == run["id"]

    asyncio.run(scenario())
    greeted = [s.inputs.get("name") for s in service.runs.list(RunFilter(task="greet"), limit=20).runs]
    assert greeted == ["Ada"], "the viewer started nothing"


def test_no_token_a_foreign_host_or_a_server_without_mcp_is_refused(live, service_workspace, redis_url):
    _service, server = live

    async def without_token():
        async with session(server, role=None) as client:
            await client.list_tools()

    with pytest.raises(ExceptionGroup) as refused:  # the SDK's task groups wrap what the server said
        asyncio.run(without_token())
    [error] = leaves(refused.value)
    assert isinstance(error, MCPError) and "send an API token" in str(error)
    answer = requests.post(f"{server.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, timeout=10)
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer"
    auth = {"Authorization": f"Bearer {TOKENS['viewer']}"}
    foreign = requests.post(
        f"{server.url}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={**auth, "Host": "evil.example"},
        timeout=10,
    )
    assert foreign.status_code == 403 and "allowed_hosts" in foreign.json()["error"]["message"]
    rebound = requests.post(
        f"{server.url}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={**auth, "Origin": "http://evil.example"},
        timeout=10,
    )
    assert rebound.status_code == 403
    assert requests.get(f"{server.url}/mcp", headers=auth, timeout=10).status_code == 405
    ping = requests.post(f"{server.url}/mcp", json={"jsonrpc": "2.0", "id": 7, "method": "ping"}, headers=auth)
    assert ping.json() == {"jsonrpc": "2.0", "id": 7, "result": {}}

    off = make_config(service_workspace(WORKSPACE), redis_url)
    with serving(off) as plain:
        answer = requests.post(f"{plain.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=auth)
        assert answer.status_code == 404 and "mcp: { enabled: true }" in answer.json()["error"]["message"]


def leaves(group: BaseException) -> list[BaseException]:
    if isinstance(group, BaseExceptionGroup):
        return [leaf for inner in group.exceptions for leaf in leaves(inner)]
    return [group]


MESSAGES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)
METHODS = st.sampled_from(["initialize", "ping", "tools/list", "tools/call", "resources/list", "", "x" * 300])


@st.composite
def rpc(draw):
    message = {"jsonrpc": draw(st.sampled_from(["2.0", "1.0", 2])), "method": draw(METHODS)}
    if draw(st.booleans()):
        message["id"] = draw(st.one_of(st.integers(), st.text(max_size=10), st.none(), st.lists(st.integers())))
    if draw(st.booleans()):
        message["params"] = draw(
            st.one_of(
                MESSAGES,
                st.fixed_dictionaries(
                    {"name": st.sampled_from([*TOOLS, "nope"]), "arguments": MESSAGES},
                ),
            )
        )
    return draw(st.one_of(st.just(message), MESSAGES))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(message=rpc(), raw=st.one_of(st.none(), st.binary(max_size=200)))
def test_any_json_rpc_message_gets_a_json_rpc_answer_and_never_a_5xx(live, message, raw):
    _service, server = live
    body = raw if raw is not None else json.dumps(message).encode()
    answer = requests.post(
        f"{server.url}/mcp",
        data=body,
        headers={"Authorization": f"Bearer {TOKENS['viewer']}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code in (200, 202, 400), answer.text
    if answer.status_code != 202:
        reply = answer.json()
        assert reply["jsonrpc"] == "2.0" and ("result" in reply) != ("error" in reply)
