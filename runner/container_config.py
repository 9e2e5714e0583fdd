"""The `docker:` section of the server (and worker) configuration.

    docker:
      host: unix:///var/run/docker.sock   # default: DOCKER_HOST, else the local engine
      runner_image: python:3.12-slim      # script steps with runner: docker (an action's `image` wins)
      network: bridge                     # a Docker network mode; "none" for no network
      cpus: 2                             # limits per step container
      memory: 2g
      pids: 1024
      pull: if-missing                    # never | if-missing | always
"""
from __future__ import annotations

from dataclasses import dataclass

from .spec.problems import Problems
from .spec.reader import Reader

__all__ = ["DockerConfig", "parse_docker", "PULL_POLICIES", "DEFAULT_RUNNER_IMAGE"]

PULL_POLICIES = ("never", "if-missing", "always")
DEFAULT_RUNNER_IMAGE = "python:3.12-slim"
_UNITS = {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}


@dataclass(frozen=True)
class DockerConfig:
    host: str | None = None
    runner_image: str = DEFAULT_RUNNER_IMAGE
    network: str = "bridge"
    cpus: float | None = None
    memory: int | None = None  # bytes
    pids: int | None = 1024
    pull: str = "if-missing"


def parse_memory(value) -> int | None:
    """512m, 2g, 1048576 -> bytes; None when it is not a size."""
    text = str(value).strip().lower().removesuffix("b")
    if text.isdigit():
        return int(text)
    if text[:-1].replace(".", "", 1).isdigit() and text[-1] in _UNITS:
        return int(float(text[:-1]) * _UNITS[text[-1]])
    return None


def parse_docker(block, problems: Problems) -> DockerConfig:
    if block is None:
        return DockerConfig()
    r = Reader(block, problems, "docker")
    r.check_keys({"host", "runner_image", "network", "cpus", "memory", "pids", "pull"})
    values: dict = {}
    for key in ("host", "runner_image", "network"):
        if r.string(key):
            values[key] = r.string(key)
    if r.has("cpus"):
        values["cpus"] = r.number("cpus", 0.01)
    if r.has("memory"):
        values["memory"] = parse_memory(r.raw("memory"))
        if values["memory"] is None:
            r.error("memory", "bad-value", f"docker.memory {r.raw('memory')!r} is not a size", "write it like 512m or 2g")
    if r.has("pids"):
        values["pids"] = r.integer("pids", 16)
    if r.has("pull"):
        values["pull"] = r.choice("pull", PULL_POLICIES) or "if-missing"
    return DockerConfig(**{k: v for k, v in values.items() if v is not None})
