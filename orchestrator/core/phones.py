"""French phone numbers (mainland and overseas) to E.164 with `phonenumbers`.

Pure values (no I/O): the one implementation shared by the partner intake (triggers/), the message templates, the
landing page and the SMS and call channels. It imports nothing from the project, so any layer may import it.
"""

from __future__ import annotations

import phonenumbers

# Overseas départements and collectivités share French national numbering habits ("0692 ..."), but
# `phonenumbers` needs their own region to read a national number; +33 would make them invalid.
OVERSEAS_REGIONS = ("RE", "GP", "MQ", "GF", "YT", "PM", "BL", "MF", "NC", "PF", "WF")
MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


class InvalidNumber(ValueError):
    """A number that cannot be used; `reason` is plain French for the operator.

    `unreadable` is True when the text is not a phone number at all (letters, too few digits), so a
    caller can say "illisible" rather than "invalide".
    """

    def __init__(self, reason: str, *, unreadable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreadable = unreadable


def _parse_valid(raw: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def _unreadable(raw: str, region: str) -> bool:
    try:
        phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return True
    return False


def normalise_number(raw: str, region: str = "FR") -> str:
    """The E.164 form of any valid phone number ("06 12 34 56 78" -> "+33612345678"), else InvalidNumber."""
    cleaned = (raw or "").strip()
    if not cleaned:
        raise InvalidNumber("numéro absent", unreadable=True)
    number = _parse_valid(cleaned, region)
    if number is None and region == "FR" and not cleaned.startswith("+"):
        for overseas in OVERSEAS_REGIONS:
            number = _parse_valid(cleaned, overseas)
            if number is not None:
                break
    if number is None:
        # Parsed again only on this rare path, to keep the common one to a single parse.
        raise InvalidNumber(f"numéro invalide : « {cleaned} »", unreadable=_unreadable(cleaned, region))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_french_number(raw: str) -> str:
    """The E.164 form of a French number (mainland or overseas), else InvalidNumber.

    For the contact points of a French business (partner events, the landing page's callback form): a valid
    foreign number ("+44 20 7946 0958") is refused, with the reason in plain French.
    """
    e164 = normalise_number(raw)
    region = phonenumbers.region_code_for_number(phonenumbers.parse(e164))
    if region not in ("FR", *OVERSEAS_REGIONS):
        raise InvalidNumber(
            f"numéro étranger : « {(raw or '').strip()} » ; il faut un numéro français (métropole ou outre-mer)"
        )
    return e164


def normalise_mobile(raw: str, region: str = "FR") -> str:
    """The E.164 form of a mobile number, else InvalidNumber (absent, unreadable, or a landline)."""
    e164 = normalise_number(raw, region)
    if phonenumbers.number_type(phonenumbers.parse(e164)) not in MOBILE_TYPES:
        raise InvalidNumber(f"ce numéro n'est pas un mobile, il ne peut pas recevoir de SMS : {e164}")
    return e164
