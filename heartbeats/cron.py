"""Cron expressions evaluated in local wall time of an IANA zone, with explicit DST rules.

croniter walks *naive local* times; this module turns each into a real instant with the rule of
medic.timezones:

- **Skipped hour** (spring forward): a fire time that does not exist on the clock (02:30 when
  clocks jump 02:00 → 03:00) happens at the first valid instant after it — the moment of the
  jump (03:00 local).
- **Repeated hour** (fall back): a fire time that exists twice (01:30 when clocks go 02:00 →
  01:00) happens once, at its first occurrence. Hourly expressions therefore fire once, not
  twice, for the repeated wall-clock hour.

All instants returned are aware datetimes in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter
from croniter.croniter import CroniterBadCronError, CroniterBadDateError

from medic.timezones import wall_to_instant

# Past this horizon a search gives up: "0 0 30 2 *" never fires.
_MAX_ITERATIONS = 2000


class CronError(ValueError):
    pass


def validate_cron(expression: str) -> str:
    expression = " ".join((expression or "").split())
    if len(expression.split(" ")) != 5:
        raise CronError("Use five fields: minute hour day-of-month month day-of-week.")
    if not croniter.is_valid(expression):
        raise CronError(f"'{expression}' is not a valid cron expression.")
    try:
        next_fire_after(expression, ZoneInfo("UTC"), datetime(2024, 1, 1, tzinfo=UTC))
    except CronError as exc:
        raise CronError(f"'{expression}' never fires.") from exc
    return expression


def localize(naive: datetime, zone: ZoneInfo) -> datetime:
    """The instant (UTC) of a fire time: the first occurrence of a repeated wall time, the jump
    for a skipped one (medic.timezones has the rule)."""
    return wall_to_instant(naive, zone, fold=0)


def next_fire_after(expression: str, zone: ZoneInfo, after: datetime) -> datetime:
    """The first fire instant strictly after ``after`` (aware)."""
    local = after.astimezone(zone).replace(tzinfo=None)
    # Start one hour back so a fire time in a repeated hour is not skipped; results at or before
    # ``after`` are discarded below.
    try:
        iterator = croniter(expression, local - timedelta(hours=1))
    except (CroniterBadCronError, ValueError) as exc:
        raise CronError(str(exc)) from exc
    for _ in range(_MAX_ITERATIONS):
        try:
            naive = iterator.get_next(datetime)
        except CroniterBadDateError as exc:
            raise CronError("no fire time found") from exc
        instant = localize(naive, zone)
        if instant > after:
            return instant
    raise CronError("no fire time found")


def previous_fire_at_or_before(expression: str, zone: ZoneInfo, at: datetime) -> datetime | None:
    """The latest fire instant at or before ``at`` (None if none within the search horizon)."""
    local = at.astimezone(zone).replace(tzinfo=None)
    try:
        iterator = croniter(expression, local + timedelta(hours=1, minutes=1))
    except (CroniterBadCronError, ValueError) as exc:
        raise CronError(str(exc)) from exc
    for _ in range(_MAX_ITERATIONS):
        try:
            naive = iterator.get_prev(datetime)
        except CroniterBadDateError:
            return None
        instant = localize(naive, zone)
        if instant <= at:
            return instant
    return None


def upcoming(expression: str, zone: ZoneInfo, after: datetime, count: int) -> list[datetime]:
    out: list[datetime] = []
    cursor = after
    for _ in range(count):
        cursor = next_fire_after(expression, zone, cursor)
        out.append(cursor)
    return out
