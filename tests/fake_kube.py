"""A recording fake of the Kubernetes API's pod endpoints, for the official client in tests.

    with FakeKube() as kube:
        kube.script("ok:1", statuses=[RUNNING, succeeded(0)], log="hello\\n")
        ... PodExecutor(KubernetesConfig(kubeconfig=kube.kubeconfig(tmp_path)), ...) ...
        assert kube.created[0]["spec"]["containers"][0]["name"] == "step"

Pods are scripted by the image of their `step` container: each read of the pod returns the next
status of its script (the last one repeats); its log is the script's text. Every request is
recorded in `.requests` (method, path); created pod bodies in `.created`; deleted names in
`.deleted`.

With `.upload_origin` set (the web process's URL), a pod with Strom's `strom-files` sidecar does
what that container does when it is stopped: on a graceful delete, the script's `files` (paths
under state-out/ and artifacts/) are POSTed as a gzipped tar in base64 to the sidecar's STROM_UPLOAD_URL,
its origin replaced, with its token; each answer's status is appended to `.uploads`.
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

__all__ = ["PENDING", "RUNNING", "FakeKube", "container_status", "failed", "pull_backoff", "succeeded", "unschedulable"]


def container_status(state: dict, name: str = "step") -> dict:
    return {"name": name, "ready": False, "restartCount": 0, "image": "x", "imageID": "", "state": state}


RUNNING = {
    "phase": "Running",
    "containerStatuses": [container_status({"running": {"startedAt": "2026-11-21T10:00:00Z"}})],
}
PENDING = {"phase": "Pending"}


def succeeded(code: int = 0) -> dict:
    return {
        "phase": "Succeeded" if code == 0 else "Failed",
        "containerStatuses": [
            container_status({"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}})
        ],
    }


def failed(code: int, reason: str = "Error") -> dict:
    return {
        "phase": "Failed",
        "containerStatuses": [container_status({"terminated": {"exitCode": code, "reason": reason}})],
    }


def unschedulable(message: str) -> dict:
    return {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}],
    }


def pull_backoff(image: str) -> dict:
    return {
        "phase": "Pending",
        "containerStatuses": [
            container_status(
                {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}}
            )
        ],
    }


class FakeKube:
    def __init__(self):
        self.requests: list[tuple[str, str]] = []
        self.created: list[dict] = []
        self.deleted: list[str] = []
        self._scripts: dict[str, tuple[list[dict], str]] = {}
        self._files: dict[str, dict[str, bytes]] = {}
        self.upload_origin: str | None = None
        self.uploads: list[int] = []
        self._pods: dict[str, dict] = {}
        self._reads: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def script(self, image: str, statuses: list[dict], log: str = "", files: dict[str, bytes] | None = None) -> None:
        self._scripts[image] = (statuses, log)
        self._files[image] = files or {}

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def kubeconfig(self, directory: Path, namespace: str = "ci") -> Path:
        path = directory / "kubeconfig.yaml"
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "fake",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "strom", "user": {"token": "kube-token-123"}}],
                    "contexts": [
                        {"name": "fake", "context": {"cluster": "fake", "user": "strom", "namespace": namespace}}
                    ],
                }
            )
        )
        return path

    def __enter__(self) -> FakeKube:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- answering -----------------------------------------------------------------------------

    def _image(self, name: str) -> str:
        return self._pods[name]["spec"]["containers"][0]["image"]

    def _status(self, name: str) -> dict:
        statuses, _ = self._scripts.get(self._image(name), ([PENDING], ""))
        with self._lock:
            index = self._reads.get(name, 0)
            self._reads[name] = index + 1
        return statuses[min(index, len(statuses) - 1)]

    def handle(self, method: str, target: str, body: bytes) -> tuple[int, str, bytes]:
        path = urlsplit(target).path
        self.requests.append((method, target))
        parts = path.strip("/").split("/")
        if parts[:3] != ["api", "v1", "namespaces"] or len(parts) < 5 or parts[4] != "pods":
            return 404, "application/json", b'{"kind": "Status", "code": 404}'
        namespace = parts[3]
        if len(parts) == 5 and method == "GET":
            return (
                200,
                "application/json",
                json.dumps({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []}).encode(),
            )
        if len(parts) == 5 and method == "POST":
            pod = json.loads(body)
            name = pod["metadata"]["name"]
            if name in self._pods and name not in self.deleted:
                return (
                    409,
                    "application/json",
                    json.dumps({"kind": "Status", "code": 409, "message": f'pods "{name}" already exists'}).encode(),
                )
            self.created.append(pod)
            self._pods[name] = pod
            return 201, "application/json", json.dumps({**pod, "status": PENDING}).encode()
        name = parts[5]
        if name not in self._pods:
            return (
                404,
                "application/json",
                json.dumps({"kind": "Status", "code": 404, "message": f'pods "{name}" not found'}).encode(),
            )
        if len(parts) == 7 and parts[6] == "log":
            return 200, "text/plain", self._scripts.get(self._image(name), ([], ""))[1].encode()
        if method == "DELETE":
            grace = parse_qs(urlsplit(target).query).get("gracePeriodSeconds", ["30"])[0]
            if int(grace) > 0:
                self._send_files(name)
            self.deleted.append(name)
            return 200, "application/json", json.dumps({**self._pods[name], "status": {"phase": "Running"}}).encode()
        pod = {
            **self._pods[name],
            "metadata": {**self._pods[name]["metadata"], "namespace": namespace},
            "status": self._status(name),
        }
        return 200, "application/json", json.dumps(pod).encode()

    def _send_files(self, name: str) -> None:
        pod = self._pods[name]
        sidecar = next((c for c in pod["spec"].get("initContainers", []) if c["name"] == "strom-files"), None)
        if sidecar is None or self.upload_origin is None:
            return
        env = {e["name"]: e["value"] for e in sidecar["env"]}
        body = io.BytesIO()
        with tarfile.open(fileobj=body, mode="w:gz") as tar:
            for directory in ("state-out", "artifacts"):
                entry = tarfile.TarInfo(directory)
                entry.type, entry.mode = tarfile.DIRTYPE, 0o1777
                tar.addfile(entry)
            for path, data in self._files.get(self._image(name), {}).items():
                entry = tarfile.TarInfo(path)
                entry.size = len(data)
                tar.addfile(entry, io.BytesIO(data))
        url = urlsplit(env["STROM_UPLOAD_URL"])
        answer = requests.post(
            f"{self.upload_origin}{url.path}",
            data=base64.b64encode(body.getvalue()),
            headers={"Authorization": f"Bearer {env['STROM_UPLOAD_TOKEN']}", "Content-Type": "application/base64"},
            timeout=30,
        )
        self.uploads.append(answer.status_code)


def _handler(fake: FakeKube):
    class Handler(BaseHTTPRequestHandler):
        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            status, kind, data = fake.handle(self.command, self.path, self.rfile.read(length) if length else b"")
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

        def log_message(self, *args):
            pass

    return Handler
