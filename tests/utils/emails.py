"""Every e-mail template the library ships (trigger x family variant), rendered as it leaves: the sample context
of its family, tracked links signed like the dispatcher's (real lengths), and the MIME parts read back."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes
from email.message import Message
from html.parser import HTMLParser

from integrations.base import OutgoingMessage
from integrations.email_smtp import build_email
from orchestrator.core.links import links_for
from templates.preview import FAMILIES, sample_context
from templates.render import MESSAGES_DIR, Rendered, library

SECRET = "un-secret-de-test-assez-long-pour-signer-les-liens"
BASE_URL = "https://declic.ardeche.fr"
MESSAGE_ID = 1_234_567


def email_templates() -> list[tuple[str, str, str]]:
    """(template name, trigger, family) of every e-mail leaf template; a trigger's default.j2 is rendered for the
    catch-all family."""
    found = []
    for path in sorted((MESSAGES_DIR / "email").glob("*/*.j2")):
        trigger, stem = path.parent.name, path.name.split(".")[0]
        found.append((f"email/{trigger}/{path.name}", trigger, stem if stem in FAMILIES else "autre"))
    return found


def render_email(name: str, trigger: str, family: str, **overrides) -> tuple[Rendered, dict]:
    links = links_for(SECRET, BASE_URL, MESSAGE_ID, now=dt.datetime.now(dt.UTC))
    context = sample_context(family, trigger, links=links, **overrides)
    return library().render(name, context), context


def mime_parts(rendered: Rendered, recipient: str = "contact@exemple.fr") -> tuple[str, str]:
    """The plain-text and HTML parts of the wire message the SMTP channel builds, decoded."""
    msg = OutgoingMessage(message_id=MESSAGE_ID, channel="email", recipient=recipient, subject=rendered.subject,
                          body=rendered.body, html_body=rendered.html, rfc_message_id="<declic.1@declic.ardeche.fr>")
    parsed = message_from_bytes(build_email(msg, "Privas Centre Ardèche <declic@declic.ardeche.fr>"))
    parts: dict[str, str] = {}
    for part in parsed.walk():
        if isinstance(part, Message) and part.get_content_maintype() == "text":
            parts[part.get_content_subtype()] = part.get_payload(decode=True).decode(part.get_content_charset())
    return parts["plain"], parts["html"]


class HtmlReader(HTMLParser):
    """Links (href, text) in order, tables and their roles, and the text a reader sees (no title, style or
    hidden preheader)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self.tables: list[str | None] = []
        self.visible: list[str] = []
        self.lang: str | None = None
        self._hidden: list[str] = []
        self._link: list[str] | None = None
        self._href = ""
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "table":
            self.tables.append(a.get("role"))
        if tag in ("title", "style") or "display:none" in (a.get("style") or "").replace(" ", ""):
            self._hidden.append(tag)
        elif self._hidden and tag == self._hidden[-1]:
            self._hidden.append(tag)
        if tag == "a":
            self._href, self._link = a.get("href") or "", []

    def handle_endtag(self, tag):
        if self._hidden and tag == self._hidden[-1]:
            self._hidden.pop()
        if tag == "a" and self._link is not None:
            self.links.append((self._href, "".join(self._link).strip()))
            self._link = None

    def handle_data(self, data):
        if self._hidden:
            return
        self.visible.append(data)
        if self._link is not None:
            self._link.append(data)
