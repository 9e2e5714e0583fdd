"""Secrets never stored in clear: masked in logs, errors and outputs before they are written, in their
common encodings too, across the cut of a very long line; a run whose secrets cannot be known any
more is shown withheld; and a server secret scoped to some workspaces reaches no other."""

from __future__ import annotations

import base64
import json
import threading
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from service_env import TOKENS, make_config, stack, wait_for
from step_work import step_work

from runner.config import ConfigError, load_config
from runner.engine import StepStatus
from runner.executors import LocalExecutor, LocalSettings, execute
from runner.executors.process import MAX_LINE
from runner.masking import MASK, Masker
from runner.store import keys
from webhooks.app import create_app

SECRET = "s3cr3t/value+with=odd&chars"


def _forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        json.dumps(secret)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret),
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode(),
    ]


def test_a_secret_is_masked_as_it_is_and_in_its_common_encodings():
    masker = Masker([SECRET])
    for form in _forms(SECRET):
        assert masker.mask(f"before {form} after") == f"before {MASK} after", form
    assert Masker(["abc"]).mask("YWJj abc") == "YWJj ***", "short secrets are not hidden in encodings"


@settings(max_examples=200, deadline=None)
@given(
    secret=st.text(st.characters(blacklist_categories=("Cs",)), min_size=6, max_size=40),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
    form=st.integers(0, 6),
)
def test_no_encoded_secret_survives_masking(secret, before, after, form):
    text = before + _forms(secret)[form] + after
    masked = Masker([secret]).mask(text)
    assert _forms(secret)[form] not in masked


@settings(max_examples=200, deadline=None)
@given(
    secret=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=6, max_size=64),
    offset=st.integers(1, 63),
)
def test_a_long_line_is_never_cut_inside_a_secret(secret, offset):
    buffer = b"x" * (MAX_LINE - min(offset, len(secret) - 1)) + secret.encode() + b"y" * 10
    cut = Masker([secret]).safe_cut(buffer, MAX_LINE)
    start = buffer.index(secret.encode())
    assert cut <= start or cut >= start + len(secret)


def _run(ws, script: str):
    lines: list[tuple[str, str]] = []
    sink = type("Sink", (), {"line": lambda self, stream, text: lines.append((stream, text))})()
    work = step_work(job_id="j", step="s", attempt=1, kind="script", script=script, mask=(SECRET,))
    return execute(
        LocalExecutor(LocalSettings(sandbox="copy", cache_dir=None)), work, ws, sink, threading.Event()
    ), lines


def test_outputs_errors_and_long_lines_are_masked_before_they_are_stored(tmp_path):
    encoded = base64.b64encode(SECRET.encode()).decode()
    result, lines = _run(tmp_path, f'echo \'OUTPUT: {{"token": "{SECRET}", "b64": "{encoded}"}}\'')
    assert result.output == {"token": MASK, "b64": MASK}, "the stored output holds no secret"
    result, lines = _run(tmp_path, f"printf '%0{MAX_LINE - 10}d' 0; printf '{SECRET}'; echo; exit 3")
    text = "".join(t for _, t in lines)
    assert SECRET not in text and SECRET[:10] not in text and SECRET[-10:] not in text, "cut where no secret is"
    assert result.status is StepStatus.FAILED and MASK in text


def test_a_run_whose_secrets_cannot_be_known_is_shown_withheld(service_workspace, redis_url):
    workspace = {
        ".strom/t.yaml": """
    tasks:
      hello:
        input: { password: { type: string, secret: true, default: "hunter2hunter2" }, name: { type: string } }
        flow:
          greet: { type: script, script: 'echo "OUTPUT: {\\"said\\": \\"hi {{ input.name }}\\"}"' }
    """
    }
    config = make_config(service_workspace(workspace), redis_url)
    auth = {"Authorization": f"Bearer {TOKENS['admin']}"}
    with stack(config) as service:
        client = create_app(config, service).test_client()
        run_id = client.post(
            "/api/workspaces/local/tasks/hello/execute", json={"input": {"name": "ada"}}, headers=auth
        ).json["id"]
        shown = wait_for(
            lambda: (r := client.get(f"/api/runs/{run_id}", headers=auth).json)["status"] == "succeeded" and r,
            what="the run",
        )
        assert shown["steps"][0]["output"] == {"said": "hi ada"} and shown["inputs"]["password"] == MASK
        state = service.runs.load(run_id)
        service.redis.delete(keys.definitions(state.definitions))  # gone, as retention may make them
    with stack(config, workers=0, scheduler=False) as service:  # a fresh process: nothing cached
        client = create_app(config, service).test_client()
        shown = client.get(f"/api/runs/{run_id}", headers=auth).json
    assert shown["steps"][0]["output"] == "(withheld)"
    assert shown["inputs"] == {"password": MASK, "name": MASK}, "which inputs are secret is unknown: none is shown"


def test_a_server_secret_scoped_to_workspaces_reaches_only_them(tmp_path):
    (tmp_path / "strom.yaml").write_text("""
workspaces:
  web: { folder: . }
  api: { folder: . }
secrets:
  deploy_key: { env: DEPLOY_KEY, workspaces: [web] }
  shared: { value: everyone }
""")
    config = load_config(tmp_path / "strom.yaml", environ={"DEPLOY_KEY": "k3y"}, base_dir=tmp_path)
    assert config.secrets_for("web") == {"deploy_key": "k3y", "shared": "everyone"}
    assert config.secrets_for("api") == {"shared": "everyone"}
    (tmp_path / "bad.yaml").write_text("""
workspaces: { web: { folder: . } }
secrets: { deploy_key: { env: DEPLOY_KEY, workspaces: [wbe] } }
""")
    with pytest.raises(ConfigError, match="secret 'deploy_key' is for workspace 'wbe', which is not configured"):
        load_config(tmp_path / "bad.yaml", environ={"DEPLOY_KEY": "k3y"}, base_dir=tmp_path)
