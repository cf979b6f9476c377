"""Render messages from the template library: compiled once, rendered per business, never sent here.

Layout: ``templates/messages/<channel>/<trigger>/<family>.j2`` with ``default.j2`` as the fallback for a
trigger; variants are ``<family>.<variant>.j2``. A template defines the blocks ``subject`` (e-mail,
letter) and ``body`` (text), and optionally ``html``. Families share structure by inheritance
(``{% extends "email/base.j2" %}``). A missing variable is an error (StrictUndefined), never an empty hole.

Context contract (every key present; values may be None where said):
  business   {siret, name, metier, family, family_label, commune, postal_code, naf (optional)}
  ambassador {name, metier, phone, email, commune, role} or the campaign's fallback contact (never None)
  offers     list of {title, provider, kind, format, duration, hours, price, grant} (0 to 2)
  sender     {name, address, email, phone}   the collectivité or network that speaks
  links      {landing, short, unsubscribe}    tracked URLs, no personal data in them (short: /s/<code>)
  trigger    {type, occurred_on}
  deadline   {label, date} or None
  campaign   {name}

Added before rendering (``templates/wording.py``): ``words`` {business, business_a, trade, catch_all}, the
business and its trade as a message names them (its NAF sub-class's reviewed wording when ``business.naf`` is
known, else its family's, else "votre entreprise"); phones in national format; ``ambassador.role`` (``pair`` or
``conseiller``, the default).

Helpers available to every template: ``trade(family)`` returns the trade's words from ``trades.yaml`` (group,
gain, proof, hire, takeover, critical, invoices, sms; unknown families get ``autre``); filters ``de`` (``de
plombier`` / ``d'ébéniste``), ``capfirst``, ``date_fr`` (``1er septembre 2027``), ``price`` (``gratuit``,
``30 €``, ``à demander`` when unknown), ``sms_safe`` (GSM-7 typography), ``oneline``, ``html_paragraphs`` and
``email_html`` (text to styled HTML: paragraphs, lists, ``tel:`` and ``mailto:`` links, never a raw URL shown).

Blocks are rendered one by one, so the top level of a template never runs: imports go inside the blocks that
use them (``{% import "_parts.j2" as parts with context %}``), and nested blocks that need them are ``scoped``.
"""

from __future__ import annotations

import datetime as dt
import html as html_lib
import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2 import meta, nodes
from jinja2.runtime import Macro
from jinja2.utils import missing

from orchestrator.core.phones import InvalidNumber, normalise_number
from templates import wording
from templates.holes import HolesPlan, holes_plan

MESSAGES_DIR = Path(__file__).parent / "messages"
TRADES_FILE = Path(__file__).parent / "trades.yaml"
FALLBACK_FAMILY = "autre"

_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre")
# Typography outside the GSM-7 alphabet with an exact plain equivalent (curly quotes, dashes, ellipsis, special
# spaces, ligatures): replaced so they never force UCS-2 on an SMS. Letters are never touched: é, è, à, ù, É
# are GSM-7, and a word with ê, ô, ç, î is reworded in the template (the linter flags it), never stripped.
_SMS_FOLD = str.maketrans({
    "œ": "oe", "Œ": "OE", "’": "'", "‘": "'", "«": '"', "»": '"', "“": '"', "”": '"', "–": "-", "—": "-",
    "…": "...", "\u00a0": " ", "\u202f": " ", "\u2009": " ",
})
_URL = re.compile(r"https?://\S+")
# A French phone number as people write it: 06 12 34 56 78, 06.12.34.56.78, +33 6 12 34 56 78, 0612345678.
PHONE = re.compile(r"(?<![\d+])(?:\+33[\s.\-]?|0)[1-9](?:[\s.\-]?\d{2}){4}(?!\d)")
# What becomes a link in an e-mail's HTML: a URL, an e-mail address, a phone number.
_LINKABLE = re.compile(rf"(?P<url>https?://[^\s<>\"]+)|(?P<mail>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)|(?P<tel>{PHONE.pattern})")
_URL_TAIL = ".,;:!?)»"


_BLANK_RUN = re.compile(r"\n{3,}")
_TRAILING = re.compile(r"[ \t]+\n")


def tidy(text: str) -> str:
    """Rendered text without trailing spaces, runs of blank lines (left by tags) or outer whitespace."""
    # Each pattern only where it can match (a substring test is a fraction of a regex pass over the text).
    if " \n" in text or "\t\n" in text:
        text = _TRAILING.sub("\n", text)
    if "\n\n\n" in text:
        text = _BLANK_RUN.sub("\n\n", text)
    return text.strip()


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
    """Text with its typography in GSM-7 (’ -> ', « -> ", nbsp -> space, œ -> oe); letters are kept as written,
    accents included ("Vous etes" reads as careless): wording avoids ê, ô, ç, î, the linter measures the rest."""
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


@lru_cache(maxsize=1024)
def tel_href(phone: str) -> str:
    """A ``tel:`` URI for a phone number as written (E.164 when it is a valid number, else its digits)."""
    try:
        return "tel:" + normalise_number(phone)
    except InvalidNumber:
        return "tel:" + re.sub(r"[^\d+]", "", phone)


def _linked(text: str, attrs: str) -> str:
    """Escaped text where phone numbers, e-mail addresses and URLs are links; a URL shows its site's name only,
    so no raw address runs off a phone's screen."""
    if "@" not in text and "://" not in text and not PHONE.search(text):
        return html_lib.escape(text)  # most lines: nothing to link
    out, last = [], 0
    for m in _LINKABLE.finditer(text):
        found, end = m.group(0), m.end()
        if m["url"]:
            trimmed = found.rstrip(_URL_TAIL)
            end -= len(found) - len(trimmed)
            href, label = trimmed, trimmed.split("//", 1)[1].split("/", 1)[0]
        elif m["mail"]:
            href, label = f"mailto:{found}", found
        else:
            href, label = tel_href(found), found
        out.append(html_lib.escape(text[last:m.start()]))
        out.append(f'<a href="{html_lib.escape(href)}" {attrs}>{html_lib.escape(label)}</a>')
        last = end
    out.append(html_lib.escape(text[last:]))
    return "".join(out)


_HTML_MEMO: dict[tuple, str] = {}


def email_html_memo(text: Any, css: dict[str, str], lines: bool = True) -> str:
    """`email_html`, remembered per (text, styles, lines): the sections a campaign repeats (offers, signature,
    the why) are converted once per process, not once per message."""
    key = (str(text), tuple(css.items()), lines)
    found = _HTML_MEMO.get(key)
    if found is None:
        if len(_HTML_MEMO) >= _MEMO_SIZE:
            _HTML_MEMO.clear()
        found = _HTML_MEMO[key] = email_html(text, css, lines)
    return found


def email_html(text: Any, css: dict[str, str], lines: bool = True) -> str:
    """Plain text as e-mail HTML with inline styles: one <p> per run of lines (the writer's line breaks kept as
    <br>, or lines joined by a space when not ``lines``), runs of ``- `` lines as a list, phones as ``tel:``,
    addresses as ``mailto:``.

    ``css`` gives the attributes of each tag (``p``, ``ul``, ``li``, ``a``): ``'style="..."'``, as the template
    writes them; mail clients drop <style> blocks, so every tag carries its own.
    """
    html_parts: list[str] = []
    for para in re.split(r"\n\s*\n", str(text).strip()):
        rows = [line.strip() for line in para.splitlines() if line.strip()]
        for is_item, run in groupby(rows, key=lambda line: line.startswith("- ")):
            if is_item:
                lis = "".join(f"<li {css['li']}>{_linked(line[2:], css['a'])}</li>" for line in run)
                html_parts.append(f"<ul {css['ul']}>{lis}</ul>")
            else:
                linked = [_linked(line, css["a"]) for line in run]
                html_parts.append(f"<p {css['p']}>{('<br>' if lines else ' ').join(linked)}</p>")
    return "\n".join(html_parts)


# The modules imported "with context" during the render of one message, per thread (see `_Template`).
_RENDERING = threading.local()


class _Template(jinja2.Template):
    """A template whose "with context" imports are made once per rendered message.

    Every block of a message imports ``_text/<trigger>.j2`` and ``_parts.j2`` with the message's context again
    (blocks are rendered one by one); each import runs the imported template's top level, which defines all its
    macros anew. During one `TemplateLibrary.render` the context's variables are one and the same dict, so the
    module built from it the first time is the one every later import would build, and is reused. An import
    whose template reads one of the importing block's locals (``self``, a loop variable) depends on the block:
    it is made anew, as Jinja does.
    """

    def make_module(self, vars=None, shared=False, locals=None):  # noqa: A002 (Jinja's signature)
        memo = getattr(_RENDERING, "modules", None)
        if memo is None or not shared or vars is None:
            return super().make_module(vars, shared, locals)
        if locals:
            reads = _free_names(self)
            if any(value is not missing and key in reads for key, value in locals.items()):
                return super().make_module(vars, shared, locals)
        key = (self.name, id(vars))
        hit = memo.get(key)
        if hit is not None and hit[0] is vars:
            return hit[1]
        module = super().make_module(vars, shared, locals)
        for name, reads in _macro_reads(self).items():
            if reads is not None and isinstance(getattr(module, name, None), Macro):
                setattr(module, name, _MemoMacro(getattr(module, name), (self.name, name), reads, vars))
        memo[key] = (vars, module)  # the dict is kept alive with its module, so its id stays its own
        return module


_MUTATORS = frozenset({"append", "extend", "insert", "pop", "remove", "clear", "update", "setdefault", "popitem",
                       "sort", "reverse", "add", "discard"})
# Macro results and HTML conversions remembered across messages (cleared when this many are kept).
_MEMO_SIZE = 20_000
_MACRO_MEMO: dict[tuple, str] = {}


class _Unfrozen(Exception):
    """A value that is not plain data: the call is not remembered."""


_SCALARS = frozenset({int, float, bool, type(None), dt.date, dt.datetime})


def _freeze(value: Any) -> Any:
    """A hashable image of plain data (equal images, equal data: 1, 1.0 and True are told apart); _Unfrozen for
    anything else, a subclass included (Markup, a dict with a default)."""
    kind = type(value)
    if kind is str:
        return value
    # A string is its own image: taken as it is without a call (most values of a context are strings).
    if kind is dict:
        return (dict, tuple([(k, v if type(v) is str else _freeze(v)) for k, v in value.items()]))
    if kind is list or kind is tuple:
        return (list, tuple([v if type(v) is str else _freeze(v) for v in value]))
    if kind in _SCALARS:
        return (kind, value)
    raise _Unfrozen


def _value_at(data: dict, path: tuple[str, ...]) -> Any:
    """The value a macro reads at `path` (``business.family``); where the path leaves plain dicts (a method, a
    missing key), the whole value read so far: never less than what the macro can see."""
    value = data.get(path[0])
    for step in path[1:]:
        if type(value) is not dict or step not in value:
            break
        value = value[step]
    return value


class _MemoMacro:
    """A macro of a module imported "with context", remembered by what it reads: its arguments and the context
    values at the paths it reads (`_macro_reads`). A campaign's offers, sender lines, the reasons and sources of
    its data, its trade's gain are rendered once, not once per message."""

    __slots__ = ("macro", "name", "reads", "vars")

    def __init__(self, macro: Macro, name: tuple[str, str], reads: tuple[tuple[str, ...], ...], vars: dict):  # noqa: A002
        self.macro, self.name, self.reads, self.vars = macro, name, reads, vars

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            key = (self.name, _freeze(args), _freeze(kwargs),
                   tuple(_freeze(_value_at(self.vars, path)) for path in self.reads))
        except _Unfrozen:
            return self.macro(*args, **kwargs)
        found = _MACRO_MEMO.get(key)
        if found is None:
            if len(_MACRO_MEMO) >= _MEMO_SIZE:
                _MACRO_MEMO.clear()
            found = _MACRO_MEMO[key] = self.macro(*args, **kwargs)
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.macro, name)


def _macro_reads(template: jinja2.Template) -> dict[str, tuple[tuple[str, ...], ...] | None]:
    """Per top-level macro of a template, the context paths it reads, its own calls to the template's other
    macros included (``("business", "family")``, ``("offers",)``); None for a macro that cannot be remembered
    (it uses ``caller``, or reads a name that is not plain context data). Computed once per template."""
    found = template.__dict__.get("_declic_macros")
    if found is not None:
        return found
    env = template.environment
    source = env.loader.get_source(env, template.name)[0]  # type: ignore[union-attr]
    tree = env.parse(source)
    macros = {m.name: m for m in tree.body if isinstance(m, nodes.Macro)}
    # Names the template's top level sets or imports: a macro reading one reads more than the context.
    top_level: set[str] = set()
    for node in tree.body:
        if isinstance(node, nodes.Macro):
            continue
        top_level |= {n.name for n in node.find_all(nodes.Name) if n.ctx == "store"}
        top_level |= {i.target for i in node.find_all(nodes.Import)}
        for imported in node.find_all(nodes.FromImport):
            top_level |= {n if isinstance(n, str) else n[-1] for n in imported.names}
        if isinstance(node, nodes.Assign | nodes.AssignBlock | nodes.Import | nodes.FromImport):
            top_level |= {n.name for n in node.find_all(nodes.Name)} if not isinstance(node, nodes.Import) else {
                node.target}
    direct: dict[str, tuple[set, set]] = {}  # macro -> (paths read, sibling macros called)
    for name, macro in macros.items():
        local = {a.name for a in macro.args} | {"caller", "varargs", "kwargs", "loop"}
        local |= {n.name for n in macro.find_all(nodes.Name) if n.ctx in ("store", "param")}
        bases: dict[int, tuple[str, ...]] = {}
        for node in macro.find_all((nodes.Getattr, nodes.Getitem)):
            chain, inner = [], node
            while isinstance(inner, nodes.Getattr | nodes.Getitem):
                step = inner.attr if isinstance(inner, nodes.Getattr) else getattr(inner.arg, "value", None)
                chain = [step if isinstance(step, str) else None, *chain]
                inner = inner.node
            if isinstance(inner, nodes.Name):
                known = []
                for step in chain:
                    if step is None:
                        break
                    known.append(step)
                path = (inner.name, *known)
                if len(path) > len(bases.get(id(inner), ())):
                    bases[id(inner)] = path
        paths, calls = set(), set()
        for node in macro.find_all(nodes.Name):
            if node.ctx != "load" or node.name in local:
                continue
            if node.name in macros:
                calls.add(node.name)
            elif node.name == "caller" or node.name in top_level:
                paths.add(None)
            elif node.name not in env.globals:
                paths.add(bases.get(id(node), (node.name,)))
        if macro.find(nodes.CallBlock) or macro.find(nodes.Import) or macro.find(nodes.FromImport) or macro.find(
                nodes.Include):
            paths.add(None)
        for call in macro.find_all(nodes.Call):  # a method that changes a context value: its effect must happen
            if isinstance(call.node, nodes.Getattr) and call.node.attr in _MUTATORS:
                base = call.node.node
                while isinstance(base, nodes.Getattr | nodes.Getitem):
                    base = base.node
                if not (isinstance(base, nodes.Name) and base.name in local):
                    paths.add(None)
        direct[name] = (paths, calls)

    def closure(name: str, seen: set[str]) -> set | None:
        paths, calls = direct[name]
        total = set(paths)
        for other in calls - seen:
            more = closure(other, seen | {other})
            if more is None:
                return None
            total |= more
        return None if None in total else total

    found = {}
    for name in macros:
        paths = closure(name, {name})
        found[name] = None if paths is None else tuple(sorted(paths))
    template._declic_macros = found  # type: ignore[attr-defined]
    return found


def _free_names(template: jinja2.Template) -> frozenset[str]:
    """The names a template reads from its context (computed once per template)."""
    names = template.__dict__.get("_declic_free")
    if names is None:
        env = template.environment
        source = env.loader.get_source(env, template.name)[0]  # type: ignore[union-attr]
        names = frozenset(meta.find_undeclared_variables(env.parse(source)))
        template._declic_free = names  # type: ignore[attr-defined]
    return names


# What a hole holds: a plain URL, a plain name (both taken out as markers), a value computed when first read (a
# message's short link), anything else (kept in the kind's key, rendered as it is).
_SHAPE_URL, _SHAPE_NAME, _DEFERRED = "url", "name", "deferred"
# Kinds of message kept (cleared when this many): an e-mail's text and HTML are about 11 kB, so at most ~50 MB.
_KINDS_SIZE = 4_000
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::\d+)?(?:/[A-Za-z0-9._~-]*)*")
_PLAIN_NAME = re.compile(r"[^\W\d_]+(?:[ '-][^\W\d_]+)*")
# A marker holds an apostrophe, so that the text tells how it was escaped where it was: as it is, by Jinja's |e
# (markupsafe: &#39;) or by `email_html` (html.escape: &#x27;). A value's apostrophes get the same.
_MARKER = re.compile("\ue000(\\d+)('|&#39;|&#x27;)\ue001")


def plain_hole(value: Any) -> str | None:
    """The shape of a hole's value that a marker stands for exactly (`_SHAPE_URL`, `_SHAPE_NAME`), or None: a URL of
    letters, digits and ``/.-_~`` only; a name of letters with single spaces, hyphens or apostrophes between them,
    starting with a capital, in NFC: nothing a link finder would see, nothing an escape changes but its apostrophes."""
    if type(value) is not str:
        return None
    if _PLAIN_URL.fullmatch(value):
        return _SHAPE_URL
    if _PLAIN_NAME.fullmatch(value) and value[0].isupper() and unicodedata.is_normalized("NFC", value):
        return _SHAPE_NAME
    return None


def _kind_key(prepared: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> tuple:
    """The frozen values at `paths` (`_value_at` of each, in one pass)."""
    out = []
    get = prepared.get
    for path in paths:
        value = get(path[0])
        if len(path) > 1:
            for step in path[1:]:
                if type(value) is not dict or step not in value:
                    break
                value = value[step]
        # Strings and None (many paths name a template's own locals, absent from the context) without a call.
        out.append(value if type(value) is str else _NONE_IMAGE if value is None else _freeze(value))
    return tuple(out)


_NONE_IMAGE = _freeze(None)


def _hole_state(prepared: dict[str, Any], path: tuple[str, ...]) -> Any:
    top, key = path
    mapping = prepared.get(top)
    if type(mapping) is not dict and not isinstance(mapping, dict):
        return _freeze(mapping)
    if key not in mapping:
        return _DEFERRED if hasattr(type(mapping), "__missing__") else None
    value = mapping[key]
    return plain_hole(value) or ("value", _freeze(value))


class _Kind:
    """A kind of message: its subject, body and HTML with markers where the holes' values go."""

    __slots__ = ("shapes", "texts", "used")

    def __init__(self, marked: Rendered) -> None:
        # Per text: its literal pieces, and between them which hole goes there and how it was escaped.
        self.texts: list[tuple[list[str], list[tuple[int, str]]] | None] = []
        for text in (marked.subject, marked.body, marked.html):
            if text is None:
                self.texts.append(None)
                continue
            split = _MARKER.split(text)
            self.texts.append((split[::3], [(int(i), form) for i, form in zip(split[1::3], split[2::3], strict=True)]))
        self.used = sorted({i for text in self.texts if text for i, _ in text[1]})
        self.shapes: dict[int, str] = {}  # each hole's shape in the message the kind was checked on

    def fill(self, prepared: dict[str, Any], holes: tuple[tuple[str, ...], ...], states: tuple) -> Rendered | None:
        """The message's text with its own values; None when one of them is not of a plain shape. `states`: the
        holes' states in the message's key (`_hole_state`): a plain value's shape is known from it, the same as
        the kind's (the key holds it); a value computed when first read is checked here."""
        values = {}
        for index in self.used:
            top, key = holes[index]
            value = prepared[top][key]
            if states[index] is _DEFERRED:
                shape = plain_hole(value)
                if shape is None or self.shapes.setdefault(index, shape) != shape:
                    return None
            values[index] = value
        out: list[str | None] = []
        for text in self.texts:
            if text is None:
                out.append(None)
                continue
            literals, slots = text
            pieces = [literals[0]]
            for (index, form), literal in zip(slots, literals[1:], strict=True):
                value = values[index]
                pieces.append(value if form == "'" or "'" not in value else value.replace("'", form))
                pieces.append(literal)
            out.append("".join(pieces))
        return Rendered(out[0] or "", out[1] or "", out[2])


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
                                oneline=oneline, html_paragraphs=html_paragraphs,
                                email_html=email_html_memo, offer_format=wording.offer_format,
                                offer_kind=wording.offer_kind, duration=wording.duration_fr)
        self.env.globals.update(trade=trade)
        self.env.template_class = _Template
        self._parents: dict[str, str | None] = {}
        self._plans: dict[str, HolesPlan | None] = {}
        self._kinds: dict[tuple, _Kind | bool] = {}  # kinds of message seen (False: rendered in full)

    def resolve(self, channel: str, trigger: str, family: str, variant: str | None = None) -> str:
        """The template name for a message: the family's own, else the trigger's default."""
        names = []
        if variant:  # a variant's wording wins over a family's plain one: both arms of an A/B test differ
            names += [f"{channel}/{trigger}/{family}.{variant}.j2", f"{channel}/{trigger}/default.{variant}.j2"]
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
        """Render the subject, body and optional html blocks of one template.

        A message is one of few kinds (same template, trade words, peer, offers, sender...) with its own links and
        commune: each kind is rendered once with markers in place of those values (`templates.holes`), checked
        against a full render, then every message of that kind is its text with its own values put in."""
        prepared = wording.prepare(context, load_trades())
        plan = self.plan(name.split("/", 1)[0])
        if plan is None or not plan.holes:
            return self._render_now(name, prepared)
        try:
            key = (name, _kind_key(prepared, plan.paths), tuple([_hole_state(prepared, path) for path in plan.holes]))
        except _Unfrozen:
            return self._render_now(name, prepared)
        known = self._kinds.get(key)
        if known is None:
            real = self._render_now(name, prepared)
            if len(self._kinds) >= _KINDS_SIZE:
                self._kinds.clear()
            self._kinds[key] = self._kind(name, prepared, plan, key[2], real)
            return real
        if known is False:
            return self._render_now(name, prepared)
        filled = known.fill(prepared, plan.holes, key[2])
        return filled if filled is not None else self._render_now(name, prepared)

    def warm(self, channel: str) -> None:
        """Compile a channel's templates and the shared parts, and find its holes, before the first message (a
        dispatcher does it while starting, not while its first batch waits)."""
        for name in self.env.list_templates(extensions=["j2"]):
            if name.startswith(channel + "/") or name.split("/", 1)[0].startswith("_"):
                self.template(name)
        self.plan(channel)

    def plan(self, channel: str) -> HolesPlan | None:
        """The holes of one channel's templates (`templates.holes`), found once."""
        if channel not in self._plans:
            names = [n for n in self.env.list_templates(extensions=["j2"])
                     if n.startswith(channel + "/") or n.split("/", 1)[0].startswith("_")]
            self._plans[channel] = holes_plan(self.env, names)
        return self._plans[channel]

    def _kind(self, name: str, prepared: dict[str, Any], plan: HolesPlan, states: tuple,
              real: Rendered) -> _Kind | bool:
        """A kind of message from its first one: rendered with markers, kept only if the real values put in
        give back `real` exactly."""
        marked = dict(prepared)
        for index, ((top, key), state) in enumerate(zip(plan.holes, states, strict=True)):
            if state in (_SHAPE_URL, _SHAPE_NAME, _DEFERRED):
                marked[top] = dict(marked[top]) if marked[top] is prepared[top] else marked[top]
                marked[top][key] = f"\ue000{index}'\ue001"
        try:
            kind = _Kind(self._render_now(name, marked))
        except Exception:  # noqa: BLE001 (a marker the template cannot take: every message rendered in full)
            return False
        return kind if kind.fill(prepared, plan.holes, states) == real else False

    def _render_now(self, name: str, prepared: dict[str, Any]) -> Rendered:
        outer = getattr(_RENDERING, "modules", None)
        _RENDERING.modules = {}
        try:
            return self._render(name, prepared)
        finally:
            _RENDERING.modules = outer

    def _render(self, name: str, prepared: dict[str, Any]) -> Rendered:
        tmpl = self.template(name)
        ctx = tmpl.new_context(prepared)
        # Blocks are rendered one by one without running the template top-level, so the parents' blocks
        # are registered here, in inheritance order, exactly as ``{% extends %}`` would (super() works).
        for ancestor in self.chain(name)[1:]:
            for block_name, fn in self.template(ancestor).blocks.items():
                ctx.blocks.setdefault(block_name, []).append(fn)

        # A block asked for twice with the template's own context (the text and the HTML part of an e-mail both
        # read each section through self.<name>()) is rendered once; scoped calls (a derived context) are not
        # cached, their locals may differ.
        done: dict[str, str] = {}

        def once(block_name: str, fn: Any) -> Any:
            def run(c: Any) -> Any:  # a generator, as Jinja's compiled code expects (it closes them)
                if c is not ctx:
                    yield from fn(c)
                    return
                if block_name not in done:
                    done[block_name] = "".join(fn(c))
                yield done[block_name]

            return run

        for block_name, fns in ctx.blocks.items():
            fns[0] = once(block_name, fns[0])

        def block(block_name: str, clean: Any = tidy) -> str | None:
            fns = ctx.blocks.get(block_name)
            return clean("".join(fns[0](ctx))) if fns else None

        body = block("body")
        if body is None:
            raise LookupError(f"template {name} has no body block")
        return Rendered(subject=block("subject") or "", body=body + "\n", html=block("html", str.strip))


@lru_cache(maxsize=4)
def library(root: str | None = None) -> TemplateLibrary:
    """The shared library for a folder (compiled templates live as long as the process)."""
    return TemplateLibrary(Path(root) if root else None)
