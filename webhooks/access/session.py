"""Signing in to the web UI with an API token: a session cookie, CSRF tokens for every form.

The cookie holds a hash of the token, never the token, and is checked against the configured
tokens on every request, so removing a token from the configuration signs its sessions out.
The signing key lives in `data_dir/web-secret` (created once, mode 0600), shared by every web
worker process.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from flask import abort, g, redirect, request, session, url_for

from ..context import current_service
from .roles import PERMISSIONS

__all__ = ["check_csrf", "csrf_token", "local_path", "may", "page", "secret_key", "sign_in", "sign_out", "signed_in"]

SECRET_FILE = "web-secret"


def secret_key(data_dir: Path) -> bytes:
    """The key that signs session cookies: made once, atomically (web workers start together)."""
    path = Path(data_dir) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".web-secret-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(secrets.token_bytes(32))
            os.link(temp, path)  # fails if another worker was first: its key wins
        except FileExistsError:
            pass
        finally:
            os.unlink(temp)
    return path.read_bytes()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _tokens():
    return current_service().config.tokens


def sign_in(presented: str):
    """The configured token `presented` is, now remembered in the session; None if it is none."""
    found = None
    for token in _tokens():
        if hmac.compare_digest(token.token.encode(), presented.encode()):
            found = found or token
    if found is not None:
        session.clear()
        session["token"] = _digest(found.token)
        session["csrf"] = secrets.token_urlsafe(24)
        session.permanent = True
    return found


def sign_out() -> None:
    session.clear()


def signed_in():
    """The session's token (a TokenConfig), or None."""
    if "strom_ui_token" in g:
        return g.strom_ui_token
    wanted = session.get("token")
    found = None
    if wanted:
        for token in _tokens():
            if hmac.compare_digest(_digest(token.token), wanted):
                found = found or token
    g.strom_ui_token = found
    return found


def may(permission: str) -> bool:
    token = signed_in()
    return token is not None and permission in PERMISSIONS[token.role]


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


MAX_FORM = 64 * 1024  # the UI's forms are a token and a few fields; browsers declare their length


def check_csrf() -> None:
    if request.content_length is None or request.content_length > MAX_FORM:
        abort(413, description=f"a form of this site is at most {MAX_FORM} bytes, with its length declared")
    sent = request.form.get("csrf_token", "")
    if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
        abort(400, description="the form is stale or was not sent by this site: reload the page and try again")


def local_path(target: str | None) -> str | None:
    """Only same-site paths: a `next=` never sends anyone elsewhere."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None  # browsers read /\\host and //host as another site
    return target


def page(permission: str = "read"):
    """A page for signed-in users whose role has `permission`; POSTs must carry the CSRF token."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if signed_in() is None:
                return redirect(url_for("ui.login", next=request.full_path.rstrip("?")))
            if not may(permission):
                abort(403, description=f"token {signed_in().name!r} (role {signed_in().role}) may not {permission}")
            if request.method == "POST":
                check_csrf()
            return view(*args, **kwargs)

        return wrapper

    return decorate
