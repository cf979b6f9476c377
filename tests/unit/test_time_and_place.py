"""Time and place are injected (issue 17, point 4): the deployment's zone comes from `Settings.timezone` (the App's
zone), and the time from the App's clock; no module outside the few named here reads either on its own."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

from orchestrator.core.planner import plan
from tests.unit.test_planner_journeys import candidate, rule
from tests.utils.factories import creation_item
from triggers.model import Reject
from triggers.partner_api import validate_item

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("orchestrator", "triggers", "store", "integrations", "templates", "segments", "web")

ZONE = re.compile(r"Europe/Paris|\bPARIS\s*=")
# Where the name of a zone is data, not the deployment's place.
ZONE_ALLOWED = {
    "orchestrator/app/settings.py": "Settings.timezone, the one source of the deployment's zone",
    "segments/territory.py": "METROPOLITAN_TIMEZONE, the zone of every metropolitan département (reference data)",
    "segments/data/build_reference.py": "builds that reference data",
}

WALL_CLOCK = re.compile(r"\bdatetime\.(?:now|utcnow|today)\(|\bdate\.today\(|\btime\.time\(")
# Where the wall clock is read on purpose, and why.
CLOCK_ALLOWED = {
    "orchestrator/app/bootstrap.py": "system_clock, the App's clock",
    "orchestrator/prefect/warm.py": "asks Prefect for the runs due on Prefect's own clock",
    "orchestrator/app/dispatch.py": "benchmark figures in epoch seconds, lined up across processes",
    "integrations/webhook.py": "a request's signing time, which the receiver checks against its own clock",
    "integrations/email_smtp.py": "the Date header of the wire message, when it really leaves",
    "integrations/_http.py": "a Retry-After HTTP date, read against the real time to size a retry sleep",
}


# Every writer stamps its rows with the `now` its caller passes (the App's clock): no `utcnow()` wall clock under
# another name comes back, and no column has a default time either.
STAMP = re.compile(r"(?<!def )\butcnow\(")
STAMP_PENDING: dict[str, str] = {}
COLUMN_CLOCK = re.compile(r"default(?:_factory)?\s*=\s*(?:utcnow|dt\.datetime\.now|datetime\.now|func\.now)\b")


def _hits(pattern: re.Pattern[str], allowed: dict[str, str]) -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name in allowed:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if pattern.search(line):
                    found.append(f"{name}:{number}: {line.strip()}")
    return found


def test_no_module_hard_codes_the_deployment_zone():
    assert _hits(ZONE, ZONE_ALLOWED) == []


def test_no_module_reads_the_wall_clock_behind_the_app():
    assert _hits(WALL_CLOCK, CLOCK_ALLOWED) == []


def test_no_store_row_is_stamped_behind_its_callers_back():
    assert _hits(STAMP, STAMP_PENDING) == []
    assert _hits(COLUMN_CLOCK, {}) == []


def test_every_exception_still_exists_and_still_needs_its_place():
    for name in ZONE_ALLOWED:
        assert ZONE.search((ROOT / name).read_text(encoding="utf-8")), f"{name} no longer names a zone"
    for name in CLOCK_ALLOWED:
        assert WALL_CLOCK.search((ROOT / name).read_text(encoding="utf-8")), f"{name} no longer reads the clock"
    for name in STAMP_PENDING:
        assert STAMP.search((ROOT / name).read_text(encoding="utf-8")), f"{name} no longer calls utcnow()"


def test_the_planner_counts_a_campaigns_first_day_in_the_zone_it_is_given():
    # 22:30 UTC on 30 November is still the 30th in Paris, already 1 December in La Réunion.
    now = dt.datetime(2026, 11, 30, 22, 30, tzinfo=dt.UTC)
    starts = rule(starts_on="2026-12-01")
    enrolled = {}
    for zone in ("Europe/Paris", "Indian/Reunion"):
        result = plan([candidate()], [starts], now=now, zone=ZoneInfo(zone), enrolled=set(), suppressed=set())
        enrolled[zone] = len(result.enrollments)
    assert enrolled == {"Europe/Paris": 0, "Indian/Reunion": 1}


def test_a_partner_event_is_in_the_future_against_the_callers_today():
    item = creation_item("t-1", occurred_on=dt.date(2026, 12, 3))
    assert isinstance(validate_item(item, "partner:1", "bge", today=dt.date(2026, 12, 1)), Reject)
    assert not isinstance(validate_item(item, "partner:1", "bge", today=dt.date(2026, 12, 2)), Reject)  # tomorrow
