"""The `docker:` and `kubernetes:` sections of the server (and worker) configuration.

    docker:
      host: unix:///var/run/docker.sock   # default: DOCKER_HOST, else the local engine
      runner_image: python:3.12-slim      # script steps with runner: docker (an action's `image` wins)
      network: bridge                     # a Docker network mode; "none" for no network
      cpus: 2                             # limits per step container
      memory: 4g
      pids: 1024
      tmp: 1g                             # size of each container's /tmp (in memory)
      user: "65534:65534"                 # uid:gid steps run as; "image" keeps the image's own USER
      pull: if-missing                    # never | if-missing | always

Step containers never hold capabilities (cap_drop ALL, no-new-privileges); steps of untrusted pull
requests always run as an unprivileged user, whatever `user` says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .spec.problems import Problems
from .spec.reader import Reader

__all__ = [
    "DEFAULT_RUNNER_IMAGE",
    "PULL_POLICIES",
    "DockerConfig",
    "KubernetesConfig",
    "parse_docker",
    "parse_kubernetes",
    "parse_memory",
]

_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?")
PULL_POLICIES = ("never", "if-missing", "always")
DEFAULT_RUNNER_IMAGE = "python:3.12-slim"
NOBODY = "65534:65534"
_UNITS = {"k": 1024, "m": 1024**2, "g": 1024**3}


@dataclass(frozen=True)
class DockerConfig:
    host: str | None = None
    runner_image: str = DEFAULT_RUNNER_IMAGE
    network: str = "bridge"
    cpus: float | None = None
    memory: int | None = 4 * 1024**3  # bytes
    pids: int | None = 1024
    tmp: int = 1024**3  # bytes of /tmp
    user: str = NOBODY  # "image": the image's own USER (trusted steps only)
    pull: str = "if-missing"


def parse_memory(value) -> int | None:
    """512m, 2g, 1048576 -> bytes; None when it is not a size."""
    text = str(value).strip().lower().removesuffix("b")
    if text.isascii() and text.isdigit():
        return int(text)
    if text[:-1].replace(".", "", 1).isascii() and text[:-1].replace(".", "", 1).isdigit() and text[-1] in _UNITS:
        return int(float(text[:-1]) * _UNITS[text[-1]])
    return None


def parse_docker(block, problems: Problems) -> DockerConfig:
    if block is None:
        return DockerConfig()
    r = Reader(block, problems, "docker")
    r.check_keys({"host", "runner_image", "network", "cpus", "memory", "pids", "tmp", "user", "pull"})
    values: dict = {}
    for key in ("host", "runner_image", "network", "user"):
        if r.string(key):
            values[key] = r.string(key)
    if values.get("user") and not _USER.fullmatch(values["user"]):
        r.error(
            "user",
            "bad-value",
            f"docker.user {values['user']!r} is not a user",
            'write uid:gid (like "65534:65534"), a user name the images know, or "image"',
        )
    if r.has("cpus"):
        values["cpus"] = r.number("cpus", 0.01)
    for key in ("memory", "tmp"):
        if r.has(key):
            values[key] = parse_memory(r.raw(key))
            if values[key] is None:
                r.error(key, "bad-value", f"docker.{key} {r.raw(key)!r} is not a size", "write it like 512m or 2g")
    if r.has("pids"):
        values["pids"] = r.integer("pids", 16)
    if r.has("pull"):
        values["pull"] = r.choice("pull", PULL_POLICIES) or "if-missing"
    return DockerConfig(**{k: v for k, v in values.items() if v is not None})


@dataclass(frozen=True)
class KubernetesConfig:
    """
    kubernetes:
      kubeconfig: ~/.kube/config     # default: in-cluster when Strom runs in a pod, else KUBECONFIG
      context: prod                  # a kubeconfig context (default: the current one)
      namespace: strom
      runner_image: python:3.12-slim # script steps with runner: pod
      init_image: busybox:1.36       # fills /workspace and $STATE_DIR, sends what steps leave (needs wget and tar)
      files: true                    # give pods $STATE_DIR, $STATE_OUT_DIR and $ARTIFACTS_DIR
      service_account: strom-steps
      pending_timeout: 10m           # a pod Pending longer fails
      pull_backoff_timeout: 5m       # ... or waiting on an image it cannot pull
    """

    kubeconfig: Path | None = None
    context: str | None = None
    namespace: str = "default"
    runner_image: str = DEFAULT_RUNNER_IMAGE
    init_image: str = "busybox:1.36"
    files: bool = True
    service_account: str | None = None
    pending_timeout: float = 600.0
    pull_backoff_timeout: float = 300.0


def parse_kubernetes(block, problems: Problems, base: Path) -> KubernetesConfig:
    if block is None:
        return KubernetesConfig()
    r = Reader(block, problems, "kubernetes")
    r.check_keys(
        {
            "kubeconfig",
            "context",
            "namespace",
            "runner_image",
            "init_image",
            "files",
            "service_account",
            "pending_timeout",
            "pull_backoff_timeout",
        }
    )
    values: dict = {}
    kubeconfig = r.string("kubeconfig")
    if kubeconfig:
        values["kubeconfig"] = (base / Path(kubeconfig).expanduser()).resolve()
    for key in ("context", "namespace", "runner_image", "init_image", "service_account"):
        if r.string(key):
            values[key] = r.string(key)
    for key in ("pending_timeout", "pull_backoff_timeout"):
        if r.has(key):
            values[key] = r.duration(key)
    if r.has("files"):
        values["files"] = r.boolean("files")
    return KubernetesConfig(**{k: v for k, v in values.items() if v is not None})
