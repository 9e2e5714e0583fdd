"""Pod manifests for Kubernetes steps: what Strom generates, the action's `manifest` merged in, and
the checks that refuse what would escape the pod. Pure functions.

Merge rules: mappings merge recursively; lists of mappings that all have a `name` merge by name
(unmatched entries are appended); any other list, and every scalar, is replaced.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FILES_CONTAINER",
    "PREPARE_FILES",
    "STEP_CONTAINER",
    "UPLOAD_FILES",
    "UPLOAD_GRACE",
    "PodFiles",
    "deep_merge",
    "forbid_escalation",
    "label_value",
    "pod_name",
    "step_pod",
    "unsafe_parts",
    "with_files",
]

STEP_CONTAINER = "step"
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


def _named_list(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(i, Mapping) and "name" in i for i in value)


def deep_merge(base: Any, extra: Any) -> Any:
    """`extra` merged into a copy of `base` by the rules above."""
    if isinstance(base, Mapping) and isinstance(extra, Mapping):
        out = {k: copy.deepcopy(v) for k, v in base.items()}
        for key, value in extra.items():
            out[key] = deep_merge(out[key], value) if key in out else copy.deepcopy(value)
        return out
    if _named_list(base) and _named_list(extra):
        items = [copy.deepcopy(i) for i in base]
        index = {item["name"]: i for i, item in enumerate(items)}
        for item in extra:
            if item["name"] in index:
                items[index[item["name"]]] = deep_merge(items[index[item["name"]]], item)
            else:
                items.append(copy.deepcopy(item))
        return items
    return copy.deepcopy(extra)


SAFE_CAPABILITIES = frozenset(
    {
        "NET_BIND_SERVICE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "MKNOD",
        "AUDIT_WRITE",
        "SETFCAP",
        "SYS_CHROOT",
        "NET_RAW",
    }
)


def _unconfined(context: Mapping, where: str) -> list[str]:
    found = []
    for key in ("seccompProfile", "appArmorProfile"):
        if str((context.get(key) or {}).get("type") or "").lower() == "unconfined":
            found.append(f"{where} sets {key} Unconfined")
    if (context.get("windowsOptions") or {}).get("hostProcess") is True:
        found.append(f"{where} asks for a Windows host process")
    return found


def unsafe_parts(pod: Mapping) -> list[str]:
    """What in a pod would reach outside it: host namespaces, hostPath volumes, privileged or
    privilege-escalating containers, capabilities beyond the runtime's defaults, unconfined
    profiles, sysctls. Empty when the pod is fine."""
    spec = pod.get("spec") or {}
    found = [f"spec.{key}" for key in HOST_NAMESPACES if spec.get(key) is True]
    pod_context = spec.get("securityContext") or {}
    if isinstance(pod_context, Mapping):
        if pod_context.get("sysctls"):
            found.append("spec.securityContext sets sysctls")
        found += _unconfined(pod_context, "spec.securityContext")
    for volume in spec.get("volumes") or []:
        if isinstance(volume, Mapping) and "hostPath" in volume:
            found.append(f"volume {volume.get('name')!r} uses hostPath")
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(kind) or []:
            if not isinstance(container, Mapping):
                found.append(f"{kind} holds something that is not a container")
                continue
            context = container.get("securityContext") or {}
            where = f"{kind} {container.get('name')!r}"
            if context.get("privileged") is True:
                found.append(f"{where} is privileged")
            if context.get("allowPrivilegeEscalation") is True:
                found.append(f"{where} allows privilege escalation")
            added = [str(c).upper().removeprefix("CAP_") for c in (context.get("capabilities") or {}).get("add") or []]
            extra = [c for c in added if c not in SAFE_CAPABILITIES]
            if extra:
                found.append(f"{where} adds capability {', '.join(extra)}")
            found += _unconfined(context, where)
    return found


def forbid_escalation(pod: dict) -> dict:
    """Every container of the pod with allowPrivilegeEscalation: false (unset would allow it)."""
    spec = pod.get("spec") or {}
    for kind in ("initContainers", "containers"):
        for container in spec.get(kind) or []:
            if isinstance(container, dict):
                context = container.get("securityContext")
                container["securityContext"] = {
                    **(context if isinstance(context, dict) else {}),
                    "allowPrivilegeEscalation": False,
                }
    return pod


NOBODY = 65534
CONTAINER_CONTEXT = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
POD_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": NOBODY,
    "runAsGroup": NOBODY,
    "fsGroup": NOBODY,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def label_value(text: str) -> str:
    """A valid label value (63 characters of [A-Za-z0-9._-], alphanumeric at both ends)."""
    clean = re.sub(r"[^A-Za-z0-9._-]", "-", text).strip("-_.")
    if len(clean) > 63 or clean != text:
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        clean = (clean[:54].strip("-_.") + "-" + digest).strip("-")
    return clean or "x"


def pod_name(run_id: str, step: str, attempt: int, installation: str = "") -> str:
    """strom-<run>-<step>-<attempt>-<digest>, a valid DNS name of at most 63 characters; the digest covers the
    installation too, so another Strom's run of the same id (run ids follow commits) names its pods apart."""
    slug = re.sub(r"[^a-z0-9-]", "-", step.lower()).strip("-")[:24].strip("-") or "step"
    owner = f"{installation}/" if installation else ""
    digest = hashlib.sha1(f"{owner}{run_id}/{step}/{attempt}".encode()).hexdigest()[:6]
    return f"strom-{run_id[:16]}-{slug}-{attempt}-{digest}"[:63].strip("-")


def step_pod(
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    image: str,
    command: list[str] | None,
    args: list[str] | None,
    env: Mapping[str, str],
    workdir: str | None,
    workspace_init: Mapping | None = None,
    resources: Mapping | None = None,
    service_account: str | None = None,
) -> dict:
    """The generated pod: restartPolicy Never, the main container named `step`, and, for scripts, an
    init container that fills the read-only /workspace (and the script at /strom). Every container runs
    as an unprivileged user (65534) with no capabilities, no privilege escalation and the runtime's
    default seccomp profile; a trusted step's `manifest:` may change the user."""
    container: dict[str, Any] = {
        "name": STEP_CONTAINER,
        "image": image,
        "env": [{"name": k, "value": str(v)} for k, v in env.items()],
        "securityContext": copy.deepcopy(CONTAINER_CONTEXT),
    }
    if command:
        container["command"] = list(command)
    if args:
        container["args"] = list(args)
    if workdir:
        container["workingDir"] = workdir
    if resources:
        container["resources"] = {"requests": dict(resources)}
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "automountServiceAccountToken": False,
        "securityContext": copy.deepcopy(POD_CONTEXT),
    }
    if service_account:
        spec["serviceAccountName"] = service_account
    if workspace_init is not None:
        spec["initContainers"] = [dict(workspace_init)]
        spec["volumes"] = [{"name": "workspace", "emptyDir": {}}, {"name": "code", "emptyDir": {}}]
        container["volumeMounts"] = [
            {"name": "workspace", "mountPath": "/workspace", "readOnly": True},
            {"name": "code", "mountPath": "/strom", "readOnly": True},
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": spec,
    }


# ---------------------------------------------------------------- task state and artifacts

FILES_CONTAINER = "strom-files"
UPLOAD_GRACE = 120  # seconds the files container has to send the files once the step has ended
# Fills $STATE_DIR with the files of the task state the step starts from, and makes $STATE_OUT_DIR and
# $ARTIFACTS_DIR writable by whichever user the step runs as.
PREPARE_FILES = (
    "mkdir -p -m 1777 /strom-out/state-out /strom-out/artifacts; "
    'if [ -n "$STROM_STATE_URL" ]; then '
    'wget -q -O /tmp/state.tar.gz --header "Authorization: Bearer $STROM_STATE_TOKEN" "$STROM_STATE_URL"; '
    "tar -xzf /tmp/state.tar.gz -C /strom-state; rm -f /tmp/state.tar.gz; fi"
)
# A native sidecar: stopped (SIGTERM) when the step's container has ended or the pod is deleted, it sends what
# the step left to Strom, which keeps what a succeeded step left and drops the rest.
UPLOAD_FILES = (
    "up() { tar -czf - -C /strom-out state-out artifacts | base64 -w 0 > /tmp/out.b64 && "
    'wget -q -O /dev/null --header "Authorization: Bearer $STROM_UPLOAD_TOKEN" '
    '--header "Content-Type: application/base64" --post-file /tmp/out.b64 "$STROM_UPLOAD_URL"; exit $?; }; '
    "trap up TERM; while true; do sleep 1 & wait $!; done"
)  # busybox's wget sends a file as a C string: the archive goes as base64


@dataclass(frozen=True)
class PodFiles:
    """Where a pod's step gets the files of its task state, and where it sends what it left (object tokens)."""

    key: str  # the object the files container stores what the step left as
    upload_url: str
    upload_token: str
    state_url: str = ""
    state_token: str = ""


def with_files(pod: dict, files: PodFiles, image: str) -> dict:
    """`pod` with $STATE_DIR (read-only), $STATE_OUT_DIR and $ARTIFACTS_DIR for its step, filled and sent by
    containers of `image` (it needs sh, wget and tar)."""
    spec = pod["spec"]
    step = next(c for c in spec["containers"] if c["name"] == STEP_CONTAINER)
    spec["volumes"] = [*spec.get("volumes", []), *({"name": n, "emptyDir": {}} for n in ("strom-state", "strom-out"))]
    state_mount = {"name": "strom-state", "mountPath": "/strom-state"}
    out_mount = {"name": "strom-out", "mountPath": "/strom-out"}
    step["volumeMounts"] = [*step.get("volumeMounts", []), {**state_mount, "readOnly": True}, out_mount]
    step["env"] = [
        *step.get("env", []),
        {"name": "STATE_DIR", "value": "/strom-state"},
        {"name": "STATE_OUT_DIR", "value": "/strom-out/state-out"},
        {"name": "ARTIFACTS_DIR", "value": "/strom-out/artifacts"},
    ]
    state_env = [
        {"name": "STROM_STATE_URL", "value": files.state_url},
        {"name": "STROM_STATE_TOKEN", "value": files.state_token},
    ]
    inits = spec.setdefault("initContainers", [])
    workspace = next((c for c in inits if c["name"] == "workspace"), None)
    if workspace is not None:  # one init container does both
        workspace["command"] = [*workspace["command"][:-1], f"{workspace['command'][-1]}; {PREPARE_FILES}"]
        workspace["env"] = [*workspace.get("env", []), *state_env]
        workspace["volumeMounts"] = [*workspace.get("volumeMounts", []), state_mount, out_mount]
    else:
        inits.append(_helper("files", image, f"set -e; {PREPARE_FILES}", state_env, [state_mount, out_mount]))
    upload_env = [
        {"name": "STROM_UPLOAD_URL", "value": files.upload_url},
        {"name": "STROM_UPLOAD_TOKEN", "value": files.upload_token},
    ]
    sidecar = _helper(FILES_CONTAINER, image, UPLOAD_FILES, upload_env, [{**out_mount, "readOnly": True}])
    inits.append({**sidecar, "restartPolicy": "Always"})
    spec.setdefault("terminationGracePeriodSeconds", UPLOAD_GRACE)
    return pod


def _helper(name: str, image: str, script: str, env: list[dict], mounts: list[dict]) -> dict:
    return {
        "name": name,
        "image": image,
        "command": ["sh", "-c", script],
        "env": env,
        "volumeMounts": mounts,
        "securityContext": copy.deepcopy(CONTAINER_CONTEXT),
    }
