"""Time zones: which IANA names Medic accepts, and how a local wall time becomes an instant.

One home for both rules, used by cron schedules (heartbeats), maintenance windows and
working hours (alerting):

- **Names**: canonical location-based IANA names ("Area/Location") and "UTC". Abbreviations
  (CST, IST, ...), legacy aliases (US/Eastern, Asia/Calcutta, ...) and offset zones (Etc/GMT+5)
  are refused with the name to use instead.
- **DST gap** (spring forward): a wall time the clock skips (02:30 when clocks jump 02:00 ->
  03:00) is reached at the jump itself, the first instant whose wall time is later.
- **DST overlap** (fall back): a wall time the clock shows twice is, by default, its first
  occurrence (``fold=0``); ``fold=1`` asks for the second.
"""

from __future__ import annotations

import difflib
import functools
import zoneinfo
from datetime import UTC, datetime


class TimezoneError(ValueError):
    """Not an accepted time-zone name; the message says which name to use instead."""


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


@functools.lru_cache(maxsize=1)
def accepted_names() -> tuple[str, ...]:
    """Every name validate_timezone accepts, sorted (the API schema lists them)."""
    return tuple(sorted(z for z in _available_zones() | {"UTC"} if _is_accepted_name(z)))


def validate_timezone(name: str) -> zoneinfo.ZoneInfo:
    """Return the ZoneInfo for a canonical IANA name ("Area/Location" or "UTC").

    Abbreviations (CST, CET, IST, ...), legacy aliases (US/Eastern, EST5EDT, Asia/Calcutta, ...)
    and offset zones (Etc/GMT+5) raise :class:`TimezoneError`, whose message names the IANA name
    to use instead.
    """
    if not isinstance(name, str):
        raise TimezoneError("must be a string such as America/Chicago")
    problem = _timezone_problem(name)
    if problem is not None:
        raise TimezoneError(problem)
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):  # e.g. the tz database is missing
        raise TimezoneError(f"time zone {name!r} cannot be loaded") from None


def gap_end(wall: datetime, tz: zoneinfo.ZoneInfo) -> datetime:
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


def wall_to_instant(wall: datetime, tz: zoneinfo.ZoneInfo, fold: int = 0) -> datetime:
    """The UTC instant at which the local clock reads ``wall``.

    Repeated wall times: ``fold=0`` is the first occurrence, ``fold=1`` the second. Skipped wall
    times resolve to the end of the gap (the first instant the clock reads ``wall`` or later).
    """
    utc = wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) == wall:
        return utc
    return gap_end(wall, tz)
