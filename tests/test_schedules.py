"""Working hours (alerting.schedules): parsing, time zones, DST, midnight spans, holidays.

Every instant is written in UTC and the local wall time it stands for is given in a comment, so
the expectations do not depend on the process's local zone.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from alerting.schedules import (
    LOOKAHEAD_DAYS,
    MAX_WINDOWS,
    Schedule,
    ScheduleError,
    Window,
    parse_schedule,
    validate_timezone,
)
from medic.timezones import _ABBREVIATIONS, _LEGACY_ALIASES

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
ALL_DAYS = [*WEEKDAYS, "sat", "sun"]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def window(days: list[str] | str, start: str, end: str) -> dict:
    return {"days": [days] if isinstance(days, str) else days, "start": start, "end": end}


def schedule(tz: str, *windows: dict, holidays: dict | None = None) -> Schedule:
    spec: dict = {"timezone": tz, "windows": list(windows)}
    if holidays is not None:
        spec["holidays"] = holidays
    return parse_schedule(spec)


def office(tz: str, holidays: dict | None = None, start="09:00", end="18:00") -> Schedule:
    return schedule(tz, window(WEEKDAYS, start, end), holidays=holidays)


def field_errors(spec) -> dict[str, list[str]]:
    with pytest.raises(ScheduleError) as excinfo:
        parse_schedule(spec)
    return excinfo.value.fields


# ------------------------------------------------------------------------------------------
# Time zones
# ------------------------------------------------------------------------------------------


def test_cst_message_names_the_iana_zone():
    with pytest.raises(ScheduleError) as excinfo:
        validate_timezone("CST")
    assert excinfo.value.fields == {
        "timezone": [
            "CST is an abbreviation, not a time zone; use an IANA name such as America/Chicago"
        ]
    }
    assert isinstance(excinfo.value, ValueError)


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("EST", "America/New_York"),
        ("PST", "America/Los_Angeles"),
        ("CET", "Europe/Berlin"),
        ("IST", "Asia/Kolkata"),
        ("IST", "Europe/Dublin"),
        ("cst", "America/Chicago"),
        ("AEST", "Australia/Sydney"),
        ("GMT", "UTC"),
    ],
)
def test_abbreviations_rejected_with_suggestion(name, suggestion):
    with pytest.raises(ScheduleError) as excinfo:
        validate_timezone(name)
    (message,) = excinfo.value.fields["timezone"]
    assert "is an abbreviation, not a time zone" in message
    assert suggestion in message


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("US/Eastern", "America/New_York"),
        ("us/eastern", "America/New_York"),
        ("US/Pacific", "America/Los_Angeles"),
        ("EST5EDT", "America/New_York"),
        ("CST6CDT", "America/Chicago"),
        ("Asia/Calcutta", "Asia/Kolkata"),
        ("Europe/Kiev", "Europe/Kyiv"),
        ("Australia/NSW", "Australia/Sydney"),
        ("Japan", "Asia/Tokyo"),
        ("Etc/UTC", "UTC"),
        ("Zulu", "UTC"),
    ],
)
def test_legacy_aliases_rejected_with_suggestion(name, suggestion):
    with pytest.raises(ScheduleError) as excinfo:
        validate_timezone(name)
    (message,) = excinfo.value.fields["timezone"]
    assert "legacy alias" in message
    assert message.endswith(f"use {suggestion}")


def test_zoneinfo_alone_would_accept_the_legacy_names():
    # Why the explicit rejection exists: these all load, and EST/MST even lack DST.
    for name in ("EST", "CET", "EST5EDT", "US/Eastern", "GMT"):
        ZoneInfo(name)


@pytest.mark.parametrize(
    "name",
    [
        "UTC",
        "America/Chicago",
        "America/Argentina/Buenos_Aires",
        "America/Indiana/Indianapolis",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
        "Europe/Kyiv",
        "Pacific/Chatham",
    ],
)
def test_canonical_names_accepted(name):
    assert validate_timezone(name) == ZoneInfo(name)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("america/chicago", "did you mean America/Chicago?"),
        ("utc", "did you mean UTC?"),
        ("America/Chicgo", "did you mean America/Chicago"),
        ("Mars/Olympus_Mons", "unknown time zone"),
        ("Etc/GMT+5", "fixed-offset"),
        ("", "required"),
        (" UTC", "whitespace"),
        ("../etc/passwd", "unknown time zone"),
    ],
)
def test_bad_names_rejected(name, fragment):
    with pytest.raises(ScheduleError) as excinfo:
        validate_timezone(name)
    assert fragment in excinfo.value.fields["timezone"][0]


def test_non_string_timezone_rejected():
    with pytest.raises(ScheduleError) as excinfo:
        validate_timezone(5)  # type: ignore[arg-type]
    assert "timezone" in excinfo.value.fields


def test_every_suggestion_is_itself_accepted():
    suggested = set(_LEGACY_ALIASES.values())
    for text in _ABBREVIATIONS.values():
        suggested.update(re.findall(r"\b(?:UTC|[A-Z][a-z]+/[A-Za-z_/]+)", text))
    for name in suggested:
        validate_timezone(name)
    for name in _LEGACY_ALIASES:
        with pytest.raises(ScheduleError):
            validate_timezone(name)


# ------------------------------------------------------------------------------------------
# Spec validation: precise field paths
# ------------------------------------------------------------------------------------------

GOOD_WINDOW = window(WEEKDAYS, "09:00", "18:00")


@pytest.mark.parametrize(
    ("spec", "path", "fragment"),
    [
        ({"windows": [GOOD_WINDOW]}, "timezone", "required"),
        ({"timezone": "CST", "windows": [GOOD_WINDOW]}, "timezone", "America/Chicago"),
        ({"timezone": "UTC"}, "windows", "required"),
        ({"timezone": "UTC", "windows": []}, "windows", "at least one"),
        ({"timezone": "UTC", "windows": GOOD_WINDOW}, "windows", "list"),
        (
            {"timezone": "UTC", "windows": [GOOD_WINDOW] * (MAX_WINDOWS + 1)},
            "windows",
            f"at most {MAX_WINDOWS}",
        ),
        (
            {"timezone": "UTC", "windows": [GOOD_WINDOW, window("sat", "9am", "12:00")]},
            "windows[1].start",
            "HH:MM",
        ),
        (
            {"timezone": "UTC", "windows": [window("sat", "9:00", "12:00")]},
            "windows[0].start",
            "HH:MM",
        ),
        (
            {"timezone": "UTC", "windows": [window("sat", "09:00", "25:00")]},
            "windows[0].end",
            "HH:MM",
        ),
        (
            {"timezone": "UTC", "windows": [window("sat", "09:60", "10:00")]},
            "windows[0].start",
            "HH:MM",
        ),
        (
            {"timezone": "UTC", "windows": [window("sat", "24:00", "10:00")]},
            "windows[0].start",
            "only allowed as an end time",
        ),
        ({"timezone": "UTC", "windows": [window("sat", "09:00", 1000)]}, "windows[0].end", "HH:MM"),
        (
            {"timezone": "UTC", "windows": [window("sat", "09:00", "09:00")]},
            "windows[0].end",
            "differ",
        ),
        (
            {"timezone": "UTC", "windows": [window(["mon", "funday"], "09:00", "10:00")]},
            "windows[0].days[1]",
            "unknown day 'funday'",
        ),
        (
            {"timezone": "UTC", "windows": [window(["mon", "Monday"], "09:00", "10:00")]},
            "windows[0].days[1]",
            "duplicate day 'mon'",
        ),
        (
            {"timezone": "UTC", "windows": [window([], "09:00", "10:00")]},
            "windows[0].days",
            "non-empty",
        ),
        (
            {"timezone": "UTC", "windows": [{"start": "09:00", "end": "10:00"}]},
            "windows[0].days",
            "required",
        ),
        (
            {"timezone": "UTC", "windows": [{"days": ["mon"], "end": "10:00"}]},
            "windows[0].start",
            "required",
        ),
        (
            {"timezone": "UTC", "windows": [{**GOOD_WINDOW, "tz": "UTC"}]},
            "windows[0].tz",
            "unknown field",
        ),
        ({"timezone": "UTC", "windows": ["mon 09:00-18:00"]}, "windows[0]", "must be an object"),
        ({"timezone": "UTC", "windows": [GOOD_WINDOW], "holiday": {}}, "holiday", "unknown field"),
        (
            {"timezone": "UTC", "windows": [GOOD_WINDOW], "holidays": {"country": "XX"}},
            "holidays.country",
            "unknown country 'XX'",
        ),
        (
            {"timezone": "UTC", "windows": [GOOD_WINDOW], "holidays": {"country": "USA"}},
            "holidays.country",
            "alpha-2 code 'US'",
        ),
        (
            {
                "timezone": "UTC",
                "windows": [GOOD_WINDOW],
                "holidays": {"country": "US", "subdivision": "ZZ"},
            },
            "holidays.subdivision",
            "unknown subdivision 'ZZ' of US",
        ),
        (
            {"timezone": "UTC", "windows": [GOOD_WINDOW], "holidays": {"subdivision": "BY"}},
            "holidays.subdivision",
            "requires holidays.country",
        ),
        (
            {
                "timezone": "UTC",
                "windows": [GOOD_WINDOW],
                "holidays": {"dates": ["2026-12-24", "2027-02-29"]},
            },
            "holidays.dates[1]",
            "2027 is not a leap year",
        ),
        (
            {"timezone": "UTC", "windows": [GOOD_WINDOW], "holidays": {"dates": ["12/24/2026"]}},
            "holidays.dates[0]",
            "YYYY-MM-DD",
        ),
        (
            {"timezone": "UTC", "windows": [GOOD_WINDOW], "holidays": {"dates": ["2026-04-31"]}},
            "holidays.dates[0]",
            "not a calendar date",
        ),
        (
            {"timezone": "UTC", "windows": [GOOD_WINDOW], "holidays": {"dates": "2026-12-24"}},
            "holidays.dates",
            "list",
        ),
        ({"timezone": "UTC", "windows": [GOOD_WINDOW], "holidays": ["US"]}, "holidays", "object"),
        ("not a dict", "__all__", "object"),
    ],
)
def test_bad_spec_reports_precise_field_path(spec, path, fragment):
    fields = field_errors(spec)
    assert path in fields, fields
    assert any(fragment in message for message in fields[path]), fields[path]


def test_all_problems_are_reported_at_once():
    fields = field_errors(
        {
            "timezone": "PST",
            "windows": [GOOD_WINDOW, window("sun", "10:00", "10:00"), window("xyz", "1", "2")],
            "holidays": {"country": "US", "subdivision": "XX", "dates": ["2026-02-30"]},
        }
    )
    assert set(fields) == {
        "timezone",
        "windows[1].end",
        "windows[2].days[0]",
        "windows[2].start",
        "windows[2].end",
        "holidays.subdivision",
        "holidays.dates[0]",
    }
    with pytest.raises(ScheduleError, match=r"windows\[1\]\.end: must differ from start"):
        parse_schedule(
            {"timezone": "UTC", "windows": [GOOD_WINDOW, window("sun", "10:00", "10:00")]}
        )


def test_days_accept_full_names_case_insensitively():
    s = schedule("UTC", window(["Monday", "TUE", "wednesday"], "09:00", "10:00"))
    assert s.windows == (Window(days=frozenset({0, 1, 2}), start=9 * 60, end=10 * 60),)


def test_holiday_codes_are_normalized():
    s = schedule("Europe/Berlin", GOOD_WINDOW, holidays={"country": "de", "subdivision": "by"})
    assert (s.holiday_country, s.holiday_subdivision) == ("DE", "BY")
    s = schedule("America/Chicago", GOOD_WINDOW, holidays={"country": "US", "subdivision": "Texas"})
    assert s.holiday_subdivision == "TX"


def test_spec_round_trips():
    spec = {
        "timezone": "America/Chicago",
        "windows": [window(WEEKDAYS, "09:00", "18:00"), window("sat", "22:00", "02:00")],
        "holidays": {"country": "US", "subdivision": "TX", "dates": ["2026-12-31", "2026-12-24"]},
    }
    s = parse_schedule(spec)
    assert parse_schedule(s.to_spec()) == s
    assert s.to_spec()["holidays"]["dates"] == ["2026-12-24", "2026-12-31"]
    assert parse_schedule({"timezone": "UTC", "windows": [GOOD_WINDOW]}).to_spec() == {
        "timezone": "UTC",
        "windows": [GOOD_WINDOW],
    }


# ------------------------------------------------------------------------------------------
# describe()
# ------------------------------------------------------------------------------------------


def test_describe_matches_ticket_example():
    s = schedule(
        "America/Chicago",
        GOOD_WINDOW,
        holidays={"country": "US", "subdivision": "TX", "dates": ["2026-12-24", "2026-12-31"]},
    )
    assert s.describe() == (
        "Mon\u2013Fri 09:00\u201318:00 America/Chicago, US holidays (TX) off, 2 extra days off"
    )


def test_describe_other_shapes():
    s = schedule(
        "Europe/Berlin",
        window(["fri", "mon", "wed"], "08:00", "12:00"),
        window(["sat", "sun"], "22:00", "02:00"),
        window("thu", "18:00", "24:00"),
        holidays={"dates": ["2026-12-24"]},
    )
    assert s.describe() == (
        "Mon, Wed, Fri 08:00\u201312:00; Sat, Sun 22:00\u201302:00 (next day); "
        "Thu 18:00\u201324:00 Europe/Berlin, 1 extra day off"
    )
    assert schedule("UTC", window(ALL_DAYS, "00:00", "24:00")).describe() == (
        "Mon\u2013Sun 00:00\u201324:00 UTC"
    )
    assert (
        schedule("UTC", GOOD_WINDOW, holidays={"country": "GB"})
        .describe()
        .endswith("UTC, GB holidays off")
    )


# ------------------------------------------------------------------------------------------
# Basic evaluation
# ------------------------------------------------------------------------------------------


def test_office_hours_boundaries():
    s = office("America/Chicago")  # CDT = UTC-5 in June
    # Monday 2026-06-01
    assert not s.is_working_time(utc(2026, 6, 1, 13, 59, 59))  # 08:59:59
    assert s.is_working_time(utc(2026, 6, 1, 14, 0))  # 09:00 (start inclusive)
    assert s.is_working_time(utc(2026, 6, 1, 22, 59, 59))  # 17:59:59
    assert not s.is_working_time(utc(2026, 6, 1, 23, 0))  # 18:00 (end exclusive)
    assert not s.is_working_time(utc(2026, 6, 6, 17, 0))  # Saturday 12:00
    assert not s.is_working_time(utc(2026, 6, 7, 17, 0))  # Sunday 12:00


def test_naive_datetime_rejected():
    s = office("UTC")
    with pytest.raises(ValueError, match="timezone-aware"):
        s.is_working_time(datetime(2026, 6, 1, 12, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        s.next_change(datetime(2026, 6, 1, 12, 0))


def test_result_depends_on_the_instant_not_on_its_representation():
    s = office("Europe/Berlin")
    instant = utc(2026, 6, 1, 7, 0)  # 09:00 CEST Monday
    for tz in (UTC, timezone(timedelta(hours=-10)), ZoneInfo("Asia/Tokyo"), ZoneInfo("UTC")):
        assert s.is_working_time(instant.astimezone(tz))
        assert not s.is_working_time((instant - timedelta(seconds=1)).astimezone(tz))
    # Tokyo reads Monday 16:00 and UTC-10 reads Sunday 21:00: only Berlin's wall clock matters.
    assert s.next_change(instant.astimezone(ZoneInfo("Asia/Tokyo"))) == utc(2026, 6, 1, 16, 0)


def test_asia_kolkata_half_hour_offset():
    s = office("Asia/Kolkata")  # UTC+05:30, no DST
    assert not s.is_working_time(utc(2026, 6, 1, 3, 29, 59))  # Mon 08:59:59 IST
    assert s.is_working_time(utc(2026, 6, 1, 3, 30))  # Mon 09:00 IST
    assert s.is_working_time(utc(2026, 6, 1, 12, 29, 59))  # 17:59:59
    assert not s.is_working_time(utc(2026, 6, 1, 12, 30))  # 18:00
    # Sunday 2026-05-31 22:00 UTC is already Monday 03:30 in India
    assert not s.is_working_time(utc(2026, 5, 31, 22, 0))
    assert s.next_change(utc(2026, 6, 5, 13, 0)) == utc(2026, 6, 8, 3, 30)  # Fri -> Mon


# ------------------------------------------------------------------------------------------
# DST
# ------------------------------------------------------------------------------------------


def test_us_spring_forward_nonexistent_start_opens_at_0300():
    # 2026-03-08 America/New_York: 02:00 EST (07:00Z) jumps to 03:00 EDT.
    s = schedule("America/New_York", window("sun", "02:30", "04:00"))
    assert not s.is_working_time(utc(2026, 3, 8, 6, 59, 59))  # 01:59:59 EST
    assert s.is_working_time(utc(2026, 3, 8, 7, 0))  # 03:00 EDT
    assert s.is_working_time(utc(2026, 3, 8, 7, 59, 59))  # 03:59:59 EDT
    assert not s.is_working_time(utc(2026, 3, 8, 8, 0))  # 04:00 EDT
    assert s.next_change(utc(2026, 3, 8, 5, 0)) == utc(2026, 3, 8, 7, 0)
    assert s.next_change(utc(2026, 3, 8, 7, 0)) == utc(2026, 3, 8, 8, 0)
    # A normal Sunday for contrast: 02:30 EST.
    assert s.next_change(utc(2026, 3, 1, 5, 0)) == utc(2026, 3, 1, 7, 30)


def test_eu_spring_forward_nonexistent_start_opens_at_0300():
    # 2026-03-29 Europe/Berlin: 02:00 CET (01:00Z) jumps to 03:00 CEST.
    s = schedule("Europe/Berlin", window("sun", "02:30", "04:00"))
    assert not s.is_working_time(utc(2026, 3, 29, 0, 59, 59))  # 01:59:59 CET
    assert s.is_working_time(utc(2026, 3, 29, 1, 0))  # 03:00 CEST
    assert not s.is_working_time(utc(2026, 3, 29, 2, 0))  # 04:00 CEST
    assert s.next_change(utc(2026, 3, 28, 12, 0)) == utc(2026, 3, 29, 1, 0)


def test_window_ending_in_the_gap_ends_at_the_jump():
    s = schedule("America/New_York", window("sat", "22:00", "02:30"))
    assert s.is_working_time(utc(2026, 3, 8, 6, 59, 59))  # Sun 01:59:59 EST
    assert not s.is_working_time(utc(2026, 3, 8, 7, 0))  # Sun 03:00 EDT
    assert s.next_change(utc(2026, 3, 8, 4, 0)) == utc(2026, 3, 8, 7, 0)


def test_window_entirely_inside_the_gap_does_not_happen():
    s = schedule("America/New_York", window("sun", "02:10", "02:50"))
    assert s.intervals_for(date(2026, 3, 8)) == []
    assert s.next_change(utc(2026, 3, 7, 0, 0)) == utc(2026, 3, 15, 6, 10)  # next Sunday, EDT


def test_fall_back_repeated_0130_is_covered_twice():
    # 2026-11-01 America/New_York: 02:00 EDT (06:00Z) falls back to 01:00 EST.
    ny = ZoneInfo("America/New_York")
    first, second = utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30)
    assert first.astimezone(ny).replace(tzinfo=None) == datetime(2026, 11, 1, 1, 30)
    assert second.astimezone(ny).replace(tzinfo=None) == datetime(2026, 11, 1, 1, 30)
    assert (first.astimezone(ny).fold, second.astimezone(ny).fold) == (0, 1)

    for s in (
        schedule("America/New_York", window("sun", "00:00", "09:00")),
        schedule("America/New_York", window("sun", "01:00", "02:00")),
        schedule("America/New_York", window("sun", "01:30", "01:45")),
    ):
        assert s.is_working_time(first)
        assert s.is_working_time(second)

    # 01:30-01:45 opens at the first 01:30 and closes at the second 01:45: one continuous stretch.
    s = schedule("America/New_York", window("sun", "01:30", "01:45"))
    assert not s.is_working_time(utc(2026, 11, 1, 5, 29, 59))
    assert s.is_working_time(utc(2026, 11, 1, 6, 10))  # 01:10 EST, between the two readings
    assert s.is_working_time(utc(2026, 11, 1, 6, 44, 59))
    assert not s.is_working_time(utc(2026, 11, 1, 6, 45))  # second 01:45
    assert s.next_change(utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 1, 6, 45)


def test_fall_back_window_ending_at_0130_ends_at_the_second_0130():
    s = schedule("America/New_York", window("sat", "22:00", "01:30"))
    assert s.is_working_time(utc(2026, 11, 1, 2, 0))  # Sat 22:00 EDT
    assert s.is_working_time(utc(2026, 11, 1, 5, 45))  # first 01:45 (EDT): no reopening gap
    assert s.is_working_time(utc(2026, 11, 1, 6, 29, 59))  # 01:29:59 EST
    assert not s.is_working_time(utc(2026, 11, 1, 6, 30))  # second 01:30
    assert s.next_change(utc(2026, 11, 1, 3, 0)) == utc(2026, 11, 1, 6, 30)


def test_fall_back_window_starting_at_0130_starts_at_the_first_and_stays_open():
    s = schedule("America/New_York", window("sun", "01:30", "09:00"))
    assert not s.is_working_time(utc(2026, 11, 1, 5, 29, 59))  # first 01:29:59 (EDT)
    assert s.is_working_time(utc(2026, 11, 1, 5, 30))  # first 01:30
    assert s.is_working_time(utc(2026, 11, 1, 6, 15))  # 01:15 EST, clock shows < 01:30 again
    assert s.next_change(utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 1, 14, 0)  # 09:00 EST


def test_dst_days_have_23_and_25_hours():
    s = schedule("America/New_York", window("sun", "00:00", "24:00"))
    spring_start = utc(2026, 3, 8, 5, 0)  # 00:00 EST
    assert s.next_change(spring_start) - spring_start == timedelta(hours=23)
    fall_start = utc(2026, 11, 1, 4, 0)  # 00:00 EDT
    assert s.next_change(fall_start) - fall_start == timedelta(hours=25)


def test_lord_howe_half_hour_dst():
    # Australia/Lord_Howe: +10:30 standard, +11:00 in summer.
    # 2026-10-04 02:00 LHST (15:30Z Oct 3) jumps to 02:30 LHDT.
    s = schedule("Australia/Lord_Howe", window("sun", "02:00", "03:00"))
    assert not s.is_working_time(utc(2026, 10, 3, 15, 29, 59))  # 01:59:59 LHST
    assert s.is_working_time(utc(2026, 10, 3, 15, 30))  # 02:30 LHDT
    assert not s.is_working_time(utc(2026, 10, 3, 16, 0))  # 03:00 LHDT
    # 2026-04-05 02:00 LHDT (15:00Z Apr 4) falls back to 01:30 LHST: 01:30-01:59 happens twice.
    s = schedule("Australia/Lord_Howe", window("sun", "01:40", "01:50"))
    assert s.is_working_time(utc(2026, 4, 4, 14, 40))  # first 01:40 (+11:00)
    assert s.is_working_time(utc(2026, 4, 4, 15, 10))  # second 01:40 (+10:30)
    assert not s.is_working_time(utc(2026, 4, 4, 15, 20))  # second 01:50
    assert not s.is_working_time(utc(2026, 4, 4, 14, 39, 59))


def test_office_hours_follow_dst_over_the_weekend():
    ny = office("America/New_York")
    # Fri 2026-03-06 18:00 EST -> Mon 2026-03-09 09:00 EDT (13:00Z, not 14:00Z)
    assert ny.next_change(utc(2026, 3, 6, 23, 0)) == utc(2026, 3, 9, 13, 0)
    # Fri 2026-10-30 18:00 EDT -> Mon 2026-11-02 09:00 EST (14:00Z)
    assert ny.next_change(utc(2026, 10, 30, 22, 0)) == utc(2026, 11, 2, 14, 0)
    berlin = office("Europe/Berlin")
    # Fri 2026-03-27 18:00 CET -> Mon 2026-03-30 09:00 CEST (07:00Z)
    assert berlin.next_change(utc(2026, 3, 27, 17, 0)) == utc(2026, 3, 30, 7, 0)
    # Mon 09:00 CEST -> 18:00 CEST
    assert berlin.next_change(utc(2026, 3, 30, 7, 0)) == utc(2026, 3, 30, 16, 0)


# ------------------------------------------------------------------------------------------
# Windows across midnight
# ------------------------------------------------------------------------------------------


def test_friday_night_window_covers_early_saturday():
    s = schedule("America/New_York", window("fri", "22:00", "06:00"))  # EDT = UTC-4 in June
    assert not s.is_working_time(utc(2026, 6, 6, 1, 59))  # Fri 21:59
    assert s.is_working_time(utc(2026, 6, 6, 2, 0))  # Fri 22:00
    assert s.is_working_time(utc(2026, 6, 6, 7, 0))  # Sat 03:00
    assert not s.is_working_time(utc(2026, 6, 6, 10, 0))  # Sat 06:00
    assert not s.is_working_time(utc(2026, 6, 6, 11, 0))  # Sat 07:00
    assert not s.is_working_time(utc(2026, 6, 5, 7, 0))  # Fri 03:00 (Thursday has no window)


def test_midnight_window_across_dst_changes():
    s = schedule("America/New_York", window("sat", "22:00", "06:00"))
    spring = utc(2026, 3, 8, 3, 0)  # Sat 2026-03-07 22:00 EST
    assert s.is_working_time(utc(2026, 3, 8, 8, 0))  # Sun 04:00 EDT
    assert s.next_change(spring) == utc(2026, 3, 8, 10, 0)  # Sun 06:00 EDT: 7 real hours
    fall = utc(2026, 11, 1, 2, 0)  # Sat 2026-10-31 22:00 EDT
    assert s.next_change(fall) == utc(2026, 11, 1, 11, 0)  # Sun 06:00 EST: 9 real hours
    berlin = schedule("Europe/Berlin", window("sat", "22:00", "06:00"))
    # Sat 2026-03-28 22:00 CET (21:00Z) -> Sun 06:00 CEST (04:00Z)
    assert berlin.next_change(utc(2026, 3, 28, 20, 0)) == utc(2026, 3, 28, 21, 0)
    assert berlin.next_change(utc(2026, 3, 28, 21, 0)) == utc(2026, 3, 29, 4, 0)


def test_holiday_on_start_day_removes_the_whole_midnight_window():
    sat_night = window("sat", "22:00", "02:00")
    sunday_0100 = utc(2026, 12, 27, 1, 0)  # Sun 2026-12-27 01:00 UTC
    assert schedule("UTC", sat_night).is_working_time(sunday_0100)
    saturday_off = schedule("UTC", sat_night, holidays={"dates": ["2026-12-26"]})
    assert not saturday_off.is_working_time(sunday_0100)
    assert not saturday_off.is_working_time(utc(2026, 12, 26, 23, 0))
    sunday_off = schedule("UTC", sat_night, holidays={"dates": ["2026-12-27"]})
    assert sunday_off.is_working_time(sunday_0100)


def test_end_2400_means_end_of_day():
    s = schedule("UTC", window("mon", "18:00", "24:00"))
    assert s.is_working_time(utc(2026, 6, 1, 23, 59, 59))
    assert not s.is_working_time(utc(2026, 6, 2, 0, 0))
    # Adjacent windows merge: no flip at midnight.
    s = schedule("UTC", window("mon", "18:00", "24:00"), window("tue", "00:00", "06:00"))
    assert s.next_change(utc(2026, 6, 1, 19, 0)) == utc(2026, 6, 2, 6, 0)


# ------------------------------------------------------------------------------------------
# Leap years
# ------------------------------------------------------------------------------------------


def test_leap_day_is_an_ordinary_tuesday():
    assert date(2028, 2, 29).weekday() == 1
    s = office("Europe/London")  # GMT in February
    assert s.is_working_time(utc(2028, 2, 29, 12, 0))
    assert s.next_change(utc(2028, 2, 28, 18, 0)) == utc(2028, 2, 29, 9, 0)
    night = schedule("Europe/London", window("tue", "22:00", "06:00"))
    assert night.is_working_time(utc(2028, 3, 1, 5, 0))  # Wed 05:00 after Tue 29 Feb


def test_leap_day_as_explicit_holiday():
    s = office("Europe/London", holidays={"dates": ["2028-02-29"]})
    assert date(2028, 2, 29) in s.holiday_dates
    assert not s.is_working_time(utc(2028, 2, 29, 12, 0))
    assert s.is_working_time(utc(2028, 2, 28, 12, 0))
    assert s.is_working_time(utc(2028, 3, 1, 12, 0))
    assert s.next_change(utc(2028, 2, 28, 18, 0)) == utc(2028, 3, 1, 9, 0)


# ------------------------------------------------------------------------------------------
# Holidays
# ------------------------------------------------------------------------------------------


def test_us_federal_holidays_are_after_hours():
    s = office("America/New_York", holidays={"country": "US"})
    assert not s.is_working_time(utc(2026, 7, 3, 15, 0))  # Fri: Independence Day (observed)
    assert s.is_working_time(utc(2026, 7, 2, 15, 0))
    assert not s.is_working_time(utc(2026, 11, 26, 16, 0))  # Thanksgiving
    assert s.is_working_time(utc(2026, 11, 27, 16, 0))  # not a federal holiday
    assert s.next_change(utc(2026, 7, 2, 22, 0)) == utc(2026, 7, 6, 13, 0)  # Thu 18:00 -> Mon
    # New Year's Day 2028 is a Saturday, observed Friday 2027-12-31.
    assert not s.is_working_time(utc(2027, 12, 31, 15, 0))
    assert s.is_holiday(date(2026, 7, 3))
    assert not s.is_holiday(date(2026, 7, 2))


def test_subdivision_holidays():
    # Epiphany (Tue 2026-01-06) is a public holiday in Bavaria, not in Berlin or nationwide.
    at = utc(2026, 1, 6, 10, 0)  # 11:00 CET
    by = office("Europe/Berlin", holidays={"country": "DE", "subdivision": "BY"})
    be = office("Europe/Berlin", holidays={"country": "DE", "subdivision": "BE"})
    de = office("Europe/Berlin", holidays={"country": "DE"})
    assert not by.is_working_time(at)
    assert be.is_working_time(at)
    assert de.is_working_time(at)
    # Cesar Chavez Day (Tue 2026-03-31) in California, not in New York.
    at = utc(2026, 3, 31, 18, 0)
    assert not office(
        "America/Los_Angeles", {"country": "US", "subdivision": "CA"}
    ).is_working_time(at)
    assert office("America/New_York", {"country": "US", "subdivision": "NY"}).is_working_time(at)


def test_country_and_explicit_dates_combine():
    s = office("America/Chicago", holidays={"country": "US", "dates": ["2026-12-24"]})
    assert not s.is_working_time(utc(2026, 12, 24, 16, 0))  # explicit
    assert not s.is_working_time(utc(2026, 12, 25, 16, 0))  # Christmas
    assert s.is_working_time(utc(2026, 12, 23, 16, 0))


def test_holiday_is_a_local_date():
    # Tue 2026-01-06 23:30 UTC is already Wed 07:30 in Singapore: not the holiday date there.
    s = schedule(
        "Asia/Singapore", window(WEEKDAYS, "07:00", "10:00"), holidays={"dates": ["2026-01-06"]}
    )
    assert s.is_working_time(utc(2026, 1, 6, 23, 30))
    assert not s.is_working_time(utc(2026, 1, 6, 0, 30))  # Tue 08:30 local


# ------------------------------------------------------------------------------------------
# next_change
# ------------------------------------------------------------------------------------------


def test_next_change_over_the_weekend():
    s = office("America/Chicago")  # CDT
    assert s.next_change(utc(2026, 6, 5, 22, 0)) == utc(2026, 6, 5, 23, 0)  # Fri 17:00 -> 18:00
    # Exactly at the change: the next one, strictly later.
    assert s.next_change(utc(2026, 6, 5, 23, 0)) == utc(2026, 6, 8, 14, 0)  # -> Mon 09:00
    assert s.next_change(utc(2026, 6, 6, 17, 0)) == utc(2026, 6, 8, 14, 0)  # Saturday
    result = s.next_change(utc(2026, 6, 6, 17, 0))
    assert result.utcoffset() == timedelta(0)


def test_next_change_merges_overlapping_windows():
    s = schedule(
        "UTC",
        window("mon", "09:00", "12:00"),
        window("mon", "11:00", "14:00"),
        window("mon", "14:00", "15:00"),
    )
    assert s.next_change(utc(2026, 6, 1, 10, 0)) == utc(2026, 6, 1, 15, 0)


def test_next_change_none_when_always_on_or_far_away():
    always = schedule("UTC", window(ALL_DAYS, "00:00", "24:00"))
    assert always.is_working_time(utc(2026, 6, 1, 12, 0))
    assert always.next_change(utc(2026, 6, 1, 12, 0)) is None
    # Windows every day, but only 2026-06-01 is not a holiday: nothing after that within reach.
    off = [
        (date(2026, 6, 2) + timedelta(days=i)).isoformat()
        for i in range(LOOKAHEAD_DAYS + 10)
        if (date(2026, 6, 2) + timedelta(days=i)).weekday() == 0
    ]
    rare = schedule("UTC", window("mon", "09:00", "10:00"), holidays={"dates": off[:60]})
    assert rare.next_change(utc(2026, 6, 1, 12, 0)) is None


def test_next_change_far_but_within_lookahead():
    dates = [(date(2026, 6, 8) + timedelta(weeks=i)).isoformat() for i in range(40)]
    s = schedule("UTC", window("mon", "09:00", "10:00"), holidays={"dates": dates})
    assert s.next_change(utc(2026, 6, 1, 12, 0)) == utc(2027, 3, 15, 9, 0)


COMPLEX = {
    "timezone": "America/New_York",
    "windows": [
        window(WEEKDAYS, "09:00", "18:00"),
        window("sat", "22:00", "02:30"),
        window("sun", "01:30", "01:45"),
        window("wed", "17:00", "19:00"),
    ],
    "holidays": {"country": "US", "dates": ["2026-03-07", "2026-12-24"]},
}


def test_next_change_is_exact_and_consistent():
    s = parse_schedule(COMPLEX)
    rng = random.Random(12)
    start = utc(2026, 1, 1)
    for _ in range(150):
        t = start + timedelta(seconds=rng.randrange(366 * 86400))
        state = s.is_working_time(t)
        change = s.next_change(t)
        assert change is not None and change > t
        assert s.is_working_time(change) is not state, (t, change)
        assert s.is_working_time(change - timedelta(seconds=1)) is state, (t, change)
        for k in range(1, 12):
            assert s.is_working_time(t + (change - t) * k / 12) is state, (t, change)


def test_matches_plain_wall_clock_model_away_from_dst_edges():
    # Windows whose boundaries never fall in a skipped or repeated hour behave exactly like
    # "compare the local wall clock", on DST days too.
    s = schedule(
        "America/New_York",
        window(WEEKDAYS, "09:00", "18:00"),
        window("sat", "22:00", "06:00"),
        holidays={"country": "US"},
    )
    ny = ZoneInfo("America/New_York")

    def wall_model(at: datetime) -> bool:
        local = at.astimezone(ny)
        minutes = local.hour * 60 + local.minute
        day, prev = local.date(), local.date() - timedelta(days=1)
        if day.weekday() < 5 and not s.is_holiday(day) and 540 <= minutes < 1080:
            return True
        if day.weekday() == 5 and not s.is_holiday(day) and minutes >= 1320:
            return True
        return prev.weekday() == 5 and not s.is_holiday(prev) and minutes < 360

    at = utc(2026, 1, 1, 0, 3)
    while at.year == 2026:
        assert s.is_working_time(at) is wall_model(at), at
        at += timedelta(minutes=53)
    for edge in (utc(2026, 3, 8, 7, 0), utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30)):
        assert s.is_working_time(edge) is wall_model(edge) is True
