"""Cron schedules in local time with explicit DST rules (SRE-17)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from heartbeats.cron import CronError, localize, next_fire_after, upcoming, validate_cron

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
SYDNEY = ZoneInfo("Australia/Sydney")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "day", "expected_utc"),
    [
        # 02:30 does not exist on spring-forward day: the job is expected at the jump (03:00).
        (NEW_YORK, (2026, 3, 8), utc(2026, 3, 8, 7, 0)),
        (BERLIN, (2026, 3, 29), utc(2026, 3, 29, 1, 0)),
    ],
)
def test_job_in_the_skipped_hour_is_expected_at_the_first_valid_instant(zone, day, expected_utc):
    before = datetime(*day, 0, 0, tzinfo=zone)
    fire = next_fire_after("30 2 * * *", zone, before)
    assert fire == expected_utc
    assert fire.astimezone(zone).strftime("%H:%M") == "03:00"
    # the day after, back to 02:30 local
    assert next_fire_after("30 2 * * *", zone, fire).astimezone(zone).strftime("%H:%M") == "02:30"


@pytest.mark.parametrize(
    ("zone", "day", "first_utc"),
    [
        (NEW_YORK, (2026, 11, 1), utc(2026, 11, 1, 5, 30)),  # 01:30 EDT, not 01:30 EST
        (BERLIN, (2026, 10, 25), utc(2026, 10, 25, 0, 30)),  # 02:30 CEST, not 02:30 CET
    ],
)
def test_job_in_the_repeated_hour_is_expected_once(zone, day, first_utc):
    expression = "30 1 * * *" if zone is NEW_YORK else "30 2 * * *"
    start = datetime(*day, 0, 0, tzinfo=zone)
    fire = next_fire_after(expression, zone, start)
    assert fire == first_utc
    following = next_fire_after(expression, zone, fire)
    assert following - fire > timedelta(hours=23)  # the second 01:30 is not a fire time


def test_hourly_job_fires_once_for_the_repeated_wall_clock_hour():
    start = datetime(2026, 11, 1, 0, 0, tzinfo=NEW_YORK)
    fires = upcoming("30 * * * *", NEW_YORK, start, 4)
    local = [f.astimezone(NEW_YORK).strftime("%H:%M %Z") for f in fires]
    assert local == ["00:30 EDT", "01:30 EDT", "02:30 EST", "03:30 EST"]


def test_southern_hemisphere_spring_forward():
    # Sydney: 2026-10-04 02:00 -> 03:00
    fire = next_fire_after("15 2 * * *", SYDNEY, datetime(2026, 10, 4, 0, tzinfo=SYDNEY))
    assert fire.astimezone(SYDNEY).strftime("%Y-%m-%d %H:%M") == "2026-10-04 03:00"


def test_feb_29_only_cron_and_year_end():
    fire = next_fire_after("0 12 29 2 *", UTC, utc(2026, 1, 1))
    assert fire == utc(2028, 2, 29, 12)
    assert next_fire_after("0 12 29 2 *", UTC, fire) == utc(2032, 2, 29, 12)
    # Dec 31 -> Jan 1 in a non-UTC zone
    tokyo = ZoneInfo("Asia/Tokyo")
    fire = next_fire_after("0 0 * * *", tokyo, datetime(2026, 12, 31, 23, 59, tzinfo=tokyo))
    assert fire.astimezone(tokyo) == datetime(2027, 1, 1, 0, 0, tzinfo=tokyo)
    # the last day of February in a leap year
    assert next_fire_after("0 9 28-29 2 *", UTC, utc(2028, 2, 28, 10)) == utc(2028, 2, 29, 9)


def test_localize_existing_nonexistent_and_ambiguous_times():
    assert localize(datetime(2026, 7, 1, 12, 0), NEW_YORK) == utc(2026, 7, 1, 16, 0)
    assert localize(datetime(2026, 3, 8, 2, 30), NEW_YORK) == utc(2026, 3, 8, 7, 0)
    assert localize(datetime(2026, 11, 1, 1, 30), NEW_YORK) == utc(2026, 11, 1, 5, 30)


@pytest.mark.parametrize("bad", ["", "* * *", "61 * * * *", "0 0 30 2 *", "every day"])
def test_invalid_or_never_firing_expressions_are_refused(bad):
    with pytest.raises(CronError):
        validate_cron(bad)


def test_validate_normalises_whitespace():
    assert validate_cron("  0  3 * *   1-5 ") == "0 3 * * 1-5"
