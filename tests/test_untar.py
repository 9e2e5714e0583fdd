"""Commit archives unpack by the same rules with and without tarfile's filters (Python 3.11.0-3.11.3 lack them)."""

from __future__ import annotations

import io
import stat
import tarfile
from pathlib import Path

import pytest

from runner.git.untar import extract


def _archive(*members: tuple[str, dict]) -> io.BytesIO:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, fields in members:
            info = tarfile.TarInfo(name)
            body = fields.pop("body", b"")
            info.size = len(body) if fields.get("type", tarfile.REGTYPE) == tarfile.REGTYPE else 0
            for key, value in fields.items():
                setattr(info, key, value)
            tar.addfile(info, io.BytesIO(body))
    data.seek(0)
    return data


@pytest.fixture(params=["with filters", "without filters"])
def unpack(request, monkeypatch, tmp_path):
    if request.param == "without filters":
        monkeypatch.delattr(tarfile, "tar_filter", raising=False)

    def unpack(*members):
        target = tmp_path / "snapshot"
        target.mkdir(exist_ok=True)
        with tarfile.open(fileobj=_archive(*members)) as tar:
            extract(tar, target)
        return target

    return unpack


def test_files_links_and_modes_unpack_with_the_dangerous_bits_cleared(unpack):
    target = unpack(
        ("dir/run.sh", {"body": b"echo hi", "mode": 0o4777}),
        ("link", {"type": tarfile.SYMTYPE, "linkname": "dir/run.sh"}),
    )
    assert (target / "dir/run.sh").read_bytes() == b"echo hi" and (target / "link").read_bytes() == b"echo hi"
    assert stat.S_IMODE((target / "dir/run.sh").stat().st_mode) == 0o755


@pytest.mark.parametrize(
    "members",
    [
        [("../escaped", {"body": b"x"})],
        [("out", {"type": tarfile.SYMTYPE, "linkname": "/tmp"}), ("out/escaped", {"body": b"x"})],
        [("hard", {"type": tarfile.LNKTYPE, "linkname": "../../etc/passwd"})],
    ],
    ids=["dot-dot", "through-a-link", "hard-link-out"],
)
def test_nothing_is_written_outside_the_snapshot(unpack, members, tmp_path):
    with pytest.raises((tarfile.TarError, KeyError)):  # KeyError: the filter finds no such member to link to
        unpack(*members)
    assert not (tmp_path / "escaped").exists() and not Path("/tmp/escaped").exists()
