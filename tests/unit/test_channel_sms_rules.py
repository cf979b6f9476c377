"""Pure SMS rules: number normalisation, STOP detection, inbound callback parsing."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from integrations.sms_http import InboundError, is_stop, parse_delivery, parse_inbound
from orchestrator.core.phones import InvalidNumber, normalise_mobile, normalise_number

PARIS = ZoneInfo("Europe/Paris")  # the deployment's zone


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("06 12 34 56 78", "+33612345678"),
        ("06.12.34.56.78", "+33612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("0033612345678", "+33612345678"),
        ("07 81 23 45 67", "+33781234567"),
        ("0692 12 34 56", "+262692123456"),  # La Réunion written the French way
        ("0690 12 34 56", "+590690123456"),  # Guadeloupe
        ("+262 692 12 34 56", "+262692123456"),
    ],
)
def test_mobile_numbers_are_normalised_to_e164(raw: str, e164: str) -> None:
    assert normalise_mobile(raw) == e164


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("", "absent"),
        ("   ", "absent"),
        ("06 12", "invalide"),
        ("bonjour", "invalide"),
        ("07 00 00 00 00", "invalide"),
        ("01 23 45 67 89", "pas un mobile"),
        ("04 72 00 00 00", "pas un mobile"),
    ],
)
def test_unusable_numbers_give_a_plain_reason(raw: str, words: str) -> None:
    with pytest.raises(InvalidNumber) as err:
        normalise_mobile(raw)
    assert words in err.value.reason


def test_a_landline_is_a_valid_number_but_not_a_mobile() -> None:
    assert normalise_number("01 23 45 67 89") == "+33123456789"


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "stop",
        "Stop.",
        " Stop ! ",
        "STOP SMS",
        "stop au 36111",
        "arret",
        "Arrêt",
        "ARRÊT",
        "arrêtez",
        "désinscription",
        "Desinscription svp",
        "Désabonnement",
        "merci de me désinscrire",
        "Je ne veux plus recevoir vos messages",
        "plus de SMS merci",
        "unsubscribe",
    ],
)
def test_stop_replies_are_recognised(text: str) -> None:
    assert is_stop(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Oui, je suis intéressé",
        "Rappelez-moi demain matin",
        "C'est quoi le prix ?",
        "J'ai dû stopper le chantier mais je veux bien en parler avec votre ambassadeur demain",
        "Bonjour, j'ai besoin d'aide pour ma facturation",
    ],
)
def test_ordinary_replies_are_not_opt_outs(text: str) -> None:
    assert not is_stop(text)


def test_generic_callback_is_parsed() -> None:
    replies = parse_inbound(
        {
            "from": "06 12 34 56 78",
            "text": "Stop",
            "reference": "<m1@declic>",
            "received_at": "2026-11-27T09:30:00Z",
        },
        zone=PARIS,
    )
    assert len(replies) == 1
    reply = replies[0]
    assert reply.number == "+33612345678"
    assert reply.is_stop
    assert reply.reference == "<m1@declic>"
    assert reply.received_at == dt.datetime(2026, 11, 27, 9, 30, tzinfo=dt.UTC)


def test_generic_list_and_replies_wrapper_are_parsed() -> None:
    entries = [{"from": "+33612345678", "text": "oui"}, {"from": "+33781234567", "text": "STOP"}]
    for payload in (entries, {"replies": entries}):
        replies = parse_inbound(payload, zone=PARIS)
        assert [r.is_stop for r in replies] == [False, True]


def test_octopush_inbound_reply_and_stop_callbacks_are_parsed() -> None:
    reply = parse_inbound(
        b'{"message_id": "sms_5fa275dbf21dc", "number": "+33600000001", "text": "Oui merci",'
        b' "sim_card_number": "12345", "reception_date": "2026-11-04 11:11:45"}',
        zone=PARIS,
    )[0]
    assert reply.reference == "sms_5fa275dbf21dc"
    assert not reply.is_stop
    assert reply.received_at is not None and reply.received_at.utcoffset() == dt.timedelta(hours=1)

    # A stop callback is an opt-out whatever its text says: Octopush already recognised it.
    stop = parse_inbound(
        {"message_id": "sms_1", "number": "+33600000001", "text": "non", "stop_date": "2026-11-04 11:11:45"},
        zone=PARIS,
    )[0]
    assert stop.is_stop


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ("not json", "JSON"),
        (42, "inattendu"),
        ([{"text": "STOP"}], "numéro de l'expéditeur absent"),
        ([{"from": "+33612345678"}, "x"], "réponse n°2"),
        ({"from": "123", "text": "STOP"}, "numéro invalide"),
        ({"from": "+33612345678", "text": "STOP", "received_at": "hier"}, "date illisible"),
    ],
)
def test_unreadable_callbacks_say_which_entry_and_why(payload: object, words: str) -> None:
    with pytest.raises(InboundError) as err:
        parse_inbound(payload, zone=PARIS)
    assert words in str(err.value)


def test_octopush_delivery_receipts_are_read() -> None:
    payload = [
        {
            "channel": "sms",
            "message_id": "sms_1",
            "number": "+33600112233",
            "status": "DELIVERED",
            "unit_price": 0.05,
            "delivery_date": "2026-11-27 11:46:06",
            "meta_data": {},
        },
        {
            "message_id": "sms_2",
            "number": "+33600112234",
            "status": "BAD_DESTINATION",
            "delivery_date": "2026-11-27 11:47:00",
        },
        {"message_id": "sms_3", "number": "+33600112235", "status": "BLACKLISTED_NUMBER"},
        {"message_id": "sms_4", "number": "+33600112236", "status": "ACK"},
    ]
    receipts = parse_delivery(payload, zone=PARIS)
    assert [(r.reference, r.state) for r in receipts] == [
        ("sms_1", "delivered"),
        ("sms_2", "invalid"),
        ("sms_3", "opted_out"),
        ("sms_4", "pending"),
    ]
    assert receipts[0].at is not None and receipts[0].at.hour == 11 and receipts[0].number == "+33600112233"


def test_generic_delivery_receipts_are_read_and_unknown_statuses_refused() -> None:
    [receipt] = parse_delivery(
        {
            "receipts": [
                {
                    "reference": "<m1@declic>",
                    "status": "Delivered",
                    "to": "06 12 34 56 78",
                    "at": "2026-11-27T10:00:00+01:00",
                }
            ]
        },
        zone=PARIS,
    )
    assert (receipt.reference, receipt.state, receipt.number) == ("<m1@declic>", "delivered", "+33612345678")
    with pytest.raises(InboundError, match="statut inconnu"):
        parse_delivery({"reference": "x", "status": "teleported"}, zone=PARIS)
    with pytest.raises(InboundError, match="référence"):
        parse_delivery({"status": "delivered"}, zone=PARIS)
