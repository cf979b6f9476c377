"""E-invoicing dates follow the company's INSEE category, not the establishment's head count (issue 13, point 7);
BODACC collective procedures are not critical periods (point 8). Pure parts: size classes, deadline events with
both duty dates, the StockUniteLegale reader, the deadline texts and the procedure mapping."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import pytest

from templates.preview import sample_context
from templates.render import library
from triggers.bodacc import map_record, procedure_of
from triggers.calendar import deadline_events, due_offsets, load_deadlines, size_class
from triggers.model import TRIGGER_TYPES, Reject
from triggers.sirene import SireneFormatError
from triggers.sirene_ul import COLUMNS_UL, UniteLegaleReader, chunked_unites, header_of, is_unite_legale_header

D = dt.date
SIRET_GE_BRANCH = "73282932000074"  # a 1-2 person establishment (tranche 01) of a large group
SIRET_PME = "55210055400013"
SIRET_UNKNOWN = "44306184100047"


def ul_row(**values: str) -> list[str]:
    base = {"siren": SIRET_GE_BRANCH[:9], "statutDiffusionUniteLegale": "O", "categorieEntreprise": "GE",
            "anneeCategorieEntreprise": "2023", "etatAdministratifUniteLegale": "A",
            "denominationUniteLegale": "GRAND GROUPE SA"}
    base.update(values)
    return [base.get(c, "") for c in COLUMNS_UL]


def write_ul(path: Path, rows: list[list[str]]) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(COLUMNS_UL)
    writer.writerows(rows)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("StockUniteLegale_utf8.csv", buf.getvalue())
    else:
        path.write_text(buf.getvalue(), encoding="utf-8")
    return path


# --- the category rule -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("categorie", "tranche", "expected"),
    [
        ("GE", "01", "ge"),  # a 5-person branch of a large group: the company decides
        ("ETI", "NN", "eti"),
        ("PME", "01", "micro"),  # INSEE's PME include the micro-entreprises: same dates
        ("PME", "12", "pme"),
        ("pme", None, "micro"),
        (None, "01", "micro"),  # unknown: the PME/micro dates, the common case
        ("", "", "micro"),
        ("[ND]", "11", "pme"),
        (None, "32", "eti"),  # 250 people in one establishment: the company is not a PME
        (None, "52", "ge"),
    ],
)
def test_size_class_reads_the_company_category_first(categorie, tranche, expected):
    assert size_class(categorie, tranche) == expected


def test_a_small_branch_of_a_large_group_gets_the_2026_duties_and_a_pme_both_dates():
    deadlines = load_deadlines()
    # 270 days before 1 September 2026: both 2026 reminders are due.
    due = due_offsets(deadlines, (270,), D(2025, 12, 5))
    assert {d.id for d, _ in due} == {"einvoicing-reception-2026", "einvoicing-issuing-large-2026"}
    businesses = [
        (SIRET_GE_BRANCH, "01", "active", "GE"),
        (SIRET_PME, "01", "active", "PME"),
        (SIRET_UNKNOWN, "02", "active", None),
    ]
    events = {e.siret: e for e in deadline_events(due, businesses)}
    assert len(events) == 3  # one reminder each: no business gets both 2026 series
    large = events[SIRET_GE_BRANCH].payload
    assert large["deadline"] == "einvoicing-issuing-large-2026" and large["size"] == "ge"
    assert large["receive_date"] == large["issue_date"] == "2026-09-01"
    assert large["categorie_entreprise"] == "GE"
    for siret in (SIRET_PME, SIRET_UNKNOWN):
        small = events[siret].payload
        assert small["deadline"] == "einvoicing-reception-2026" and small["size"] == "micro"
        assert (small["receive_date"], small["issue_date"]) == ("2026-09-01", "2027-09-01")

    # A year later only the 2027 issuing reminder is left, and never for the large group's branch.
    later = due_offsets(deadlines, (270,), D(2026, 12, 5))
    assert [d.id for d, _ in later] == ["einvoicing-issuing-2027"]
    assert {e.siret for e in deadline_events(later, businesses)} == {SIRET_PME, SIRET_UNKNOWN}


def test_older_three_field_business_tuples_still_work():
    [deadline] = [d for d in load_deadlines() if d.id == "einvoicing-issuing-2027"]
    [event] = deadline_events([(deadline, 90)], [(SIRET_PME, "01", "active")])
    assert event.payload["size"] == "micro" and event.payload["issue_date"] == "2027-09-01"


# --- the deadline texts -----------------------------------------------------------------------------------------


def render(name: str, deadline: dict | None, family: str = "batiment"):
    context = sample_context(family, "deadline")
    context["deadline"] = deadline
    return library().render(name, context)


PME = {"label": "Facturation électronique : recevoir ses factures fournisseurs", "date": "2026-09-01",
       "receive_date": "2026-09-01", "issue_date": "2027-09-01"}
LARGE = {"label": "Facturation électronique : recevoir et émettre", "date": "2026-09-01",
         "receive_date": "2026-09-01", "issue_date": "2026-09-01"}


@pytest.mark.parametrize("channel", ["email", "letter", "call"])
def test_deadline_texts_state_both_dates_for_a_pme_and_one_for_a_large_company(channel):
    """The SMS has no room for the accountant (2 segments with the business's name): the other channels name it."""
    name = f"{channel}/deadline/default.j2"
    small = render(name, PME).body
    assert "1er septembre 2026" in small and "1er septembre 2027" in small
    large = render(name, LARGE).body
    assert "1er septembre 2026" in large and "2027" not in large
    # Unknown (a preview, an older event without dates): the PME/micro wording, the common case.
    unknown = render(name, None).body
    assert "1er septembre 2026" in unknown and "1er septembre 2027" in unknown
    for text in (small, large, unknown):
        assert "votre comptable" in text.lower()
        assert "syndic" not in text.lower()


def test_deadline_sms_says_the_right_dates():
    assert "1/9/2026" in render("sms/deadline/default.j2", PME).body
    assert "1/9/2027" in render("sms/deadline/default.j2", PME).body
    large = render("sms/deadline/default.j2", LARGE).body
    assert "1/9/2026" in large and "2027" not in large


# --- the StockUniteLegale reader -------------------------------------------------------------------------------


def test_reader_keeps_the_category_and_explains_its_rejects(tmp_path):
    path = write_ul(
        tmp_path / "StockUniteLegale_utf8.zip",
        [
            ul_row(),
            ul_row(siren=SIRET_PME[:9], categorieEntreprise="PME"),
            ul_row(siren=SIRET_UNKNOWN[:9], categorieEntreprise="", anneeCategorieEntreprise=""),
            ul_row(siren="123456789"),  # bad checksum
            ul_row(siren="552100554", categorieEntreprise="XXL"),
            ul_row(siren="552100554", anneeCategorieEntreprise="20x3"),
            ul_row()[:5],
            ul_row(siren="552100554", categorieJuridiqueUniteLegale="57"),  # not the four-digit code
            ul_row(siren="552100554", categorieEntreprise="", categorieJuridiqueUniteLegale=" 1000 "),
            ul_row(siren="552100554", categorieJuridiqueUniteLegale="[ND]"),
        ],
    )
    assert is_unite_legale_header(header_of(path))
    rejects: list[Reject] = []
    reader = UniteLegaleReader(path, on_reject=rejects.append)
    records = [rec for _line, rec in reader.records()]
    assert records == [
        (SIRET_GE_BRANCH[:9], "GE", "2023", None),
        (SIRET_PME[:9], "PME", "2023", None),
        (SIRET_UNKNOWN[:9], None, None, None),
        ("552100554", None, "2023", "1000"),  # the legal form alone: INSEE's four digits, stripped
        ("552100554", "GE", "2023", None),  # masked: unknown
    ]
    assert [(r.line, r.field, r.reason) for r in rejects][3:] == [
        (8, "row", "nombre de colonnes faux (5 au lieu de 34)"),
        (9, "categorieJuridiqueUniteLegale", "catégorie juridique illisible '57' (quatre chiffres attendus)"),
    ]
    assert [(r.line, r.field) for r in rejects][:3] == [
        (5, "siren"), (6, "categorieEntreprise"), (7, "anneeCategorieEntreprise"),
    ]
    assert rejects[-1].raw == "552100554,GE,2023,57"  # SIREN, category, year and legal form: no name
    assert "GRAND GROUPE" not in " ".join(r.raw for r in rejects)  # a name may be a person's: never kept
    assert reader.stats.read == 10 and reader.stats.rejected == 5
    chunks = list(chunked_unites(path, 2))
    assert [len(c[0]) for c in chunks] == [2, 2, 1] and sum(c[2] for c in chunks) == 10


def test_an_establishment_file_is_not_a_legal_unit_file(tmp_path):
    from tests.unit.test_sirene import row, write

    path = write(tmp_path / "etab.csv", [row()])
    assert not is_unite_legale_header(header_of(path))
    with pytest.raises(SireneFormatError, match="StockUniteLegale"):
        list(UniteLegaleReader(path).records())


# --- BODACC collective procedures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nature", "procedure", "kind"),
    [
        ("Jugement d'ouverture d'une procédure de sauvegarde", "sauvegarde", "collective_procedure"),
        ("Jugement d'ouverture d'une procédure de redressement judiciaire", "redressement", "collective_procedure"),
        ("Jugement arrêtant le plan de redressement", "redressement", "collective_procedure"),
        ("Jugement prononçant la liquidation judiciaire", "liquidation", "closure"),
        ("Jugement de conversion en liquidation judiciaire", "liquidation", "closure"),
        ("Jugement de clôture pour insuffisance d'actif", "liquidation", "closure"),
        ("Avis de dépôt de l'état des créances", None, "collective_procedure"),
    ],
)
def test_collective_procedures_are_never_critical_periods(nature, procedure, kind):
    assert procedure_of(nature) == procedure
    record = {"id": "A1", "dateparution": "2026-11-20", "familleavis": "collective",
              "registre": [SIRET_PME[:9]], "jugement": json.dumps({"nature": nature, "date": "2026-11-18"})}
    event = map_record(record)
    assert event.type == kind and event.type != "critical_period"
    assert event.payload.get("procedure") == procedure
    assert "collective_procedure" in TRIGGER_TYPES  # a campaign may ask for it explicitly, none does by default


def test_the_procedure_template_points_to_support_services_and_sells_nothing():
    for name in ("email/collective_procedure/default.j2", "letter/collective_procedure/default.j2"):
        rendered = library().render(name, sample_context("batiment", "collective_procedure"))
        text = (rendered.subject + "\n" + rendered.body).lower()
        for service in ("cci", "cma", "centre d'information sur la prévention des difficultés des entreprises",
                        "tribunal", "comptable"):
            assert service in text, (name, service)
        for pitch in ("moins de travail", "prix", "atelier", "sophie martin", "outil", "vous n'êtes pas seul"):
            assert pitch not in text, (name, pitch)
        if rendered.html:
            assert "Atelier" not in rendered.html and "Sophie Martin" not in rendered.html
