"""The French words a person reads for every code Déclic stores: one catalogue for the CLI, the dashboard,
the exports and the reports.

Pure (stdlib only, plus the shipped trade families). Codes stay English in the store and in `--json` outputs
(stable keys for machines); what a person reads goes through `label(kind, code)` or the helpers below.
An unknown code is never shown raw when a readable form exists: `label` falls back to the code with its
underscores turned into spaces.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from zoneinfo import ZoneInfo

from segments.taxonomy import families

# A message's status in the outbox, and the steps of its history.
MESSAGE_STATUS = {
    "planned": "prévu",
    "claimed": "en cours d'envoi",
    "handed_over": "transmis au serveur ou au prestataire",
    "sent": "envoyé",
    "delivered": "reçu",
    "unknown": "issue inconnue",
    "failed": "échec",
    "cancelled": "annulé",
    "retry": "nouvel essai prévu",
    "deferred": "reporté (cadence du destinataire)",
    "bounced": "rejeté",
    "delayed": "retardé",
    "opened": "ouvert",
    "clicked": "cliqué",
    "resend": "renvoi décidé par un opérateur",
}
# A campaign's status.
CAMPAIGN_STATUS = {"active": "en cours", "paused": "en pause", "ended": "terminée"}
# The two arms of an enrollment.
ARMS = {"treatment": "contactée", "holdout": "groupe témoin"}
# A "Ce n'est pas pour moi" answer's reason (`orchestrator.core.campaign_spec.NOT_FOR_ME_REASONS`, the owner's own
# words on the landing page), as a short label for tables and timelines; `pas_le_temps` is an answer of the first
# version of the landing page, before the fixed list.
NOT_FOR_ME = {
    "pas_le_moment": "pas le moment",
    "trop_cher": "trop cher",
    "pas_utile": "pas utile pour son métier",
    "par_ou_commencer": "ne sait pas par où commencer",
    "transmettre": "va transmettre ou arrêter",
    "deja_equipe": "déjà équipé",
    "autre": "autre raison",
    "pas_le_temps": "pas le temps",
}
# A feed's lifecycle (store/feeds.py speaks French already; these are its stored codes).
FEED_STATUS = {"active": "actif", "paused": "en pause", "failing": "en échec", "never": "jamais relevé",
               "ok": "à jour"}
CHANNELS = {"email": "E-mail", "sms": "SMS", "letter": "Courrier", "call": "Appel", "webhook": "Partenaire",
            "relay": "Intermédiaire"}
TRIGGERS = {
    "creation": "Création",
    "first_hire": "Première embauche",
    "takeover": "Reprise",
    "critical_period": "Période difficile",
    "consolidation": "Consolidation",
    "closure": "Fermeture",
    "activity_change": "Changement d'activité",
    "deadline": "Échéance réglementaire",
    "collective_procedure": "Procédure collective",
    "tool_adopted": "Adoption d'un outil",
    "offer_enrolled": "Inscription à une offre",
    "diagnostic_completed": "Diagnostic fait",
    "ambassador_met": "Rencontre avec un ambassadeur",
}
STEP_CONDITIONS = {"no_click": "si pas de clic", "clicked": "si clic", "no_conversion": "si pas d'inscription"}
ROLES = {"operator": "opérateur", "collectivite": "collectivité", "ambassador": "ambassadeur"}
LEVELS = {"commune": "commune", "epci": "intercommunalité", "departement": "département", "region": "région"}

# Why the planner did not enrol a business or stopped a journey, and why the dispatcher cancelled a message.
SKIP_REASONS = {
    "already_enrolled": "déjà inscrite",
    "closed": "entreprise fermée",
    "not_to_contact": "à ne pas contacter",
    "recently_contacted": "contactée récemment",
    "no_channel": "aucun canal joignable",
    "opted_out": "désinscrite",
    "capped": "plafond de sollicitations atteint",
    "condition_not_met": "condition de l'étape non remplie",
    "covered": "déjà suivie par une autre campagne",
    "global_holdout": "groupe témoin global du territoire",
    "relay_handled": "prise en charge par son intermédiaire",
    "campaign_paused": "campagne en pause",
    "campaign_ended": "campagne terminée",
    "no_consent": "sans consentement à l'appel",
    "opt-out": "désinscrite",
}

# The counters `declic plan` and `declic dispatch` print (the flows' return values).
RUN_COUNTS = {
    "events": "événements lus",
    "enrolled": "entreprises inscrites",
    "messages": "messages planifiés",
    "skipped": "entreprises non inscrites",
    "ambassador_gaps": "inscriptions sans ambassadeur",
    "covered": "déjà suivies par une autre campagne",
    "followup_messages": "relances planifiées",
    "followup_stopped": "parcours arrêtés",
    "occurrences_started": "occurrences lancées",
    "occurrences_missed": "occurrences manquées",
    "occurrences_done": "occurrences terminées",
    "paused_campaigns": "campagnes mises en pause",
    "sent": "envoyés",
    "retry": "nouvel essai prévu",
    "failed": "en échec",
    "abandoned": "repris par un autre processus",
    "deferred": "reportés",
    "unknown": "issue inconnue",
    "cancelled": "annulés",
}

# The ingest report's counters and what they count (`declic ingest ...`, `declic events import`).
INGEST_SKIPS = {
    "already stored": "déjà enregistrées",
    "duplicate": "déjà enregistrées",
    "repeated in the file": "en double dans le fichier",
    "closed, never known": "fermées, jamais connues",
    "not a TPE": "pas une TPE",
    "kept closed (Sirene row older than the closure)": "gardées fermées (ligne Sirene antérieure à la fermeture)",
    "unchanged": "inchangées",
    "no category (INSEE)": "sans catégorie (INSEE)",
    "SIREN not in the store": "SIREN inconnu de la base",
    "already reminded": "rappel déjà émis",
    "vente without the buyer's SIREN": "vente sans le SIREN de l'acheteur",
    "rejected (outside the partner's territory)": "refusés (hors du territoire du partenaire)",
    "resolved from pending": "rattachés (entreprise connue depuis)",
    "pending (business not known yet)": "en attente (entreprise pas encore connue)",
    "stored without contacts (erased person)": "enregistrés sans coordonnées (personne effacée)",
}

# Reject reasons of the open-data readers, in the words the partner intake already uses.
_REJECT_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), french) for pattern, french in (
        (r"^invalid SIRET \(checksum\)$", "SIRET invalide (clé de contrôle fausse)"),
        (r"^invalid SIREN \(checksum\)$", "SIREN invalide (clé de contrôle fausse)"),
        (r"^invalid SIRET(.*)$", r"SIRET invalide\1"),
        (r"^invalid SIREN(.*)$", r"SIREN invalide\1"),
        (r"^wrong column count \((\d+) instead of (\d+)\)$", r"nombre de colonnes faux (\1 au lieu de \2)"),
        (r"^unknown tranche (.+)$", r"tranche d'effectif inconnue : \1"),
        (r"^unknown state (.+)$", r"état administratif inconnu : \1"),
        (r"^unreadable date (.+)$", r"date illisible : \1"),
        (r"^unknown NAF code (.+)$", r"code NAF inconnu : \1"),
        (r"^unknown commune (.+)$", r"commune inconnue : \1"),
        (r"^unknown category (.+)$", r"catégorie d'entreprise inconnue : \1"),
        (r"^unreadable year (.+)$", r"année illisible : \1"),
        (r"^not a JSON object$", "pas un objet JSON"),
        (r"^missing announcement id$", "identifiant de l'annonce manquant"),
        (r"^missing (.+)$", r"\1 manquant"),
        (r"^no SIREN in the record$", "aucun SIREN dans l'annonce"),
        (r"^family (.+)$", r"famille d'annonce non utilisée : \1"),
    )
)

# The keys of `declic report` tables and of the JSON summaries, as column headers.
REPORT_KEYS = {
    "funnel": "Entonnoir",
    "uplift": "Effet mesuré",
    "variants": "Variantes",
    "by_metier_family": "Par famille de métiers",
    "by_departement_code": "Par département",
    "by_epci_code": "Par intercommunalité",
    "by_commune_code": "Par commune",
    "by_trigger_type": "Par déclencheur",
    "by_channel": "Par canal",
    "by_variant": "Par variante",
    "adoption": "Adoption d'outils",
    "events_accepted": "événements acceptés (API)",
    "events_rejected": "événements refusés",
    "duplicates_ignored": "doublons ignorés",
    "planned": "messages planifiés",
    "received_by_smtp": "e-mails reçus par le serveur SMTP",
    "read": "lues",
    "accepted": "acceptées",
    "rejected": "refusées",
    "stored": "enregistrées",
}

_KINDS: dict[str, Mapping[str, str]] = {
    "message_status": MESSAGE_STATUS,
    "campaign_status": CAMPAIGN_STATUS,
    "arm": ARMS,
    "feed_status": FEED_STATUS,
    "channel": CHANNELS,
    "trigger": TRIGGERS,
    "condition": STEP_CONDITIONS,
    "role": ROLES,
    "level": LEVELS,
    "skip_reason": SKIP_REASONS,
    "run_count": RUN_COUNTS,
    "report_key": REPORT_KEYS,
    "not_for_me": NOT_FOR_ME,
}


def readable(code: str) -> str:
    """The last resort for a code without a label: underscores become spaces."""
    return str(code).replace("_", " ")


def label(kind: str, code: str | None) -> str:
    """The French word for `code` of `kind` (message_status, campaign_status, arm, feed_status, channel, trigger,
    condition, role, level, skip_reason, run_count, report_key, not_for_me, family); "" for None."""
    if code is None or code == "":
        return ""
    if kind == "family":
        return family(code)
    table = _KINDS.get(kind)
    if table is None:
        raise KeyError(f"unknown label kind {kind!r}")
    return table.get(code) or readable(code)


def family(code: str | None) -> str:
    """The trade family's name from segments/data/families.csv ("Hôtellerie-restauration"); "Autres activités"
    for a business without one."""
    if not code:
        return families()["autre"].label if "autre" in families() else "Autres activités"
    found = families().get(code)
    return found.label if found else readable(code)


def channel(code: str | None, *, lower: bool = False) -> str:
    """"E-mail", "SMS", "Courrier"... (`lower` for the middle of a sentence: "e-mail", "SMS", "courrier")."""
    text = label("channel", code)
    return text if not lower or text.isupper() else text[:1].lower() + text[1:]


def run_count(key: str) -> str:
    """A counter of `declic plan`/`dispatch`: "skipped_no_channel" -> "non inscrites : aucun canal joignable"."""
    for prefix, what in (("skipped_", "non inscrites"), ("cancelled_", "annulés"), ("stopped_", "arrêtés")):
        if key.startswith(prefix):
            return f"{what} : {label('skip_reason', key.removeprefix(prefix))}"
    return label("run_count", key)


def reject_reason(reason: str) -> str:
    """A reader's reject reason in French ("invalid SIRET (checksum)" -> "SIRET invalide (clé de contrôle
    fausse)"); a reason already in French comes back unchanged."""
    text = str(reason).strip()
    for pattern, french in _REJECT_PATTERNS:
        if pattern.match(text):
            return pattern.sub(french, text)
    return INGEST_SKIPS.get(text, text)


def ingest_note(key: str) -> str:
    """A skipped or event counter of an ingest in French (already stored, pending...)."""
    return INGEST_SKIPS.get(key) or reject_reason(key)


def event_count(code: str) -> str:
    """An ingest's event counter key: a trigger type, or a business-level fact, in French."""
    return TRIGGERS.get(code) or INGEST_SKIPS.get(code) or {
        "businesses": "entreprises", "closures": "fermetures", "hires": "premières embauches",
        "created": "créations",
    }.get(code) or readable(code)


_MONTHS = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc.")


def date_fr(value: dt.date | dt.datetime | str | None, zone: str | ZoneInfo) -> str:
    """`4 déc. 2026` (a datetime is first taken to `zone`, the deployment's)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value) if "T" in value or " " in value else dt.date.fromisoformat(value)
    if isinstance(value, dt.datetime):
        value = _local(value, zone).date()
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"


def datetime_fr(value: dt.datetime | str | None, zone: str | ZoneInfo) -> str:
    """`4 déc. 2026, 22 h 59` in `zone` (the deployment's); a naive datetime is taken as UTC; "" for None."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    local = _local(value, zone)
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}, {local.hour} h {local.minute:02d}"


def _local(value: dt.datetime, zone: str | ZoneInfo) -> dt.datetime:
    zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(zone)


def count_fr(value: int | float) -> str:
    """`12 345` with a narrow no-break space, as everywhere in the CLI."""
    return f"{value:,}".replace(",", "\u202f")
