"""The real Docker engine for tests, and a busybox image made without pulling anything.

`docker_client()` skips the test locally when no engine answers and fails it in CI
(STROM_REQUIRE_ALL=1). `busybox_image()` imports `strom-test/busybox:latest` from the
busybox-static binary (a root filesystem with its applet links) when the engine lacks it.
"""

from __future__ import annotations

import io
import shutil
import tarfile

import pytest
from conftest import REQUIRE_ALL

__all__ = ["IMAGE", "busybox_image", "docker_client", "strom_containers"]

IMAGE = "strom-test/busybox:latest"


def docker_client():
    try:
        import docker

        client = docker.from_env(timeout=30)
        client.ping()
        return client
    except Exception as exc:  # noqa: BLE001 - any failure to reach the engine means no engine
        if REQUIRE_ALL:
            pytest.fail(f"a Docker engine is required here (STROM_REQUIRE_ALL=1) but none answers: {exc}")
        pytest.skip(f"no Docker engine: {exc}")


def _rootfs(busybox: str) -> bytes:
    import subprocess

    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, mode in (("bin", 0o755), ("tmp", 0o1777), ("etc", 0o755)):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for applet in applets:
            if applet != "busybox":
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(link)
        passwd = b"root:x:0:0:root:/root:/bin/sh\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        tar.addfile(info, io.BytesIO(passwd))
    return buffer.getvalue()


def busybox_image(client) -> str:
    import docker

    try:
        client.images.get(IMAGE)
        return IMAGE
    except docker.errors.ImageNotFound:
        pass
    busybox = shutil.which("busybox")
    if busybox is None:
        if REQUIRE_ALL:
            pytest.fail("busybox (busybox-static) is required to build the test image")
        pytest.skip("busybox is not installed")
    client.api.import_image_from_data(
        _rootfs(busybox), repository="strom-test/busybox", tag="latest", changes=['CMD ["/bin/sh"]', "ENV PATH=/bin"]
    )
    return IMAGE


def strom_containers(client, **labels) -> list:
    filters = [f"{k.replace('_', '.')}={v}" for k, v in {"strom_managed": "1", **labels}.items()]
    return client.containers.list(all=True, filters={"label": filters})
