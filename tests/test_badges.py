"""Status badges: the SVG of a task's newest run (per branch), public only where a workspace says so,
with caching headers and an ETag that changes when the run does."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import requests
from conftest import write_workspace
from service_env import TOKENS, make_config, serving, stack, wait_for

from runner.engine import RunStatus

WORKSPACE = {
    ".strom/t.yaml": """
    tasks:
      build: { flow: { s: { type: script, script: "echo ok" } } }
      broken: { flow: { s: { type: script, script: "exit 3" } } }
      never: { flow: { s: { type: script, script: "true" } } }
    """
}


def test_badges_show_the_newest_run_only_for_workspaces_that_opt_in(tmp_path, redis_url):
    public = write_workspace(tmp_path / "public", WORKSPACE)
    private = write_workspace(tmp_path / "private", WORKSPACE)
    spaces = {"site": {"folder": str(public), "badges": True}, "secret": {"folder": str(private)}}
    config = make_config(public, redis_url, STROM_WORKSPACES=json.dumps(spaces))
    admin = {"Authorization": f"Bearer {TOKENS['admin']}"}
    with stack(config) as service, serving(config, service) as server:
        for workspace, task in (("site", "build"), ("site", "broken"), ("secret", "build")):
            run_id = requests.post(
                f"{server.url}/api/workspaces/{workspace}/tasks/{task}/execute", json={}, headers=admin
            ).json()["id"]
            wait_for(lambda r=run_id: service.runs.load(r).status.terminal, what=f"{workspace}/{task}")

        passing = requests.get(f"{server.url}/badge/site/build.svg", timeout=10)
        assert passing.status_code == 200 and passing.headers["Content-Type"].startswith("image/svg+xml")
        assert passing.headers["Cache-Control"] == "public, max-age=30" and passing.headers["ETag"]
        svg = ET.fromstring(passing.text)
        texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
        assert texts[0] == "build" and texts[1].startswith("passing · ")
        assert svg.get("aria-label").startswith("build: passing")
        assert "#2e9b52" in passing.text

        again = requests.get(
            f"{server.url}/badge/site/build.svg", headers={"If-None-Match": passing.headers["ETag"]}, timeout=10
        )
        assert again.status_code == 304 and again.content == b""

        failing = requests.get(f"{server.url}/badge/site/broken.svg", timeout=10)
        assert "failing" in failing.text and "#cb2431" in failing.text
        assert failing.headers["ETag"] != passing.headers["ETag"]
        nothing = requests.get(f"{server.url}/badge/site/never.svg", timeout=10)
        assert ">no runs<" in nothing.text
        other_branch = requests.get(f"{server.url}/badge/site/build.svg?branch=release", timeout=10)
        assert ">no runs<" in other_branch.text, "a branch with no runs of the task"

        hidden = requests.get(f"{server.url}/badge/secret/build.svg", timeout=10)
        unknown = requests.get(f"{server.url}/badge/nope/build.svg", timeout=10)
        assert hidden.status_code == unknown.status_code == 404
        assert hidden.text == unknown.text, "a private workspace looks like one that does not exist"
        assert service.runs.load(run_id).status is RunStatus.SUCCEEDED
