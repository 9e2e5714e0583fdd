"""The web process is created by a factory; it imports the engine, never the reverse."""

from __future__ import annotations

import ast
from pathlib import Path

from webhooks.app import create_app


def test_health_answers_with_the_version(redis_url, monkeypatch, tmp_path):
    monkeypatch.setenv("STROM_REDIS_URL", redis_url)
    monkeypatch.chdir(tmp_path)
    client = create_app({"TESTING": True}).test_client()
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok", "version": "0.1.0"}


def test_an_unreachable_redis_is_a_clear_error(monkeypatch, tmp_path):
    import pytest

    from runner.store.connection import RedisUnavailable

    monkeypatch.setenv("STROM_REDIS_URL", "redis://127.0.0.1:9/0")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RedisUnavailable, match=r"cannot reach Redis at redis://127.0.0.1:9/0 \(Error 111"):
        create_app()


def test_runner_does_not_import_the_web_process():
    for path in (Path(__file__).parent.parent / "runner").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n.split(".")[0] in ("webhooks", "flask") for n in names), f"{path} imports {names}"


def test_a_password_in_the_redis_url_is_never_shown():
    from runner.store.connection import _safe

    assert _safe("redis://:s3cret@db:6379/0") == "redis://:***@db:6379/0"
    assert _safe("redis://user:s3cret@db/1") == "redis://user:***@db/1"
