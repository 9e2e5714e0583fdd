"""Step summaries: the SUMMARY protocol, the Markdown the UI shows (safe whatever a step writes), the pull
request comment, notifications, and a live run seen through the API, `strom status` and the run page."""

from __future__ import annotations

import re

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from service_env import TOKENS, make_config, remote_cli, serving, signed_in, stack, wait_for

from runner.engine import RunState, RunStatus, StepRun, StepStatus
from runner.gitops.reporting import summary_body
from runner.notify.messages import run_message
from runner.outputs import MAX_SUMMARY, OutputCollector, cap_summary, compose_summary
from webhooks.ui.markdown import to_html


def test_summary_lines_are_collected_up_to_the_cap_and_joined_after_the_file():
    collector = OutputCollector()
    for line in ["SUMMARY: first", "  SUMMARY:second", "not one", "SUMMARY:", 'OUTPUT: {"a": 1}']:
        collector.feed(line)
    assert collector.summary_lines == ["first", "second", ""]
    assert collector.result() == ({"a": 1}, None)
    assert compose_summary("## Title\n\n", collector.summary_lines) == "## Title\n\nfirst\nsecond"
    assert compose_summary("  \n", []) is None
    flood = OutputCollector()
    for _ in range(10_000):
        flood.feed("SUMMARY: " + "y" * 100)
    assert len(flood.summary_lines) < 200, "lines past the cap are not kept"
    assert len(cap_summary("\n".join(flood.summary_lines))) == MAX_SUMMARY


HOSTILE = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[data](data:text/html;base64,PHNjcmlwdD4=)",
    "![x](javascript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    "[v](vbscript:msgbox)",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_from_a_step_cannot_carry_script_or_markup(text):
    html = str(to_html(text))
    assert "<script" not in html and "<img src=x" not in html and '<a href="javascript' not in html.lower()
    assert 'href="javascript' not in html.lower() and 'href="vbscript' not in html.lower()
    assert 'href="data:' not in html and 'src="javascript' not in html.lower()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(HOSTILE + ["# h", "| a | b |\n|---|---|\n| 1 | 2 |", "`x`", "> q", "**b**", "\n"])).map(
        "".join
    )
    | st.text(max_size=400)
)
def test_any_text_renders_without_raw_html_or_script_links(text):
    html = str(to_html(text))
    tags = set(re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", html))
    assert tags <= {
        "p",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "em",
        "strong",
        "code",
        "pre",
        "blockquote",
        "ul",
        "ol",
        "li",
        "a",
        "img",
        "hr",
        "br",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
    }, tags
    for url in re.findall(r'(?:href|src)="([^"]*)"', html):
        assert not url.lower().lstrip().startswith(("javascript:", "vbscript:", "data:text", "file:")), url
    assert "on" + "error=" not in html.replace("onerror=&quot;", "")


def test_links_open_without_a_referrer_and_tables_render():
    html = str(to_html("[docs](https://example.com/x)\n\n| to add | to change |\n|---|---|\n| 3 | 1 |"))
    assert '<a href="https://example.com/x" rel="nofollow noopener noreferrer">docs</a>' in html
    assert "<table>" in html and "<td>3</td>" in html


def test_the_pull_request_comment_shows_summaries_without_mentions_or_markup():
    runs = {
        "plan": {
            "id": "r1",
            "status": "succeeded",
            "sha": "a" * 40,
            "url": "https://strom/runs/r1",
            "summaries": [["terraform", "3 to add, 1 to change @org/admins </details><!-- strom:summary -->"]],
        }
    }
    body = summary_body(runs, [])
    assert "<details><summary><code>plan</code> › <code>terraform</code></summary>" in body
    assert "3 to add, 1 to change @\u200borg/admins &lt;/details>&lt;!-- strom:summary -->" in body
    assert body.count("</details>") == 1 and body.count("<!-- strom:summary -->") == 1


def test_notifications_carry_each_step_summary_shortened_and_unable_to_ping():
    steps = {
        "plan": StepRun("plan", "plan", status=StepStatus.SUCCEEDED, summary="3 to add <!channel> " + "z" * 2000),
        "quiet": StepRun("quiet", "quiet", status=StepStatus.SUCCEEDED),
    }
    state = RunState(
        id="r1", workspace="ops", task="infra", created_at=1.0, status=RunStatus.SUCCEEDED, steps=steps, source="api"
    )
    message = run_message(state, "succeeded", "https://strom/runs/r1")
    lines = message.markdown.splitlines()
    at = lines.index("**plan**:")
    assert lines[at + 1].startswith("3 to add <\u200b!channel> zzz") and lines[at + 1].endswith("…")
    assert len(lines[at + 1]) == 1000 + 1, "cut to 1,000 characters (and one zero-width space)"
    assert "quiet" not in message.markdown and "plan:" in message.text


WORKSPACE = {
    ".strom/plan.yaml": """
    tasks:
      plan:
        flow:
          terraform:
            type: script
            script: |
              printf '## Plan\\n\\n| to add | to change |\\n|---|---|\\n| 3 | 1 |\\n' > "$STROM_SUMMARY"
              echo "SUMMARY: token $TOKEN <script>alert(1)</script>"
            env: { TOKEN: "{{ secret.cloud }}" }
    """
}


def test_a_live_summary_in_the_api_strom_status_and_the_run_page(service_workspace, redis_url):
    config = make_config(service_workspace(WORKSPACE), redis_url, STROM_SECRET_CLOUD="s3cr3t-cloud-key")
    with stack(config) as service, serving(config, service) as server:
        headers = {"Authorization": f"Bearer {TOKENS['admin']}"}
        started = requests.post(f"{server.url}/api/workspaces/local/tasks/plan/execute", json={}, headers=headers)
        run_id = started.json()["id"]
        state = wait_for(lambda: (s := service.runs.load(run_id)).status.terminal and s, what="the run")
        expected = "## Plan\n\n| to add | to change |\n|---|---|\n| 3 | 1 |\n\ntoken *** <script>alert(1)</script>"
        assert state.steps["terraform"].summary == expected
        shown = requests.get(f"{server.url}/api/runs/{run_id}", headers=headers, timeout=10).json()
        assert shown["steps"][0]["summary"] == expected
        code, out = remote_cli(server, "status", run_id)
        assert code == 0 and "    │ | to add | to change |" in out and "    │ token *** <script>" in out
        browser = signed_in(server, "viewer")
        page = browser.get(f"{server.url}/runs/{run_id}", timeout=10).text
        block = re.search(r'<div class="summary" data-summary-of="terraform">(.*?)</div>', page, re.S).group(1)
        assert "<h2>Plan</h2>" in block and "<td>3</td>" in block
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in block and "<script>alert" not in page
        assert "s3cr3t-cloud-key" not in page
