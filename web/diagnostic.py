"""The owner's self-diagnostic: five questions in plain words, a 0-5 score, the offer that fits. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Question:
    """One yes/no question; `topic` is what a "no" says the business needs."""

    key: str
    text: str
    topic: str
    keywords: tuple[str, ...]  # words that make an offer fit this topic


QUESTIONS: tuple[Question, ...] = (
    Question(
        "email_pro",
        "Avez-vous une adresse e-mail pour votre entreprise, que vous lisez chaque semaine ?",
        "e-mail",
        ("mail", "messagerie", "adresse"),
    ),
    Question(
        "devis_factures",
        "Faites-vous vos devis et vos factures sur un ordinateur ou une tablette ?",
        "devis et factures",
        ("devis", "factur", "logiciel", "gestion", "compta"),
    ),
    Question(
        "e_facture",
        "Êtes-vous prêt(e) à recevoir des factures électroniques (obligatoire depuis septembre 2026) ?",
        "factures électroniques",
        ("factur", "électronique", "plateforme"),
    ),
    Question(
        "visible",
        "Vos clients vous trouvent-ils sur internet (fiche sur une carte, site, réseau social) ?",
        "être trouvé sur internet",
        ("internet", "site", "carte", "visib", "client", "réseau"),
    ),
    Question(
        "securite",
        "Savez-vous reconnaître un faux e-mail ou un faux ordre de virement ?",
        "arnaques et sécurité",
        ("arnaque", "sécurité", "piratage", "virus"),
    ),
)

LEVELS = {
    0: "premiers pas",
    1: "premiers pas",
    2: "en route",
    3: "en route",
    4: "bien équipé",
    5: "bien équipé",
}


@dataclass(frozen=True, slots=True)
class DiagnosticResult:
    """The score (number of "oui"), the topics answered "non", and the suggested offer (or None)."""

    score: int
    answers: dict[str, bool]
    needs: tuple[str, ...]
    offer: dict[str, Any] | None

    @property
    def level(self) -> str:
        return LEVELS[self.score]


def parse_answers(form: dict[str, str]) -> dict[str, bool] | None:
    """The five answers from a form ("oui"/"non"), or None when one is missing or unreadable."""
    out: dict[str, bool] = {}
    for q in QUESTIONS:
        value = (form.get(q.key) or "").strip().lower()
        if value not in ("oui", "non"):
            return None
        out[q.key] = value == "oui"
    return out


def suggest_offer(answers: dict[str, bool], offers: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The offer whose words best match the first topic answered "non"; the first offer otherwise."""
    if not offers:
        return None
    for q in QUESTIONS:
        if answers.get(q.key, True):
            continue
        for offer in offers:
            words = " ".join(
                str(offer.get(k) or "") for k in ("title", "kind", "topic", "description")
            ).lower()
            if any(k in words for k in q.keywords):
                return offer
    # Nothing names the need: a beginner gets the first (usually the lightest) offer.
    return offers[0]


def diagnose(answers: dict[str, bool], offers: list[dict[str, Any]]) -> DiagnosticResult:
    """Score the answers and pick the offer that fits."""
    needs = tuple(q.topic for q in QUESTIONS if not answers.get(q.key, False))
    return DiagnosticResult(
        score=sum(1 for q in QUESTIONS if answers.get(q.key)),
        answers=dict(answers),
        needs=needs,
        offer=suggest_offer(answers, offers),
    )
