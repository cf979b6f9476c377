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
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

MESSAGES_DIR = Path(__file__).parent / "messages"


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
        )

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

    def render(self, name: str, context: dict[str, Any]) -> Rendered:
        """Render the subject, body and optional html blocks of one template."""
        tmpl = self.template(name)
        ctx = tmpl.new_context(context)

        def block(block_name: str) -> str | None:
            fn = tmpl.blocks.get(block_name)
            return "".join(fn(ctx)).strip() if fn else None

        body = block("body")
        if body is None:
            raise LookupError(f"template {name} has no body block")
        return Rendered(subject=block("subject") or "", body=body + "\n", html=block("html"))


@lru_cache(maxsize=4)
def library(root: str | None = None) -> TemplateLibrary:
    """The shared library for a folder (compiled templates live as long as the process)."""
    return TemplateLibrary(Path(root) if root else None)
