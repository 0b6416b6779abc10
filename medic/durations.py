"""Human durations in requests: ``3600`` (seconds), ``"90s"``, ``"30m"``, ``"2h"``, ``"1d"``,
``"1h30m"``."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value) -> timedelta:
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError("must be positive")
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise ValueError("not a duration")
    text = value.strip().lower().replace(" ", "")
    if text.isdigit():
        return parse_duration(int(text))
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"'{value}' is not a duration like 30m, 2h, 1d or 1h30m")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError("must be positive")
    return timedelta(seconds=seconds)
