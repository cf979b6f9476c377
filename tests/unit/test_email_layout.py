"""The e-mail layout: the HTML and plain-text parts of every e-mail template say the same thing (same phone numbers,
same addresses, same links, in the same order), every number is a tel: link, no raw URL is shown in the HTML."""

from __future__ import annotations

import re

import pytest

from orchestrator.core.phones import normalise_number
from tests.utils.emails import HtmlReader, email_templates, mime_parts, render_email

TEMPLATES = email_templates()
# Looser than the renderer's own pattern on purpose: any run of 10 digits written with spaces or dots.
LOOSE_PHONE = re.compile(r"\+?\d(?:[ .]?\d){9,11}")
MAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
URL = re.compile(r"https?://\S+")

PEER = {"name": "Sophie Martin", "metier": "plombière", "phone": "06 12 34 56 78",
        "email": "sophie.martin@example.fr", "commune": "Aubenas"}
VARIANTS = {
    "complet": {},
    "sans-offre": {"offers": []},
    "pair-sans-mail": {"ambassador": {**PEER, "email": None}},
    "pair-sans-telephone": {"ambassador": {**PEER, "phone": None, "metier": None}},
    "expediteur-sans-telephone": {"sender": {"name": "CCI Ardèche", "address": "Privas", "email": "cci@exemple.fr",
                                             "phone": None}},
    "numero-outre-mer": {"ambassador": {**PEER, "phone": "0692 12 34 56"}},
}


def _parts(name, trigger, family, **overrides):
    rendered, context = render_email(name, trigger, family, **overrides)
    plain, html = mime_parts(rendered)
    return plain, HtmlReader(html), context, rendered


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name,trigger,family", TEMPLATES)
def test_text_and_html_parts_carry_the_same_numbers_addresses_and_links(name, trigger, family, variant):
    plain, html, context, _ = _parts(name, trigger, family, **VARIANTS[variant])
    hrefs = [href for href, _ in html.links]

    phones_in_text = [normalise_number(m.group(0)) for m in LOOSE_PHONE.finditer(plain)]
    shows_peer = context["ambassador"]["name"] in plain  # a procedure notice points to services, no peer
    if context["sender"].get("phone") or (shows_peer and context["ambassador"]["phone"]):
        assert phones_in_text, "the message gives a number to call"
    assert [h.removeprefix("tel:") for h in hrefs if h.startswith("tel:")] == phones_in_text
    assert [h.removeprefix("mailto:") for h in hrefs if h.startswith("mailto:")] == MAIL.findall(plain)
    urls = URL.findall(plain)
    assert [h for h in hrefs if h.startswith("http")] == urls
    main = context["links"]["short"] + "/diagnostic" if trigger == "rediagnostic" else context["links"]["landing"]
    assert urls == [main, context["links"]["unsubscribe"]]  # each written out once

    peer_phone = context["ambassador"]["phone"]
    if peer_phone and shows_peer:
        assert hrefs[0] == "tel:" + normalise_number(peer_phone), "the peer's number comes first"


@pytest.mark.parametrize("name,trigger,family", TEMPLATES)
def test_html_shows_link_texts_never_raw_urls(name, trigger, family):
    plain, html, context, rendered = _parts(name, trigger, family)
    visible = " ".join(html.visible)
    assert "http" not in visible and "/r/" not in visible
    texts = dict(html.links)
    assert texts[context["links"]["unsubscribe"]] == "Ne plus recevoir nos messages"
    main = context["links"]["short"] + "/diagnostic" if trigger == "rediagnostic" else context["links"]["landing"]
    button = texts[main]
    assert button.startswith(("Voir ", "Répondre ")) and f"{button} : {main}" in plain
    for href, text in html.links:
        assert text and not text.startswith(("http", "www")) and text.lower() not in ("ici", "cliquez ici"), href
    assert html.lang == "fr"
    assert html.tables and all(role == "presentation" for role in html.tables)
    assert "Bonjour," in visible and context["sender"]["name"] in visible


def test_the_button_wording_depends_on_the_trigger():
    labels = {}
    for name, trigger, family in TEMPLATES:
        _, html, context, _ = _parts(name, trigger, family)
        main = context["links"]["short"] + "/diagnostic" if trigger == "rediagnostic" else context["links"]["landing"]
        labels[trigger] = dict(html.links)[main]
    assert labels["creation"] == "Voir qui peut m'aider à démarrer"
    assert labels["deadline"] == "Voir qui peut m'aider à me préparer"
    assert len(set(labels.values())) >= 4


def test_the_preheader_comes_first_and_names_the_peer_and_the_sender():
    rendered, _ = render_email("email/creation/batiment.j2", "creation", "batiment")
    body = rendered.html.split("<body", 1)[1]
    hidden = re.search(r'<div style="display:none[^>]*>([^<&]+)', body)
    assert hidden and body.index(hidden.group(1)) < body.index("Bonjour,")
    assert "Sophie Martin, plombière à Aubenas" in hidden.group(1) and "Privas Centre Ardèche" in hidden.group(1)


def test_the_campaign_logo_is_shown_with_its_alt_text_and_the_name_stays_in_text():
    sender = {"name": "Département de l'Ardèche", "address": "Privas", "email": None, "phone": "04 75 66 77 07",
              "logo": {"url": "https://www.ardeche.fr/logo.png", "alt": "Département de l'Ardèche"}}
    rendered, _ = render_email("email/creation/default.j2", "creation", "autre", sender=sender)
    assert '<img src="https://www.ardeche.fr/logo.png" alt="Département de l&#39;Ardèche"' in rendered.html
    assert "Département de l&#39;Ardèche</p>" in rendered.html  # readable with images off
    without, _ = render_email("email/creation/default.j2", "creation", "autre")
    assert "<img" not in without.html


def test_names_are_escaped_in_the_html_part():
    rendered, _ = render_email("email/creation/default.j2", "creation", "autre",
                               sender={"name": "<b>Mairie</b> & Cie", "address": "Privas", "email": None,
                                       "phone": "04 75 00 00 00"})
    assert "<b>Mairie</b>" not in rendered.html and "&lt;b&gt;Mairie&lt;/b&gt; &amp; Cie" in rendered.html


def test_a_campaign_spec_logo_reaches_the_email_and_a_plain_http_logo_is_refused():
    import yaml
    from pydantic import ValidationError

    from orchestrator.core.campaign_spec import CampaignSpec
    from templates.render import MESSAGES_DIR

    raw = yaml.safe_load((MESSAGES_DIR.parents[1] / "orchestrator/samples/campagne-creation-35.yaml").read_text())
    raw["sender"]["logo"] = {"url": "https://www.ille-et-vilaine.fr/logo.png", "alt": "Ille-et-Vilaine, le Département"}
    sender = CampaignSpec.model_validate(raw).sender.model_dump()
    rendered, _ = render_email("email/creation/default.j2", "creation", "autre", sender=sender)
    assert '<img src="https://www.ille-et-vilaine.fr/logo.png" alt="Ille-et-Vilaine, le Département"' in rendered.html
    raw["sender"]["logo"]["url"] = "http://www.ille-et-vilaine.fr/logo.png"
    with pytest.raises(ValidationError):
        CampaignSpec.model_validate(raw)
