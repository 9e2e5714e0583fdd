"""Strøm's own layout and habits: `.workflows/` read next to `.strom/` (with Strøm's leniency there), the
flat shape of `connection_types`, `STROEM_*` step variables and the default retry delay."""

from __future__ import annotations

import threading

from conftest import Sim, load, write_workspace
from git_env import commit, init_repo

from runner.engine import StepStatus
from runner.executors import LocalExecutor, LocalSettings, execute
from runner.git.mirrors import Mirror
from runner.spec import load_texts, load_workspace

TASK = "tasks:\n  {name}:\n    flow: {{ s: {{ type: script, script: 'echo {name}' }} }}\n"


def test_a_stroem_repository_needs_no_rename(tmp_path):
    root = write_workspace(
        tmp_path / "ws",
        {
            ".workflows/ci.yaml": TASK.format(name="build"),
            ".workflows/deploy/prod.yml": TASK.format(name="deploy"),
            ".strom/extra.yaml": TASK.format(name="lint"),
        },
    )
    result = load_workspace(root)
    assert result.ok, [p.format() for p in result.problems]
    assert sorted(result.workspace.tasks) == ["build", "deploy", "lint"]
    only = write_workspace(tmp_path / "only", {".workflows/ci.yaml": TASK.format(name="build")})
    assert load_workspace(only).ok


def test_a_name_in_both_directories_is_an_error_naming_both_places(tmp_path):
    result = load_texts({".strom/a.yaml": TASK.format(name="build"), ".workflows/b.yaml": TASK.format(name="build")})
    [problem] = [p for p in result.errors if p.code == "duplicate-name"]
    assert problem.file == ".workflows/b.yaml" and "already defined at .strom/a.yaml:2:3" in problem.message


def test_in_two_workflows_files_the_later_one_wins_with_a_warning():
    result = load_texts(
        {
            ".workflows/a.yaml": TASK.format(name="build"),
            ".workflows/b.yaml": "tasks:\n  build:\n    flow: { s: { type: script, script: 'echo second' } }\n",
        }
    )
    assert result.ok, [p.format() for p in result.problems]
    assert result.workspace.tasks["build"].flow["s"].action.payload.script == "echo second"
    [warning] = [p for p in result.warnings if p.code == "duplicate-name"]
    assert warning.file == ".workflows/b.yaml" and "the later file wins" in warning.message


def test_unknown_keys_are_warnings_in_workflows_files_and_errors_in_strom_files():
    text = "tasks:\n  t:\n    colour: blue\n    flow: { s: { type: script, script: x, shiny: true } }\n"
    lenient = load_texts({".workflows/t.yaml": text})
    assert lenient.ok and sorted(p.code for p in lenient.warnings if p.code == "unknown-key") == ["unknown-key"] * 2
    assert all("Strøm ignores it" in p.message for p in lenient.warnings if p.code == "unknown-key")
    strict = load_texts({".strom/t.yaml": text})
    assert not strict.ok and len([p for p in strict.errors if p.code == "unknown-key"]) == 2


def test_a_git_workspace_reads_both_directories(tmp_path):
    repo = init_repo(tmp_path / "repo")
    sha = commit(
        repo,
        {".workflows/ci.yaml": TASK.format(name="build"), ".strom/x.yaml": TASK.format(name="lint"), "README": "hi\n"},
    )
    mirror = Mirror(tmp_path / "mirror.git", url=str(repo))
    mirror.fetch("main")
    texts, _exists, _oversized = mirror.tree(sha)
    assert sorted(texts) == [".strom/x.yaml", ".workflows/ci.yaml"]


def test_connection_types_in_stroems_flat_shape():
    result = load(
        """
        connection_types:
          postgres:
            host: { type: string, required: true }
            port: { type: integer, default: 5432 }
        connections:
          prod-db: { type: postgres, host: db.example.com }
          broken: { type: postgres, port: 1 }
        tasks:
          t:
            input: { db: { type: postgres } }
            flow: { s: { type: script, script: "echo {{ input.db.host }}" } }
        """
    )
    props = result.workspace.connection_types["postgres"].properties if result.workspace else {}
    assert list(props) == ["host", "port"] and props["port"].default == 5432
    [missing] = [p for p in result.errors if p.code == "missing-field"]
    assert "missing required property 'host'" in missing.message


def test_steps_see_stroem_variables_next_to_stroms(tmp_path):
    sim = Sim("tasks:\n  t:\n    flow:\n      s: { type: script, script: 'env' }\n", "t")
    sim.start()
    work = sim.work("s")
    executor = LocalExecutor(LocalSettings(sandbox="auto"))
    lines = []

    class Logs:
        def line(self, stream, text):
            lines.append(text)

    workspace = tmp_path / "w"
    workspace.mkdir()
    result = execute(executor, work, workspace, Logs(), threading.Event())
    assert result.status is StepStatus.SUCCEEDED
    env = dict(line.split("=", 1) for line in lines if "=" in line)
    assert env["STROEM_JOB_ID"] == env["STROM_JOB_ID"] == sim.state.id
    assert env["STROEM_TASK_NAME"] == "t" and env["STROEM_STEP_NAME"] == "s"
    assert env["STROEM_WORKSPACE"] == env["STROM_WORKSPACE_NAME"]


def test_a_retry_without_a_delay_waits_30_seconds_as_stroem_documents():
    sim = Sim("tasks:\n  t:\n    flow:\n      s: { type: script, script: x, retry: { max_attempts: 2 } }\n", "t")
    sim.start()
    sim.fail("s")
    assert sim.state.steps["s"].retry_at == sim.now + 30
    shorthand = Sim("tasks:\n  t:\n    flow:\n      s: { type: script, script: x, retry: 2 }\n", "t")
    shorthand.start()
    shorthand.fail("s")
    assert shorthand.state.steps["s"].retry_at == shorthand.now + 30
    immediate = Sim(
        "tasks:\n  t:\n    flow:\n      s: { type: script, script: x, retry: { max_attempts: 2, delay: 0s } }\n", "t"
    )
    immediate.start()
    immediate.fail("s")
    assert immediate.dispatched() == ["s"], "an explicit 0s retries at once"


STRUCTURED = """
actions:
  show:
    type: script
    input:
      items: { type: string }
    script: 'echo "{{ input.items | join(",") }}"'
tasks:
  child:
    input: { items: { type: string } }
    flow: { s: { type: script, script: 'echo "{{ input.items | join("+") }}"' } }
  t:
    flow:
      gen: { type: script, script: "x" }
      use: { action: show, depends_on: [gen], input: { items: "{{ gen.output.list }}" } }
      call: { type: task, task: child, depends_on: [gen], input: { items: "{{ gen.output.list }}" } }
      text: { action: show, depends_on: [gen], input: { items: "{{ gen.output.word }}" } }
"""


def test_a_lone_template_keeps_its_list_in_a_string_input_and_join_wants_a_list():
    sim = Sim(STRUCTURED, "t")
    sim.start()
    sim.succeed("gen", output={"list": ["eu", "us"], "word": "xyz"})
    assert sim.work("use").payload.script == 'echo "eu,us"'
    [child] = [c for c in sim.history if type(c).__name__ == "StartChild"]
    assert child.inputs == {"items": ["eu", "us"]}, "a child task's string input keeps the list too"
    assert sim.status("text") is StepStatus.FAILED
    assert sim.state.steps["text"].error.endswith("join takes a list, not the text 'xyz'; to split text, use split")


def test_an_inline_steps_input_written_as_a_schema_declares_its_defaults():
    sim = Sim(
        """
        tasks:
          t:
            input: { who: { type: string, required: false } }
            flow:
              greet:
                type: script
                script: 'echo "Hello {{ input.name }}, {{ input.times }} times, by {{ input.who }}"'
                input:
                  name: { type: string, default: World }
                  times: { type: integer, default: 2 }
                  who: "{{ input.who | default('nobody') }}"
              named:
                type: script
                script: 'echo "Hello {{ input.name }}"'
                input:
                  name: { type: string, default: World }
                depends_on: [greet]
        """,
        "t",
    )
    assert sim.ctx.task.flow["greet"].action.input["times"].default == 2
    assert dict(sim.ctx.task.flow["greet"].input) == {"who": "{{ input.who | default('nobody') }}"}
    sim.start()
    assert sim.work("greet").payload.script == 'echo "Hello World, 2 times, by nobody"'


def test_agent_tools_mcp_servers_and_force_refresh_are_accepted_and_checked():
    result = load(
        """
        mcp_servers:
          files: { command: mcp-files, args: [--root, .] }
          remote: { url: "https://mcp.example.com/mcp", headers: { Authorization: "Bearer {{ secret.t }}" } }
        tasks:
          lookup: { flow: { s: { type: script, script: x } } }
          t:
            flow:
              ask:
                type: agent
                provider: main
                prompt: hi
                tools: [{ task: lookup }, { mcp: files }]
                max_turns: 5
                interactive: true
        triggers:
          nightly: { type: scheduler, cron: "0 2 * * *", task: t, force_refresh: true }
          hook: { type: webhook, name: h, task: t, force_refresh: true }
        """
    )
    assert result.ok, [p.format() for p in result.problems]
    payload = result.workspace.tasks["t"].flow["ask"].action.payload
    assert payload.tools == ({"task": "lookup"}, {"mcp": "files"}) and payload.max_turns == 5 and payload.interactive
    assert result.workspace.triggers["nightly"].force_refresh and result.workspace.triggers["hook"].force_refresh
    bad = load(
        """
        mcp_servers:
          both: { command: x, url: "https://x" }
        tasks:
          t:
            flow:
              ask: { type: agent, provider: main, prompt: hi, tools: [{ task: nope }, { task: a, mcp: b }], max_turns: 0 }
        """
    )
    messages = [p.message for p in bad.errors]
    assert any("mcp_servers.both: an MCP server has `command` (stdio) or `url`" in m for m in messages), messages
    assert any("tools[0]: task 'nope' does not exist" in m for m in messages)
    assert any("tools[1] must name one task or one MCP server" in m for m in messages)
    assert any("max_turns" in m for m in messages)


def test_force_refresh_runs_a_webhook_on_the_newest_commit(tmp_path, redis_url, upstream):
    import json

    import requests
    from git_env import git
    from service_env import make_config, serving, stack, wait_for

    work, bare = upstream
    hook = "triggers:\n  h: { type: webhook, name: fresh, task: show, force_refresh: true }\n"
    first = commit(work, {".workflows/t.yaml": TASK.format(name="show").replace("echo show", "echo first") + hook})
    git(work, "push", "-q", "origin", "main")
    folder = tmp_path / "empty"
    folder.mkdir()
    spaces = json.dumps({"app": {"git": str(bare)}})
    config = make_config(folder, redis_url, STROM_DATA_DIR=str(tmp_path / "data"), STROM_WORKSPACES=spaces)
    with stack(config) as service, serving(config, service) as server:

        def call() -> str:
            answer = requests.post(f"{server.url}/hooks/fresh", json={}, timeout=30)
            assert answer.status_code == 202, answer.text
            return answer.json()["run"]

        started = call()
        one = wait_for(lambda: (s := service.runs.load(started)).status.terminal and s, timeout=30, what="a run")
        assert one.commit == first
        second = commit(
            work, {".workflows/t.yaml": TASK.format(name="show").replace("echo show", "echo second") + hook}
        )
        git(work, "push", "-q", "origin", "main")
        started = call()
        two = wait_for(lambda: (s := service.runs.load(started)).status.terminal and s, timeout=30, what="a run")
        assert two.commit == second, "fetched before it started, not the mirror's copy"
        assert [line.text for line in service.logs.read(two.id) if line.stream == "stdout"] == ["second"]


def _render(text, **context):
    from runner.templating import render

    return render(text, context)


def test_tera_constructs_render_as_in_tera():
    assert _render("{% for k, v in m %}{{ k }}={{ v }};{% endfor %}", m={"a": 1, "b": 2}) == "a=1;b=2;"
    assert _render("{% for k, v in pairs %}{{ k }}{{ v }} {% endfor %}", pairs=[["x", 1], ["y", 2]]) == "x1 y2 "
    assert _render("{%- for k, v in m -%}{{ k }}{%- endfor %}", m={"a": 1}) == "a"
    loop = "{% for i in range(10) %}{% if i == 1 %}{% continue %}{% endif %}{% if i > 3 %}{% break %}{% endif %}{{ i }}{% endfor %}"
    assert _render(loop) == "023"
    macro = "{% macro greet(name, punct='!') %}hi {{ name }}{{ punct }}{% endmacro %}{{ self::greet(name='ada') }}"
    assert _render(macro) == "hi ada!"
    assert _render('{{ a.b.c | default(value="none") }}', a={}) == "none"
    assert _render("{{ 1 | pluralize }} {{ 2 | pluralize }} {{ 1 | pluralize(singular='y', plural='ies') }}") == " s y"
    assert _render("{{ s | escape_xml }}", s="<a href='x'>&</a>") == "&lt;a href=&apos;x&apos;&gt;&amp;&lt;/a&gt;"
    assert _render("{{ s | urlencode_strict }}", s="a b/c_d.é") == "a%20b%2Fc%5Fd%2E%C3%A9"
    assert _render("{{ s | spaceless }}", s="<p>\n  <b>x</b>\n</p>") == "<p><b>x</b></p>"
    assert 3 <= int(_render("{{ get_random(start=3, end=5) }}")) < 5
    assert _render('{{ get_env(name="HOME_DIR", default="/h") }} {{ get_env(name="X") }}', env={"X": "1"}) == "/h 1"


def test_what_tera_has_and_strom_cannot_is_a_validation_error_not_a_literal_script():
    from runner.errors import TemplateError

    result = load(
        """
        tasks:
          t:
            flow:
              s:
                type: script
                script: |
                  {% for x in [1, 2] %}{% set_global total = x %}{% endfor %}
                  echo "{{ total }}"
              fstring: { type: script, language: python, script: 'print(f"{{x}}")' }
        """
    )
    [problem] = [p for p in result.errors if p.code == "template"]
    assert "set_global is not supported" in problem.message and "namespace(" in problem.message
    assert [p.code for p in result.warnings if p.code == "script-not-template"] == [], "valid Python f-string stays"
    try:
        _render('{{ get_env(name="HOME") }}', env={})
    except TemplateError as exc:
        assert "expose_env" in str(exc)
    else:
        raise AssertionError("the server's environment is never read")


CONNECTIONS = """
connection_types:
  postgres:
    host: { type: string, required: true }
    port: { type: integer, default: 5432 }
    password: { type: string }
  queue: { url: { type: string } }
connections:
  prod-db: { type: postgres, host: db.example.com, password: "{{ secret.db_pass }}" }
  jobs: { type: queue, url: "amqp://jobs" }
actions:
  migrate:
    type: script
    input: { target: { type: postgres } }
    script: "migrate {{ input.target.host }}:{{ input.target.port }} as {{ input.target }}"
tasks:
  t:
    input: { db: { type: postgres, default: prod-db } }
    flow:
      s: { type: script, script: "psql -h {{ input.db.host }} -p {{ input.db.port }} {{ input.db }} {{ input.db.password }}" }
      m: { action: migrate, input: { target: "{{ input.db }}" } }
"""


def test_an_input_of_a_connection_type_holds_the_connection_in_templates():
    sim = Sim(CONNECTIONS.replace('password: "{{ secret.db_pass }}"', "password: hunter2x"), "t")
    sim.start()
    assert sim.work("s").payload.script == "psql -h db.example.com -p 5432 prod-db hunter2x"
    assert sim.work("s").env["INPUT_DB"] == "prod-db", "the environment carries the name"
    assert sim.work("m").payload.script == "migrate db.example.com:5432 as prod-db"
    assert sim.state.inputs == {"db": "prod-db"}, "the run keeps the name, never the connection's values"


def test_a_connection_input_naming_no_connection_of_its_type_is_refused_with_the_choices():
    import pytest

    from runner.errors import InputError

    with pytest.raises(InputError) as refused:
        Sim(CONNECTIONS, "t", inputs={"db": "prod-dbb"}, secrets={"DB_PASS": "x"})
    assert refused.value.errors == {"db": "no connection 'prod-dbb' (connections of type postgres: prod-db)"}
    with pytest.raises(InputError) as wrong:
        Sim(CONNECTIONS, "t", inputs={"db": "jobs"}, secrets={"DB_PASS": "x"})
    assert wrong.value.errors == {"db": "connection 'jobs' is of type queue, not postgres"}


def test_a_connections_secret_is_rendered_for_the_step_and_masked():
    sim = Sim(CONNECTIONS, "t", secrets={"DB_PASS": "s3cret-pw"})
    sim.start()
    work = sim.work("s")
    assert work.payload.script.endswith("prod-db s3cret-pw") and "s3cret-pw" in work.mask
