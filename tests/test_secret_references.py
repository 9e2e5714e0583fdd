"""Secret maps (`secret.db.user`), vals-style references through the `vals` filter, and SOPS-encrypted
secrets files: what each may read, and the errors that say why not."""

from __future__ import annotations

import os
import stat

import pytest
from conftest import load

from runner.errors import TemplateError
from runner.masking import Masker, secret_leaves
from runner.secrets import SecretsFileError, read_secrets_file, resolve_workspace_secrets
from runner.templating import VALS_FILES, Namespace, render


def test_a_secret_map_is_read_as_secret_db_user_and_every_leaf_is_masked():
    result = load(
        """
        secrets:
          db: { user: "{{ env.DB_USER }}", pass: "{{ env.DB_PASS }}", replica: { host: "{{ env.REPLICA }}" } }
          token: "{{ env.TOKEN }}"
        tasks:
          t: { flow: { s: { type: script, script: "echo {{ secret.db.user }}" } } }
        """
    )
    assert result.ok, [p.format() for p in result.problems]
    environ = {"DB_USER": "admin", "DB_PASS": "pa55-word-x", "REPLICA": "db-2.internal", "TOKEN": "t0k3n-value"}
    secrets, problems = resolve_workspace_secrets(result.workspace.secrets, {}, environ)
    assert problems == {}
    assert secrets["db"] == {"user": "admin", "pass": "pa55-word-x", "replica": {"host": "db-2.internal"}}
    context = {"secret": secrets}
    assert render("{{ secret.db.user }}@{{ secret.db.replica.host }}", context) == "admin@db-2.internal"
    masker = Masker(secret_leaves(secrets.values()))
    assert masker.mask("pass=pa55-word-x host=db-2.internal t=t0k3n-value") == "pass=*** host=*** t=***"


def test_a_secret_map_too_deep_or_a_list_is_an_error_at_its_place():
    result = load('secrets:\n  a: { b: { c: { d: { e: { f: "{{ env.X }}" } } } } }\n  l: [1, 2]\ntasks: {}\n')
    messages = sorted(p.message for p in result.errors)
    assert any("secret 'l' must be a string reference, or a mapping of them" in m for m in messages), messages
    assert any("secret 'a.b.c.d.e' must be" in m for m in messages), messages


def _vals(ref: str, env=None, files=()):
    return render("{{ ref | vals }}", {"ref": ref, "env": Namespace("env", env or {}), VALS_FILES: files})


def test_vals_reads_exposed_environment_and_allowed_files_only(tmp_path):
    assert _vals("plain text") == "plain text", "not a reference: as it is"
    assert _vals("ref+env://DB_PASS", {"DB_PASS": "s3cret"}) == "s3cret"
    with pytest.raises(TemplateError, match="'HOME' is not among the environment variables templates may read"):
        _vals("ref+env://HOME")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "db").write_text("from-a-file\n")
    (tmp_path / "elsewhere").write_text("server file\n")
    assert _vals(f"ref+file://{secrets}/db", files=(str(secrets),)) == "from-a-file"
    with pytest.raises(TemplateError, match="only under the server's `vals_files` directories"):
        _vals(f"ref+file://{tmp_path}/elsewhere", files=(str(secrets),))
    with pytest.raises(TemplateError, match=r"none are configured"):
        _vals(f"ref+file://{secrets}/db")
    with pytest.raises(TemplateError, match="only under"):
        _vals(f"ref+file://{secrets}/../elsewhere", files=(str(secrets),))


def _tool(folder, name: str, script: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_other_backends_go_to_the_vals_cli_and_say_so_when_it_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TemplateError, match="needs the `vals` command on the server, and it is not installed"):
        _vals("ref+vault://secret/db#/password")
    _tool(tmp_path, "vals", 'echo "$1"; echo "value-of-$2"\n')
    assert _vals("ref+awssecrets://prod/db") == "get\nvalue-of-ref+awssecrets://prod/db"
    _tool(tmp_path, "vals", 'echo "no such secret" >&2; exit 1\n')
    with pytest.raises(TemplateError, match="`vals` failed: no such secret"):
        _vals("ref+vault://secret/db#/password")


def test_sops_files_are_decrypted_with_the_sops_cli(tmp_path, monkeypatch):
    encrypted = tmp_path / "prod.sops.yaml"
    encrypted.write_text("db_pass: ENC[AES256_GCM,data:xx,type:str]\nsops:\n  version: 3.8.1\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(SecretsFileError, match="needs the `sops` command"):
        read_secrets_file(encrypted)
    (tmp_path / "bin").mkdir()
    _tool(
        tmp_path / "bin",
        "sops",
        '[ "$1" = --decrypt ] && [ "$2" = "' + str(encrypted) + '" ] && echo "db_pass: hunter2"\n',
    )
    assert read_secrets_file(encrypted) == {"db_pass": "hunter2"}
    plain = tmp_path / "plain.yaml"
    plain.write_text("a: 1\n")
    assert read_secrets_file(plain) == {"a": "1"}, "other files are read as they are"
    assert os.environ["PATH"] == str(tmp_path / "bin")


def test_the_server_names_the_directories_ref_file_may_read(tmp_path):
    from runner.config import load_config

    config = load_config(environ={"STROM_VALS_FILES": '["secrets", "/run/secrets"]'}, base_dir=tmp_path)
    assert config.vals_files == (str(tmp_path / "secrets"), "/run/secrets")
    assert load_config(environ={}, base_dir=tmp_path).vals_files == ()
