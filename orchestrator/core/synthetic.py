"""Synthetic TPE populations (Faker fr_FR) for the demo, tests and benchmarks: realistic, reproducible."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import phonenumbers
from faker import Faker
from stdnum import luhn

from segments.territory import commune, communes_of
from triggers.model import BusinessFacts, ContactPoint

# Common TPE activities (NAF rév. 2) with rough weights: trades, food, cafés, beauty, shops, garages...
TPE_NAF = {
    "43.22A": 6, "43.21A": 6, "43.32A": 4, "43.34Z": 4, "43.99C": 4, "41.20A": 2, "43.31Z": 2, "43.91B": 2,
    "10.71C": 5, "10.13B": 2, "47.11B": 2, "47.22Z": 2, "47.24Z": 1, "47.25Z": 1, "10.71D": 1,
    "56.10A": 6, "56.10C": 4, "56.30Z": 4, "55.10Z": 2,
    "96.02A": 6, "96.02B": 4, "96.04Z": 1,
    "47.76Z": 2, "47.71Z": 3, "47.78C": 2, "47.59B": 1, "47.62Z": 1, "47.65Z": 1,
    "45.20A": 4, "45.32Z": 1, "49.32Z": 3, "49.41B": 2,
    "81.21Z": 2, "88.91A": 1, "96.01B": 1, "85.53Z": 1,
    "69.20Z": 1, "70.22Z": 2, "62.01Z": 1, "73.11Z": 1, "74.10Z": 1,
    "16.23Z": 1, "25.62B": 1, "32.12Z": 1, "01.50Z": 1, "86.23Z": 1, "86.90E": 1,
}


def make_siret(rng: random.Random) -> str:
    """A SIRET with valid Luhn keys (the SIREN and the whole number)."""
    body = "".join(rng.choice("123456789") + "".join(rng.choice("0123456789") for _ in range(7)))
    siren = body + luhn.calc_check_digit(body)
    nic = "".join(rng.choice("0123456789") for _ in range(4))
    nic = "0" + nic[1:] if nic[0] != "0" else nic
    return siren + nic + luhn.calc_check_digit(siren + nic)


class Population:
    """A reproducible synthetic population in one département."""

    def __init__(self, departement: str, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.fake = Faker("fr_FR")
        self.fake.seed_instance(seed)
        self.communes = sorted(communes_of("departement", departement))
        if not self.communes:
            raise ValueError(f"unknown département: {departement}")
        self.naf_codes = list(TPE_NAF)
        self.naf_weights = list(TPE_NAF.values())

    def _facts(self, created: dt.date, source: str) -> BusinessFacts:
        rng, fake = self.rng, self.fake
        siret = make_siret(rng)
        code = rng.choice(self.communes)
        place = commune(code)
        name = fake.company() if rng.random() < 0.6 else f"{fake.last_name()} {fake.first_name()}"
        facts = BusinessFacts(
            siret=siret, name=name, naf_code=rng.choices(self.naf_codes, self.naf_weights)[0], commune_code=code,
            tranche_effectifs=rng.choices(["NN", "00", "01", "02", "03"], [55, 5, 20, 12, 8])[0],
            creation_date=created, state="active", street=fake.street_address(),
            postal_code=fake.postcode(), city=place.nom if place else fake.city(),
        )
        if rng.random() < 0.85:
            facts.contacts.append(ContactPoint("email", f"contact.{siret}@{fake.free_email_domain()}", source))
        if rng.random() < 0.6:
            facts.contacts.append(ContactPoint("phone", self._mobile(), source, consent=rng.random() < 0.3))
        return facts

    def _mobile(self) -> str:
        # Metropolitan mobile ranges only (06 9x and 07 0x-2x belong to overseas or are unassigned).
        while True:
            candidate = f"+336{self.rng.randrange(10_000_000, 89_999_999)}"
            if phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
                return candidate

    def businesses(self, n: int, today: dt.date) -> list[BusinessFacts]:
        """`n` established TPE (created 1 to 20 years before `today`), as a Sirene-like stock."""
        return [self._facts(today - dt.timedelta(days=self.rng.randrange(365, 20 * 365)), "sirene")
                for _ in range(n)]

    def creation_events(self, n: int, known: list[BusinessFacts] | None = None, batch_size: int = 50, *,
                        today: dt.date, bad_every: int = 60) -> list[list[dict[str, Any]]]:
        """`n` partner creation events for new businesses (API JSON), in batches, created in the 30 days before
        `today`; one in `bad_every` has a wrong SIRET key, as real partner files do."""
        items: list[dict[str, Any]] = []
        for i in range(n):
            created = today - dt.timedelta(days=self.rng.randrange(0, 30))
            f = self._facts(created, "partner")
            siret = f.siret if (i + 1) % bad_every else f.siret[:-1] + str((int(f.siret[-1]) + 1) % 10)
            email = next((c.value for c in f.contacts if c.kind == "email"), None)
            phone = next((c.value for c in f.contacts if c.kind == "phone"), None)
            items.append({
                "external_id": f"bge-{today:%Y%m%d}-{i:05d}", "type": "creation", "siret": siret,
                "occurred_on": created.isoformat(),
                "business": {"name": f.name, "naf_code": f.naf_code, "commune_code": f.commune_code,
                             "creation_date": created.isoformat()},
                "contact": {"email": email, "phone": phone, "street": f.street, "postal_code": f.postal_code,
                            "city": f.city},
            })
        return [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
