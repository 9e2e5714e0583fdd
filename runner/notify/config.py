"""The `notifications:` section of the server configuration.

notifications:
  channels:
    team-chat: ["slack://T000/B000/XXXX", { env: DISCORD_URL }]     # Apprise URLs
    ops-mail:  [{ env: OPS_MAILTO }]                                  # mailto://, mailtos://
    oncall:    { config: /etc/strom/apprise.yml, tags: [oncall] }     # an Apprise config file
  timeout: 10s          # per delivery attempt
  attempts: 3           # per URL, with backoff
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..spec.problems import Problems
from ..spec.reader import Reader, describe
from ..spec.yamlnodes import LocDict

__all__ = ["Channel", "NotifyConfig", "parse_notifications"]


@dataclass(frozen=True)
class Channel:
    name: str
    urls: tuple[str, ...] = field(default=(), repr=False)  # may hold credentials
    config_file: Path | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class NotifyConfig:
    channels: Mapping[str, Channel] = field(default_factory=dict)
    timeout: float = 10.0
    attempts: int = 3


def parse_notifications(block, problems: Problems, base: Path, read_value: Callable) -> NotifyConfig:
    if block is None:
        return NotifyConfig()
    r = Reader(block, problems, "notifications")
    r.check_keys({"channels", "timeout", "attempts"})
    channels = {}
    raw = r.mapping("channels", '{ team-chat: ["slack://..."] }')
    if raw is not None:
        for name, spec in raw.items():
            channel = _channel(str(name), spec, raw.at(name), problems, base, read_value)
            if channel is not None:
                channels[str(name)] = channel
    timeout = r.duration("timeout", 300, "5m") if r.has("timeout") else None
    attempts = r.integer("attempts", 1, 10)
    return NotifyConfig(channels=channels, timeout=timeout or 10.0, attempts=attempts or 3)


def _channel(name: str, spec, pos, problems: Problems, base: Path, read_value) -> Channel | None:
    what = f"notifications channel {name!r}"
    if isinstance(spec, (str, dict)) and not (isinstance(spec, dict) and ("config" in spec or "urls" in spec)):
        spec = [spec]  # one URL (or one {env: NAME})
    if isinstance(spec, list):
        urls = tuple(u for u in (read_value(item, what, problems, pos) for item in spec) if u)
        if not spec:
            problems.error(pos, "missing-field", f"{what} has no URLs", 'list Apprise URLs, e.g. ["slack://..."]')
        return Channel(name, urls)
    if not isinstance(spec, LocDict):  # as every mapping of the file and of the environment
        problems.error(
            pos,
            "wrong-type",
            f"{what} must be a list of Apprise URLs or {{ config: FILE, tags: [...] }}, got {describe(spec)}",
            'write it like `ops: ["mailtos://..."]`',
        )
        return None
    r = Reader(spec, problems, what)
    r.check_keys({"urls", "config", "tags"})
    urls = tuple(u for u in (read_value(item, what, problems, pos) for item in (spec.get("urls") or [])) if u)
    config_file = None
    if r.has("config"):
        config_file = (base / str(r.raw("config"))).expanduser().resolve()
        if not config_file.is_file():
            r.error("config", "missing-file", f"{what}: Apprise config file {config_file} does not exist")
    if not urls and config_file is None:
        r.error(None, "missing-field", f"{what} has no URLs and no config file", "add `urls:` or `config:`")
    return Channel(name, urls, config_file, r.string_list("tags", "[oncall]") or ())
