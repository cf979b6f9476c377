"""Personal data done right (issue 15): access (export), erasure and objection, keyed hashes of erased identities.

The application layer: it gathers through `store.privacy`, renders what was sent with the templates,
computes keyed hashes with the secret key, and applies through the store. The CLI (`declic privacy ...`),
the dashboard and the flows call these functions, never the SQL.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from orchestrator.app.bootstrap import App
from orchestrator.app.dispatch import outgoing
from store import audit
from store import privacy as sp

EXPORT_FORMAT = "declic-export-donnees/1"
KINDS = {"email": "e-mail", "phone": "téléphone", "siret": "SIRET"}


class PrivacyError(ValueError):
    """A request that cannot be done, said in plain French."""


def clean_siret(value: str) -> str:
    """A SIRET as typed (spaces allowed) -> 14 digits, else PrivacyError."""
    siret = "".join(value.split())
    if len(siret) != 14 or not siret.isdigit():
        raise PrivacyError(f"« {value} » n'est pas un SIRET (14 chiffres).")
    return siret


fingerprint = sp.fingerprint


def pseudo_siret(secret: str, siret: str) -> str:
    """What an erased business's SIRET becomes: 14 characters that are not digits, unique per SIRET."""
    return "X" + fingerprint(secret, "siret", siret)[:13]


# --- access (art. 15) ---


def _iso(value: Any, zone: ZoneInfo) -> Any:
    if isinstance(value, dt.datetime):
        value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return value.astimezone(zone).isoformat(timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _plain(value: Any, zone: ZoneInfo) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v, zone) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, zone) for v in value]
    return _iso(value, zone)


def source_label(source: str | None, partners: dict[int, str]) -> str:
    """Where a fact came from, as a person reads it."""
    if not source:
        return "inconnue"
    if source.startswith("partner:"):
        ref = source.split(":", 1)[1]
        name = partners.get(int(ref)) if ref.isdigit() else ref
        return f"partenaire {name or ref}"
    if source in partners.values():
        return f"partenaire {source}"
    return {"sirene": "répertoire Sirene (INSEE)", "bodacc": "BODACC (annonces légales)",
            "calendar": "calendrier réglementaire", "landing": "formulaire de la page Déclic",
            "sirene-api": "répertoire Sirene (INSEE)", "bodacc-api": "BODACC (annonces légales)"}.get(source, source)


def _sources(raw: dict[str, Any], zone: ZoneInfo) -> list[dict[str, Any]]:
    """Each fact held with where it came from and when (hours in `zone`)."""
    b, partners, events = raw["business"], raw["partners"], raw["events"]
    first_seen: dict[str, Any] = {}
    for e in events:
        first_seen.setdefault(e["source"], e["received_at"])
        if e.get("partner_id") and e["partner_id"] in partners:
            first_seen.setdefault(partners[e["partner_id"]], e["received_at"])
    origin = b.get("created_by") or ("sirene" if b.get("head_office") is not None else
                                     (events[0]["source"] if events else None))
    out = [{"donnée": "identité (nom, activité, commune)",
            "valeur": " ; ".join(str(x) for x in (b.get("name"), b.get("naf_code"), b.get("commune_code")) if x),
            "source": source_label(origin, partners), "date": _iso(first_seen.get(origin, b.get("created_at")), zone)}]
    for label, column, src in (("e-mail", "email", "email_source"), ("téléphone", "phone", "phone_source"),
                               ("adresse postale", "street", "address_source")):
        if b.get(column):
            value = b[column] if column != "street" else " ".join(
                str(x) for x in (b.get("street"), b.get("postal_code"), b.get("city")) if x)
            where = b.get(src)
            out.append({"donnée": label, "valeur": value, "source": source_label(where, partners),
                        "date": _iso(first_seen.get(where or "", b.get("updated_at")), zone)})
    for e in events:
        out.append({"donnée": f"événement « {e['type']} » du {_iso(e['occurred_on'], zone)}",
                    "valeur": e["external_id"], "source": source_label(e["source"], partners),
                    "date": _iso(e["received_at"], zone)})
    return out


def _sent_text(app: App, message: dict[str, Any]) -> dict[str, Any]:
    """The text of a message as it left (rendered again from its stored context, as dispatch did)."""
    if message["status"] not in ("sent", "delivered", "handed_over", "unknown", "claimed") or not message["context"]:
        return {}
    try:
        out = outgoing(app, SimpleNamespace(**{k: message[k] for k in (
            "id", "channel", "template", "variant", "recipient", "campaign_id", "business_id", "context")}))
    except Exception as exc:  # noqa: BLE001 (a template changed since: say so rather than fail the export)
        return {"texte": f"texte indisponible ({type(exc).__name__})"}
    return {"objet": out.subject, "texte": out.body}


def export_business(app: App, siret: str, *, actor: str | None = None, role: str = "cli",
                    territory: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything held about one business and its contacts, in one JSON-ready document (French keys).

    With an `actor`, the export is written to the audit trail (who, when, which business, role, territory)."""
    siret = clean_siret(siret)
    with app.engine.begin() as conn:
        row = sp.business_by_siret(conn, siret)
        if row is None:
            raise PrivacyError(f"Aucune entreprise n'a le SIRET {siret}.")
        raw = sp.gather(conn, row.id)
        consents = sp.consents_of(conn, row.id)
        if actor:
            audit.record(conn, actor=actor, role=role, territory=territory, action="privacy_export",
                         target=f"business:{row.id}", at=app.clock())
    b = raw["business"]
    partners, zone = raw["partners"], app.zone
    messages = []
    for m in raw["messages"]:
        messages.append({
            "campagne": m["campaign"], "porteur": m["owner"], "canal": m["channel"], "étape": m["step"],
            "modèle": m["template"], "destinataire": m["recipient"], "statut": m["status"],
            "prévu le": _iso(m["due_at"], zone), "envoyé le": _iso(m["sent_at"], zone), **_sent_text(app, m),
            "historique": [{"étape": h["status"], "le": _iso(h["at"], zone), "détail": h["detail"]}
                           for h in m["history"]],
        })
    return _plain({
        "format": EXPORT_FORMAT,
        "produit le": app.clock(),
        "siret": siret,
        "entreprise": {k: v for k, v in b.items() if k not in ("id",)},
        "sources": _sources(raw, zone),
        "événements": [{"type": e["type"], "le": e["occurred_on"], "reçu le": e["received_at"],
                        "source": source_label(e["source"], partners), "référence": e["external_id"],
                        "détails": e["payload"]} for e in raw["events"]],
        "propositions": [{"champ": p["field"], "valeur actuelle": p["current_value"],
                          "valeur proposée": p["proposed_value"], "le": p["created_at"],
                          "partenaire": partners.get(p["partner_id"])} for p in raw["proposals"]],
        "inscriptions": [{"campagne": e["campaign"], "porteur": e["owner"], "déclencheur": e["trigger_type"],
                          "groupe": "témoin" if e["arm"] == "holdout" else "contacté", "variante": e["variant"],
                          "le": e["enrolled_at"]} for e in raw["enrollments"]],
        "messages": messages,
        "interactions": [{"type": i["kind"], "le": i["at"], "campagne": i["campaign"], "données": i["data"]}
                         for i in raw["interactions"]],
        "appels": [{"numéro": t["phone"], "script": t["script"], "statut": t["status"], "prévu le": t["due_at"],
                    "essais": t["attempts"], "note": t["outcome_note"], "historique": t["history"]}
                   for t in raw["call_tasks"]],
        "consentements": consents,
        "oppositions": [{"canal": KINDS.get(s["channel"], s["channel"]), "adresse": s["address"],
                         "raison": s["reason"], "source": s["source"], "le": s["created_at"]}
                        for s in raw["suppressions"]],
    }, zone)


def export_json(data: dict[str, Any]) -> str:
    """The export as indented UTF-8 JSON."""
    return json.dumps(data, ensure_ascii=False, indent=2, default=str)


SECTIONS = (
    ("sources", "D'où viennent ces informations"),
    ("événements", "Événements reçus"),
    ("propositions", "Informations proposées par un partenaire"),
    ("inscriptions", "Campagnes"),
    ("messages", "Messages"),
    ("interactions", "Vos réponses et actions"),
    ("appels", "Appels"),
    ("consentements", "Vos accords"),
    ("oppositions", "Vos oppositions"),
)


def export_pdf(data: dict[str, Any]) -> bytes:
    """The same export as a short French PDF (DejaVu Sans, A4)."""
    # The PDF library and the letter fonts load only for a PDF export (about 1 s of start-up otherwise).
    from fpdf import FPDF

    from integrations.letter_pdf import FONT_BOLD, FONT_REGULAR

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_font("DejaVu", "", str(FONT_REGULAR))
    pdf.add_font("DejaVu", "B", str(FONT_BOLD))
    pdf.set_title(f"Données détenues sur {data['siret']}")
    pdf.add_page()
    width = pdf.epw

    def line(text: str, size: int = 10, bold: bool = False) -> None:
        pdf.set_font("DejaVu", "B" if bold else "", size)
        pdf.multi_cell(width, size * 0.5, text, new_x="LMARGIN", new_y="NEXT")

    line("Les informations que nous avons sur votre entreprise", 15, True)
    line(f"SIRET {data['siret']}. Document produit le {str(data['produit le'])[:10]}.")
    line("Vous pouvez demander de les corriger ou de les effacer. Répondez à un de nos messages, "
         "ou écrivez à la collectivité qui vous a contacté.")
    pdf.ln(3)
    line("Votre entreprise", 12, True)
    for key, value in data["entreprise"].items():
        if value not in (None, "", [], {}):
            line(f"{key} : {value}", 9)
    for key, title in SECTIONS:
        items = data.get(key) or []
        pdf.ln(3)
        line(title, 12, True)
        if not items:
            line("Rien.", 9)
        for item in items:
            parts = [f"{k} : {_short(v)}" for k, v in item.items() if v not in (None, "", [], {})]
            line(" · ".join(parts), 9)
            pdf.ln(1)
    return bytes(pdf.output())


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 2000 else text[:1999] + "…"


@dataclass
class Erasure:
    """What an erasure did."""
    business_id: int
    rows: dict[str, int] = field(default_factory=dict)
    hashes: int = 0


def erase(app: App, siret: str, *, reason: str, actor: str, role: str = "cli",
          territory: dict[str, Any] | None = None) -> Erasure:
    """Erase the personal data of one business and its contacts everywhere (art. 17 and 21).

    Rows stay so that past campaigns count the same; their personal columns are emptied. The SIRET, the
    e-mails and the phones are kept only as keyed hashes in the suppression list, so that a later Sirene
    row, BODACC record or partner event about them never contacts them nor stores their contacts again.
    """
    siret = clean_siret(siret)
    if not reason.strip():
        raise PrivacyError("Indiquez la raison de l'effacement (--reason).")
    secret = app.settings.resolved_secret
    now = app.clock()
    with app.engine.begin() as conn:
        row = sp.business_by_siret(conn, siret)
        if row is None:
            raise PrivacyError(f"Aucune entreprise n'a le SIRET {siret}.")
        addresses = sp.addresses_of(conn, row.id)
        hashed = [("siret", None, fingerprint(secret, "siret", siret))]
        hashed += [(kind, address, fingerprint(secret, kind, address)) for kind, address in sorted(addresses)]
        done = Erasure(row.id)
        done.rows = sp.erase_business(conn, row.id, siret=siret, pseudo_siret=pseudo_siret(secret, siret), now=now)
        done.rows["consent"] = sp.delete_consents(conn, row.id)
        done.hashes = sp.keep_hashes(conn, hashed, now=now)
        audit.record(conn, actor=actor, role=role, territory=territory or {}, action="erase",
                     target=f"business:{row.id}", detail={"reason": reason.strip(), "rows": done.rows},
                     at=now)
    return done


def erased_ids(secret: str, conn, views) -> set[int]:
    """The businesses among `views` (id, siret, email, phone) whose SIRET, e-mail or phone was erased."""
    if not sp.any_erased(conn):  # 17 % of a large occurrence's CPU went into these hashes
        return set()
    wanted: dict[str, set[int]] = {}
    for b in views:
        for kind, value in (("siret", b.siret), ("email", b.email), ("phone", b.phone)):
            if value:
                wanted.setdefault(fingerprint(secret, kind, value), set()).add(b.id)
    found = sp.hashed_among(conn, wanted)
    return {id_ for digest in found for id_ in wanted[digest]}


def guard_candidates(app: App, conn, candidates: list) -> list:
    """Planning's last gate: a business that an erased identity came back as (a new Sirene row, a partner
    event) loses its contacts and is marked not to contact before anything is planned for it."""
    if not candidates:
        return candidates
    views = {c.business.id: c.business for c in candidates}
    erased = erased_ids(app.settings.resolved_secret, conn, views.values())
    if erased:
        sp.forget_contacts(conn, erased, app.clock())
    # A specific call consent (to some owner) lets the planner plan a call; the dispatcher keeps it for that owner.
    consented = sp.with_call_consent(conn, [i for i, b in views.items() if b.phone and not b.phone_consent]) - erased
    if not erased and not consented:
        return candidates
    out = []
    for c in candidates:
        if c.business.id in erased:
            c = replace(c, business=replace(c.business, email=None, phone=None, phone_consent=False,
                                            do_not_contact=True))
        elif c.business.id in consented:
            c = replace(c, business=replace(c.business, phone_consent=True))
        out.append(c)
    return out


# --- retention ---

TABLE_LABELS = {"business": "contacts des entreprises", "message": "textes des messages",
                "interaction": "notes libres des réponses", "calltask": "numéros et notes d'appel",
                "triggerevent": "détails libres des partenaires", "notice": "courriels de rappel aux ambassadeurs"}


def purge(app: App, *, dry_run: bool, actor: str = "flow:privacy-retention", role: str = "flow"
          ) -> dict[str, dict[str, int]]:
    """Apply the retention policy of the settings at the app's clock; {table: {owner: rows}}.

    `dry_run` only counts. The CLI (`declic privacy purge`) and the nightly flow call this same function.
    """
    now = app.clock()
    contact_before = now - dt.timedelta(days=app.settings.retention_contact_days)
    text_before = now - dt.timedelta(days=app.settings.retention_text_days)
    with app.engine.begin() as conn:
        due = sp.retention_due(conn, contact_before=contact_before, text_before=text_before)
        counts: dict[str, dict[str, int]] = {}
        for (table, owner), ids in sorted(due.items()):
            counts.setdefault(table, {})[owner] = len(ids)
        if not dry_run and due:
            sp.apply_retention(conn, due, now)
            audit.record(conn, actor=actor, role=role, action="purge", target="retention",
                         detail={"counts": counts}, at=now)
    return counts


# --- audit trail ---


def audit_entries(app: App, *, since: dt.datetime | None = None, user: str | None = None,
                  limit: int = 1000) -> list[dict[str, Any]]:
    """The audit trail, latest first, with the action said in French."""
    with app.engine.connect() as conn:
        rows = audit.entries(conn, since=since, actor=user, limit=limit)
    for r in rows:
        r["action_label"] = audit.ACTIONS.get(r["action"], r["action"])
    return rows


# --- records of processing (art. 30) ---

CHANNEL_WORDS = {"email": "e-mail", "sms": "SMS", "letter": "courrier", "call": "appel", "webhook": "envoi à un outil"}
TRIGGER_WORDS = {"creation": "création", "first_hire": "première embauche", "takeover": "reprise",
                 "critical_period": "période difficile", "consolidation": "consolidation", "closure": "fermeture",
                 "activity_change": "changement d'activité", "deadline": "échéance réglementaire"}


def register(app: App, owner: str) -> str:
    """The register entry (art. 30 GDPR) of each campaign of `owner`, in French Markdown, from store and spec."""
    with app.engine.connect() as conn:
        partners = sp.partner_names(conn)
        campaigns = sp.owner_campaigns(conn, owner)
    if not campaigns:
        raise PrivacyError(f"Aucune campagne n'est portée par « {owner} ».")
    s = app.settings
    lines = [f"# Registre des traitements : {owner}", "",
             f"Produit le {app.clock().astimezone(app.zone):%d/%m/%Y} par Déclic, à partir des campagnes enregistrées.",
             ""]
    for c in campaigns:
        spec = c["spec"]
        steps = spec.get("steps") or []
        channels = sorted({CHANNEL_WORDS.get(st.get("channel"), st.get("channel")) for st in steps} |
                          {CHANNEL_WORDS.get(k, k) for k in c["channels"]})
        triggers = [TRIGGER_WORDS.get(t, t) for t in spec.get("triggers") or []]
        territory = spec.get("owner", {}).get("territory") or {}
        sources = [source_label(x, partners) for x in c["sources"]] or ["répertoire Sirene (INSEE)"]
        sender = (spec.get("sender") or {}).get("name", owner)
        where = ", ".join(f"{k} " + " ".join(map(str, v)) for k, v in territory.items() if v) or "du porteur"
        lines += [
            f"## Campagne « {spec.get('title') or c['name']} » ({c['name']})", "",
            f"- **Responsable de traitement** : {owner} ; expéditeur : {sender}.",
            "- **Finalité** : proposer aux très petites entreprises du territoire, au bon moment "
            f"({', '.join(triggers) or 'calendrier de la campagne'}), un accompagnement au numérique "
            "(un pair ambassadeur, une ou deux offres).",
            "- **Base légale** : intérêt légitime (prospection entre professionnels, sur leur métier, avec "
            "opposition gratuite dans chaque message) ; pour les appels, l'accord de la personne, donné à ce porteur.",
            "- **Personnes concernées** : dirigeants et dirigeantes de très petites entreprises, souvent "
            "entrepreneurs individuels, du territoire "
            f"({where}).",
            "- **Données** : identité de l'établissement (SIRET, nom, activité, commune, adresse), coordonnées "
            "professionnelles (e-mail, téléphone), messages envoyés, réponses, accords et oppositions.",
            f"- **Sources** : {', '.join(sources)}.",
            f"- **Canaux** : {', '.join(channels) or 'aucun'} ; {c['enrolled']} entreprise(s) inscrite(s), "
            f"{sum(c['channels'].values())} message(s) prévus ou envoyés.",
            "- **Destinataires** : les agents du porteur (tableau de bord limité à son territoire), les "
            "ambassadeurs pour les rappels demandés, les prestataires d'envoi (serveur e-mail, SMS, courrier).",
            f"- **Durées de conservation** : coordonnées {s.retention_contact_days} jours après le dernier contact "
            f"venu de la personne ; textes des messages et notes libres {s.retention_text_days} jours ; "
            "oppositions gardées (sous forme d'empreinte après un effacement).",
            "- **Sécurité** : accès par compte nominatif et rôle, limité au territoire ; jetons des partenaires "
            "stockés hachés ; journal des consultations, exports et effacements ; liens signés ; clés secrètes hors "
            "de la base.",
            "- **Droits** : accès (`declic privacy export`), effacement et opposition (`declic privacy erase`, lien "
            "de désinscription, STOP), retrait de l'accord d'appel en un clic.",
            ""]
    return "\n".join(lines)
