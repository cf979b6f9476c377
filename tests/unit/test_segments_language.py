"""The segment language: validation names what is wrong; the compiler builds SQL without running it."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from orchestrator.core.campaign_spec import CampaignSpec
from segments.language import normalize_naf_prefix, parse_age, parse_segment, tranche_codes
from store.segment_sql import compile_segment
from tests.utils.factories import campaign_spec

TODAY = dt.date(2026, 12, 1)


def test_a_full_segment_is_accepted():
    seg = parse_segment({
        "families": ["batiment"], "naf": ["4322", "56.10A"], "territory": {"epci": ["243500139"]},
        "headcount": ["0", "1-2", "unknown"], "stages": ["creation"],
        "triggers": {"types": ["creation"], "within": "90d"}, "age": {"min": "3m", "max": "3y"},
        "reachable": ["email", "phone"], "converted": False, "digital_maturity": {"max": 2, "unknown": True},
        "exclude": {"families": ["sante"]},
    })
    assert seg.naf == ["43.22", "56.10A"]
    sql = str(compile_segment(seg, today=TODAY).compile(compile_kwargs={"literal_binds": True}))
    for needle in ("metier_family IN ('batiment')", "naf_code LIKE '43.22%'", "epci_code IN ('243500139')",
                   "tranche_effectifs IN", "lifecycle_stage IN ('creation')", "EXISTS", "creation_date",
                   "digital_maturity", "NOT"):
        assert needle in sql, needle


@pytest.mark.parametrize(("data", "named"), [
    ({"famillies": ["batiment"]}, "famillies"),
    ({"families": ["plomberie"]}, "plomberie"),
    ({"naf": ["99.99Z"]}, "99.99Z"),
    ({"territory": {"departements": ["35", "000"]}}, "departement:000"),
    ({"territory": {"cantons": ["3501"]}}, "cantons"),
    ({"headcount": ["1-3"]}, "1-3"),
    ({"stages": ["adolescence"]}, "adolescence"),
    ({"triggers": {"types": ["birthday"]}}, "birthday"),
    ({"reachable": ["fax"]}, "fax"),
    ({"age": {"min": "trois ans"}}, "trois ans"),
    ({"digital_maturity": {"max": 9}}, "digital_maturity"),
])
def test_unknown_fields_and_codes_are_named(data, named):
    with pytest.raises(ValidationError) as info:
        parse_segment(data)
    assert named in str(info.value)


def test_naf_prefixes_at_every_level():
    assert normalize_naf_prefix("43") == "43"
    assert normalize_naf_prefix("43.2") == "43.2"
    assert normalize_naf_prefix("4322a") == "43.22A"
    assert normalize_naf_prefix("00") is None
    assert normalize_naf_prefix("abc") is None


def test_ages_read_days_months_years():
    assert parse_age("90d") == dt.timedelta(days=90)
    assert parse_age("6m") == dt.timedelta(days=180)
    assert parse_age("2a") == dt.timedelta(days=730)


def test_campaign_segment_keeps_families_and_territory_and_stays_inside_owner():
    spec = CampaignSpec.model_validate(campaign_spec(segment={
        "families": ["batiment"], "territory": {"epci": ["243500139"]}, "reachable": ["email"]}))
    assert spec.effective_territory().epci == ["243500139"]
    with pytest.raises(ValidationError, match="sort du territoire"):
        CampaignSpec.model_validate(campaign_spec(segment={"territory": {"epci": ["242900314"]}}))  # Brest


def test_campaign_needs_triggers_or_a_schedule():
    with pytest.raises(ValidationError, match="déclencheurs"):
        CampaignSpec.model_validate(campaign_spec(triggers=[]))
    spec = CampaignSpec.model_validate(campaign_spec(
        triggers=[], schedule={"start": "2027-01-05T09:00:00", "rrule": "RRULE:FREQ=MONTHLY;BYDAY=1TU"}))
    assert spec.schedule.rrule.endswith("1TU")


def test_step_language_condition_fallback_and_night_windows():
    spec = CampaignSpec.model_validate(campaign_spec(steps=[
        {"channel": "email", "delay": "2d", "template": "creation"},
        {"channel": "sms", "delay": "5d", "template": "creation", "if": "no_click"},
    ]))
    assert spec.steps[1].condition == "no_click"
    assert spec.steps[0].channels() == ["email", "sms", "letter", "call"]
    assert spec.steps[1].channels() == ["sms", "letter", "call"]
    # The stored form (model_dump) reads back the same.
    assert CampaignSpec.model_validate(spec.model_dump(mode="json")) == spec
    with pytest.raises(ValidationError, match="condition inconnue"):
        CampaignSpec.model_validate(campaign_spec(steps=[
            {"template": "creation"}, {"template": "creation", "if": "opened"}]))
    with pytest.raises(ValidationError, match="nuit"):
        CampaignSpec.model_validate(campaign_spec(timing={"windows": {"batiment": [["05:00", "08:00"]]}}))


def test_shipped_samples_are_valid():
    from pathlib import Path

    from orchestrator.core.campaign_spec import load_spec
    from store.journeys import parse_ambassadors, parse_offers

    samples = Path(__file__).resolve().parents[2] / "orchestrator" / "samples"
    journey = load_spec(samples / "parcours-batiment-35.yaml")
    assert len(journey.steps) == 3 and journey.holdout == 10
    scheduled = load_spec(samples / "atelier-trimestriel-35.yaml")
    assert scheduled.schedule.rrule and not scheduled.triggers
    ambassadors, rejects = parse_ambassadors((samples / "ambassadeurs-35.csv").read_text(encoding="utf-8"))
    assert len(ambassadors) == 3 and not rejects
    offers, rejects = parse_offers((samples / "offres-35.csv").read_text(encoding="utf-8"))
    assert len(offers) == 3 and not rejects


def test_headcount_bands_name_sirene_tranches():
    # "0" is both Sirene codes for no employee; a tranche code stands for itself; "unknown" asks for no code at all
    assert tranche_codes(["1-2", "0", "unknown", "21"]) == (["00", "01", "21", "NN"], True)
    assert tranche_codes(["50+"])[1] is False
