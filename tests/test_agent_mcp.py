"""Agent steps with the tools of MCP servers (`tools: [{mcp: NAME}]`): a stdio server started in the step's sandbox
(a plain Python program speaking MCP's JSON-RPC on its stdin and stdout, so nothing but the interpreter is needed
inside), reached through the official SDK's client, its tools offered to the model (a local fake of OpenAI's
chat completions) and called; a server that does not start fails the step with what it said; an unknown server
is a load error."""

from __future__ import annotations

import json
import os

import anyio.from_thread  # noqa: F401 - see below
import mcp.client.stdio
import mcp.client.streamable_http  # noqa: F401
import pytest
from conftest import load
from fake_llm import FakeLLM, openai_text, openai_tools
from service_env import TOKENS, make_config, serving, stack, wait_for

from runner import runs as run_service

SERVER = r"""
import json, os, sys

TOOLS = [
    {"name": "read", "description": "Reads a file of the workspace",
     "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}},
    {"name": "whoami", "description": "Who and where the server is", "inputSchema": {"type": "object"}},
]
for line in sys.stdin:
    message = json.loads(line)
    if "id" not in message:
        continue
    method, params = message.get("method"), message.get("params") or {}
    if method == "initialize":
        result = {"protocolVersion": params["protocolVersion"], "capabilities": {"tools": {}},
                  "serverInfo": {"name": "files", "version": "1"}}
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call" and params["name"] == "read":
        with open(os.path.join("/workspace", params["arguments"]["path"])) as f:
            result = {"content": [{"type": "text", "text": f.read()}]}
    elif method == "tools/call" and params["name"] == "whoami":
        facts = {"uid": os.getuid(), "cwd": os.getcwd(), "token_length": len(os.environ.get("TOKEN", "")),
                 "can_write_workspace": os.access("/workspace", os.W_OK)}
        result = {"content": [{"type": "text", "text": json.dumps(facts)}], "structuredContent": facts}
    else:
        print(json.dumps({"jsonrpc": "2.0", "id": message["id"],
                          "error": {"code": -32601, "message": "Method not found"}}), flush=True)
        continue
    print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}), flush=True)
"""
WORKSPACE = {
    "mcp_files.py": SERVER,
    "notes.txt": "the release is on Thursday\n",
    ".strom/agents.yaml": """
    mcp_servers:
      files:
        command: python3
        args: [/workspace/mcp_files.py]
        env: { TOKEN: "{{ secret.token }}" }
      broken:
        command: sh
        args: [-c, "echo 'no such database' >&2; exit 3"]
    tasks:
      plan:
        flow:
          ask: { type: agent, provider: gpt, prompt: "When is the release?", tools: [{ mcp: files }] }
      bad:
        flow:
          ask: { type: agent, provider: gpt, prompt: hi, tools: [{ mcp: broken }] }
    """,
}
CHAT = "/v1/chat/completions"
SECRET = "mcp-secret-42x"


@pytest.fixture
def llm():
    fake = FakeLLM()
    yield fake
    fake.close()


def test_a_stdio_servers_tools_are_offered_and_called_in_the_steps_sandbox(service_workspace, redis_url, llm):
    provider = {"id": "gpt", "type": "openai", "api_key": "sk", "api_endpoint": f"{llm.url}/v1", "model": "m"}
    config = make_config(
        service_workspace(WORKSPACE),
        redis_url,
        STROM_AGENTS=json.dumps({"providers": [provider]}),
        STROM_SECRET_TOKEN=SECRET,
    )
    llm.script(
        CHAT,
        openai_tools(("c1", "files__read", {"path": "notes.txt"}), ("c2", "files__whoami", {})),
        openai_text("Thursday"),
        openai_text("never used"),
    )
    with stack(config, abilities=("script", "agent")) as service:
        state = run_service.execute(service, "local", "plan", {}, source="api")
        done = wait_for(lambda: (s := service.runs.load(state.id)).status.terminal and s, 60, what="the run")
        assert done.status.value == "succeeded", done.steps["ask"].error
        assert done.steps["ask"].output["text"] == "Thursday"
        first, second = llm.bodies(CHAT)[:2]
        offered = {t["function"]["name"]: t["function"] for t in first["tools"]}
        assert sorted(offered) == ["files__read", "files__whoami"]
        assert offered["files__read"]["description"] == "Reads a file of the workspace"
        assert offered["files__read"]["parameters"]["required"] == ["path"]
        results = {m["tool_call_id"]: json.loads(m["content"]) for m in second["messages"] if m["role"] == "tool"}
        assert results["c1"] == {"output": "the release is on Thursday\n"}, "the server reads /workspace"
        facts = results["c2"]["output"]
        assert facts["cwd"] == "/workspace" and facts["can_write_workspace"] is False
        assert facts["token_length"] == len(SECRET), "its env is rendered with the secrets"
        steps_uids = range(61000, 61256) if os.geteuid() == 0 else [os.geteuid()]
        assert facts["uid"] in steps_uids, "it runs as a script step would: a uid of its own under a root worker"
        logged = [line.text for line in service.logs.read(state.id)]
        assert "[mcp] files: files__read, files__whoami" in logged
        assert not any(SECRET in line for line in logged)

        bad = run_service.execute(service, "local", "bad", {}, source="api")
        failed = wait_for(lambda: (s := service.runs.load(bad.id)).status.terminal and s, 60, what="the bad run")
        assert failed.status.value == "failed"
        error = failed.steps["ask"].error
        assert error.startswith("MCP server 'broken' did not start: ") and error.endswith("it said: no such database")


def test_a_tool_naming_no_server_of_mcp_servers_is_a_load_error():
    result = load(
        """
        mcp_servers:
          files: { command: mcp-files }
        tasks:
          t:
            flow:
              a: { type: agent, provider: p, prompt: hi, tools: [{ mcp: file }] }
        """
    )
    [problem] = result.errors
    assert problem.message == (
        "task 't', step 'a': tools[0]: MCP server 'file' is not in `mcp_servers`; did you mean \"files\"?"
    )


def test_a_streamable_http_servers_tools_with_headers_from_the_secrets(service_workspace, redis_url, llm):
    """Strom's own /mcp endpoint as the server: the step reaches it with a token from its secrets."""
    provider = {"id": "gpt", "type": "openai", "api_key": "sk", "api_endpoint": f"{llm.url}/v1", "model": "m"}
    folder = service_workspace({".strom/agents.yaml": "tasks: {}\n"})
    config = make_config(
        folder,
        redis_url,
        STROM_AGENTS=json.dumps({"providers": [provider]}),
        STROM_SECRET_API=TOKENS["viewer"],
        STROM_MCP__ENABLED="true",
    )
    llm.script(CHAT, openai_tools(("c1", "strom__list_workspaces", {})), openai_text("one workspace"))
    with stack(config, abilities=("script", "agent")) as service, serving(config, service) as server:
        (folder / ".strom/agents.yaml").write_text(
            f"""
mcp_servers:
  strom:
    url: {server.url}/mcp
    headers: {{ Authorization: "Bearer {{{{ secret.api }}}}" }}
tasks:
  look:
    flow:
      ask: {{ type: agent, provider: gpt, prompt: "What is there?", tools: [{{ mcp: strom }}] }}
"""
        )
        state = run_service.execute(service, "local", "look", {}, source="api")
        done = wait_for(lambda: (s := service.runs.load(state.id)).status.terminal and s, 60, what="the run")
        assert done.status.value == "succeeded", done.steps["ask"].error
        first, second = llm.bodies(CHAT)
        assert "strom__start_run" in {t["function"]["name"] for t in first["tools"]}
        [result] = [json.loads(m["content"]) for m in second["messages"] if m["role"] == "tool"]
        assert [w["name"] for w in result["output"]["workspaces"]] == ["local"]
