"""The ingest report: what a person reads after any ingest, and what `--json` prints.

`read` always equals `accepted + sum(rejected)`. Accepted rows that were valid but out of scope (a
non-TPE unit nobody knows, a closed unit nobody knows, a BODACC family we do not use) are counted
in `skipped` so the numbers still add up and the reason is visible.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Any

from triggers.model import Reject


@dataclass
class IngestReport:
    """Counters of one ingest run; `to_dict()` is the documented JSON shape."""

    read: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    stored: int = 0  # business rows (or events) written

    def reject(self, reject: Reject, sink: RejectSink | None = None) -> None:
        """Count one rejected row and hand it to the sink when there is one."""
        self.rejected[reject.reason] += 1
        if sink is not None:
            sink.write(reject)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def check(self) -> None:
        """Raise if the counters do not add up (a bug, never bad input)."""
        if self.read != self.accepted + self.rejected_total:
            raise AssertionError(
                f"report does not add up: read={self.read} accepted={self.accepted} "
                f"rejected={self.rejected_total}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object printed by `--json`."""
        out: dict[str, Any] = {
            "read": self.read,
            "accepted": self.accepted,
            "rejected": _nonzero(self.rejected),
            "events": _nonzero(self.events),
        }
        if +self.skipped:
            out["skipped"] = _nonzero(self.skipped)
        if self.stored:
            out["stored"] = self.stored
        return out

    def summary(self) -> str:
        """A few plain lines for a terminal."""
        lines = [
            f"read {self.read:,}  accepted {self.accepted:,}  rejected {self.rejected_total:,}"
            + (f"  written {self.stored:,}" if self.stored else "")
        ]
        for title, counter in (
            ("rejected", self.rejected),
            ("events", self.events),
            ("skipped", self.skipped),
        ):
            if +counter:
                parts = ", ".join(f"{k}: {v:,}" for k, v in (+counter).most_common())
                lines.append(f"  {title}: {parts}")
        return "\n".join(lines)


def _nonzero(counter: Counter[str]) -> dict[str, int]:
    return {k: v for k, v in sorted(counter.items()) if v}


class RejectSink:
    """Writes each rejected row as CSV: line;field;reason;raw (the `--rejects FILE` output)."""

    def __init__(self, stream: IO[str]) -> None:
        self._writer = csv.writer(stream, delimiter=";")
        self._writer.writerow(("line", "field", "reason", "raw"))

    def write(self, reject: Reject) -> None:
        self._writer.writerow(
            ("" if reject.line is None else reject.line, reject.field, reject.reason, reject.raw)
        )
