"""The campaign form's recurrence picker (issue 19, point 4): plain-French choices write the RRULE that
python-dateutil expands to the dates a person expects, and a rule reads back as the same French words."""

from __future__ import annotations

import datetime as dt

import pytest
from dateutil.rrule import rrulestr

from orchestrator.core.recurrence_fr import Recurrence, describe, form_fields, from_form, from_rule, to_french, to_rule
from orchestrator.core.schedule import check_rule

START = dt.datetime(2027, 1, 1, 9, 0)  # a Friday


def dates(rule: str, count: int = 4) -> list[dt.date]:
    return [d.date() for d in rrulestr(rule, dtstart=START)[:count]]


@pytest.mark.parametrize("choice,words,rule,expected", [
    (Recurrence("mois", weekday=1, rank=1), "le premier mardi de chaque mois", "RRULE:FREQ=MONTHLY;BYDAY=1TU",
     [dt.date(2027, 1, 5), dt.date(2027, 2, 2), dt.date(2027, 3, 2), dt.date(2027, 4, 6)]),
    (Recurrence("semaine", weekday=0), "chaque lundi", "RRULE:FREQ=WEEKLY;BYDAY=MO",
     [dt.date(2027, 1, 4), dt.date(2027, 1, 11), dt.date(2027, 1, 18), dt.date(2027, 1, 25)]),
    (Recurrence("mois", monthday=15), "le 15 de chaque mois", "RRULE:FREQ=MONTHLY;BYMONTHDAY=15",
     [dt.date(2027, 1, 15), dt.date(2027, 2, 15), dt.date(2027, 3, 15), dt.date(2027, 4, 15)]),
    (Recurrence("trimestre"), "chaque trimestre", "RRULE:FREQ=MONTHLY;INTERVAL=3",
     [dt.date(2027, 1, 1), dt.date(2027, 4, 1), dt.date(2027, 7, 1), dt.date(2027, 10, 1)]),
    (Recurrence("trimestre", weekday=1, rank=1), "le premier mardi de chaque trimestre",
     "RRULE:FREQ=MONTHLY;INTERVAL=3;BYDAY=1TU",
     [dt.date(2027, 1, 5), dt.date(2027, 4, 6), dt.date(2027, 7, 6), dt.date(2027, 10, 5)]),
    (Recurrence("mois", weekday=4, rank=-1), "le dernier vendredi de chaque mois", "RRULE:FREQ=MONTHLY;BYDAY=-1FR",
     [dt.date(2027, 1, 29), dt.date(2027, 2, 26), dt.date(2027, 3, 26), dt.date(2027, 4, 30)]),
    (Recurrence("trimestre", monthday=1), "le 1er de chaque trimestre", "RRULE:FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=1",
     [dt.date(2027, 1, 1), dt.date(2027, 4, 1), dt.date(2027, 7, 1), dt.date(2027, 10, 1)]),
])
def test_choice_to_rule_to_dates_and_back(choice, words, rule, expected):
    assert to_french(choice) == words
    assert to_rule(choice) == rule
    check_rule(rule)  # the campaign spec accepts it
    assert dates(rule) == expected
    assert from_rule(rule) == choice and describe(rule) == words


def test_rules_written_by_hand_read_back_when_the_picker_can_say_them():
    assert from_rule("FREQ=MONTHLY;BYDAY=+1TU") == Recurrence("mois", weekday=1, rank=1)
    assert from_rule("RRULE:BYDAY=1TU;INTERVAL=3;FREQ=MONTHLY") == Recurrence("trimestre", weekday=1, rank=1)
    assert describe("RRULE:FREQ=MONTHLY;INTERVAL=3;BYDAY=1TU") == "le premier mardi de chaque trimestre"


@pytest.mark.parametrize("rule", [
    "RRULE:FREQ=MONTHLY;BYDAY=1TU;COUNT=4",  # a count: kept as written
    "RRULE:FREQ=MONTHLY;INTERVAL=2;BYDAY=1TU",  # every two months
    "RRULE:FREQ=WEEKLY;BYDAY=MO,TH",  # two days a week
    "RRULE:FREQ=MONTHLY;BYMONTHDAY=31",  # skips most months
    "RRULE:FREQ=YEARLY",
    "pas une règle",
])
def test_rules_the_picker_cannot_say_are_kept_and_still_described_in_french(rule):
    assert from_rule(rule) is None
    assert describe(rule) == "une récurrence particulière, écrite dans le fichier de la campagne"
    assert describe(None) == "une seule fois"


def test_form_fields_round_trip_and_errors_in_french():
    for choice in (Recurrence("mois", weekday=1, rank=1), Recurrence("semaine", weekday=6),
                   Recurrence("trimestre", monthday=15), Recurrence("trimestre"), None):
        fields = form_fields(choice)
        assert from_form(fields["rec_every"], fields["rec_day_kind"], fields["rec_rank"], fields["rec_weekday"],
                         fields["rec_monthday"]) == choice
    with pytest.raises(ValueError, match="jour du mois"):
        from_form("mois", "date", "1", "1", "")
    with pytest.raises(ValueError, match="de 1 à 28"):
        from_form("mois", "date", "1", "1", "31")
    with pytest.raises(ValueError, match="rythme inconnu"):
        from_form("an", "debut", "1", "1", "1")
