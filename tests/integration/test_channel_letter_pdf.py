"""Letter channel: real PDF files written to disk and read back with pypdf."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import pytest
from pypdf import PdfReader

from integrations.base import OutgoingMessage, factory_for
from integrations.letter_pdf import WINDOW, LetterChannel
from orchestrator.core.outcomes import Outcome

DAY = dt.date(2026, 11, 27)
BODY = (
    "Bonjour Madame Martin,\n"
    "\n"
    "Vous êtes boulangère à Rennes. Un boulanger de votre quartier, Paul, a commencé à prendre les "
    "commandes de gâteaux par téléphone et par un petit site. Il gagne une heure par semaine.\n"
    "Le cœur de l'offre : un rendez-vous d'une heure dans votre boutique, gratuit. Le site coûte ensuite "
    "9 € par mois.\n"
    "Si vous ne voulez plus recevoir nos courriers, dites-le au 02 99 00 00 00 ou sur declic.example/u.\n"
    "\n"
    "Bien à vous,\n"
    "La Ville de Rennes"
)


def letter(message_id: int, **meta: object) -> OutgoingMessage:
    base: dict[str, object] = {
        "siret": f"1234567890{message_id:04d}",
        "address": {
            "name": f"Boulangerie Martin {message_id}",
            "street": "12, rue de l'Église",
            "postcode": "35000",
            "city": "Rennes",
        },
    }
    base.update(meta)
    return OutgoingMessage(
        message_id=message_id,
        channel="letter",
        recipient="",
        subject="Gagner du temps sur les commandes de gâteaux",
        body=BODY,
        meta=base,
    )


@pytest.fixture
def channel(tmp_path: Path) -> LetterChannel:
    return LetterChannel(
        letter_dir=tmp_path,
        sender_name="Ville de Rennes · Déclic",
        sender_address="Hôtel de Ville | Place de la Mairie | 35000 Rennes",
        sender_city="Rennes",
        today=lambda: DAY,
    )


def text_of(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def test_the_channel_registers_itself_by_name() -> None:
    assert factory_for("letter") == LetterChannel.from_settings


def test_a_batch_writes_one_pdf_per_business_a_merged_pdf_and_a_manifest(channel: LetterChannel) -> None:
    long_body = "\n".join([BODY] * 6)  # forces a second page
    batch = [
        letter(1),
        OutgoingMessage(
            message_id=2,
            channel="letter",
            recipient="Fleurs de Lys\n3 place du Marché\n07200 Aubenas",
            subject="Vos bouquets sur internet",
            body=long_body,
            meta={"siret": "98765432100017"},
        ),
        letter(3),
    ]
    results = channel.send(batch)
    assert [r.outcome for r in results] == [Outcome.SENT] * 3
    folder = channel.last_batch_dir
    assert folder is not None and folder.parent == channel.root

    # Per-business files, read back.
    first = folder / "letters" / "1-12345678900001.pdf"
    assert results[0].provider_id == f"{folder.name}/letters/1-12345678900001.pdf"
    assert len(PdfReader(first).pages) == 1
    text = text_of(first)
    for expected in (
        "Boulangerie Martin 1",
        "12 RUE DE L EGLISE",
        "35000 RENNES",
        "27 novembre 2026",
        "Objet : Gagner du temps",
        "cœur",
        "9 €",
        "Ville de Rennes",
        "Réf. D-1",
    ):
        assert expected in text, expected

    second = folder / "letters" / "2-98765432100017.pdf"
    assert len(PdfReader(second).pages) >= 2
    assert "3 PLACE DU MARCHE" in text_of(second) and "07200 AUBENAS" in text_of(second)
    assert "Réf. D-2 · page 2" in text_of(second)
    assert "(2 pages)" in results[1].detail or "pages)" in results[1].detail

    # The merged PDF holds every page in manifest order.
    merged = PdfReader(folder / "merged.pdf")
    with open(folder / "manifest.csv", encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    assert [row["message_id"] for row in rows] == ["1", "2", "3"]
    assert len(merged.pages) == sum(int(row["pages"]) for row in rows)
    assert "Boulangerie Martin 3" in merged.pages[-1].extract_text()

    row = rows[0]
    assert list(row) == [
        "message_id",
        "siret",
        "name",
        "line1",
        "line2",
        "line3",
        "line4",
        "line5",
        "line6",
        "pages",
        "file",
    ]
    assert row["siret"] == "12345678900001"
    assert [row[f"line{i}"] for i in range(1, 7)] == [
        "Boulangerie Martin 1",
        "12 RUE DE L EGLISE",
        "35000 RENNES",
        "",
        "",
        "",
    ]
    assert row["file"] == "letters/1-12345678900001.pdf"
    assert (folder / row["file"]).exists()


def test_bad_addresses_are_permanent_and_left_out_of_the_batch(channel: LetterChannel) -> None:
    too_long = letter(
        2, address={"name": "X", "street": "1 rue " + "Y" * 50, "postcode": "35000", "city": "Rennes"}
    )
    no_postcode = OutgoingMessage(message_id=3, channel="letter", recipient="Nom\nRennes", body="Bonjour")
    empty = OutgoingMessage(message_id=4, channel="letter", recipient="Nom\n35000 Rennes", body="  ")
    results = channel.send([letter(1), too_long, no_postcode, empty])
    assert [r.outcome for r in results] == [
        Outcome.SENT,
        Outcome.PERMANENT,
        Outcome.PERMANENT,
        Outcome.PERMANENT,
    ]
    assert "ligne 4" in results[1].detail and "trop longue" in results[1].detail
    assert "code postal" in results[2].detail
    assert "sans texte" in results[3].detail
    with open(channel.last_batch_dir / "manifest.csv", encoding="utf-8-sig") as handle:
        assert len(handle.read().strip().splitlines()) == 2  # header + the one good letter


def test_sending_the_same_batch_again_rewrites_the_same_folder(channel: LetterChannel) -> None:
    channel.send([letter(1), letter(2)])
    first = channel.last_batch_dir
    channel.send([letter(1), letter(2)])
    assert channel.last_batch_dir == first
    assert sorted(p.name for p in channel.root.iterdir()) == [first.name]  # no partial folder left


def test_a_disk_failure_is_transient_for_the_whole_batch(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the letter folder should be")
    channel = LetterChannel(letter_dir=blocker, today=lambda: DAY)
    results = channel.send([letter(1), letter(2)])
    assert [r.outcome for r in results] == [Outcome.TRANSIENT, Outcome.TRANSIENT]
    assert "écriture du lot impossible" in results[0].detail


def test_the_sender_can_come_with_the_message(channel: LetterChannel) -> None:
    sender = {
        "name": "CMA Bretagne",
        "address": "2 cours des Alliés | 35000 Rennes",
        "city": "Rennes",
        "phone": "02 99 00 00 00",
    }
    channel.send([letter(1, sender=sender)])
    text = text_of(channel.last_batch_dir / "letters" / "1-12345678900001.pdf")
    assert "CMA Bretagne" in text and "2 cours des Alliés" in text and "02 99 00 00 00" in text


def test_a_lost_lease_takes_the_letter_out_of_the_batch(channel: LetterChannel) -> None:
    results = channel.send([letter(1), letter(2), letter(3)], on_handoff=lambda message_id: message_id != 2)
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.ABANDONED, Outcome.SENT]
    folder = channel.last_batch_dir
    with open(folder / "manifest.csv", encoding="utf-8-sig", newline="") as handle:
        assert [row["message_id"] for row in csv.DictReader(handle, delimiter=";")] == ["1", "3"]
    assert len(PdfReader(folder / "merged.pdf").pages) == 2
    assert sorted(p.name for p in (folder / "letters").iterdir()) == [
        "1-12345678900001.pdf",
        "3-12345678900003.pdf",
    ]


def test_from_settings_puts_letters_under_home(tmp_path: Path) -> None:
    channel = factory_for("letter")(SimpleNamespace(home=tmp_path, timezone="Europe/Paris"),
                                    clock=lambda: dt.datetime(2026, 11, 27, 9, tzinfo=dt.UTC))
    assert channel.root == tmp_path / "letters"
    assert channel.send([letter(1)])[0].outcome is Outcome.SENT
    assert (channel.root / channel.last_batch_dir.name / "merged.pdf").exists()


def test_only_the_address_shows_through_the_envelope_window(channel: LetterChannel) -> None:
    six_lines = letter(
        1,
        address={
            "name": "Boulangerie Martin",
            "contact": "Mme Élodie Martin",
            "building": "Résidence Les Tilleuls",
            "street": "12 rue de l'Église",
            "locality_extra": "Lieu-dit Kerbihan",
            "postcode": "35000",
            "city": "Rennes",
        },
    )
    channel.send([six_lines])
    page = PdfReader(channel.last_batch_dir / "letters" / "1-12345678900001.pdf").pages[0]
    height_pt = float(page.mediabox.height)
    mm = 72 / 25.4
    inside: list[str] = []

    def visit(text, cm, tm, font, size):  # pypdf calls this for each text run with its matrix
        x, y = tm[4] / mm, (height_pt - tm[5]) / mm  # from the left and from the top, in mm
        left, top, right, bottom = WINDOW
        if text.strip() and left <= x <= right and top <= y <= bottom:
            inside.append(text.strip())

    page.extract_text(visitor_text=visit)
    assert inside == [
        "Boulangerie Martin",
        "Mme Élodie Martin",
        "Résidence Les Tilleuls",
        "12 RUE DE L EGLISE",
        "LIEU DIT KERBIHAN",
        "35000 RENNES",
    ]
