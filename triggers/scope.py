"""A partner's scope: the event types and the territory its token allows (API and files alike).

Pure: `scope_reject` says why an event falls outside a partner's scope, or None when it is inside.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from segments.territory import commune as commune_info
from segments.territory import communes_of
from triggers.model import EventIn, Reject


def in_territory(commune_code: str, territory: Sequence[str]) -> bool:
    """True when the commune (arrondissements resolved) lies in one of the "level:code" territories."""
    info = commune_info(commune_code)
    return info is not None and info.code in territory_communes(tuple(territory))


@lru_cache(maxsize=256)
def territory_communes(territory: tuple[str, ...]) -> frozenset[str]:
    """The current communes of "level:code" territories, resolved once per scope (the data never change)."""
    found: set[str] = set()
    for scope in territory:
        level, _, code = scope.partition(":")
        try:
            found |= communes_of(level, code)  # type: ignore[arg-type]
        except ValueError:
            continue  # an unknown level in a stored scope never widens it
    return frozenset(found)


def scope_reject(
    event: EventIn,
    *,
    allowed_types: Sequence[str],
    territory: Sequence[str],
    commune_code: str | None,
) -> Reject | None:
    """Why `event` is outside the scope (type not allowed, business outside the territory), or None.

    `commune_code` is where the business is: the store's place for a business it knows (the event's only
    for a business nobody knows yet, or the partner's own not placed by Sirene: see `PartnerScope`); when
    nobody knows yet the territory cannot be judged and the event is let in (pending until Sirene places it).
    An empty `allowed_types` or `territory` means no restriction.
    """
    if allowed_types and event.type not in allowed_types:
        return Reject(None, "type", f"type non autorisé pour ce partenaire: {event.type}")
    if territory and commune_code and not in_territory(commune_code, territory):
        return Reject(None, "commune_code", f"hors du territoire du partenaire: commune {commune_code}")
    return None
