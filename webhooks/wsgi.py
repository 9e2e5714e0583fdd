"""The WSGI entry point for gunicorn: `gunicorn webhooks.wsgi:app` (configuration from STROM_* and strom.yaml)."""

from .app import create_app

app = create_app()
