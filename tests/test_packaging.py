"""Strom installed from its wheel, as an image or `pip install .` installs it, serves its UI and API: the
wheel carries every template, static file and schema."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest
from service_env import TOKENS, config_env

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent

SERVE = textwrap.dedent("""
    import json, re, sys
    import runner, webhooks
    from runner.config import load_config
    from webhooks.app import create_app
    assert all(m.__file__.startswith(sys.prefix) for m in (runner, webhooks)), (runner.__file__, sys.prefix)
    config = load_config(base_dir=sys.argv[1])
    app = create_app(config)
    client = app.test_client()
    auth = {"Authorization": "Bearer " + sys.argv[2]}
    run_id = client.post("/api/workspaces/local/tasks/hello/execute", json={}, headers=auth).get_json()["id"]
    pages = {"/login": client.get("/login"), "/api/openapi.json": client.get("/api/openapi.json", headers=auth),
             "/ui/static/strom.css": client.get("/ui/static/strom.css")}
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', pages["/login"].get_data(as_text=True)).group(1)
    client.post("/login", data={"token": sys.argv[2], "csrf_token": csrf})
    pages["/runs/ID"] = client.get(f"/runs/{run_id}")
    with open(sys.argv[3], "w") as out:
        json.dump({path: [page.status_code, page.get_data(as_text=True)] for path, page in pages.items()}, out)
""")


def _clean_copy(target: Path) -> Path:
    """The checkout's files (no build/ or egg-info left by earlier builds, which would hide what is missing)."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    for name in files:
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


def test_the_wheel_carries_the_ui_and_the_schema_and_serves_them(tmp_path, redis_url, service_workspace):
    source = _clean_copy(tmp_path / "source")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = (tmp_path / "dist").glob("strom-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "webhooks").rglob("*")
        if p.is_file() and p.suffix in (".html", ".css", ".js", ".yaml", ".typed")
    }
    assert shipped and shipped <= names, sorted(shipped - names)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False)  # the dependencies from here; Strom from the wheel
    python = env_dir / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    root = service_workspace(
        {".strom/t.yaml": "tasks:\n  hello: { flow: { s: { type: script, script: 'echo hi' } } }\n"}
    )
    done = subprocess.run(
        [str(python), "-c", SERVE, str(root), TOKENS["admin"], str(tmp_path / "pages.json")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", **config_env(redis_url)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    pages = json.loads((tmp_path / "pages.json").read_text())
    assert {path: status for path, (status, _) in pages.items()} == dict.fromkeys(pages, 200)
    assert 'name="token"' in pages["/login"][1] and "hello" in pages["/runs/ID"][1]
    assert json.loads(pages["/api/openapi.json"][1])["openapi"].startswith("3.")
