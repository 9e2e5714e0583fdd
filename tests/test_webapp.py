"""The web process is created by a factory; it imports the engine, never the reverse."""
from __future__ import annotations

from webhooks.app import create_app


def test_health_answers_with_the_version():
    client = create_app({"TESTING": True}).test_client()
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json()["status"] == "ok"


def test_runner_does_not_import_the_web_process():
    import pathlib
    for path in (pathlib.Path(__file__).parent.parent / "runner").rglob("*.py"):
        assert "webhooks" not in path.read_text().replace("runner/", ""), path
