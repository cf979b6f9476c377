"""Plain-language linter for the messages owners read: jargon, long sentences, readability, SMS length, mandatory parts.

Pure: it reads only the files it is given (and, for templates, the template folder and the shipped lexicon) and
returns findings as data. ``main`` prints them and returns the exit status.

What it checks, per text (a rendered template, or any plain text file):
  JARGON            a lexicon term (``lexicon.yaml``), with its plain replacement              error
  LONG_SENTENCE     a sentence over 20 words                                                  error
  READABILITY       the Kandel-Moles score ``207 - 1.015 x words/sentence - 73.6 x syll/word``  error below 60,
                    reported for every text (info) so the score is always visible               info otherwise
  MISSING_UNSUBSCRIBE  e-mail and letter: no unsubscribe link                                 error
  MISSING_STOP      SMS: no "STOP" mention                                                    error
  MISSING_SENDER    every channel: the sender is not named                                    error (warning when
                                                                                              the channel is unknown)
  MISSING_REFUSAL   call script: no instruction to record a refusal                           error
  SMS_LENGTH        SMS: characters, encoding (GSM-7 or UCS-2) and segments                   info
  SMS_SEGMENTS      SMS: more than 2 segments (costs more, often cut on old phones)           error
  SMS_UCS2          SMS: letters outside GSM-7 (ê, ô, ç, î ...) force UCS-2 (70 a segment); error
                    the wording avoids them (accents are never stripped at render time)
  RAW_CODE          a snake_case code (``a_distance``, ``formation_courte``) left in the output       error
  INSEE_LABEL       an INSEE label where a trade name belongs ("Autres activités ...", "n.c.a.")     error
  HYPE              an overselling word ("révolutionnaire", "100 %"): say the real gain       warning
  RENDER            a template that does not render with the sample context                   error

Severity rule: an error is something that must not reach an owner (a wall of jargon, a message that is hard to
read, a message that breaks the rules for reaching people); a warning costs money or trust but may be deliberate.

Counting rules. Sentences end at ``. ! ? …`` and at the end of a line, except when a line ends with a comma or a
letter and the next one starts in lower case (wrapped prose). Words are whitespace tokens with at least one letter;
URLs, e-mail addresses and numbers are not words. Syllables are French vowel groups (y included), corrected for
the final mute e (``-e``, ``-es`` after a consonant, in words of two groups or more), for ``qu``/``gu`` (the u is
silent), for ``é`` before another vowel (``cré-er``, ``ré-el``) and for the diaeresis (``na-ïf``); the verb ending
``-ent`` is left as written (it cannot be told from ``moment`` without a dictionary). Every word has at least one
syllable.

Templates (``.j2``) are rendered with ``templates.preview.sample_context`` for each family they serve (a trigger's
``default.j2`` serves them all), subject and body together, so Jinja syntax is never counted. A finding points to
the source line it comes from when it can be found (the template, one of its parents or shared parts, or
``trades.yaml``); otherwise to the rendered line, and the message says "rendered line N". A template outside the
``<channel>/<trigger>/`` layout (a draft) is rendered from its own folder, its channel and trigger read from its
name (``relance.sms.j2``). Bases and shared parts (``base.j2``, ``_*``) are linted through the messages using them.
"""

from __future__ import annotations

import math
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import yaml

from templates.preview import FAMILIES, TRIGGERS, matrix_contexts
from templates.render import library

LEXICON_FILE = Path(__file__).parent / "lexicon.yaml"
MESSAGES_DIR = Path(__file__).parent / "messages"
TRADES_FILE = Path(__file__).parent / "trades.yaml"

CHANNELS = ("email", "sms", "letter", "call")
MAX_WORDS = 20
MIN_SCORE = 60.0
MAX_SMS_SEGMENTS = 2

ERROR, WARNING, INFO = "error", "warning", "info"

# GSM 03.38: the basic table (one septet each) and the extension table (escape + septet, so two each).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

VOWELS = "aeiouyàâäéèêëîïôöùûüÿœæ"
_VOWEL_RUN = re.compile(f"[{VOWELS}]+")
_MUTE_E = re.compile(f"[^{VOWELS}]es?$")
_URL_OR_MAIL = re.compile(r"(?:https?://|www\.)\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_LETTER = re.compile(r"[^\W\d_]")
_SENTENCE_END = re.compile(r"[.!?…]+[»\")\]]*$")
_STOP = re.compile(r"\bSTOP\b")
# A code as the program writes it (``a_distance``, ``Formation_courte``), never a word people write.
_RAW_CODE = re.compile(r"(?<![\w@/.])[A-Za-zÀ-ÿ]+(?:_[A-Za-zÀ-ÿ0-9]+)+(?![\w@])")
# The way INSEE labels read (NAF sub-classes): a catch-all "Autres ...", "Activités des/de ...", "n.c.a.".
_INSEE_LABEL = re.compile(r"\bn\.\s?c\.\s?a\.?|\b[Aa]utres activités\b|\b[Aa]ctivités (?:des|de|d')\s?\w+"
                          r"|\bsièges sociaux\b")
_UNSUBSCRIBE_WORDS = ("ne plus recevoir", "desinscri", "desabonn", "unsubscribe", "vous opposer")
_SENDER_WORDS = ("de la part de", "au nom de", "l'equipe", "cordialement", "envoye par", "expediteur",
                 "salutations", "signe :")


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem (or measure) in one place: a file and a line (1-based; 0 when it concerns the whole text)."""
    path: str
    line: int
    severity: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.severity} {self.code} {self.message}"


@dataclass(slots=True)
class Report:
    """The findings of one run, and the readability score of every text linted."""
    findings: list[Finding] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    texts: int = 0

    @property
    def errors(self) -> list[Finding]:
        """The findings that fail the run."""
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        """The findings worth a look."""
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def ok(self) -> bool:
        """True when no finding is an error."""
        return not self.errors

    def lowest_score(self) -> tuple[str, float] | None:
        """The text with the lowest Kandel-Moles score, and that score."""
        return min(self.scores.items(), key=lambda kv: kv[1]) if self.scores else None

    def format(self, *, show_info: bool = True) -> str:
        """The findings as ``path:line: severity CODE message`` lines, then a summary line."""
        lines = [str(f) for f in self.findings if show_info or f.severity != INFO]
        low = self.lowest_score()
        summary = f"{self.texts} texts, {len(self.errors)} errors, {len(self.warnings)} warnings"
        if low:
            summary += f", lowest Kandel-Moles score {low[1]:.1f} ({low[0]})"
        return "\n".join([*lines, summary])


# --- text measures -----------------------------------------------------------------------------------------------

def fold(text: str) -> str:
    """Lower case without accents, one character for one (œ -> o, ’ -> '), so offsets stay valid."""
    return "".join(map(_fold_char, text))


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    if ch in "’‘`´":
        return "'"
    base = unicodedata.normalize("NFD", ch)[0].lower()
    if len(base) != 1:
        return ch.lower()[:1] or ch
    return {"œ": "o", "æ": "a"}.get(base, base)


@lru_cache(maxsize=65536)
def syllables(word: str) -> int:
    """Spoken syllables of one French word (see the module docstring for the corrections)."""
    total = 0
    for part in re.split(r"['’\-]", word.lower()):
        part = "".join(ch for ch in part if _LETTER.match(ch))
        if not part:
            continue
        part = re.sub(f"qu(?=[{VOWELS}])", "q", part)
        part = re.sub(r"gu(?=[eiyéèêëî])", "g", part)
        count = 0
        for run in _VOWEL_RUN.finditer(part):
            count += 1
            group = run.group(0)
            for i, ch in enumerate(group[:-1]):
                rest = part[run.start() + i + 1:]
                if ch == "é" and rest not in ("e", "es", "ent"):
                    count += 1  # hiatus: cré-er, ré-el, ré-union; but idée, journées stay one
                elif ch == "y" and i > 0:
                    count += 1  # y between vowels opens a syllable: pa-yer, en-vo-yer
            count += sum(1 for ch in group[1:] if ch in "ïüë")  # diaeresis: na-ïf, No-ël
        if count > 1 and _MUTE_E.search(part):
            count -= 1  # final mute e: facture, votre, chaque
        total += count
    return max(1, total)


def words(text: str) -> list[str]:
    """The words of a text: whitespace tokens with a letter, URLs and e-mail addresses removed."""
    text = _URL_OR_MAIL.sub(" ", text)
    return [tok.strip(".,;:!?…«»\"()[]") for tok in text.split() if _LETTER.search(tok)]


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence and the (1-based) line it starts on."""
    line: int
    text: str

    @property
    def words(self) -> list[str]:
        """The sentence's words."""
        return words(self.text)


def sentences(text: str) -> list[Sentence]:
    """The sentences of a text with their first line (end punctuation, or a line end that is not wrapped prose)."""
    found: list[Sentence] = []
    lines = text.splitlines()
    current: list[str] = []
    start = 0

    def close() -> None:
        nonlocal current
        joined = " ".join(current).strip()
        if joined and words(joined):
            found.append(Sentence(start, joined))
        current = []

    for index, raw in enumerate(lines):
        lineno = index + 1
        for position, token in enumerate(raw.split()):
            if not current:
                start = lineno
            current.append(token)
            # "1." opening a line numbers a step; it does not end a sentence
            numbering = position == 0 and re.fullmatch(r"\d+[.)]", token) is not None
            if _SENTENCE_END.search(token) and not numbering:
                close()
        nxt = lines[index + 1].strip() if index + 1 < len(lines) else ""
        stripped = raw.rstrip()
        wrapped = bool(stripped) and (stripped[-1] == "," or stripped[-1].isalpha()) and nxt[:1].islower()
        if current and not wrapped:
            close()
    close()
    return found


def kandel_moles(text: str) -> float | None:
    """The Kandel-Moles readability of a text (higher is easier; None when it has no words)."""
    sents = [s for s in sentences(text) if s.words]
    all_words = [w for s in sents for w in s.words]
    if not all_words:
        return None
    syll = sum(syllables(w) for w in all_words)
    return 207 - 1.015 * (len(all_words) / len(sents)) - 73.6 * (syll / len(all_words))


@dataclass(frozen=True, slots=True)
class SmsLength:
    """How an SMS travels: encoding, length in units, segments, and the characters that forced UCS-2."""
    encoding: str
    units: int
    segments: int
    ucs2_chars: str


def sms_length(text: str) -> SmsLength:
    """Encoding and segment count of an SMS text (GSM-7: 160, or 153 a part; UCS-2: 70, or 67 a part)."""
    text = text.rstrip("\n")
    outside = "".join(dict.fromkeys(ch for ch in text if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION))
    if outside:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    else:
        units = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
        single, multi, encoding = 160, 153, "GSM-7"
    segments = 0 if units == 0 else 1 if units <= single else math.ceil(units / multi)
    return SmsLength(encoding, units, segments, outside)


# --- lexicon -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Term:
    """A jargon term, its plain replacement and the pattern that finds it in folded text."""
    term: str
    replacement: str
    pattern: re.Pattern[str]
    surfaces: tuple[str, ...] = ()
    case_sensitive: bool = False

    def accepts(self, original: str) -> bool:
        """False for a case-sensitive acronym written as an ordinary word ("ROI" is jargon, "roi" is a king)."""
        return not self.case_sensitive or any(original.startswith(s) for s in self.surfaces)


@dataclass(frozen=True, slots=True)
class Lexicon:
    """The jargon terms indexed by their first two letters (a word start only tries the terms that can start
    there), and the hype pattern."""
    terms: tuple[Term, ...]
    by_key: dict[str, tuple[tuple[int, re.Pattern[str]], ...]]
    hype: re.Pattern[str] | None

    def finditer(self, folded: str) -> Iterable[tuple[int, int, Term]]:
        """(start, end, term) of each jargon hit in folded text; at one position the longest form wins."""
        pos = 0
        while (start := _WORD_START.search(folded, pos)) is not None:
            begin = end = start.start()
            for index, pattern in self.by_key.get(_key(folded[begin:begin + 24]), ()):
                if (m := pattern.match(folded, begin)) is not None:
                    yield begin, m.end(), self.terms[index]
                    end = m.end()
                    break
            pos = max(end, begin + 1)


_WORD_START = re.compile(r"(?<![\w@/.\-])[^\W_]")


def _key(text: str) -> str:
    """The first two characters of a term or of a text position, hyphens and spaces skipped."""
    return re.sub(r"[\s\-]", "", text)[:2]


def _term_pattern(surface: str, *, anchored: bool = False) -> str:
    parts = [re.escape(p) for p in re.split(r"[\s\-]+", fold(surface).strip()) if p]
    body = r"[\s\-]*".join(parts)
    plural = r"(?:s|x)?" if surface[-1:].isalpha() else ""
    before = "" if anchored else r"(?<![\w@/.-])"
    return rf"{before}{body}{plural}(?![\w])"


@lru_cache(maxsize=4)
def load_lexicon(path: str | None = None) -> Lexicon:
    """The jargon terms and the hype words of a lexicon file (the shipped one by default)."""
    data = yaml.safe_load(Path(path or LEXICON_FILE).read_text(encoding="utf-8"))
    terms: list[Term] = []
    keyed: dict[str, list[tuple[int, int, re.Pattern[str]]]] = {}
    for index, entry in enumerate(data.get("jargon", [])):
        surfaces = [entry["term"], *entry.get("forms", [])]
        terms.append(Term(entry["term"], entry["replacement"],
                          re.compile("|".join(_term_pattern(s) for s in surfaces)), tuple(surfaces),
                          bool(entry.get("case_sensitive", False))))
        for surface in surfaces:
            pattern = re.compile(_term_pattern(surface, anchored=True))
            keyed.setdefault(_key(fold(surface)), []).append((len(surface), index, pattern))
    # the longest surface is tried first, so "marketing digital" wins over "marketing"
    by_key = {k: tuple((i, p) for _, i, p in sorted(v, key=lambda t: -t[0])) for k, v in keyed.items()}
    hype_words = data.get("hype", [])
    hype = re.compile("|".join(_term_pattern(h) for h in hype_words)) if hype_words else None
    return Lexicon(tuple(terms), by_key, hype)


def _mask_links(folded: str) -> str:
    """Folded text with URLs and e-mail addresses blanked (same length): their letters are not prose."""
    return _URL_OR_MAIL.sub(lambda m: " " * len(m.group(0)), folded)


# --- one text ----------------------------------------------------------------------------------------------------

def lint_text(text: str, channel: str | None = None, *, path: str = "<text>", sender_name: str | None = None,
              unsubscribe_url: str | None = None, lexicon: str | None = None,
              short_url: str | None = None) -> list[Finding]:
    """Lint one text for a channel (``email``, ``sms``, ``letter``, ``call`` or None for unknown).

    ``sender_name`` and ``unsubscribe_url``, when known (a rendered template), make the mandatory-element checks
    exact; otherwise they look for the usual wording. A letter may give its short link (``short_url``) instead of
    the unsubscribe one: the page it opens carries the opt-out, and nobody types a signed URL from paper.
    """
    lex = load_lexicon(lexicon)
    found: list[Finding] = []

    def add(line: int, severity: str, code: str, message: str) -> None:
        found.append(Finding(path, line, severity, code, message))

    for lineno, line in enumerate(text.splitlines(), start=1):
        folded = _mask_links(fold(line))
        for start, end, term in lex.finditer(folded):
            if not term.accepts(line[start:end]):
                continue
            add(lineno, ERROR, "JARGON", f"« {line[start:end]} » : dites plutôt « {term.replacement} »")
        prose = _URL_OR_MAIL.sub(lambda m: " " * len(m.group(0)), line)
        for m in _RAW_CODE.finditer(prose):
            add(lineno, ERROR, "RAW_CODE", f"« {m.group(0)} » est un code, pas un mot : écrivez-le en français")
        for m in _INSEE_LABEL.finditer(prose):
            add(lineno, ERROR, "INSEE_LABEL", f"« {m.group(0)} » est un libellé INSEE : nommez le métier")
        if lex.hype is not None:
            for m in lex.hype.finditer(folded):
                add(lineno, WARNING, "HYPE", f"« {line[m.start():m.end()]} » survend : dites le gain concret")

    for sentence in sentences(text):
        count = len(sentence.words)
        if count > MAX_WORDS:
            add(sentence.line, ERROR, "LONG_SENTENCE",
                f"{count} mots (max {MAX_WORDS}) : « {_clip(sentence.text)} »")

    score = kandel_moles(text)
    if score is not None:
        if score < MIN_SCORE:
            add(0, ERROR, "READABILITY", f"score Kandel-Moles {score:.1f} < {MIN_SCORE:.0f}")
        else:
            add(0, INFO, "READABILITY", f"score Kandel-Moles {score:.1f}")

    found.extend(_mandatory(text, channel, path, sender_name, unsubscribe_url, short_url))

    if channel == "sms":
        length = sms_length(text)
        add(0, INFO, "SMS_LENGTH", f"{length.units} caractères, {length.encoding}, {length.segments} segment(s)")
        if length.segments > MAX_SMS_SEGMENTS:
            add(0, ERROR, "SMS_SEGMENTS", f"{length.segments} segments (max {MAX_SMS_SEGMENTS})")
        if length.ucs2_chars:
            lines = text.splitlines()
            first = next((i for i, ln in enumerate(lines, 1) if any(c in ln for c in length.ucs2_chars)), 0)
            add(first, ERROR, "SMS_UCS2",
                f"UCS-2 forcé par {' '.join(repr(c) for c in length.ucs2_chars)} (70 caractères par segment)")
    return found


def _clip(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _mandatory(text: str, channel: str | None, path: str, sender_name: str | None,
               unsubscribe_url: str | None, short_url: str | None = None) -> list[Finding]:
    folded = fold(text)
    last = max(1, len(text.splitlines()))
    found = []
    if channel in ("email", "letter"):
        if unsubscribe_url:
            present = unsubscribe_url in text or (channel == "letter" and bool(short_url and short_url in text))
        else:
            present = bool(_URL_OR_MAIL.search(text)) and any(w in folded for w in _UNSUBSCRIBE_WORDS)
        if not present:
            found.append(Finding(path, last, ERROR, "MISSING_UNSUBSCRIBE",
                                 "pas de lien pour se désinscrire (obligatoire, gratuit, qui marche)"))
    if channel == "sms" and not _STOP.search(text):
        found.append(Finding(path, last, ERROR, "MISSING_STOP", "pas de mention « STOP » pour ne plus recevoir"))
    if channel == "call" and "refus" not in folded:
        found.append(Finding(path, last, ERROR, "MISSING_REFUSAL", "le script ne dit pas comment noter un refus"))
    if sender_name:
        named = fold(sender_name) in folded
    else:
        named = any(w in folded for w in _SENDER_WORDS)
    if not named:
        severity = ERROR if channel in CHANNELS else WARNING
        found.append(Finding(path, last, severity, "MISSING_SENDER", "l'expéditeur n'est pas nommé"))
    return found


# --- templates ---------------------------------------------------------------------------------------------------

def _template_root(path: Path) -> tuple[Path, str, str | None, str] | None:
    """(messages root, name, channel, trigger) for ``<root>/<channel>/<trigger>/<file>.j2``, else None."""
    parts = path.resolve().parts
    if len(parts) >= 4 and parts[-3] in CHANNELS:
        return Path(*parts[:-3]), "/".join(parts[-3:]), parts[-3], parts[-2]
    return None


def _is_partial(path: Path) -> bool:
    """Bases and shared parts are linted through the messages that use them."""
    return path.name == "base.j2" or any(p.startswith("_") for p in path.parts[-2:])


class _SourceMap:
    """Finds the source line (template, parent, shared part or trades.yaml) that produced a rendered line."""
    _TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}")

    def __init__(self, files: Sequence[Path]) -> None:
        self.lines: list[tuple[Path, int, str, list[str]]] = []
        for file in files:
            for lineno, raw in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
                text = raw
                if file.suffix == ".yaml":
                    text = raw.split(":", 1)[1] if ":" in raw and not raw.lstrip().startswith("#") else ""
                if "{#" in raw or raw.lstrip().startswith("#"):
                    continue
                chunks = [fold(c).strip(" .:,«»") for c in self._TAG.split(text)]
                chunks = [c for c in chunks if len(re.sub(r"\W", "", c)) >= 3]
                if chunks:
                    self.lines.append((file, lineno, fold(text), chunks))

    def find_term(self, surface: str) -> tuple[Path, int] | None:
        """The first source line that contains a jargon surface form."""
        needle = fold(surface)
        for file, lineno, text, _ in self.lines:
            if needle in _mask_links(text):
                return file, lineno
        return None

    def find_line(self, rendered: str) -> tuple[Path, int] | None:
        """The source line whose literal text best covers a rendered line."""
        target = fold(rendered)
        best, best_score = None, 0
        for file, lineno, _, chunks in self.lines:
            score = sum(len(c) for c in chunks if c in target)
            if score > best_score:
                best, best_score = (file, lineno), score
        return best if best_score >= 6 else None


def _families_for(name: str) -> list[str]:

    stem = name.rsplit("/", 1)[-1].split(".")[0]
    if stem == "default":
        return list(FAMILIES)
    return [stem if stem in FAMILIES else "autre"]


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def lint_template(path: Path, lexicon: str | None = None) -> tuple[list[Finding], dict[str, float]]:
    """Lint one leaf template rendered for each family it serves; findings point to source lines."""
    located = _template_root(path)
    shown = _display(path)
    if located is None:
        # a loose template (a draft): rendered from its own folder; channel and trigger read from its name

        tokens = set(re.split(r"[._\-/]", path.name))
        trigger = next((t for t in TRIGGERS if t in tokens or t in path.parts), "creation")
        located = (path.resolve().parent, path.name, _channel_of_text(path), trigger)
    root, name, channel, trigger = located
    lib = library(str(root))
    chain = [root / n for n in lib.chain(name)]
    extra = [root / "_text" / f"{trigger}.j2", root / "_parts.j2", TRADES_FILE]
    source = _SourceMap([f for f in [*chain, *extra] if f.is_file()])

    merged: dict[tuple[str, str, int, str, str], list[str]] = {}  # (severity, file, line, code, message)
    scores: dict[str, float] = {}
    longest: tuple[int, str, SmsLength] | None = None
    contexts = [pair for family in _families_for(name) for pair in matrix_contexts(family, trigger)]
    for family, context in contexts:
        try:
            rendered = lib.render(name, context)
        except Exception as exc:  # a template error is a finding, not a crash of the whole run
            merged.setdefault((ERROR, shown, 0, "RENDER", f"{type(exc).__name__}: {exc}"), []).append(family)
            continue
        text = f"{rendered.subject}\n\n{rendered.body}" if rendered.subject else rendered.body
        if channel == "sms":
            length = sms_length(text)
            if longest is None or length.units > longest[0]:
                longest = (length.units, family, length)
        score = kandel_moles(text)
        if score is not None:
            scores[f"{name} [{family}]"] = score
        rendered_lines = text.splitlines()
        for f in lint_text(text, channel, path=shown, sender_name=context["sender"]["name"],
                           unsubscribe_url=context["links"]["unsubscribe"], lexicon=lexicon,
                           short_url=context["links"].get("short")):
            where = None
            if f.code == "JARGON":
                where = source.find_term(f.message.split("»")[0].strip("« "))
            elif f.line and f.code != "SMS_UCS2":
                where = source.find_line(rendered_lines[f.line - 1])
            if where:
                file, line = _display(where[0]), where[1]
                note = f" (rendered line {f.line})" if file == shown else f" ({name}, rendered line {f.line})"
            else:
                file, line, note = shown, f.line, f" (rendered line {f.line})" if f.line else ""
            if f.code in ("READABILITY", "SMS_LENGTH") and f.severity == INFO:
                continue  # summarised once per template below
            key = (f.severity, file, line, f.code, f.message + note)
            merged.setdefault(key, []).append(family)

    findings = []
    for (severity, file, line, code, message), families in merged.items():
        suffix = ""
        if len(families) < len(contexts):  # which contexts of the matrix fail (the first few, and how many)
            more = f" … {len(families)} contextes" if len(families) > 3 else ""
            suffix = f" [{'; '.join(families[:3])}{more}]"
        findings.append(Finding(file, line, severity, code, message + suffix))
    if scores:
        family, low = min(scores.items(), key=lambda kv: kv[1])
        findings.append(Finding(shown, 0, INFO, "READABILITY",
                                f"score Kandel-Moles min {low:.1f} ({family.split('[')[-1].rstrip(']')})"))
    if channel == "sms" and longest is not None:
        units, family, length = longest
        findings.append(Finding(shown, 0, INFO, "SMS_LENGTH",
                                f"max {units} caractères ({family}), {length.encoding}, {length.segments} segment(s)"))
    return findings, scores


def shipped_templates(root: Path = MESSAGES_DIR) -> list[Path]:
    """Every leaf template shipped in the library (bases and shared parts excluded)."""
    return sorted(p for p in root.rglob("*.j2") if not _is_partial(p.relative_to(root)))


def _channel_of_text(path: Path) -> str | None:
    """The channel a plain text file is written for, from a folder or a name token (``relance.sms.txt``)."""
    tokens = {*path.parts[:-1], *re.split(r"[._\-]", path.name)}
    hits = [c for c in CHANNELS if c in tokens]
    return hits[0] if hits else None


def lint_paths(paths: Iterable[str | Path], lexicon: str | None = None) -> Report:
    """Lint files: ``.j2`` templates rendered with the sample context, anything else as plain text."""
    report = Report()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            sub = lint_paths([*shipped_templates(path), *sorted(path.rglob("*.txt"))], lexicon)
            report.findings += sub.findings
            report.scores.update(sub.scores)
            report.texts += sub.texts
            continue
        if path.suffix == ".j2":
            if _is_partial(path):
                report.findings.append(Finding(_display(path), 0, INFO, "PARTIAL",
                                               "base or shared part: linted through the messages that use it"))
                continue
            findings, scores = lint_template(path, lexicon)
            report.findings += findings
            report.scores.update(scores)
            report.texts += max(1, len(scores))
            continue
        text = path.read_text(encoding="utf-8")
        shown = _display(path)
        report.findings += lint_text(text, _channel_of_text(path), path=shown, lexicon=lexicon)
        score = kandel_moles(text)
        if score is not None:
            report.scores[shown] = score
        report.texts += 1
    return report


class _PageText(HTMLParser):
    """The text a person reads on a page: tags dropped, block elements on their own lines, scripts skipped."""
    BLOCKS = {"p", "li", "h1", "h2", "h3", "h4", "div", "section", "label", "button", "legend", "tr", "br", "option",
              "title", "summary", "dt", "dd", "td", "th", "a"}

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip -= 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(" ".join(data.split()) if data.strip() else " ")

    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self.parts).splitlines())
        return "\n".join(line for line in lines if line)


def page_text(html: str) -> str:
    """The readable text of an HTML page."""
    parser = _PageText()
    parser.feed(html)
    return parser.text()


def lint_pages(contexts: Iterable[tuple[str, str, dict[str, Any]]], render: Callable[[str, dict[str, Any]], str],
               folder: Path, lexicon: str | None = None) -> Report:
    """Lint web pages' texts (jargon, sentences, readability, raw codes, INSEE labels): each (page, label, context)
    rendered to HTML by ``render(page, context)``; findings point to the page's file in ``folder``. The web app's
    landing and diagnostic pages are linted this way by ``declic templates lint`` (orchestrator/cli/page_lint.py)."""
    report = Report()
    merged: dict[tuple[str, str, int, str, str], list[str]] = {}  # (severity, path, line, code, message)
    shown: dict[str, str] = {}
    for page, label, context in contexts:
        path = shown.setdefault(page, _display(folder / page))
        try:
            text = page_text(render(page, context))
        except Exception as exc:  # a page that does not render with a real context is an error, not a crash
            merged.setdefault((ERROR, path, 0, "RENDER", f"{type(exc).__name__}: {exc}"), []).append(label)
            continue
        report.texts += 1
        score = kandel_moles(text)
        if score is not None:
            report.scores[f"{page} [{label}]"] = score
        for f in lint_text(text, None, path=path, lexicon=lexicon):
            if f.severity == INFO or f.code.startswith("MISSING_"):
                continue  # pages carry no message's mandatory parts
            merged.setdefault((f.severity, f.path, f.line, f.code, f.message), []).append(label)
    for (severity, path, line, code, message), labels in merged.items():
        more = f" … {len(labels)} contextes" if len(labels) > 3 else ""
        report.findings.append(Finding(path, line, severity, code, f"{message} [{'; '.join(labels[:3])}{more}]"))
    return report


def main(paths: list[str] | None = None) -> int:
    """Lint the given files (every shipped template when none), print the findings, return 1 on errors. The web
    pages are linted by ``declic templates lint``, which can render them."""
    targets: list[str | Path] = list(paths) if paths else list(shipped_templates())
    report = lint_paths(targets)
    print(report.format())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
