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

import difflib
import functools
import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import holidays as holidays_lib

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

# Areas of location-based IANA names ("Area/Location"). Everything else (US/*, Canada/*, Etc/*,
# single words such as "Japan", POSIX-style "EST5EDT") is a legacy alias or an offset zone.
_GEOGRAPHIC_AREAS = frozenset(
    {
        "Africa",
        "America",
        "Antarctica",
        "Arctic",
        "Asia",
        "Atlantic",
        "Australia",
        "Europe",
        "Indian",
        "Pacific",
    }
)

# Abbreviations people type instead of zones. Many are ambiguous (IST, CST, AST, BST), and none
# says when daylight saving time applies, so they are rejected with a suggestion.
_ABBREVIATIONS: dict[str, str] = {
    "EST": "America/New_York",
    "EDT": "America/New_York",
    "ET": "America/New_York",
    "CST": "America/Chicago",
    "CDT": "America/Chicago",
    "CT": "America/Chicago",
    "MST": "America/Denver (or America/Phoenix, which has no daylight saving time)",
    "MDT": "America/Denver",
    "MT": "America/Denver",
    "PST": "America/Los_Angeles",
    "PDT": "America/Los_Angeles",
    "PT": "America/Los_Angeles",
    "AKST": "America/Anchorage",
    "AKDT": "America/Anchorage",
    "HST": "Pacific/Honolulu",
    "AST": "America/Halifax (Atlantic) or Asia/Riyadh (Arabia)",
    "ADT": "America/Halifax",
    "NST": "America/St_Johns",
    "NDT": "America/St_Johns",
    "BRT": "America/Sao_Paulo",
    "ART": "America/Argentina/Buenos_Aires",
    "GMT": "UTC (or Europe/London for UK civil time)",
    "BST": "Europe/London",
    "IST": "Asia/Kolkata (India), Europe/Dublin (Ireland) or Asia/Jerusalem (Israel)",
    "WET": "Europe/Lisbon",
    "WEST": "Europe/Lisbon",
    "CET": "Europe/Berlin",
    "CEST": "Europe/Berlin",
    "MET": "Europe/Berlin",
    "MEST": "Europe/Berlin",
    "EET": "Europe/Athens",
    "EEST": "Europe/Athens",
    "MSK": "Europe/Moscow",
    "WAT": "Africa/Lagos",
    "CAT": "Africa/Maputo",
    "EAT": "Africa/Nairobi",
    "SAST": "Africa/Johannesburg",
    "PKT": "Asia/Karachi",
    "ICT": "Asia/Bangkok",
    "WIB": "Asia/Jakarta",
    "PHT": "Asia/Manila",
    "SGT": "Asia/Singapore",
    "HKT": "Asia/Hong_Kong",
    "JST": "Asia/Tokyo",
    "KST": "Asia/Seoul",
    "AWST": "Australia/Perth",
    "ACST": "Australia/Adelaide",
    "ACDT": "Australia/Adelaide",
    "AEST": "Australia/Sydney",
    "AEDT": "Australia/Sydney",
    "NZST": "Pacific/Auckland",
    "NZDT": "Pacific/Auckland",
}

# Names the tz database still ships for backward compatibility, mapped to the name to use.
# Keys are matched case-insensitively.
_LEGACY_ALIASES: dict[str, str] = {
    # UTC spellings
    "Etc/UTC": "UTC",
    "Etc/UCT": "UTC",
    "Etc/Universal": "UTC",
    "Etc/Zulu": "UTC",
    "Etc/GMT": "UTC",
    "Etc/GMT0": "UTC",
    "Etc/GMT+0": "UTC",
    "Etc/GMT-0": "UTC",
    "Etc/Greenwich": "UTC",
    "UCT": "UTC",
    "Universal": "UTC",
    "Zulu": "UTC",
    "Z": "UTC",
    "GMT0": "UTC",
    "GMT+0": "UTC",
    "GMT-0": "UTC",
    "Greenwich": "UTC",
    # POSIX-style rules
    "EST5EDT": "America/New_York",
    "CST6CDT": "America/Chicago",
    "MST7MDT": "America/Denver",
    "PST8PDT": "America/Los_Angeles",
    # Country-style aliases
    "US/Eastern": "America/New_York",
    "US/Central": "America/Chicago",
    "US/Mountain": "America/Denver",
    "US/Pacific": "America/Los_Angeles",
    "US/Alaska": "America/Anchorage",
    "US/Hawaii": "Pacific/Honolulu",
    "US/Arizona": "America/Phoenix",
    "US/East-Indiana": "America/Indiana/Indianapolis",
    "US/Indiana-Starke": "America/Indiana/Knox",
    "US/Michigan": "America/Detroit",
    "US/Aleutian": "America/Adak",
    "US/Samoa": "Pacific/Pago_Pago",
    "Canada/Atlantic": "America/Halifax",
    "Canada/Central": "America/Winnipeg",
    "Canada/Eastern": "America/Toronto",
    "Canada/Mountain": "America/Edmonton",
    "Canada/Newfoundland": "America/St_Johns",
    "Canada/Pacific": "America/Vancouver",
    "Canada/Saskatchewan": "America/Regina",
    "Canada/Yukon": "America/Whitehorse",
    "Mexico/General": "America/Mexico_City",
    "Mexico/BajaNorte": "America/Tijuana",
    "Mexico/BajaSur": "America/Mazatlan",
    "Brazil/East": "America/Sao_Paulo",
    "Brazil/West": "America/Manaus",
    "Brazil/Acre": "America/Rio_Branco",
    "Brazil/DeNoronha": "America/Noronha",
    "Chile/Continental": "America/Santiago",
    "Chile/EasterIsland": "Pacific/Easter",
    "Australia/ACT": "Australia/Sydney",
    "Australia/NSW": "Australia/Sydney",
    "Australia/Canberra": "Australia/Sydney",
    "Australia/North": "Australia/Darwin",
    "Australia/Queensland": "Australia/Brisbane",
    "Australia/South": "Australia/Adelaide",
    "Australia/Tasmania": "Australia/Hobart",
    "Australia/Victoria": "Australia/Melbourne",
    "Australia/West": "Australia/Perth",
    "Australia/Yancowinna": "Australia/Broken_Hill",
    "Australia/LHI": "Australia/Lord_Howe",
    "GB": "Europe/London",
    "GB-Eire": "Europe/London",
    "Eire": "Europe/Dublin",
    "Japan": "Asia/Tokyo",
    "Singapore": "Asia/Singapore",
    "Hongkong": "Asia/Hong_Kong",
    "PRC": "Asia/Shanghai",
    "ROC": "Asia/Taipei",
    "ROK": "Asia/Seoul",
    "NZ": "Pacific/Auckland",
    "NZ-CHAT": "Pacific/Chatham",
    "Egypt": "Africa/Cairo",
    "Iceland": "Atlantic/Reykjavik",
    "Iran": "Asia/Tehran",
    "Israel": "Asia/Jerusalem",
    "Jamaica": "America/Jamaica",
    "Libya": "Africa/Tripoli",
    "Navajo": "America/Denver",
    "Poland": "Europe/Warsaw",
    "Portugal": "Europe/Lisbon",
    "Turkey": "Europe/Istanbul",
    "Cuba": "America/Havana",
    "Kwajalein": "Pacific/Kwajalein",
    "W-SU": "Europe/Moscow",
    # Renamed or superseded location names
    "Asia/Calcutta": "Asia/Kolkata",
    "Asia/Saigon": "Asia/Ho_Chi_Minh",
    "Asia/Katmandu": "Asia/Kathmandu",
    "Asia/Rangoon": "Asia/Yangon",
    "Asia/Dacca": "Asia/Dhaka",
    "Asia/Macao": "Asia/Macau",
    "Asia/Thimbu": "Asia/Thimphu",
    "Asia/Ujung_Pandang": "Asia/Makassar",
    "Asia/Ulan_Bator": "Asia/Ulaanbaatar",
    "Asia/Ashkhabad": "Asia/Ashgabat",
    "Asia/Chongqing": "Asia/Shanghai",
    "Asia/Chungking": "Asia/Shanghai",
    "Asia/Harbin": "Asia/Shanghai",
    "Asia/Tel_Aviv": "Asia/Jerusalem",
    "Asia/Istanbul": "Europe/Istanbul",
    "Europe/Kiev": "Europe/Kyiv",
    "Europe/Belfast": "Europe/London",
    "Europe/Tiraspol": "Europe/Chisinau",
    "America/Buenos_Aires": "America/Argentina/Buenos_Aires",
    "America/Catamarca": "America/Argentina/Catamarca",
    "America/Cordoba": "America/Argentina/Cordoba",
    "America/Rosario": "America/Argentina/Cordoba",
    "America/Jujuy": "America/Argentina/Jujuy",
    "America/Mendoza": "America/Argentina/Mendoza",
    "America/Indianapolis": "America/Indiana/Indianapolis",
    "America/Fort_Wayne": "America/Indiana/Indianapolis",
    "America/Knox_IN": "America/Indiana/Knox",
    "America/Louisville": "America/Kentucky/Louisville",
    "America/Godthab": "America/Nuuk",
    "America/Montreal": "America/Toronto",
    "America/Shiprock": "America/Denver",
    "America/Ensenada": "America/Tijuana",
    "America/Santa_Isabel": "America/Tijuana",
    "America/Porto_Acre": "America/Rio_Branco",
    "America/Atka": "America/Adak",
    "Atlantic/Faeroe": "Atlantic/Faroe",
    "Atlantic/Jan_Mayen": "Arctic/Longyearbyen",
    "Pacific/Samoa": "Pacific/Pago_Pago",
    "Pacific/Yap": "Pacific/Chuuk",
    "Pacific/Truk": "Pacific/Chuuk",
    "Pacific/Ponape": "Pacific/Pohnpei",
    "Pacific/Enderbury": "Pacific/Kanton",
    "Pacific/Johnston": "Pacific/Honolulu",
    "Africa/Asmera": "Africa/Asmara",
    "Africa/Timbuktu": "Africa/Bamako",
    "Antarctica/South_Pole": "Antarctica/McMurdo",
}
_LEGACY_BY_FOLDED = {name.casefold(): target for name, target in _LEGACY_ALIASES.items()}


@functools.lru_cache(maxsize=1)
def _available_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@functools.lru_cache(maxsize=1)
def _zones_by_folded() -> dict[str, str]:
    return {name.casefold(): name for name in _available_zones()}


def _is_accepted_name(name: str) -> bool:
    if name == "UTC":
        return True
    area, sep, _ = name.partition("/")
    return (
        bool(sep)
        and area in _GEOGRAPHIC_AREAS
        and name.casefold() not in _LEGACY_BY_FOLDED
        and name in _available_zones()
    )


def _timezone_problem(name: str) -> str | None:
    """Why ``name`` is not an accepted zone name, or None if it is."""
    if not name:
        return "required"
    if name != name.strip():
        return "must not start or end with whitespace"
    if _is_accepted_name(name):
        return None
    upper = name.upper()
    if upper in _ABBREVIATIONS:
        return (
            f"{name} is an abbreviation, not a time zone; "
            f"use an IANA name such as {_ABBREVIATIONS[upper]}"
        )
    legacy = _LEGACY_BY_FOLDED.get(name.casefold())
    if legacy is not None:
        return f"{name} is a legacy alias, not a canonical time zone; use {legacy}"
    if name.upper().startswith(("ETC/", "SYSTEMV/", "POSIX/", "RIGHT/")):
        return (
            f"{name} is a fixed-offset or legacy zone; use UTC or a location-based IANA name "
            f"such as Europe/Berlin"
        )
    exact_case = _zones_by_folded().get(name.casefold())
    if exact_case is not None and _is_accepted_name(exact_case):
        return f"unknown time zone {name!r}; did you mean {exact_case}?"
    if exact_case is not None or name in _available_zones():
        return (
            f"{name} is a legacy alias, not a canonical time zone; use a location-based IANA "
            f"name (Area/Location) such as America/Chicago"
        )
    accepted = sorted(z for z in _available_zones() if _is_accepted_name(z))
    close = difflib.get_close_matches(name, accepted, n=3, cutoff=0.75)
    if close:
        return f"unknown time zone {name!r}; did you mean {' or '.join(close)}?"
    return (
        f"unknown time zone {name!r}; use an IANA name (Area/Location) such as America/Chicago, "
        f"Europe/Berlin or UTC"
    )


def validate_timezone(name: str) -> zoneinfo.ZoneInfo:
    """Return the ZoneInfo for a canonical IANA name ("Area/Location" or "UTC").

    Abbreviations (CST, CET, IST, ...), legacy aliases (US/Eastern, EST5EDT, Asia/Calcutta, ...)
    and offset zones (Etc/GMT+5) raise :class:`ScheduleError` on the ``timezone`` field, with the
    IANA name to use instead.
    """
    if not isinstance(name, str):
        raise ScheduleError({"timezone": ["must be a string such as America/Chicago"]})
    problem = _timezone_problem(name)
    if problem is not None:
        raise ScheduleError({"timezone": [problem]})
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):  # e.g. the tz database is missing
        raise ScheduleError({"timezone": [f"time zone {name!r} cannot be loaded"]}) from None


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


def _gap_end(wall: datetime, tz: zoneinfo.ZoneInfo) -> datetime:
    """The transition instant of the gap containing the nonexistent wall time ``wall`` (UTC).

    That is the first instant whose local wall time is >= ``wall``. The two PEP 495 readings of
    ``wall`` (pre- and post-transition offset) bracket it; transitions fall on whole seconds.
    """
    readings = [int(wall.replace(tzinfo=tz, fold=f).timestamp()) for f in (0, 1)]
    lo, hi = min(readings), max(readings)  # local(lo) < wall <= local(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def _instant(wall: datetime, tz: zoneinfo.ZoneInfo, fold: int) -> datetime:
    """The UTC instant at which the local clock reads ``wall``.

    Repeated wall times: ``fold=0`` is the first occurrence, ``fold=1`` the second. Skipped wall
    times resolve to the end of the gap (the first instant the clock reads ``wall`` or later).
    """
    utc = wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) == wall:
        return utc
    return _gap_end(wall, tz)


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
            start = _instant(midnight + timedelta(minutes=window.start), self.timezone, fold=0)
            end = _instant(midnight + timedelta(minutes=end_offset), self.timezone, fold=1)
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
            cutoff = _instant(
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
