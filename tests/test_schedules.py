"""Schedules in English: the grammar, what strangers may write into it, and where a schedule is shown."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.spec import load_texts
from runner.spec.cron import cron_problem
from runner.spec.schedules import ScheduleError, describe, to_cron
from webhooks.api.representations import trigger_json


@pytest.mark.parametrize(
    "text, cron, english",
    [
        ("every minute", "* * * * *", "Every minute"),
        ("every 15 minutes", "*/15 * * * *", "Every 15 minutes"),
        ("every hour", "0 * * * *", "Every hour"),
        ("every 6 hours", "0 */6 * * *", "Every 6 hours"),
        ("every day", "0 0 * * *", "At 00:00"),
        ("Every day at 04:00", "0 4 * * *", "At 04:00"),
        ("every weekday at 9am", "0 9 * * 1-5", "At 09:00, Monday through Friday"),
        ("every weekend at noon", "0 12 * * 0,6", "At 12:00, only on Sunday and Saturday"),
        ("every monday and thursday at 18:30", "30 18 * * 1,4", "At 18:30, only on Monday and Thursday"),
        ("every Mon, Wed, Fri at 4:30pm", "30 16 * * 1,3,5", "At 16:30, only on Monday, Wednesday, and Friday"),
        ("every sundays at 12am", "0 0 * * 0", "At 00:00, only on Sunday"),
        ("every month", "0 0 1 * *", "At 00:00, on day 1 of the month"),
        ("every month on the 2nd at 02:00", "0 2 2 * *", "At 02:00, on day 2 of the month"),
        ("every month on day 28 at midnight", "0 0 28 * *", "At 00:00, on day 28 of the month"),
    ],
)
def test_the_grammar(text, cron, english):
    assert to_cron(text) == cron and cron_problem(cron) is None
    assert describe(cron) == english


@pytest.mark.parametrize(
    "text, word, says",
    [
        ("every blursday at 4am", "blursday", "is not a day"),
        ("every day at 25:00", "25:00", "is not a time of day"),
        ("every day at 13pm", "13pm", "an am/pm hour is 1 to 12"),
        ("every day at 4", "4", "is not a time"),
        ("every day at", "at", "no time after 'at'"),
        ("every day at 4am and 5pm", "and", "expected one time"),
        ("every 0 minutes", "0", "needs N from 1 to 59"),
        ("every 24 hours", "24", "needs N from 1 to 23"),
        ("every 5 parsecs", "parsecs", "every N minutes or every N hours"),
        ("every hour at 10:00", "at", "takes no time"),
        ("every month on the 31st", "31st", "1 to 28"),
        ("every month in may", "in", "every month on the 1st"),
        ("daily", "daily", "starts with 'every'"),
        ("", "", "starts with 'every'"),
        ("every", "every", "what every?"),
    ],
)
def test_a_bad_schedule_names_the_word(text, word, says):
    with pytest.raises(ScheduleError) as caught:
        to_cron(text)
    assert caught.value.word == word and says in str(caught.value)


_WORDS = st.sampled_from(
    "every minute minutes hour hours day days weekday weekend month on the day at and , 1 5 15 23 59 60 0 "
    "1st 2nd 31st 04:00 4am 12pm 13pm 24:00 noon midnight monday mon sundays blursday -1 9999999999".split()
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.lists(_WORDS, max_size=12).map(" ".join), st.text(max_size=80)))
def test_anything_written_is_a_valid_cron_or_an_error_naming_a_word_of_it(text):
    try:
        cron = to_cron(text)
    except ScheduleError as exc:
        assert exc.word == "" or exc.word in text.lower().replace(",", " , ").split()
        assert str(exc)
        return
    assert cron_problem(cron) is None
    assert describe(cron)


def test_triggers_take_a_schedule_and_show_every_cron_in_english():
    texts = {
        ".strom/x.yaml": """
tasks:
  t: { flow: { s: { type: script, script: "true" } } }
triggers:
  morning: { type: scheduler, task: t, schedule: "every weekday at 9am", timezone: Europe/Copenhagen }
  nightly: { type: scheduler, task: t, cron: "30 2 * * *" }
"""
    }
    workspace = load_texts(texts).raise_for_errors()
    morning, nightly = (trigger_json(workspace.triggers[n], now=0) for n in ("morning", "nightly"))
    assert (morning["cron"], morning["schedule"], morning["written"]) == (
        "0 9 * * 1-5",
        "At 09:00, Monday through Friday",
        "every weekday at 9am",
    )
    assert (nightly["cron"], nightly["schedule"], nightly["written"]) == ("30 2 * * *", "At 02:30", None)
    assert morning["next_fire"] is not None


def test_schedule_errors_in_workflow_files_name_file_line_and_column():
    texts = {
        ".strom/x.yaml": """tasks:
  t: { flow: { s: { type: script, script: "true" } } }
triggers:
  a: { type: scheduler, task: t, schedule: "every blursday at 9am" }
  b: { type: scheduler, task: t, schedule: "every day", cron: "0 0 * * *" }
"""
    }
    problems = [p.format() for p in load_texts(texts).problems]
    assert any(
        p.startswith(".strom/x.yaml:4:44: error: trigger 'a': schedule 'every blursday at 9am': 'blursday' is not")
        for p in problems
    ), problems
    assert any("x.yaml:5:" in p and "a trigger has `cron` or `schedule`, not both" in p for p in problems), problems
