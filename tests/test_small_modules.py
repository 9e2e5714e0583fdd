"""Durations, masking, the OUTPUT protocol, secrets files."""

from __future__ import annotations

import re

import pytest

from runner.durations import DurationError, format_duration, parse_duration
from runner.masking import Masker
from runner.outputs import OutputCollector
from runner.secrets import SecretsFileError, read_secrets_file, resolve_workspace_secrets, secrets_from_env


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("15s", 15),
        ("5m", 300),
        ("1h30m", 5400),
        ("24h", 86400),
        ("7d", 604800),
        (300, 300),
        ("300", 300),
        ("1h 30m", 5400),
        ("1.5h", 5400),
        ("500ms", 0.5),
        (0, 0),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["15", "fifteen", "1x", "-5", -5, "", "h", True, [1], "1h-30m"])
def test_bad_durations(text):
    if text == "15":
        assert parse_duration(text) == 15
        return
    with pytest.raises(DurationError):
        parse_duration(text)


@pytest.mark.parametrize(
    "seconds, text",
    [(0.25, "250ms"), (4.2, "4.2s"), (42, "42s"), (272, "4m32s"), (3900, "1h05m"), (180000, "2d2h"), (None, "-")],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_masking_hides_values_their_lines_and_json_forms():
    masker = Masker(["s3cr3t", "line one\nline two\nx", 'quo"te', ""])
    assert masker.mask("token=s3cr3t!") == "token=***!"
    assert masker.mask("got: line two") == "got: ***"
    assert masker.mask("x marks") == "x marks", "lines shorter than 3 characters are not hidden"
    assert masker.mask('{"v": "quo\\"te"}') == '{"v": "***"}'
    assert masker.mask_value({"a": ["s3cr3t", 1]}) == {"a": ["***", 1]}
    assert not Masker([]) and Masker([]).mask("anything") == "anything"


def test_output_protocol_takes_the_last_output_line():
    collector = OutputCollector()
    for line in ["hello", 'OUTPUT: {"a": 1}', "  OUTPUT: [1, 2]", "bye"]:
        collector.feed(line)
    assert collector.result() == ([1, 2], None)
    bad = OutputCollector()
    bad.feed("OUTPUT: {nope}")
    output, problem = bad.result()
    assert output is None and problem.startswith("the last OUTPUT line is not valid JSON")
    assert OutputCollector().result() == (None, None)


@pytest.mark.parametrize("text", ['{"API_KEY": "k", "N": 1}', "API_KEY: k\nN: 1\n", "API_KEY=k\nexport N='1'\n# c\n"])
def test_secrets_files(tmp_path, text):
    path = tmp_path / "secrets"
    path.write_text(text)
    assert read_secrets_file(path) == {"API_KEY": "k", "N": "1"}


def test_bad_secrets_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(SecretsFileError, match="must map names to values"):
        read_secrets_file(path)
    with pytest.raises(SecretsFileError, match="cannot read"):
        read_secrets_file(tmp_path / "missing")


def test_secrets_from_env_and_workspace_references():
    provided = secrets_from_env({"STROM_SECRET_API_KEY": "k", "STROM_SECRET_": "x", "OTHER": "y"})
    assert provided == {"API_KEY": "k"}
    secrets, problems = resolve_workspace_secrets(
        {"DB": "{{ env.DB_PASSWORD }}", "API_KEY": "{{ env.NOPE }}", "MISSING": "{{ env.NOPE }}"},
        provided,
        environ={"DB_PASSWORD": "pw"},
    )
    assert secrets == {"API_KEY": "k", "DB": "pw"}
    assert list(problems) == ["MISSING"] and "env has no field 'NOPE'" in problems["MISSING"]


def test_an_output_number_too_long_to_convert_is_reported_not_raised():
    collector = OutputCollector()
    collector.feed("OUTPUT: " + "1" * 5000)
    output, problem = collector.result()
    assert output is None and problem.startswith("the last OUTPUT line is not valid JSON (")


@pytest.mark.parametrize(
    "tokens, message",
    [
        ('[{"name": "a"}]', "tokens[0]: missing required field 'role'"),
        ("[1]", "tokens[0] must be a mapping"),
        ('[{"name": "a", "role": "nope", "token": "x"}]', "tokens[0]: 'role' must be one of viewer, operator"),
    ],
)
def test_settings_from_environment_json_are_checked_like_the_file(tmp_path, tokens, message):
    from runner.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(environ={"STROM_TOKENS": tokens}, base_dir=tmp_path)
