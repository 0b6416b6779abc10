"""Working hours: weekly windows in an IANA time zone, minus holidays.

Pure logic, no models. A schedule is stored as a JSON-compatible spec (see docs/working-hours.md)
and turned into a :class:`Schedule` by :func:`parse_schedule`, which reports every problem at once
with a precise field path (``windows[1].start``, ``holidays.dates[0]``, ...).

Semantics, in short (the doc has the details and examples):

- A window belongs to the local date it starts on; ``end <= start`` means it ends the next day.
- A window is one continuous stretch of real time: it opens the first time the local clock reaches
  ``start`` and closes the last time the clock reaches ``end``. A wall time skipped by a
  spring-forward transition is reached at the transition itself (02:30 on a 02:00->03:00 day opens
  at 03:00); a wall time repeated by a fall-back transition opens at its first occurrence and closes
  at its second, so every instant whose clock reading lies inside the window is covered.
- A holiday (country/subdivision calendar or an explicit date) removes the windows that start on
  that local date, and only those.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import holidays as holidays_lib

from medic import timezones
from medic.timezones import wall_to_instant

__all__ = [
    "LOOKAHEAD_DAYS",
    "MAX_HOLIDAY_DATES",
    "MAX_WINDOWS",
    "Schedule",
    "ScheduleError",
    "Window",
    "parse_schedule",
    "validate_timezone",
]

MAX_WINDOWS = 50
MAX_HOLIDAY_DATES = 500
# next_change() looks this many local days ahead before giving up (returning None).
LOOKAHEAD_DAYS = 400

MINUTES_PER_DAY = 24 * 60
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_LOOKUP = {name: i for names in (DAY_NAMES, _FULL_DAY_NAMES) for i, name in enumerate(names)}
_TIME_RE = re.compile(r"(\d{2}):(\d{2})")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EN_DASH = "\u2013"


class ScheduleError(ValueError):
    """An invalid schedule spec. ``fields`` maps a field path to its messages.

    Paths look like ``timezone``, ``windows[1].start``, ``windows[0].days[2]``,
    ``holidays.subdivision`` or ``holidays.dates[3]``; ``__all__`` is the spec as a whole.
    """

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields: dict[str, list[str]] = {path: list(msgs) for path, msgs in fields.items()}
        super().__init__(
            "; ".join(f"{path}: {msg}" for path, msgs in self.fields.items() for msg in msgs)
        )


# --------------------------------------------------------------------------------------------
# Time zones
# --------------------------------------------------------------------------------------------

# One home for accepted names and the DST rules: medic.timezones. Here a bad name is reported on
# the spec's ``timezone`` field.


def validate_timezone(name: str) -> zoneinfo.ZoneInfo:
    """The ZoneInfo for an accepted IANA name; :class:`ScheduleError` on ``timezone`` if not."""
    try:
        return timezones.validate_timezone(name)
    except timezones.TimezoneError as exc:
        raise ScheduleError({"timezone": [str(exc)]}) from None


# --------------------------------------------------------------------------------------------
# Holidays
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _supported_countries() -> dict[str, list[str]]:
    return holidays_lib.list_supported_countries(include_aliases=False)


@functools.lru_cache(maxsize=512)
def _country_holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    calendar = holidays_lib.country_holidays(country, subdiv=subdivision, years=year)
    return frozenset(calendar.keys())


def _normalize_country(value: str) -> tuple[str | None, str | None]:
    """(alpha-2 code, None) or (None, error message)."""
    code = value.strip().upper()
    if code in _supported_countries():
        return code, None
    if len(code) == 3:
        try:
            alpha2 = holidays_lib.country_holidays(code).country
        except NotImplementedError:
            alpha2 = None
        if alpha2:
            return None, f"use the ISO 3166-1 alpha-2 code {alpha2!r} instead of {value!r}"
    return None, (
        f"unknown country {value!r}; use an ISO 3166-1 alpha-2 code supported by the holidays "
        f"package, such as US or DE"
    )


def _normalize_subdivision(country: str, value: str) -> tuple[str | None, str | None]:
    codes = _supported_countries()[country]
    by_folded = {code.casefold(): code for code in codes}
    aliases = getattr(holidays_lib.country_holidays(country), "subdivisions_aliases", {}) or {}
    for alias, code in aliases.items():
        by_folded.setdefault(alias.casefold(), code)
    code = by_folded.get(value.strip().casefold())
    if code is not None:
        return code, None
    if not codes:
        return None, f"{country} has no subdivisions in the holidays calendar"
    shown = ", ".join(codes[:20]) + (", ..." if len(codes) > 20 else "")
    return None, f"unknown subdivision {value!r} of {country}; known: {shown}"


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


def _fmt_minutes(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _fmt_days(days: Iterable[int]) -> str:
    ordered = sorted(set(days))
    runs: list[list[int]] = []
    for day in ordered:
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts: list[str] = []
    for run in runs:
        names = [DAY_NAMES[d].capitalize() for d in run]
        if len(run) >= 3:
            parts.append(f"{names[0]}{_EN_DASH}{names[-1]}")
        else:
            parts.extend(names)
    return ", ".join(parts)


@dataclass(frozen=True)
class Window:
    """A weekly window: on each of ``days`` (0 = Monday ... 6 = Sunday), from ``start`` to ``end``.

    Times are minutes after local midnight: ``start`` in 0..1439, ``end`` in 0..1440 (1440 is
    "24:00"). ``end <= start`` means the window ends on the next day.
    """

    days: frozenset[int]
    start: int
    end: int

    def __post_init__(self) -> None:
        if not self.days or not all(isinstance(d, int) and 0 <= d <= 6 for d in self.days):
            raise ValueError("days must be a non-empty set of weekday numbers 0..6")
        if not 0 <= self.start < MINUTES_PER_DAY or not 0 <= self.end <= MINUTES_PER_DAY:
            raise ValueError("start must be in 0..1439 and end in 0..1440 minutes")
        if self.start == self.end:
            raise ValueError("start and end must differ")

    @property
    def spans_midnight(self) -> bool:
        return self.end <= self.start

    @property
    def wall_minutes(self) -> int:
        """Length on the wall clock (real length differs on DST transition days)."""
        return (self.end - self.start) % MINUTES_PER_DAY or MINUTES_PER_DAY

    def describe(self) -> str:
        text = f"{_fmt_days(self.days)} {_fmt_minutes(self.start)}{_EN_DASH}"
        text += _fmt_minutes(self.end)
        if self.spans_midnight and self.end:
            text += " (next day)"
        return text

    def to_spec(self) -> dict[str, Any]:
        return {
            "days": [DAY_NAMES[d] for d in sorted(self.days)],
            "start": _fmt_minutes(self.start),
            "end": _fmt_minutes(self.end),
        }


def _require_aware(value: datetime, name: str) -> None:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got naive {value.isoformat()})")


def _merge(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


@dataclass(frozen=True)
class Schedule:
    """Working hours: ``windows`` in ``timezone``, except on holidays."""

    timezone: zoneinfo.ZoneInfo
    windows: tuple[Window, ...]
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    holiday_dates: frozenset[date] = field(default_factory=frozenset)

    # -- holidays ---------------------------------------------------------------------------

    def is_holiday(self, day: date) -> bool:
        """Whether local date ``day`` is a holiday (explicit date or country calendar)."""
        if day in self.holiday_dates:
            return True
        if self.holiday_country is None:
            return False
        # Observed days can cross a year boundary (New Year's Day observed on Dec 31).
        return any(
            day in _country_holiday_dates(self.holiday_country, self.holiday_subdivision, year)
            for year in (day.year, day.year - 1, day.year + 1)
        )

    # -- evaluation -------------------------------------------------------------------------

    def intervals_for(self, day: date) -> list[tuple[datetime, datetime]]:
        """The [start, end) UTC intervals of the windows that start on local date ``day``."""
        if self.is_holiday(day):
            return []
        midnight = datetime.combine(day, time())
        weekday = day.weekday()
        out: list[tuple[datetime, datetime]] = []
        for window in self.windows:
            if weekday not in window.days:
                continue
            end_offset = window.end + (MINUTES_PER_DAY if window.spans_midnight else 0)
            start = wall_to_instant(
                midnight + timedelta(minutes=window.start), self.timezone, fold=0
            )
            end = wall_to_instant(midnight + timedelta(minutes=end_offset), self.timezone, fold=1)
            if start < end:  # a window entirely inside a skipped stretch is empty
                out.append((start, end))
        return out

    def _intervals_between(self, first: date, last: date) -> list[tuple[datetime, datetime]]:
        out: list[tuple[datetime, datetime]] = []
        day = first
        while day <= last:
            out.extend(self.intervals_for(day))
            day += timedelta(days=1)
        return out

    def is_working_time(self, at: datetime) -> bool:
        """Whether the instant ``at`` (timezone-aware, any zone) is inside working hours."""
        _require_aware(at, "at")
        at_utc = at.astimezone(UTC)
        local_day = at.astimezone(self.timezone).date()
        # Windows last under 24 wall hours (plus at most a DST shift), so only windows starting
        # on nearby dates can cover the instant; one extra day each side covers odd transitions.
        candidates = self._intervals_between(
            local_day - timedelta(days=2), local_day + timedelta(days=1)
        )
        return any(start <= at_utc < end for start, end in candidates)

    def next_change(self, after: datetime) -> datetime | None:
        """The first instant (UTC) strictly after ``after`` at which is_working_time flips.

        Exact to the second. Returns None when nothing changes within LOOKAHEAD_DAYS (a schedule
        that is always on, or one whose remaining windows all fall on holidays).
        """
        _require_aware(after, "after")
        after_utc = after.astimezone(UTC)
        first = after.astimezone(self.timezone).date() - timedelta(days=2)
        working = self.is_working_time(after)
        for horizon in (9, 65, LOOKAHEAD_DAYS):
            last = first + timedelta(days=horizon + 2)
            # Windows starting after `last` begin after this instant, so anything found before
            # it is final.
            cutoff = wall_to_instant(
                datetime.combine(last - timedelta(days=1), time()), self.timezone, fold=0
            )
            found: datetime | None = None
            for start, end in _merge(self._intervals_between(first, last)):
                if working and start <= after_utc < end:
                    found = end
                    break
                if not working and start > after_utc:
                    found = start
                    break
            if found is not None and found < cutoff:
                return found
        return None

    # -- presentation -----------------------------------------------------------------------

    def describe(self) -> str:
        """Human-readable summary, e.g. (with en dashes for the hyphens shown here)

        "Mon-Fri 09:00-18:00 America/Chicago, US holidays (TX) off, 2 extra days off".
        """
        text = "; ".join(window.describe() for window in self.windows)
        text += f" {self.timezone.key}"
        if self.holiday_country:
            text += f", {self.holiday_country} holidays"
            if self.holiday_subdivision:
                text += f" ({self.holiday_subdivision})"
            text += " off"
        if self.holiday_dates:
            count = len(self.holiday_dates)
            text += f", {count} extra day{'s' if count != 1 else ''} off"
        return text

    def to_spec(self) -> dict[str, Any]:
        """The normalized JSON-compatible spec; ``parse_schedule(s.to_spec()) == s``."""
        spec: dict[str, Any] = {
            "timezone": self.timezone.key,
            "windows": [window.to_spec() for window in self.windows],
        }
        if self.holiday_country or self.holiday_dates:
            hol: dict[str, Any] = {}
            if self.holiday_country:
                hol["country"] = self.holiday_country
            if self.holiday_subdivision:
                hol["subdivision"] = self.holiday_subdivision
            if self.holiday_dates:
                hol["dates"] = [d.isoformat() for d in sorted(self.holiday_dates)]
            spec["holidays"] = hol
        return spec


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

_TOP_KEYS = frozenset({"timezone", "windows", "holidays"})
_WINDOW_KEYS = frozenset({"days", "start", "end"})
_HOLIDAY_KEYS = frozenset({"country", "subdivision", "dates"})
_TIME_HINT = "must be a time as HH:MM (24-hour), e.g. 09:00"


class _Errors:
    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.fields.setdefault(path, []).append(message)

    def unknown_keys(self, obj: dict, allowed: frozenset[str], prefix: str) -> None:
        for key in obj:
            if key not in allowed:
                path = f"{prefix}.{key}" if prefix else str(key)
                expected = ", ".join(sorted(allowed))
                self.add(path, f"unknown field (expected one of: {expected})")


def _parse_time(value: Any, path: str, errors: _Errors, *, is_end: bool) -> int | None:
    if not isinstance(value, str):
        errors.add(path, _TIME_HINT)
        return None
    match = _TIME_RE.fullmatch(value)
    if not match:
        errors.add(path, _TIME_HINT)
        return None
    hours, minutes = int(match.group(1)), int(match.group(2))
    if hours == 24 and minutes == 0:
        if is_end:
            return MINUTES_PER_DAY
        errors.add(path, "24:00 is only allowed as an end time; use 00:00")
        return None
    if hours > 23 or minutes > 59:
        errors.add(path, _TIME_HINT)
        return None
    return hours * 60 + minutes


def _parse_window(raw: Any, path: str, errors: _Errors) -> Window | None:
    if not isinstance(raw, dict):
        errors.add(
            path, 'must be an object like {"days": ["mon"], "start": "09:00", "end": "18:00"}'
        )
        return None
    before = sum(len(m) for m in errors.fields.values())
    errors.unknown_keys(raw, _WINDOW_KEYS, path)

    days: set[int] = set()
    raw_days = raw.get("days")
    if raw_days is None:
        errors.add(f"{path}.days", "required")
    elif not isinstance(raw_days, list) or not raw_days:
        errors.add(f"{path}.days", 'must be a non-empty list of days such as ["mon", "tue"]')
    else:
        for j, name in enumerate(raw_days):
            day = _DAY_LOOKUP.get(name.casefold()) if isinstance(name, str) else None
            if day is None:
                errors.add(
                    f"{path}.days[{j}]",
                    f"unknown day {name!r}; use mon, tue, wed, thu, fri, sat, sun (or full names)",
                )
            elif day in days:
                errors.add(f"{path}.days[{j}]", f"duplicate day {DAY_NAMES[day]!r}")
            else:
                days.add(day)

    start = end = None
    for key in ("start", "end"):
        if key not in raw:
            errors.add(f"{path}.{key}", "required")
    if "start" in raw:
        start = _parse_time(raw["start"], f"{path}.start", errors, is_end=False)
    if "end" in raw:
        end = _parse_time(raw["end"], f"{path}.end", errors, is_end=True)
    if start is not None and end is not None and start == end:
        errors.add(
            f"{path}.end",
            "must differ from start (an empty or 24-hour window is ambiguous); "
            "use 00:00-24:00 for a whole day",
        )

    if sum(len(m) for m in errors.fields.values()) != before:
        return None
    assert start is not None and end is not None
    return Window(days=frozenset(days), start=start, end=end)


def _parse_date(value: Any, path: str, errors: _Errors) -> date | None:
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        errors.add(path, "must be a date as YYYY-MM-DD, e.g. 2026-12-24")
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        year, month, day = (int(part) for part in value.split("-"))
        if month == 2 and day == 29:
            errors.add(path, f"{value} does not exist: {year} is not a leap year")
        else:
            errors.add(path, f"{value} is not a calendar date")
        return None


def _parse_holidays(
    raw: Any, errors: _Errors
) -> tuple[str | None, str | None, frozenset[date]] | None:
    if raw is None:
        return None, None, frozenset()
    if not isinstance(raw, dict):
        errors.add("holidays", 'must be an object like {"country": "US", "dates": ["2026-12-24"]}')
        return None
    errors.unknown_keys(raw, _HOLIDAY_KEYS, "holidays")

    country = subdivision = None
    raw_country, raw_subdivision = raw.get("country"), raw.get("subdivision")
    if raw_country is not None:
        if not isinstance(raw_country, str) or not raw_country.strip():
            errors.add("holidays.country", "must be a country code such as US")
        else:
            country, problem = _normalize_country(raw_country)
            if problem:
                errors.add("holidays.country", problem)
    if raw_subdivision is not None:
        if not isinstance(raw_subdivision, str) or not raw_subdivision.strip():
            errors.add("holidays.subdivision", "must be a subdivision code such as CA")
        elif raw_country is None:
            errors.add("holidays.subdivision", "requires holidays.country")
        elif country is not None:
            subdivision, problem = _normalize_subdivision(country, raw_subdivision)
            if problem:
                errors.add("holidays.subdivision", problem)

    dates: set[date] = set()
    raw_dates = raw.get("dates")
    if raw_dates is not None:
        if not isinstance(raw_dates, list):
            errors.add("holidays.dates", 'must be a list of dates such as ["2026-12-24"]')
        elif len(raw_dates) > MAX_HOLIDAY_DATES:
            errors.add("holidays.dates", f"at most {MAX_HOLIDAY_DATES} dates")
        else:
            for i, value in enumerate(raw_dates):
                parsed = _parse_date(value, f"holidays.dates[{i}]", errors)
                if parsed is not None:
                    dates.add(parsed)
    return country, subdivision, frozenset(dates)


def parse_schedule(spec: dict) -> Schedule:
    """Validate a JSON-compatible spec and build a :class:`Schedule`.

    Raises :class:`ScheduleError` listing every problem found, keyed by field path.
    """
    errors = _Errors()
    if not isinstance(spec, dict):
        raise ScheduleError({"__all__": ["must be an object with timezone and windows"]})
    errors.unknown_keys(spec, _TOP_KEYS, "")

    tz = None
    if "timezone" not in spec:
        errors.add("timezone", "required")
    else:
        try:
            tz = validate_timezone(spec["timezone"])
        except ScheduleError as exc:
            for path, messages in exc.fields.items():
                for message in messages:
                    errors.add(path, message)

    windows: list[Window] = []
    raw_windows = spec.get("windows")
    if "windows" not in spec:
        errors.add("windows", "required")
    elif not isinstance(raw_windows, list):
        errors.add("windows", "must be a list of windows")
    elif not raw_windows:
        errors.add("windows", "must contain at least one window")
    elif len(raw_windows) > MAX_WINDOWS:
        errors.add("windows", f"at most {MAX_WINDOWS} windows (got {len(raw_windows)})")
    else:
        for i, raw in enumerate(raw_windows):
            window = _parse_window(raw, f"windows[{i}]", errors)
            if window is not None:
                windows.append(window)

    holidays = _parse_holidays(spec.get("holidays"), errors)

    if errors.fields:
        raise ScheduleError(errors.fields)
    assert tz is not None and holidays is not None
    country, subdivision, dates = holidays
    return Schedule(
        timezone=tz,
        windows=tuple(windows),
        holiday_country=country,
        holiday_subdivision=subdivision,
        holiday_dates=dates,
    )
