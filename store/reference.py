"""Load the shipped reference data (métier families, NAF, communes, territories) into the store."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.engine import Engine

from segments import taxonomy, territory
from store.models import Commune, MetierFamily, NafCode, Territory
from store.sql import chunks


def _commune_rows() -> list[dict]:
    # Every commune code Sirene may carry, arrondissements and communes déléguées included.
    return [
        {"code": r["code"], "nom": r["nom"], "type": r["type"], "parent": r["parent"] or None,
         "epci": r["epci"] or None, "departement": r["departement"], "region": r["region"]}
        for r in territory._read_csv("communes.csv")
    ]


def load_reference(engine: Engine) -> dict[str, int]:
    """Replace the reference tables with the shipped files, in one transaction; returns row counts."""
    families = [{"key": f.family, "label": f.label, "trade_phrase": f.trade_phrase}
                for f in taxonomy.families().values()]
    naf = [{"code": n.code, "label": n.label, "family": n.family, "metier": n.metier}
           for n in taxonomy.naf_entries().values()]
    communes = _commune_rows()
    places = (
        [{"level": "epci", "code": e.code, "nom": e.nom, "parent": None, "timezone": None}
         for e in territory.epcis().values()]
        + [{"level": "departement", "code": d.code, "nom": d.nom, "parent": d.region, "timezone": d.timezone}
           for d in territory.departements().values()]
        + [{"level": "region", "code": r.code, "nom": r.nom, "parent": None, "timezone": None}
           for r in territory.regions().values()]
    )
    with engine.begin() as conn:
        for model, rows in ((MetierFamily, families), (NafCode, naf), (Commune, communes), (Territory, places)):
            table = model.__table__
            conn.execute(delete(table))
            for part in chunks(rows, 5000):
                conn.execute(table.insert(), part)
    return {"families": len(families), "naf": len(naf), "communes": len(communes), "territories": len(places)}
