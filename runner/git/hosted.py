"""Repositories Strom hosts itself, for `git push strom main`: bare repositories with Strom's hooks.

The pre-receive hook validates the pushed `.strom/` and refuses the push with the problems (the git
client shows them as `remote: ...`); a push through `strom web` is validated by the web process itself.
The post-receive hook writes the updated refs and the push options to the file named by
STROM_PUSH_RECORD, from which the web process stores the events.
"""

from __future__ import annotations

import shlex
import sys
import threading
from pathlib import Path

__all__ = ["HostedRepos", "hook_scripts"]

_LOCK = threading.Lock()
_POST_RECEIVE = """#!/bin/sh
# Strom: record the updated refs and push options for the web process.
[ -n "$STROM_PUSH_RECORD" ] || exit 0
{
  i=0
  while [ "$i" -lt "${GIT_PUSH_OPTION_COUNT:-0}" ]; do
    printf 'option %s\\n' "$(printenv "GIT_PUSH_OPTION_$i" | tr '\\n\\r' '  ')"
    i=$((i + 1))
  done
  cat
} > "$STROM_PUSH_RECORD"
"""


def hook_scripts() -> dict[str, str]:
    python = shlex.quote(sys.executable)
    client = shlex.quote(str(Path(__file__).with_name("hookclient.py")))
    pre_receive = (
        "#!/bin/sh\n"
        "# Strom: refuse a push whose .strom/ is invalid (checked by the web process serving the push, if any).\n"
        f'[ -z "$STROM_HOOK_SOCKET" ] || exec {python} -I -S {client}\n'
        f"exec {python} -m runner.git.prereceive\n"
    )
    return {"pre-receive": pre_receive, "post-receive": _POST_RECEIVE}


class HostedRepos:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, workspace: str) -> Path:
        return self.root / f"{workspace}.git"

    def ensure(self, workspace: str, default_branch: str = "main") -> Path:
        """The bare repository of `workspace`, created on first use, with Strom's hooks installed."""
        import git  # here: a process that serves no hosted workspace never loads GitPython

        path = self.path(workspace)
        with _LOCK:
            if not (path / "HEAD").exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                repo = git.Repo.init(path, bare=True, initial_branch=default_branch)
                with repo.config_writer() as config:
                    config.set_value("http", "receivepack", "true")
                    config.set_value("receive", "advertisePushOptions", "true")
                    config.set_value("uploadpack", "allowFilter", "true")
            for hook, body in hook_scripts().items():
                script = path / "hooks" / hook
                if not script.exists() or script.read_text() != body:
                    script.parent.mkdir(exist_ok=True)
                    script.write_text(body)
                    script.chmod(0o755)
        return path
