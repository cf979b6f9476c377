"""BODACC reader: the three file shapes, the family mapping, SIREN rules and explained rejects."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from pathlib import Path

import pytest

from triggers.bodacc import BodaccFormatError, BodaccStats, Skipped, map_record, read_bodacc, sirens_of
from triggers.model import Reject

BUYER = "894670793"
SELLER = "732829320"
OTHER = "552100554"


def person(siren: str | None, kind: str = "pm", name: str = "BOULANGERIE DUPAIN SARL") -> dict:
    p: dict = {"typePersonne": kind}
    if kind == "pm":
        p["denomination"] = name
    else:
        p.update(nom="DUPONT", prenom="Jean")
    if siren:
        p["numeroImmatriculation"] = {
            "numeroIdentification": f"{siren[:3]} {siren[3:6]} {siren[6:]}",
            "codeRCS": "RCS",
            "nomGreffeImmat": "Rennes",
        }
    return p


def record(family: str, **kw) -> dict:
    rec = {
        "id": f"A2026{family[:3].upper()}0001",
        "dateparution": "2026-11-20",
        "familleavis": family,
        "familleavis_lib": family.title(),
        "typeavis": "annonce",
        "numerodepartement": "35",
        "tribunal": "GREFFE DU TRIBUNAL DE COMMERCE DE RENNES",
        "ville": "Rennes",
        "cp": "35000",
        "registre": [BUYER, f"{BUYER[:3]} {BUYER[3:6]} {BUYER[6:]}"],
        "commercant": "BOULANGERIE DUPAIN SARL",
        "listepersonnes": json.dumps({"personne": person(BUYER)}),
    }
    rec.update(kw)
    return rec


def test_vente_is_a_takeover_for_the_buyer():
    rec = record(
        "vente",
        registre=[BUYER, SELLER],
        listeprecedentproprietaire=json.dumps({"personne": person(SELLER, name="ANCIEN FOURNIL")}),
        acte=json.dumps({"vente": {"categorieVente": "Achat d'un fonds par une personne morale"}}),
    )
    event = map_record(rec, 1)
    assert event.type == "takeover" and event.siren == BUYER and event.siret is None
    assert event.source == "bodacc" and event.external_id == rec["id"]
    assert event.occurred_on == dt.date(2026, 11, 20)
    assert event.payload["seller_siren"] == SELLER
    assert event.payload["categorie_vente"].startswith("Achat d'un fonds")
    assert event.payload["name"] == "BOULANGERIE DUPAIN SARL"


def test_vente_buyer_found_from_registre_when_personnes_lack_a_number():
    rec = record(
        "vente",
        registre=f"{SELLER},{BUYER}",
        listepersonnes=json.dumps({"personne": person(None)}),
        listeprecedentproprietaire=json.dumps({"personne": [person(SELLER)]}),
    )
    assert map_record(rec).siren == BUYER


def test_vente_without_an_identified_buyer_is_skipped():
    rec = record(
        "vente",
        registre=[SELLER],
        listepersonnes=json.dumps({"personne": person(None, kind="pp")}),
        listeprecedentproprietaire=json.dumps({"personne": person(SELLER)}),
    )
    assert map_record(rec) == Skipped("vente without the buyer's SIREN")


@pytest.mark.parametrize("family", ["creation", "immatriculation"])
def test_creation_and_immatriculation_are_creations(family):
    rec = record(family, acte={"dateCommencementActivite": "2026-11-02", "descriptif": "x"})
    event = map_record(rec)
    assert event.type == "creation" and event.siren == BUYER
    assert event.occurred_on == dt.date(2026, 11, 2)


def test_collective_is_a_collective_procedure_and_a_liquidation_a_closure():
    redressement = record(
        "collective",
        jugement=json.dumps(
            {
                "famille": "Jugement d'ouverture",
                "nature": "Jugement d'ouverture d'une procédure de redressement judiciaire",
                "date": "2026-11-10",
            }
        ),
    )
    event = map_record(redressement)
    # A court procedure is not a sales moment: never the critical-period pitch (issue 13, point 8).
    assert event.type == "collective_procedure" and event.occurred_on == dt.date(2026, 11, 10)
    assert event.payload["procedure"] == "redressement"
    liquidation = record(
        "collective",
        id="A2026LJ",
        jugement=json.dumps(
            {"nature": "Jugement d'ouverture de liquidation judiciaire", "date": "2026-11-12"}
        ),
    )
    assert map_record(liquidation).type == "closure"


def test_radiation_is_a_closure_and_other_families_are_skipped():
    assert map_record(record("radiation")).type == "closure"
    for family in ("modification", "dpc", "conciliation", "retablissement_professionnel", "divers"):
        assert map_record(record(family)) == Skipped(f"family {family}")


def test_natural_person_names_never_reach_the_event():
    rec = record(
        "collective",
        listepersonnes=json.dumps({"personne": person(BUYER, kind="pp")}),
        commercant="DUPONT Jean",
    )
    event = map_record(rec)
    text = json.dumps(event.payload, ensure_ascii=False)
    assert "DUPONT" not in text and "Jean" not in text


def test_siren_with_and_without_spaces_and_checksum():
    assert sirens_of(["894670793", "894 670 793"]) == (["894670793"], [])
    assert sirens_of("894 670 793,732829320") == (["894670793", "732829320"], [])
    assert sirens_of("894670794") == ([], ["894670794"])
    assert sirens_of(None) == ([], [])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": ""}, "id"),
        ({"dateparution": "20/11/2026x"}, "dateparution"),
        ({"familleavis": ""}, "familleavis"),
        ({"registre": ["894670794"], "listepersonnes": None}, "registre"),
        ({"registre": [], "listepersonnes": None}, "registre"),
        ({"listepersonnes": "{not json"}, "listepersonnes"),
    ],
)
def test_bad_records_are_rejected_with_their_field(change, field):
    out = map_record(record("radiation", **change), 7)
    assert isinstance(out, Reject) and out.field == field and out.line == 7 and out.reason


def test_opendatasoft_v1_records_with_fields():
    assert map_record({"recordid": "x", "fields": record("radiation")}).type == "closure"


# --- file shapes ----------------------------------------------------------------------------------


RECORDS = [
    record("vente", id="A1", listeprecedentproprietaire=json.dumps({"personne": person(SELLER)})),
    record("creation", id="A2", registre=[OTHER]),
    record("dpc", id="A3"),
    record("radiation", id="A4", registre=["123456789"], listepersonnes=None),
    record("collective", id="A5", jugement=json.dumps({"nature": "Jugement de liquidation judiciaire"})),
]


def csv_text(records: list[dict]) -> str:
    fields = list(dict.fromkeys(k for r in records for k in r))
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\n")
    writer.writerow(fields)
    for r in records:
        out = []
        for f in fields:
            v = r.get(f)
            if isinstance(v, list):
                v = ",".join(v)
            elif isinstance(v, dict):
                v = json.dumps(v)
            out.append("" if v is None else v)
        writer.writerow(out)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("array.json", json.dumps(RECORDS, indent=1)),
        ("lines.jsonl", "\n".join(json.dumps(r) for r in RECORDS) + "\n"),
        ("api.json", json.dumps({"total_count": 5, "results": RECORDS}, indent=2)),
        ("export.csv", csv_text(RECORDS)),
        ("export_bom.csv", "\ufeff" + csv_text(RECORDS)),
    ],
)
def test_every_file_shape_gives_the_same_events(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    rejects: list[Reject] = []
    skips: list[Skipped] = []
    stats = BodaccStats()
    events = list(read_bodacc(path, on_reject=rejects.append, on_skip=skips.append, stats=stats))
    assert [(e.external_id, e.type, e.siren) for e in events] == [
        ("A1", "takeover", BUYER),
        ("A2", "creation", OTHER),
        ("A5", "closure", BUYER),
    ]
    assert skips == [Skipped("family dpc")]
    assert [(r.field, r.reason) for r in rejects] == [("registre", "invalid SIREN '123456789'")]
    assert stats.read == 5 and stats.rejected == 1


def test_gzip_and_a_big_streamed_array(tmp_path):
    many = [record("radiation", id=f"R{i}") for i in range(5000)]
    path = tmp_path / "big.json.gz"
    path.write_bytes(gzip.compress(json.dumps(many).encode()))
    assert sum(1 for _ in read_bodacc(path)) == 5000


@pytest.mark.parametrize(
    "content",
    ['[{"id": "A1", "familleavis": "radiation"}, {"id": "A2", "famil', "name,age\nbob,3\n", "", "{nope"],
)
def test_truncated_or_foreign_files_raise_a_clear_error(tmp_path, content):
    path = tmp_path / "bodacc.json"
    path.write_text(content)
    with pytest.raises(BodaccFormatError):
        list(read_bodacc(path))


def test_a_bad_json_line_is_rejected_and_the_file_goes_on(tmp_path):
    path = tmp_path / "lines.jsonl"
    path.write_text(
        json.dumps(record("radiation", id="A1")) + "\n{broken\n" + json.dumps(record("radiation", id="A2"))
    )
    rejects: list[Reject] = []
    events = list(read_bodacc(path, on_reject=rejects.append))
    assert [e.external_id for e in events] == ["A1", "A2"]
    assert rejects[0].line == 2 and rejects[0].field == "record"


def test_file_path_is_accepted_as_str(tmp_path):
    path: Path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(record("radiation")))
    assert len(list(read_bodacc(str(path)))) == 1
