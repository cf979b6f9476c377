"""Render messages from the template library: compiled once, rendered per business, never sent here.

Layout: ``templates/messages/<channel>/<trigger>/<family>.j2`` with ``default.j2`` as the fallback for a
trigger; variants are ``<family>.<variant>.j2``. A template defines the blocks ``subject`` (e-mail,
letter) and ``body`` (text), and optionally ``html``. Families share structure by inheritance
(``{% extends "email/base.j2" %}``). A missing variable is an error (StrictUndefined), never an empty hole.

Context contract (every key present; values may be None where said):
  business   {siret, name, metier, family, family_label, commune, postal_code}
  ambassador {name, metier, phone, email, commune} or the campaign's fallback contact (never None)
  offers     list of {title, provider, kind, format, duration, hours, price} (0 to 2)
  sender     {name, address, email, phone}   the collectivité or network that speaks
  links      {landing, unsubscribe}           tracked URLs, no personal data in them
  trigger    {type, occurred_on}
  deadline   {label, date} or None
  campaign   {name}

Helpers available to every template: ``trade(family)`` returns the trade's words from ``trades.yaml`` (group,
gain, proof, hire, takeover, critical, invoices, sms; unknown families get ``autre``); filters ``de`` (``de
plombier`` / ``d'ébéniste``), ``capfirst``, ``date_fr`` (``1er septembre 2027``), ``price`` (``gratuit``,
``30 €``, ``à demander`` when unknown), ``sms_safe`` (fold to GSM-7), ``oneline`` and ``html_paragraphs``.

Blocks are rendered one by one, so the top level of a template never runs: imports go inside the blocks that
use them (``{% import "_parts.j2" as parts with context %}``), and nested blocks that need them are ``scoped``.
"""

from __future__ import annotations

import datetime as dt
import html as html_lib
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2 import nodes

MESSAGES_DIR = Path(__file__).parent / "messages"
TRADES_FILE = Path(__file__).parent / "trades.yaml"
FALLBACK_FAMILY = "autre"

_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre")
# Letters outside the GSM-7 alphabet that French text uses; one of them turns a whole SMS into UCS-2.
_SMS_FOLD = str.maketrans({
    "ê": "e", "â": "a", "ô": "o", "î": "i", "û": "u", "ë": "e", "ï": "i", "ç": "c", "ÿ": "y", "á": "a",
    "í": "i", "ó": "o", "ú": "u", "Ê": "E", "Â": "A", "Ô": "O", "Î": "I", "Û": "U", "Ë": "E", "Ï": "I",
    "È": "E", "À": "A", "Ù": "U", "œ": "oe", "Œ": "OE", "æ": "ae", "’": "'", "‘": "'", "«": '"', "»": '"',
    "“": '"', "”": '"', "–": "-", "—": "-", "…": "...", "\u00a0": " ", "\u202f": " ",
})
_URL = re.compile(r"https?://\S+")


_BLANK_RUN = re.compile(r"\n{3,}")
_TRAILING = re.compile(r"[ \t]+\n")


def tidy(text: str) -> str:
    """Rendered text without trailing spaces, runs of blank lines (left by tags) or outer whitespace."""
    return _BLANK_RUN.sub("\n\n", _TRAILING.sub("\n", text)).strip()


@lru_cache(maxsize=1)
def load_trades() -> dict[str, dict[str, str]]:
    """The per-family trade phrases and gains (``trades.yaml``), keyed by family."""
    return yaml.safe_load(TRADES_FILE.read_text(encoding="utf-8"))


def trade(family: str | None) -> dict[str, str]:
    """The trade phrases of a family; unknown families get the generic ``autre`` entry."""
    trades = load_trades()
    return trades.get(family or FALLBACK_FAMILY) or trades[FALLBACK_FAMILY]


def date_fr(value: Any) -> str:
    """A date in plain French: ``1er septembre 2027`` (accepts dates, datetimes and ISO strings)."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    day = "1er" if value.day == 1 else str(value.day)
    return f"{day} {_MONTHS[value.month - 1]} {value.year}"


def price_fr(value: Any) -> str:
    """A price as owners read it: ``gratuit`` for 0, ``45 €`` for a number, text unchanged; an unknown price
    (None) is never shown as free."""
    if value is None:
        return "à demander"
    if value == 0 or value == "0":
        return "gratuit"
    if isinstance(value, int | float):
        amount = f"{value:,.2f}".rstrip("0").rstrip(".").replace(",", "\u202f").replace(".", ",")
        return f"{amount} €"
    return str(value)


def sms_safe(text: str) -> str:
    """Text folded into the GSM-7 alphabet (ê -> e, ç -> c ...), so names never force UCS-2 on an SMS."""
    return unicodedata.normalize("NFC", str(text)).translate(_SMS_FOLD)


def de(word: Any) -> str:
    """French ``de`` before a word, elided before a vowel or a mute h: ``de plombier``, ``d'ébéniste``."""
    text = str(word)
    first = unicodedata.normalize("NFD", text[:1].lower())[:1]
    return f"d'{text}" if first and first in "aeiouyh" else f"de {text}"


def capfirst(text: Any) -> str:
    """Text with its first letter in upper case, the rest untouched (unlike ``capitalize``)."""
    text = str(text)
    return text[:1].upper() + text[1:]


def oneline(text: str) -> str:
    """Text on one line: every run of whitespace (line breaks included) becomes one space."""
    return " ".join(str(text).split())


def html_paragraphs(text: str) -> str:
    """Plain text as minimal HTML: escaped, one <p> per paragraph, line breaks kept, URLs as links."""
    parts = []
    for para in re.split(r"\n\s*\n", str(text).strip()):
        escaped = html_lib.escape(para.strip())
        escaped = _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
        parts.append("<p>" + escaped.replace("\n", "<br>\n") + "</p>")
    return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A message's final text."""

    subject: str
    body: str
    html: str | None = None


class TemplateLibrary:
    """The shipped templates (or another folder), compiled once and cached."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root or MESSAGES_DIR)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.root)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,  # compiled once per process; no stat() of every import on every render
        )
        self.env.filters.update(de=de, capfirst=capfirst, date_fr=date_fr, price=price_fr, sms_safe=sms_safe,
                                oneline=oneline, html_paragraphs=html_paragraphs)
        self.env.globals.update(trade=trade)
        self._parents: dict[str, str | None] = {}

    def resolve(self, channel: str, trigger: str, family: str, variant: str | None = None) -> str:
        """The template name for a message: the family's own, else the trigger's default."""
        names = []
        if variant:
            names.append(f"{channel}/{trigger}/{family}.{variant}.j2")
        names += [f"{channel}/{trigger}/{family}.j2", f"{channel}/{trigger}/default.j2"]
        for name in names:
            if (self.root / name).is_file():
                return name
        raise LookupError(f"no template for channel={channel} trigger={trigger} family={family}")

    def template(self, name: str) -> jinja2.Template:
        """A compiled template (the environment caches compilation)."""
        return self.env.get_template(name)

    def parent(self, name: str) -> str | None:
        """The template a template extends (a constant ``{% extends %}``), or None."""
        if name not in self._parents:
            source = self.env.loader.get_source(self.env, name)[0]  # type: ignore[union-attr]
            found = [n.template.value for n in self.env.parse(source).find_all(nodes.Extends)
                     if isinstance(n.template, nodes.Const)]
            self._parents[name] = found[0] if found else None
        return self._parents[name]

    def chain(self, name: str) -> list[str]:
        """A template and its ancestors, the template first."""
        names = [name]
        while (up := self.parent(names[-1])) is not None:
            names.append(up)
        return names

    def render(self, name: str, context: dict[str, Any]) -> Rendered:
        """Render the subject, body and optional html blocks of one template."""
        tmpl = self.template(name)
        ctx = tmpl.new_context(context)
        # Blocks are rendered one by one without running the template top-level, so the parents' blocks
        # are registered here, in inheritance order, exactly as ``{% extends %}`` would (super() works).
        for ancestor in self.chain(name)[1:]:
            for block_name, fn in self.template(ancestor).blocks.items():
                ctx.blocks.setdefault(block_name, []).append(fn)

        def block(block_name: str) -> str | None:
            fns = ctx.blocks.get(block_name)
            if not fns:
                return None
            raw = "".join(fns[0](ctx))
            # later blocks that call self.<name>() (the html block wraps the body) reuse this output
            ctx.blocks[block_name] = [lambda _ctx, raw=raw: iter((raw,)), *fns[1:]]
            return tidy(raw)

        body = block("body")
        if body is None:
            raise LookupError(f"template {name} has no body block")
        return Rendered(subject=block("subject") or "", body=body + "\n", html=block("html"))


@lru_cache(maxsize=4)
def library(root: str | None = None) -> TemplateLibrary:
    """The shared library for a folder (compiled templates live as long as the process)."""
    return TemplateLibrary(Path(root) if root else None)
