"""The owner's self-diagnostic (issue 16, point 5): five questions on digital skills *and* appetite, the two levels
they give, and the one next step that follows. Pure: answers in, levels and a step out.

What the study asks for ("le diagnostic des compétences et appétences numériques"): what the owner already does
on a phone for the business, who receives the invoices (e-invoicing), the time they can give each week, what they
would like to stop doing by hand, and one question of their own trade (the métier shapes the relation to digital).

Stored answers are stable codes (`answers` of a `diagnostic_completed` interaction, with `"version": 2`):

  phone     list of PHONE_USES codes (what the owner does on a phone for the business), maybe empty
  invoices  one of INVOICES: "software", "accountant", "nobody"
  time      one of TIME: "none", "one_hour", "hours"
  chores    list of CHORES codes (the adoption categories of `triggers.model` where they match), maybe empty
  trade     one of TRADE_ANSWERS: "by_hand", "partly", "tool" (the wording depends on the trade family)

Levels: the *maturity* score is 0 to 5 like the first diagnostic's (version 1: five yes/no questions, the score is
the number of "oui"), so both versions give the same three maturity levels (`orchestrator.core.barometer`); the
*appetite* score is 0 to 4 (version 2 only) and gives three appetite levels. `stored_levels` reads either version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.core.barometer import APPETITE_LEVELS, MATURITY_LEVELS, maturity_level

VERSION = 2

PHONE_USES = {
    "email": "Lire et envoyer des e-mails",
    "photos": "Envoyer des photos ou des documents (devis, plans, bons de commande)",
    "bank": "Suivre votre compte en banque ou payer",
    "calendar": "Noter vos rendez-vous dans un agenda",
    "publish": "Publier sur internet (réseaux sociaux, fiche sur une carte, site)",
}
INVOICES = {
    "software": "Dans un logiciel de facturation ou de comptabilité",
    "accountant": "À mon comptable, qui s'en occupe",
    "nobody": "Personne pour l'instant : je les range moi-même",
}
TIME = {
    "none": "Pas de temps en ce moment",
    "one_hour": "Environ une heure par semaine",
    "hours": "Plusieurs heures par semaine, si ça vaut le coup",
}
CHORES = {
    "quotes_invoices": "Les devis et les factures",
    "booking": "Les rendez-vous et les appels pour les confirmer",
    "payment": "Les relances de paiement et les chèques à déposer",
    "management": "Le tri des papiers pour le comptable",
    "online_visibility": "Me faire connaître (affiches, annuaires, bouche-à-oreille)",
}
TRADE_ANSWERS = ("by_hand", "partly", "tool")

# One question per trade family, in the owner's words: (question, by hand, partly, with a tool).
TRADE_QUESTIONS: dict[str, tuple[str, str, str, str]] = {
    "agriculture": ("Vos ventes et vos commandes, vous les suivez…", "sur un cahier", "sur un tableur",
                    "avec un logiciel ou une application"),
    "alimentation": ("Vos commandes de clients et de fournisseurs, vous les prenez…", "sur papier ou de tête",
                     "par téléphone et SMS", "avec une caisse ou une application"),
    "artisanat_production": ("Vos devis, vous les faites…", "à la main, sur papier",
                             "sur l'ordinateur, dans un tableur ou un traitement de texte",
                             "avec un logiciel de devis"),
    "automobile": ("Vos ordres de réparation et vos devis, vous les faites…", "à la main, sur papier",
                   "sur l'ordinateur, dans un tableur", "avec un logiciel de garage"),
    "autre": ("Vos papiers de tous les jours (commandes, devis, factures), vous les faites…",
              "à la main, sur papier", "en partie sur l'ordinateur", "avec un logiciel ou une application"),
    "batiment": ("Vos devis, vous les faites…", "à la main, sur papier",
                 "sur l'ordinateur, dans un tableur ou un traitement de texte",
                 "avec un logiciel de devis, sur ordinateur ou sur téléphone"),
    "beaute_bien_etre": ("Vos rendez-vous, vous les notez…", "dans un carnet", "sur l'agenda du téléphone",
                         "avec un agenda en ligne où les clients réservent"),
    "commerce_detail": ("Vos clients vous trouvent…", "en passant devant la boutique",
                        "aussi sur une carte en ligne ou un réseau social", "aussi sur un site où ils peuvent acheter"),
    "commerce_gros": ("Les commandes de vos clients, vous les prenez…", "par téléphone et sur papier",
                      "par e-mail", "dans un logiciel ou sur un site de commande"),
    "culture_loisirs": ("Vos réservations, vous les prenez…", "par téléphone et sur papier",
                        "par e-mail ou par SMS", "avec une billetterie ou un agenda en ligne"),
    "hotellerie_restauration": ("Vos réservations, vous les prenez…", "par téléphone, dans un cahier",
                                "aussi par e-mail ou par SMS", "aussi sur un site de réservation"),
    "sante": ("Vos rendez-vous, vous les notez…", "dans un carnet", "sur l'agenda du téléphone",
              "avec un agenda en ligne où les patients réservent"),
    "services_entreprises": ("Vos devis et vos factures, vous les faites…", "à la main, sur papier",
                             "dans un tableur ou un traitement de texte", "avec un logiciel de facturation"),
    "services_particuliers": ("Vos rendez-vous et vos devis, vous les faites…", "à la main, sur papier",
                              "sur le téléphone, par SMS", "avec une application ou un logiciel"),
    "transport": ("Vos courses et vos bons de livraison, vous les suivez…", "sur papier",
                  "sur le téléphone, par SMS ou par e-mail", "avec une application ou un logiciel"),
}
DEFAULT_FAMILY = "autre"

# What each need is called in French, and words that make an offer fit it (title, kind, provider).
NEED_WORDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "einvoicing": ("recevoir les factures électroniques", ("factur", "électronique", "plateforme")),
    "quotes_invoices": ("faire vos devis et vos factures sans papier", ("devis", "factur", "logiciel")),
    "booking": ("prendre les rendez-vous sans y passer vos soirées", ("rendez-vous", "agenda", "réserv")),
    "payment": ("être payé(e) plus vite", ("paiement", "payer", "encaiss", "relance")),
    "management": ("passer moins de temps sur les papiers", ("gestion", "compta", "papier", "logiciel")),
    "online_visibility": ("être trouvé(e) sur internet", ("internet", "site", "carte", "visib", "réseau")),
    "trade_tool": ("un outil pensé pour votre métier", ("métier", "logiciel", "application", "devis")),
    "phone": ("vous servir de votre téléphone pour l'entreprise", ("téléphone", "smartphone", "premiers pas",
                                                                 "e-mail", "mail")),
}
# The trade families whose own question is mostly about being found, booked or paid.
TRADE_NEED = {"beaute_bien_etre": "booking", "sante": "booking", "hotellerie_restauration": "booking",
              "culture_loisirs": "booking", "commerce_detail": "online_visibility"}


@dataclass(frozen=True, slots=True)
class Choice:
    code: str
    label: str


@dataclass(frozen=True, slots=True)
class Question:
    """One question: `key` is the form field and the stored key; `multiple` questions take several boxes."""

    key: str
    legend: str
    choices: tuple[Choice, ...]
    multiple: bool = False
    hint: str = ""


def questions(family: str | None) -> tuple[Question, ...]:
    """The five questions for a business of this trade family (an unknown family gets the general wording)."""
    trade = TRADE_QUESTIONS.get(family or "", TRADE_QUESTIONS[DEFAULT_FAMILY])
    return (
        Question("phone", "Pour votre entreprise, sur votre téléphone, vous savez déjà…",
                 tuple(Choice(k, v) for k, v in PHONE_USES.items()), multiple=True,
                 hint="Cochez tout ce que vous faites déjà. Rien coché : vous téléphonez seulement, et c'est bien."),
        Question("invoices", "Vos factures, qui les reçoit ?", tuple(Choice(k, v) for k, v in INVOICES.items())),
        Question("time", "Pour apprendre un nouvel outil, combien de temps pouvez-vous y passer ?",
                 tuple(Choice(k, v) for k, v in TIME.items())),
        Question("chores", "Qu'aimeriez-vous arrêter de faire à la main ?",
                 tuple(Choice(k, v) for k, v in CHORES.items()), multiple=True,
                 hint="Cochez ce qui vous prend du temps. Rien coché : tout vous va comme ça."),
        Question("trade", trade[0], tuple(Choice(code, text[0].upper() + text[1:])
                                          for code, text in zip(TRADE_ANSWERS, trade[1:], strict=True))),
    )


def parse_answers(form: Mapping[str, Sequence[str]], family: str | None) -> tuple[dict[str, Any] | None, list[str]]:
    """The answers of a posted form (each field's list of values) as stable codes, or (None, the keys of the
    questions left unanswered or answered with an unknown code)."""
    answers: dict[str, Any] = {}
    missing: list[str] = []
    for q in questions(family):
        known = [c.code for c in q.choices]
        values = [v.strip() for v in form.get(q.key, ()) if v and v.strip()]
        if q.multiple:
            if any(v not in known for v in values):
                missing.append(q.key)
            answers[q.key] = [c for c in known if c in values]  # the form's order, once each
        elif len(values) != 1 or values[0] not in known:
            missing.append(q.key)
        else:
            answers[q.key] = values[0]
    return (None, missing) if missing else (answers, [])


def maturity_score(answers: Mapping[str, Any]) -> int:
    """0 to 5: the phone used for more than calls (two uses or more: 1), the invoices (in a software 2, with the
    accountant 1, nowhere 0), the trade's own work (with a tool 2, partly 1, by hand 0)."""
    phone = 1 if len(answers.get("phone") or ()) >= 2 else 0
    invoices = {"software": 2, "accountant": 1}.get(answers.get("invoices") or "", 0)
    trade = {"tool": 2, "partly": 1}.get(answers.get("trade") or "", 0)
    return phone + invoices + trade


def appetite_score(answers: Mapping[str, Any]) -> int:
    """0 to 4: time each week (several hours 2, about one 1, none 0) and the chores to stop doing by hand (three
    or more 2, one or two 1, none 0)."""
    time = {"hours": 2, "one_hour": 1}.get(answers.get("time") or "", 0)
    chores = len(answers.get("chores") or ())
    return time + (2 if chores >= 3 else 1 if chores else 0)


def appetite_level(score: int) -> str:
    """0-1 low, 2 medium, 3-4 high."""
    return "low" if score <= 1 else "medium" if score == 2 else "high"


@dataclass(frozen=True, slots=True)
class Levels:
    """The levels of one stored diagnostic: maturity for every version, appetite from version 2 (else None)."""

    version: int
    score: int
    maturity: str
    appetite_score: int | None = None
    appetite: str | None = None


def levels(answers: Mapping[str, Any]) -> Levels:
    """The levels of version-2 answers."""
    score, wish = maturity_score(answers), appetite_score(answers)
    return Levels(VERSION, score, maturity_level(score), wish, appetite_level(wish))


def stored_levels(data: Mapping[str, Any] | None) -> Levels | None:
    """The levels of a stored `diagnostic_completed` interaction's data, whatever its version: version 2 from its
    answers, version 1 (no `version`: five yes/no answers) from its 0-5 score, maturity only. None when it holds
    no readable diagnostic (a partner's conversion event carries no answers)."""
    data = data or {}
    version = data.get("version", 1)
    if version == VERSION and isinstance(data.get("answers"), Mapping):
        return levels(data["answers"])
    score = data.get("score")
    if version == 1 and isinstance(score, int) and not isinstance(score, bool) and 0 <= score <= 5:
        return Levels(1, score, maturity_level(score))
    return None


def is_free(price: Any) -> bool:
    """Whether an offer's price says the owner pays nothing ("gratuit", "offert", 0). No price is not free: the
    offer then has a grant sentence instead."""
    if isinstance(price, int | float) and not isinstance(price, bool):
        return price == 0
    text = str(price or "").strip().lower()
    return text.startswith(("gratuit", "offert")) or text.replace(" ", "") in ("0", "0€")


def price_words(offer: Mapping[str, Any]) -> str:
    """What an offer costs the owner, in words: "gratuit", "20 €", or its grant sentence when it has no price."""
    price = offer.get("price")
    if is_free(price):
        return "gratuit"
    if isinstance(price, int | float):
        return f"{price:g} €"
    if price:
        return str(price)
    return str(offer.get("grant") or "prix à demander")


def needs(answers: Mapping[str, Any], family: str | None) -> list[str]:
    """What the answers say the business needs, most pressing first: e-invoicing when nobody receives the
    invoices, then the chores named (in the list's order), then the trade's own work done by hand, then the phone."""
    out: list[str] = []
    if answers.get("invoices") == "nobody":
        out.append("einvoicing")
    out.extend(c for c in CHORES if c in (answers.get("chores") or ()))
    if answers.get("trade") in ("by_hand", "partly"):
        out.append(TRADE_NEED.get(family or "", "trade_tool"))
    if len(answers.get("phone") or ()) < 2:
        out.append("phone")
    return list(dict.fromkeys(out))


@dataclass(frozen=True, slots=True)
class NextStep:
    """The one next step shown: what (an offer or a call), its price in words, who helps, and why."""

    title: str
    price: str
    person: dict[str, Any]
    why: str
    offer: dict[str, Any] | None = None
    kind: str = "offer"  # "offer" or "call"
    details: list[str] = field(default_factory=list)

    def stored(self) -> dict[str, Any]:
        """What the interaction keeps of it (no phone nor e-mail: the person is named only)."""
        return {"kind": self.kind, "title": self.title, "price": self.price, "person": self.person.get("name"),
                "why": self.why}


def _offer_words(offer: Mapping[str, Any]) -> str:
    return " ".join(str(offer.get(k) or "") for k in ("title", "kind", "provider", "description")).lower()


def next_step(answers: Mapping[str, Any], offers: Sequence[Mapping[str, Any]], person: Mapping[str, Any],
              family: str | None = None) -> NextStep:
    """ONE next step: the offer fitting the most pressing need (free offers only when the owner has no time this
    week or little wish to change), else the first offer that fits the owner's means; with no offer, a free call
    with `person` (the business's ambassador or adviser, else the campaign's contact)."""
    wanted = needs(answers, family)
    short = answers.get("time") == "none" or appetite_level(appetite_score(answers)) == "low"
    pool = [o for o in offers if is_free(o.get("price"))] if short else list(offers)
    if not short:  # free ones first all the same: the cheapest step is the easiest to take
        pool.sort(key=lambda o: not is_free(o.get("price")))
    for need in wanted:
        words = NEED_WORDS[need][1]
        for offer in pool:
            if any(w in _offer_words(offer) for w in words):
                return _offer_step(offer, person, f"Vous voulez {NEED_WORDS[need][0]}.")
    # Nothing names a need: a beginner gets a first check-up with someone, when one is offered.
    if maturity_level(maturity_score(answers)) == "first_steps":
        for offer in pool:
            if offer.get("kind") in ("diagnostic", "accompagnement"):
                return _offer_step(offer, person, "Pour faire le point avec quelqu'un, sans vous engager.")
    why = ("Vous choisissez le moment. On parle de ce qui vous prend du temps." if short
           else "On voit ensemble la suite. Vous posez vos questions.")
    return NextStep(title="Un appel de 15 minutes avec votre contact", price="gratuit", person=dict(person),
                    why=why, kind="call")


def _offer_step(offer: Mapping[str, Any], person: Mapping[str, Any], why: str) -> NextStep:
    details = [f"Avec : {offer['provider']}"] if offer.get("provider") else []
    details += [f"{label} : {offer[key]}" for key, label in (("duration", "Durée"), ("hours", "Quand"))
                if offer.get(key)]
    return NextStep(title=str(offer.get("title") or ""), price=price_words(offer), person=dict(person), why=why,
                    offer=dict(offer), details=details)


__all__ = ["APPETITE_LEVELS", "MATURITY_LEVELS", "Levels", "NextStep", "Question", "appetite_level", "levels",
           "next_step", "parse_answers", "questions", "stored_levels"]
