"""A mirror's objects through its long-lived `git cat-file`, and snapshots made of hard links to a blob
store, checked against the stock git client on real repositories."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import time

import pytest
from git_env import commit, git, head, init_repo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.git import hookclient
from runner.git.mirrors import GitError, Mirror
from runner.git.snapshots import Snapshots


@pytest.fixture
def repo(tmp_path):
    return init_repo(tmp_path / "repo")


def _mirror(tmp_path, repo) -> Mirror:
    mirror = Mirror(tmp_path / "mirror.git", url=str(repo))
    mirror.fetch("main")
    return mirror


def test_names_resolve_to_commits_and_hostile_names_to_nothing(tmp_path, repo):
    first = commit(repo, {"a.txt": "one\n"}, "first\n\nwith a body")
    git(repo, "tag", "-a", "-m", "release", "v1", first)
    second = commit(repo, {"a.txt": "two\n"})
    mirror = _mirror(tmp_path, repo)
    mirror.fetch("refs/tags/v1")
    tag_object = git(repo, "rev-parse", "v1").stdout.strip()
    assert mirror.resolve(second) == second and mirror.resolve("refs/heads/main") == second
    assert mirror.resolve(tag_object) == first, "an annotated tag is peeled to its commit"
    tree = git(repo, "rev-parse", f"{second}^{{tree}}").stdout.strip()
    for name in ("0" * 40, "refs/heads/nope", tree, f"{second}\n{first}", "--batch-all-objects", "", "a\x00b"):
        assert mirror.resolve(name) is None, name
    assert mirror.resolve(second) == second, "the process still answers after the hostile names"
    info = mirror.commit_info(first)
    assert (info["title"], info["message"], info["author"], info["author_email"]) == (
        "first",
        "first\n\nwith a body",
        "Ada Lovelace",
        "ada@example.com",
    )


def test_objects_fetched_later_and_a_killed_process_are_handled(tmp_path, repo):
    first = commit(repo, {"a.txt": "one\n"})
    mirror = _mirror(tmp_path, repo)
    assert mirror.resolve(first) == first
    second = commit(repo, {"a.txt": "two\n"})
    assert mirror.resolve(second) is None
    mirror.fetch("main")
    assert mirror.resolve(second) == second, "the long-lived process sees objects fetched after it started"
    process = mirror.repo.git.cat_file_all.proc
    process.kill()
    process.wait()
    assert mirror.resolve(first) == first, "a dead process is replaced on the next question"
    assert mirror.repo.git.cat_file_all.proc.pid != process.pid
    assert getattr(mirror.repo.git, "cat_file_header", None) is None, "one cat-file process, not two"


def test_workflow_files_limits_and_files_that_exist(tmp_path, repo):
    sha = commit(
        repo,
        {
            ".strom/a.yaml": "tasks: {}\n",
            ".strom/deep/b.yml": "tasks: {}\n",
            ".strom/big.yaml": "x" * 5000,
            ".strom/notes.txt": "not a workflow\n",
            "scripts/run.sh": "echo hi\n",
        },
    )
    os.symlink("run.sh", repo / "scripts" / "link.sh")
    git(repo, "add", "scripts/link.sh")
    git(repo, "commit", "-q", "-m", "link")
    sha = head(repo)
    mirror = _mirror(tmp_path, repo)
    texts, exists, oversized = mirror.tree(sha, max_file=1000)
    assert texts == {".strom/a.yaml": "tasks: {}\n", ".strom/deep/b.yml": "tasks: {}\n"}
    assert oversized == {".strom/big.yaml": 5000}
    assert [exists(p) for p in ("scripts/run.sh", "scripts/link.sh", "scripts", "nope.sh", "scripts/run.sh/x")] == [
        True,
        True,
        False,
        False,
        False,
    ]
    for hostile in ("../repo/scripts/run.sh", "/etc/passwd", "./scripts/run.sh", "scripts/run.sh\nHEAD"):
        assert exists(hostile) is False
    texts, _, _ = mirror.tree(sha, max_files=1)
    assert len(texts) == 2, "one file past the limit is read, enough for the loader to refuse them"
    git(repo, "rm", "-rq", ".strom")
    empty = commit(repo, {"README": "no workflows\n"})
    mirror.fetch("main")
    assert mirror.tree(empty)[0] == {}


_PATHS = st.sampled_from(["a", "b", "d/x", "d/y", "d/e/z", "f", "g/h"])
_CHANGES = st.lists(
    st.tuples(_PATHS, st.one_of(st.none(), st.sampled_from(["1\n", "2\n", "3\n"])), st.booleans()), max_size=6
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=_CHANGES, after=_CHANGES)
def test_changed_files_are_what_git_diff_lists(tmp_path_factory, before, after):
    """Random edits (files, directories turned into files, modes) between two commits: the tree comparison
    in Python lists exactly the paths `git diff --name-only --no-renames` lists."""
    root = tmp_path_factory.mktemp("diff")
    repo = init_repo(root / "repo")
    shas = []
    for changes in ([("seed", "0\n", False)] + before, after):
        for path, text, executable in changes:
            target = repo / path
            _clear(repo, path)
            if text is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
                target.chmod(0o755 if executable else 0o644)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "--allow-empty", "-m", "change")
        shas.append(head(repo))
    mirror = _mirror(root, repo)
    expected = git(repo, "diff", "--name-only", "--no-renames", *shas).stdout.split()
    assert mirror.changed_files(*shas) == sorted(expected)


def _clear(repo, path):
    """Make room for `path`: remove it and any file standing where one of its directories must be."""
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        target = repo.joinpath(*parts[:i])
        if target.is_file():
            target.unlink()
            return
    target = repo / path
    if target.is_dir():
        subprocess.run(["rm", "-rf", str(target)], check=True)


def _commit_contents(repo, sha) -> dict[str, tuple[str, bytes]]:
    """Each file of the commit as git stores it: (kind, bytes), read with `git ls-tree` and `git cat-file`."""
    listing = subprocess.run(["git", "ls-tree", "-r", "-z", sha], cwd=repo, capture_output=True, check=True).stdout
    contents = {}
    for entry in filter(None, listing.split(b"\0")):
        meta, _, path = entry.partition(b"\t")
        mode, kind, oid = meta.split()
        if kind != b"blob":
            continue
        data = subprocess.run(["git", "cat-file", "blob", oid], cwd=repo, capture_output=True, check=True).stdout
        contents[path.decode()] = ({b"100755": "x", b"120000": "l"}.get(mode, "r"), data)
    return contents


def _snapshot_contents(root) -> dict[str, tuple[str, bytes]]:
    contents = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                contents[rel] = ("l", os.readlink(path).encode())
            else:
                contents[rel] = ("x" if os.stat(path).st_mode & 0o100 else "r", open(path, "rb").read())
    return contents


def test_snapshots_are_the_commit_byte_for_byte_and_share_unchanged_files(tmp_path, repo):
    commit(repo, {"src/a.py": "A = 1\n", "src/b.py": "B = 2\n", "run.sh": "echo hi\n", "lf.txt": "x\n"})
    (repo / "run.sh").chmod(0o755)
    os.symlink("src/a.py", repo / "link")
    (repo / ".gitattributes").write_text("*.txt text eol=crlf\n")  # a checkout would write lf.txt with \r\n
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "modes")
    first = head(repo)
    second = commit(repo, {"src/b.py": "B = 3\n"})
    mirror = _mirror(tmp_path, repo)
    snapshots = Snapshots(tmp_path / "snapshots")
    one, two = snapshots.materialise(mirror, first), snapshots.materialise(mirror, second)
    for sha, snapshot in ((first, one), (second, two)):
        assert _snapshot_contents(snapshot) == _commit_contents(repo, sha)
    assert os.stat(one / "src/a.py").st_ino == os.stat(two / "src/a.py").st_ino, "unchanged: the same file"
    assert os.stat(one / "src/b.py").st_ino != os.stat(two / "src/b.py").st_ino
    assert (two / "src/b.py").read_text() == "B = 3\n" and (one / "src/b.py").read_text() == "B = 2\n"
    assert stat.S_IMODE(os.stat(two / "run.sh").st_mode) == 0o555
    assert stat.S_IMODE(os.stat(two / "src/a.py").st_mode) == 0o444
    assert stat.S_IMODE(os.stat(two / "src").st_mode) == 0o555
    assert (two / "link").is_symlink() and (two / "link").read_text() == "A = 1\n"
    assert (two / "lf.txt").read_bytes() == b"x\n", "no attribute conversions: the commit's own bytes"


def test_submodules_are_empty_directories_and_links_that_cannot_be_made_are_files(tmp_path, repo, monkeypatch):
    commit(repo, {"a.txt": "a\n"})
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},vendor/lib")
    git(repo, "commit", "-q", "-m", "submodule")
    sha = head(repo)
    mirror = _mirror(tmp_path, repo)
    real_link = os.link

    def full(src, dst, **kwargs):
        if str(src).endswith(".r"):
            raise OSError(errno.EMLINK, "Too many links")
        return real_link(src, dst, **kwargs)

    monkeypatch.setattr(os, "link", full)
    snapshot = Snapshots(tmp_path / "snapshots").materialise(mirror, sha)
    assert (snapshot / "vendor" / "lib").is_dir() and not any((snapshot / "vendor" / "lib").iterdir())
    assert (snapshot / "a.txt").read_text() == "a\n" and os.stat(snapshot / "a.txt").st_nlink == 1


def test_a_tree_git_would_not_check_out_is_a_clear_error(tmp_path, repo):
    commit(repo, {"a.txt": "a\n"})
    blob = (
        subprocess.run(
            ["git", "hash-object", "-w", "--stdin"], cwd=repo, input=b"[core]\n", capture_output=True, check=True
        )
        .stdout.decode()
        .strip()
    )
    tree = (
        subprocess.run(
            ["git", "mktree", "--missing"],
            cwd=repo,
            input=f"100644 blob {blob}\t.GIT\n".encode(),
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    sha = git(repo, "commit-tree", tree, "-m", "hostile").stdout.strip()
    git(repo, "update-ref", "refs/heads/main", sha)
    mirror = _mirror(tmp_path, repo)
    with pytest.raises(GitError, match=r"cannot write a snapshot of .*aliases Git metadata"):
        Snapshots(tmp_path / "snapshots").materialise(mirror, sha)
    assert not [p for p in (tmp_path / "snapshots").iterdir() if p.name != ".blobs"], "nothing half written"


def test_unused_blobs_are_collected_after_their_snapshots(tmp_path, repo):
    first = commit(repo, {"a.txt": "a\n", "b.txt": "b\n"})
    second = commit(repo, {"b.txt": "changed\n"})
    mirror = _mirror(tmp_path, repo)
    snapshots = Snapshots(tmp_path / "snapshots")
    snapshots.materialise(mirror, first)
    snapshots.materialise(mirror, second)
    blobs = tmp_path / "snapshots" / ".blobs"
    assert len(list(blobs.rglob("*.r"))) == 3
    assert snapshots.collect({first, second}, older_than=0) == [] and len(list(blobs.rglob("*.r"))) == 3
    old = time.time() - 7200
    os.utime(tmp_path / "snapshots" / f"{first}.used", (old, old))
    for blob in blobs.rglob("*.r"):
        os.utime(blob, (old, old))
    assert snapshots.collect({second}, older_than=3600) == [first]
    remaining = sorted(p.read_text() for p in blobs.rglob("*.r"))
    assert remaining == ["a\n", "changed\n"], "only the content no snapshot links to any more is gone"


def test_the_hook_refuses_a_push_it_cannot_have_checked(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-I", "-S", hookclient.__file__],
        input=f"{'0' * 40} {'1' * 40} refs/heads/main\n",
        capture_output=True,
        text=True,
        env={"STROM_HOOK_SOCKET": str(tmp_path / "nobody-listens")},
    )
    assert proc.returncode == 1
    assert proc.stdout.startswith("strom: the push could not be checked, so it is refused (")


def test_changed_files_of_a_tree_nested_deeper_than_python_recurses(tmp_path, repo):
    """Two commits of a file 1,500 directories deep (written with git fast-import: no filesystem holds the
    path), compared without recursion."""
    deep = "/".join(["d"] * 1500) + "/leaf.txt"
    stream = "".join(
        f"commit refs/heads/main\ncommitter A <a@example.com> {i} +0000\ndata 2\nc{i}\n"
        f"M 100644 inline {deep}\ndata 3\nv{i}\n\n"
        for i in range(2)  # the second commit follows the first on the branch
    )
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=stream.encode(), check=True)
    second = head(repo, "refs/heads/main")
    first = head(repo, "refs/heads/main^")
    mirror = _mirror(tmp_path, repo)
    assert mirror.changed_files(first, second) == [deep]
