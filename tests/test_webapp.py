"""The web process is created by a factory; it imports the engine, never the reverse."""
from __future__ import annotations

import ast
from pathlib import Path

from webhooks.app import create_app


def test_health_answers_with_the_version():
    client = create_app({"TESTING": True}).test_client()
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json()["status"] == "ok"


def test_runner_does_not_import_the_web_process():
    for path in (Path(__file__).parent.parent / "runner").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] in ("webhooks", "flask") for n in names), f"{path} imports {names}"
