"""One phone normalisation for the partner intake and the SMS channel."""

from __future__ import annotations

import phonenumbers
import pytest

from integrations import sms_http
from orchestrator.core import phones
from triggers.partner_api import ContactIn, check_phone

FRENCH_REGIONS = ("FR", "RE", "GP", "MQ", "GF", "YT", "PM", "BL", "MF", "NC", "PF", "WF")


def _former_check_phone(value: str) -> str:
    """triggers.partner_api.check_phone before it called the shared phone module (kept to prove parity)."""
    for region in FRENCH_REGIONS:
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException as exc:
            raise ValueError(f"numéro de téléphone illisible: {value}") from exc
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if str(value).strip().startswith("+"):
            break
    raise ValueError(f"numéro de téléphone invalide: {value}")


SAMPLES = [
    "06 12 34 56 78", "+33 6 12 34 56 78", "0033612345678", "01 23 45 67 89", "0692 12 34 56",
    "0690 12 34 56", "0594 30 00 00", "+262 692 12 34 56",
    "06 12", "+33 6 12", "bonjour", "1", "07 00 00 00 00", "   ", "+", "06-12-34-56-78",
]
# Valid foreign numbers were accepted before issue 14; a French business's contact must now be French.
FOREIGN = ["+1 202 555 0143", "+44 20 7946 0958"]


@pytest.mark.parametrize("raw", SAMPLES)
def test_check_phone_answers_as_before(raw: str) -> None:
    try:
        expected = _former_check_phone(raw)
    except ValueError as exc:
        with pytest.raises(ValueError) as err:
            check_phone(raw)
        assert str(err.value) == str(exc)
    else:
        assert check_phone(raw) == expected


@pytest.mark.parametrize("raw", FOREIGN)
def test_a_foreign_number_is_refused_with_a_french_reason(raw: str) -> None:
    with pytest.raises(ValueError, match="numéro étranger .* il faut un numéro français"):
        check_phone(raw)
    assert phones.normalise_number(raw).startswith("+")  # still readable where any number will do (SMS replies)


def test_the_sms_channel_and_the_intake_share_one_implementation() -> None:
    assert sms_http.normalise_number is phones.normalise_number
    assert sms_http.InvalidNumber is phones.InvalidNumber
    assert issubclass(phones.InvalidNumber, ValueError)


def test_a_bad_partner_phone_is_a_plain_french_validation_error() -> None:
    with pytest.raises(ValueError, match="numéro de téléphone invalide"):
        ContactIn(phone="06 12")
    assert ContactIn(phone="0692 12 34 56").phone == "+262692123456"
