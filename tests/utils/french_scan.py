"""What a French reader must never meet in a CLI output or a page (issue 19, "Done when"): a snake_case code, an
English status word, a traceback, an ISO timestamp, a bare SIREN/SIRET where a name belongs.

`problems(text)` returns the offending snippets; file names, URLs, e-mail addresses and environment variables are
taken out first (they are what they are, a person copies them as written).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# File paths and names, URLs, e-mail addresses, `declic ...` commands quoted in a sentence, Message-IDs, a partner's
# token (`store.partners`: "dcl_" and random URL-safe characters, which may spell a snake_case word or an English one).
_IGNORED = re.compile(
    r"https?://\S+"
    r"|\bdcl_[\w-]+"
    r"|<[^<>\s]+@[^<>\s]+>"
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|(?:[\w.-]*/)+[\w.-]+"
    r"|\b[\w-]+\.(?:ya?ml|csv|j2|json|xlsx|zip|eml|db|html|txt|pdf)\b"
    r"|«\s*declic [^»]*»|`[^`]*`"
)
SNAKE = re.compile(r"\b[a-z]+_[a-z_]+\b")
ENGLISH = re.compile(
    r"\b(sent|planned|failed|enrolled|holdout|treatment|skipped|accepted|rejected|duplicate|pending|unknown|"
    r"handed_over|no_channel|retry|abandoned|created|unchanged|updated|cancelled|delivered|bounced|claimed|"
    r"paused|ended|operator|collectivite|ambassador|errors?|warnings?|texts|lowest|Password|Abort(?:ed)?|"
    r"Commands|Show this message|"
    # trigger and channel codes where their French names belong
    r"creation|takeover|closure|consolidation|deadline|email|letter|call|webhook)\b"
    # a delay as the YAML writes it ("7d", "48h")
    r"|\b\d+[dhw]\b")
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s*File \"[^\"]+\", line \d+", re.MULTILINE)
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}|[+-]\d{2}:\d{2}\b(?!\s*h)|\(UTC\)")
# A 9- or 14-digit number shown on its own: a SIREN/SIRET standing where a name should be. Allowed when it is
# named as such ("SIRET 73282932000074", "SIREN : 732829320").
BARE_ID = re.compile(r"(?<![\d\w])(?<!SIRET )(?<!SIREN )(?<!SIRET : )(?<!SIREN : )(\d{9}|\d{14})(?![\d\w])")


class _Readable(HTMLParser):
    """The words a person reads on a page: text outside script/style, plus the attributes shown or spoken
    (title, aria-label, alt, placeholder, a button's value). What a person types as written (<code>, <kbd>,
    <samp>: a command, a file's column name) is left out, and a cell under a "SIRET" or "SIREN" column header is
    read with its header, as a screen reader does."""

    SPOKEN = ("title", "aria-label", "alt", "placeholder", "aria-description")
    HIDDEN = ("script", "style", "template", "code", "kbd", "samp")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0
        self._headers: list[str] = []
        self._cell: int | None = None
        self._in_header = False

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN:
            self._hidden += 1
        if tag == "table":
            self._headers = []
        elif tag == "tr":
            self._cell = -1
        elif tag in ("td", "th") and self._cell is not None:
            self._cell += 1
            self._in_header = tag == "th" and len(self._headers) == self._cell
            if self._in_header:
                self._headers.append("")
        found = dict(attrs)
        for name in self.SPOKEN:
            if found.get(name):
                self.parts.append(found[name])
        if tag == "input" and found.get("type") in ("submit", "button") and found.get("value"):
            self.parts.append(found["value"])

    def handle_endtag(self, tag):
        if tag in self.HIDDEN and self._hidden:
            self._hidden -= 1
        if tag == "th":
            self._in_header = False

    def handle_data(self, data):
        if self._hidden or not data.strip():
            return
        text = data.strip()
        if self._in_header:
            self._headers[-1] += text
        elif self._cell is not None and 0 <= self._cell < len(self._headers) and \
                self._headers[self._cell].strip() in ("SIRET", "SIREN"):
            text = f"{self._headers[self._cell].strip()} {text}"
        self.parts.append(text)


def page_text(html: str) -> str:
    """What a person reads (or hears) on an HTML page, one piece a line."""
    reader = _Readable()
    reader.feed(html)
    return "\n".join(reader.parts)


def strip_ignored(text: str) -> str:
    return _IGNORED.sub(" ", text)


def problems(text: str) -> list[str]:
    """Every snippet of `text` a French reader should not meet (empty: the text is clean)."""
    clean = strip_ignored(text)
    found = []
    for kind, pattern in (("code", SNAKE), ("anglais", ENGLISH), ("trace", TRACEBACK), ("date ISO", ISO_TIME),
                          ("SIREN/SIRET nu", BARE_ID)):
        for m in pattern.finditer(clean):
            start = max(0, m.start() - 40)
            found.append(f"{kind}: {m.group(0)!r} dans …{clean[start:m.end() + 40]!r}…")
    return found
