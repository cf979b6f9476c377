"""Postal letters: one A4 PDF per business, and per batch one merged PDF plus a CSV manifest.

Settings (read by the composition root, passed as constructor arguments):

    DECLIC_LETTER_DIR              where batches are written (default <DECLIC_HOME>/letters)
    DECLIC_LETTER_SENDER_NAME      the sender shown top left when neither the message nor its campaign gives one
    DECLIC_LETTER_SENDER_ADDRESS   its address, lines separated by "|" or new lines
    DECLIC_LETTER_SENDER_CITY      the town written before the date ("Rennes, le 27 novembre 2026")
    DECLIC_TIMEZONE                the date is today's date there, by the composition root's clock

A batch is written to `DECLIC_LETTER_DIR/<batch-id>/`:

    letters/<message_id>-<siret>.pdf   one file per business, for the archive and the operator
    merged.pdf                         every letter in manifest order, for the mailing house's printer
    manifest.csv                       message_id;siret;name;line1;...;line6;pages;file (UTF-8 with BOM,
                                       ";" separated, as French spreadsheets expect)

Who signs: meta["sender"] when the message has one, else its campaign's sender (`campaign.spec["sender"]`: name,
address, phone, email), which the dispatcher puts on the message (`OutgoingMessage.campaign`), else the settings.

The batch id is derived from the date and the message ids, so sending the same batch again rewrites
the same folder instead of creating a second mailing; the folder appears complete or not at all.
The point of no return is that appearance (a rename): `on_handoff(message_id)` is called for each letter
just before it, and a letter whose lease was lost is taken out of the batch (ABANDONED).

The recipient address follows NF Z10-011: at most 6 lines of at most 38 characters, the last lines
(street, locality complement, postcode and town) in upper case without accents or punctuation. Give it
as meta["address"] (fields of `address_block`) or as the message's recipient, lines joined by "\\n".
Text is set in DejaVu Sans (shipped in integrations/fonts with its licence), which covers French
entirely (é, œ, €, « », the narrow no-break space).

A letter never asks its reader to type a long signed URL: the template writes the short link
(`/s/<code>`, `orchestrator.core.short_codes`) and a phone number, and the letter ends with a QR code of that
short link (segno), the link written under it; meta["short_link"] names it, else the first short link of
the body is used.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import re
import shutil
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import segno
from fpdf import FPDF
from fpdf.errors import FPDFException
from pypdf import PdfReader, PdfWriter
from pypdf.errors import PyPdfError

from integrations._settings import no_clock, setting
from integrations.base import Answer, Handoff, OutgoingMessage, register
from orchestrator.core.outcomes import Outcome, SendResult

FONTS_DIR = Path(__file__).parent / "fonts"
FONT_REGULAR = FONTS_DIR / "DejaVuSans.ttf"
FONT_BOLD = FONTS_DIR / "DejaVuSans-Bold.ttf"

# Where an A4 page folded in three shows through the window of a DL envelope (220 x 110 mm, window
# 100 x 45 mm, 20 mm from the right and 15 mm from the bottom): left, top, right, bottom in mm.
WINDOW = (100.0, 50.0, 200.0, 95.0)
ADDRESS_X, ADDRESS_Y = 110.0, 52.0

MAX_LINES = 6
MAX_CHARS = 38
POSTCODE_RE = re.compile(r"^\d{5}$")
# The short link of a message as templates write it (`https://host/s/Ab3xZ`).
SHORT_LINK_RE = re.compile(r"https?://[^\s/]+/s/[0-9A-Za-z]{5,8}(?![0-9A-Za-z])")
QR_SIZE = 28.0  # mm: read by any phone camera at arm's length

MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)

# La Poste's usual abbreviations, used only when a line would not fit in 38 characters.
ABBREVIATIONS = (
    ("AVENUE", "AV"),
    ("BOULEVARD", "BD"),
    ("FAUBOURG", "FG"),
    ("IMPASSE", "IMP"),
    ("CHEMIN", "CHE"),
    ("ROUTE", "RTE"),
    ("PLACE", "PL"),
    ("ALLEE", "ALL"),
    ("QUARTIER", "QUA"),
    ("RESIDENCE", "RES"),
    ("LOTISSEMENT", "LOT"),
    ("PROMENADE", "PROM"),
    ("SQUARE", "SQ"),
    ("SAINTE", "STE"),
    ("SAINT", "ST"),
    ("GENERAL", "GAL"),
    ("MARECHAL", "MAL"),
    ("PRESIDENT", "PDT"),
    ("DOCTEUR", "DR"),
    ("PROFESSEUR", "PR"),
    ("COMMANDANT", "CDT"),
)


class AddressError(ValueError):
    """An address that cannot be printed as a French postal block; the message says why, in French."""


# --- pure helpers ------------------------------------------------------------------------------------


def french_date(day: dt.date) -> str:
    """A date as French letters write it: "27 novembre 2026", "1er décembre 2026"."""
    number = "1er" if day.day == 1 else str(day.day)
    return f"{number} {MONTHS[day.month - 1]} {day.year}"


def _squash(text: str) -> str:
    return " ".join((text or "").split())


def postal_upper(text: str) -> str:
    """Upper case without accents or punctuation, as La Poste reads them ("L'Église" -> "L EGLISE")."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    bare = bare.replace("œ", "oe").replace("Œ", "OE").replace("æ", "ae").replace("Æ", "AE")
    # Apostrophes, hyphens, commas and dots become spaces; letters, digits and spaces stay.
    cleaned = re.sub(r"[^0-9A-Za-z ]+", " ", bare)
    return _squash(cleaned.upper())


def abbreviate(line: str) -> str:
    """The line with La Poste's abbreviations applied (AVENUE -> AV, SAINT -> ST...)."""
    words = line.split()
    table = dict(ABBREVIATIONS)
    return " ".join(table.get(word, word) for word in words)


def _fit(line: str, label: str, number: int) -> str:
    if len(line) <= MAX_CHARS:
        return line
    shorter = abbreviate(line)
    if len(shorter) <= MAX_CHARS:
        return shorter
    raise AddressError(
        f"ligne {number} ({label}) trop longue : {len(line)} caractères pour {MAX_CHARS} au plus, "
        f"même abrégée : « {line} »"
    )


def _wrap_two(text: str) -> tuple[str, str] | None:
    """Split a long name on a word boundary into two lines of at most 38 characters, if possible."""
    words = text.split()
    for cut in range(len(words) - 1, 0, -1):
        first, second = " ".join(words[:cut]), " ".join(words[cut:])
        if len(first) <= MAX_CHARS and len(second) <= MAX_CHARS:
            return first, second
    return None


def address_block(
    *,
    name: str,
    street: str = "",
    postcode: str,
    city: str,
    contact: str = "",
    building: str = "",
    locality_extra: str = "",
    cedex: str = "",
) -> list[str]:
    """The recipient block per NF Z10-011 (lines 1 to 6, empty ones left out), or AddressError.

    1 name (raison sociale) · 2 contact or service · 3 building, entrance, residence · 4 number and
    street · 5 lieu-dit or BP · 6 postcode and town (CEDEX). Lines 4 to 6 are upper case without
    accents or punctuation; a name too long for line 1 continues on line 2 when line 2 is free.
    """
    name = _squash(name)
    if not name:
        raise AddressError("nom du destinataire absent (ligne 1)")
    postcode = re.sub(r"\s+", "", postcode or "")
    if not POSTCODE_RE.match(postcode):
        raise AddressError(f"code postal invalide : « {postcode or ''} » (5 chiffres attendus)")
    town = postal_upper(city)
    if not town:
        raise AddressError("localité absente (ligne 6)")

    line1, line2 = name, _squash(contact)
    if len(line1) > MAX_CHARS:
        wrapped = _wrap_two(line1) if not line2 else None
        if wrapped is None:
            raise AddressError(
                f"ligne 1 (nom) trop longue : {len(line1)} caractères pour {MAX_CHARS} au plus : « {line1} »"
            )
        line1, line2 = wrapped
    line2 = _fit(line2, "destinataire ou service", 2) if line2 else ""
    line3 = _fit(_squash(building), "bâtiment, entrée, résidence", 3) if building else ""
    line4 = _fit(postal_upper(street), "numéro et voie", 4) if street else ""
    line5 = _fit(postal_upper(locality_extra), "lieu-dit ou boîte postale", 5) if locality_extra else ""
    last = f"{postcode} {town}" + (f" CEDEX {postal_upper(cedex)}".rstrip() if cedex else "")
    line6 = _fit(last, "code postal et localité", 6)
    return [line for line in (line1, line2, line3, line4, line5, line6) if line]


def block_from_lines(lines: Sequence[str]) -> list[str]:
    """Check and normalise an address already cut into lines (recipient text), or AddressError."""
    kept = [_squash(line) for line in lines if _squash(line)]
    name_lines = 1
    if kept and len(kept[0]) > MAX_CHARS and len(kept) < MAX_LINES:
        # A long company name (Sirene's raison sociale often is) continues on a second line.
        wrapped = _wrap_two(kept[0])
        if wrapped is not None:
            kept[:1] = list(wrapped)
            name_lines = 2
    if len(kept) < 2:
        raise AddressError(
            "adresse incomplète : il faut au moins le nom et la ligne « code postal localité »"
        )
    if len(kept) > MAX_LINES:
        raise AddressError(f"adresse trop longue : {len(kept)} lignes pour {MAX_LINES} au plus")
    last = postal_upper(kept[-1])
    if not POSTCODE_RE.match(last[:5]) or (len(last) > 5 and last[5] != " "):
        raise AddressError(f"dernière ligne sans code postal en tête : « {kept[-1]} »")
    # The last three lines of a full block are street, lieu-dit and town: upper case for La Poste's
    # readers; the name lines above keep the owner's own spelling.
    first_upper = max(name_lines, len(kept) - 3)
    normalised = [line if index < first_upper else postal_upper(line) for index, line in enumerate(kept)]
    labels = [
        "nom",
        "destinataire ou service",
        "bâtiment",
        "numéro et voie",
        "lieu-dit",
        "code postal et localité",
    ]
    return [_fit(line, labels[min(i, 5)], i + 1) for i, line in enumerate(normalised)]


def split_address(text: str) -> tuple[str, ...]:
    """Address lines from one string: "|" or new lines separate them, and so does ", " before a postcode."""
    parts = re.split(r"\s*[|\n]\s*|,\s*(?=\d{5}\b)", text or "")
    return tuple(part.strip() for part in parts if part and part.strip())


def address_for(message: OutgoingMessage) -> list[str]:
    """The postal block of a message: meta["address"] fields when given, else its recipient lines."""
    fields = message.meta.get("address")
    if isinstance(fields, Mapping):
        allowed = {"name", "street", "postcode", "city", "contact", "building", "locality_extra", "cedex"}
        return address_block(**{k: str(v or "") for k, v in fields.items() if k in allowed})
    return block_from_lines(message.recipient.splitlines())


def short_link_for(message: OutgoingMessage) -> str | None:
    """The short link the letter's QR code carries: meta["short_link"], else the first one in the body."""
    given = message.meta.get("short_link")
    if given:
        return str(given)
    found = SHORT_LINK_RE.search(message.body)
    return found.group(0) if found else None


def qr_png(url: str) -> io.BytesIO:
    """A QR code of `url` as PNG (error correction M, quiet zone of 2 modules)."""
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="png", scale=10, border=2)
    buffer.seek(0)
    return buffer


def batch_id_for(day: dt.date, message_ids: Sequence[int]) -> str:
    """A folder name that is the same whenever the same messages are sent the same day."""
    digest = hashlib.sha1(",".join(str(i) for i in sorted(message_ids)).encode()).hexdigest()[:10]
    return f"{day:%Y%m%d}-{digest}"


# --- rendering ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sender:
    """Who signs the letter, shown top left."""

    name: str = ""
    address: tuple[str, ...] = ()
    city: str = ""
    phone: str = ""
    email: str = ""

    @classmethod
    def from_meta(cls, value: Any, default: Sender) -> Sender:
        """The sender from meta["sender"] ({name, address, city, phone, email}), else `default`."""
        if not isinstance(value, Mapping):
            return default
        address = value.get("address") or ()
        if isinstance(address, str):
            address = split_address(address)
        return cls(
            name=str(value.get("name") or default.name),
            address=tuple(address) or default.address,
            city=str(value.get("city") or default.city),
            phone=str(value.get("phone") or ""),
            email=str(value.get("email") or ""),
        )


@dataclass(slots=True)
class Letter:
    """One letter ready to lay out."""

    message: OutgoingMessage
    address: list[str]
    sender: Sender
    day: dt.date
    first_page: int = 0
    pages: int = 0
    file: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class LetterDocument(FPDF):
    """A4 portrait pages with Déclic's letter layout; several letters can share one document."""

    def __init__(self) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.set_margins(20, 15, 20)
        self.set_auto_page_break(auto=True, margin=20)
        self.add_font("DejaVu", "", str(FONT_REGULAR))
        self.add_font("DejaVu", "B", str(FONT_BOLD))
        self.set_lang("fr")
        self.set_creator("Déclic")
        self.current_reference = ""
        self.page_in_letter = 0
        self._widths: dict[tuple[str, str, float, str], float] = {}

    def wrap(self, text: str, width: float) -> list[str]:
        """Greedy line breaking of one paragraph at `width` mm in the current font."""
        # fpdf2's multi_cell re-measures the whole line at every character (quadratic); measuring each
        # word once makes a letter about five times faster to lay out.
        space = self.get_string_width(" ")
        lines: list[str] = []
        current: list[str] = []
        used = 0.0
        for word in text.split():
            size = self._word_width(word)
            if size > width:  # a word longer than the line (a URL): cut it by characters
                if current:
                    lines.append(" ".join(current))
                    current, used = [], 0.0
                piece = ""
                for char in word:
                    if piece and self.get_string_width(piece + char) > width:
                        lines.append(piece)
                        piece = ""
                    piece += char
                current, used = [piece], self.get_string_width(piece)
                continue
            needed = size if not current else used + space + size
            if current and needed > width:
                lines.append(" ".join(current))
                current, used = [word], size
            else:
                current.append(word)
                used = needed
        if current:
            lines.append(" ".join(current))
        return lines

    def _word_width(self, word: str) -> float:
        key = (self.font_family, self.font_style, self.font_size_pt, word)
        cached = self._widths.get(key)
        if cached is None:
            cached = self._widths[key] = self.get_string_width(word)
        return cached

    def paragraph(self, text: str, width: float, line_height: float, x: float | None = None) -> None:
        """Write a paragraph wrapped at `width` from `x` (default: the left margin), breaking pages."""
        left = self.l_margin if x is None else x
        for line in self.wrap(text, width):
            self.set_x(left)
            self.cell(width, line_height, line, new_x="LEFT", new_y="NEXT")

    def footer(self) -> None:
        # The reference lets the mailing house and an adviser match a printed page to its row.
        self.page_in_letter += 1
        self.set_y(-13)
        self.set_font("DejaVu", "", 7)
        self.set_text_color(110)
        self.cell(0, 4, f"Réf. {self.current_reference} · page {self.page_in_letter}", align="R")
        self.set_text_color(0)

    def add_letter(self, letter: Letter) -> None:
        """Lay out one letter from a new page."""
        message = letter.message
        # add_page() first prints the previous letter's footer: switch the reference only afterwards.
        self.add_page()
        self.current_reference = f"D-{message.message_id}"
        self.page_in_letter = 0
        letter.first_page = self.page_no()

        # Sender, top left, clear of the envelope window.
        sender = letter.sender
        self.set_xy(20, 15)
        if sender.name:
            self.set_font("DejaVu", "B", 10)
            self.paragraph(sender.name, 75, 4.6, x=20)
        self.set_font("DejaVu", "", 9)
        for line in (*sender.address, sender.phone, sender.email):
            if line:
                self.paragraph(line, 75, 4.2, x=20)

        # Recipient, inside the window; nothing else may show there (La Poste's reader takes the
        # window's last line for the postcode and town).
        self.set_font("DejaVu", "", 10.5)
        self.set_xy(ADDRESS_X, ADDRESS_Y)
        for line in letter.address:
            self.set_x(ADDRESS_X)
            self.cell(85, 5, line, new_x="LEFT", new_y="NEXT")

        # Date and subject, below the window.
        where = f"{sender.city}, le " if sender.city else "Le "
        self.set_xy(ADDRESS_X, WINDOW[3] + 5)
        self.set_font("DejaVu", "", 10)
        self.cell(80, 5, where + french_date(letter.day))
        self.set_xy(20, WINDOW[3] + 17)
        if message.subject:
            self.set_font("DejaVu", "B", 11)
            self.paragraph(f"Objet : {message.subject}", 170, 5.5, x=20)
            self.ln(4)

        # Body: one paragraph per line of text; an empty line is a wider gap.
        self.set_font("DejaVu", "", 11)
        for paragraph in message.body.replace("\r\n", "\n").split("\n"):
            if paragraph.strip():
                self.paragraph(paragraph.strip(), 170, 5.6, x=20)
                self.ln(2.2)
            else:
                self.ln(2.8)
        link = short_link_for(message)
        if link:
            self.add_qr(link)
        letter.pages = self.page_no() - letter.first_page + 1

    def add_qr(self, link: str) -> None:
        """The QR code of the short link, with the link written beside it, after the body (never split)."""
        needed = QR_SIZE + 6
        if self.get_y() + needed > self.h - self.b_margin:
            self.add_page()
        top = self.get_y() + 3
        self.image(qr_png(link), x=20, y=top, w=QR_SIZE, h=QR_SIZE)
        shown = link.split("://", 1)[-1]
        self.set_xy(20 + QR_SIZE + 5, top + QR_SIZE / 2 - 6)
        self.set_font("DejaVu", "", 10)
        self.cell(120, 5, "Flashez ce code avec l'appareil photo de votre téléphone,", new_x="LEFT", new_y="NEXT")
        self.cell(120, 5, "ou tapez :", new_x="LEFT", new_y="NEXT")
        self.set_font("DejaVu", "B", 12)
        self.cell(120, 6, shown, new_x="LEFT", new_y="NEXT")
        self.set_y(top + QR_SIZE + 2)


def render_letters(letters: Sequence[Letter]) -> bytes:
    """One PDF holding every letter, each from a new page; fills `first_page` and `pages` of each."""
    document = LetterDocument()
    document.set_title("Courriers Déclic")
    for letter in letters:
        document.add_letter(letter)
    return bytes(document.output())


def split_letters(merged: bytes, letters: Sequence[Letter]) -> list[bytes]:
    """The per-letter PDFs cut out of the merged one (each keeps only its own pages)."""
    reader = PdfReader(io.BytesIO(merged))
    files = []
    for letter in letters:
        writer = PdfWriter()
        for index in range(letter.first_page - 1, letter.first_page - 1 + letter.pages):
            writer.add_page(reader.pages[index])
        writer.add_metadata(
            {"/Title": f"Courrier Déclic D-{letter.message.message_id}", "/Creator": "Déclic"}
        )
        buffer = io.BytesIO()
        writer.write(buffer)
        files.append(buffer.getvalue())
    return files


# --- the channel -------------------------------------------------------------------------------------


def _safe(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z_-]+", "", text) or "x"


class LetterChannel:
    """Writes each batch of letters as PDFs, a merged PDF and a manifest for a mailing house."""

    name = "letter"

    def __init__(
        self,
        *,
        letter_dir: str | os.PathLike[str],
        sender_name: str = "",
        sender_address: str | Sequence[str] = (),
        sender_city: str = "",
        today: Callable[[], dt.date],
    ) -> None:
        self.root = Path(letter_dir)
        if isinstance(sender_address, str):
            sender_address = split_address(sender_address)
        self.default_sender = Sender(name=sender_name, address=tuple(sender_address), city=sender_city)
        self.today = today  # the date printed on the letters
        self.last_batch_dir: Path | None = None

    @classmethod
    def from_settings(cls, settings: Any, clock: Callable[[], dt.datetime] | None = None) -> LetterChannel:
        """The channel configured from `DECLIC_LETTER_*`, dated by the root's clock in its zone."""
        home = Path(setting(settings, "home", "var"))
        zone = ZoneInfo(setting(settings, "timezone"))
        now = clock or no_clock
        return cls(
            today=lambda: now().astimezone(zone).date(),
            letter_dir=setting(settings, "letter_dir", str(home / "letters")),
            sender_name=setting(settings, "letter_sender_name", ""),
            sender_address=setting(settings, "letter_sender_address", ""),
            sender_city=setting(settings, "letter_sender_city", ""),
        )

    def send(self, batch: Sequence[OutgoingMessage], on_handoff: Handoff | None = None,
             on_answer: Answer | None = None) -> list[SendResult]:
        """Write the batch's letters; bad addresses are PERMANENT, a disk failure TRANSIENT for all."""
        day = self.today()
        results: dict[int, SendResult] = {}
        letters: list[Letter] = []
        for position, message in enumerate(batch):
            if not message.body.strip():
                results[position] = SendResult(message.message_id, Outcome.PERMANENT, "courrier sans texte")
                continue
            try:
                address = address_for(message)
            except (AddressError, TypeError) as exc:
                results[position] = SendResult(
                    message.message_id, Outcome.PERMANENT, f"adresse refusée : {exc}"
                )
                continue
            given = message.meta.get("sender") or message.campaign.get("sender")
            sender = Sender.from_meta(given, self.default_sender)
            letters.append(Letter(message, address, sender, day, extra={"position": position}))

        if letters:
            batch_id = batch_id_for(day, [letter.message.message_id for letter in letters])
            try:
                letters, abandoned = self._write_batch(batch_id, letters, on_handoff)
            except (OSError, FPDFException, PyPdfError) as exc:  # disk full, permissions, a layout the PDF
                # libraries refuse: nothing was handed over, the batch is tried again
                detail = f"écriture du lot impossible : {type(exc).__name__}: {exc}"
                for letter in letters:
                    results[letter.extra["position"]] = SendResult(
                        letter.message.message_id, Outcome.TRANSIENT, detail
                    )
            else:
                for letter in abandoned:
                    results[letter.extra["position"]] = SendResult(
                        letter.message.message_id,
                        Outcome.ABANDONED,
                        "bail perdu : un autre processus l'envoie",
                    )
                for letter in letters:
                    results[letter.extra["position"]] = SendResult(
                        letter.message.message_id,
                        Outcome.SENT,
                        f"PDF écrit ({letter.pages} page{'s' if letter.pages > 1 else ''})",
                        provider_id=f"{batch_id}/{letter.file}",
                    )
        return [results[position] for position in range(len(batch))]

    def _write_batch(
        self, batch_id: str, letters: list[Letter], on_handoff: Handoff | None
    ) -> tuple[list[Letter], list[Letter]]:
        """Write the batch folder; returns the letters written and those abandoned at hand-off."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / batch_id
        # Built aside and renamed: the mailing house never picks up half a batch.
        partial = self.root / f".{batch_id}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        (partial / "letters").mkdir(parents=True)

        merged = render_letters(letters)
        (partial / "merged.pdf").write_bytes(merged)
        for letter, content in zip(letters, split_letters(merged, letters), strict=True):
            siret = _safe(str(letter.message.meta.get("siret") or "sans-siret"))
            letter.file = f"letters/{letter.message.message_id}-{siret}.pdf"
            (partial / letter.file).write_bytes(content)

        # Excel, the mailing houses' usual tool, reads accents right only with a BOM.
        with open(partial / "manifest.csv", "w", newline="", encoding="utf-8-sig") as handle:
            writer = csv.writer(handle, delimiter=";")
            writer.writerow(
                [
                    "message_id",
                    "siret",
                    "name",
                    *(f"line{i}" for i in range(1, MAX_LINES + 1)),
                    "pages",
                    "file",
                ]
            )
            for letter in letters:
                lines = letter.address + [""] * (MAX_LINES - len(letter.address))
                meta = letter.message.meta
                writer.writerow(
                    [
                        letter.message.message_id,
                        meta.get("siret") or "",
                        meta.get("business_name") or meta.get("name") or letter.address[0],
                        *lines,
                        letter.pages,
                        letter.file,
                    ]
                )

        abandoned: list[Letter] = []
        if on_handoff is not None:
            kept: list[Letter] = []
            for letter in letters:
                (kept if on_handoff(letter.message.message_id) else abandoned).append(letter)
            if abandoned:
                # Rare (a lease expired mid-batch): rebuild without the letters another worker now owns.
                shutil.rmtree(partial, ignore_errors=True)
                if not kept:
                    return [], abandoned
                written, _ = self._write_batch(batch_id, kept, None)
                return written, abandoned

        if final.exists():
            shutil.rmtree(final)
        partial.rename(final)
        self.last_batch_dir = final
        return letters, abandoned

    def close(self) -> None:
        """Nothing stays open between batches."""


register("letter", LetterChannel.from_settings)
