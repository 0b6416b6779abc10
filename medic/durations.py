"""Human durations in requests: ``3600`` (seconds), ``"90s"``, ``"30m"``, ``"2h"``, ``"1d"``,
``"1h30m"``. Anything longer than ``MAX_SECONDS`` (or not finite) is refused here, before it can
overflow a ``timedelta``; each use has its own, lower, documented maximum on top."""

from __future__ import annotations

import math
import re
from datetime import timedelta

MAX_SECONDS = 10 * 366 * 86400

_PART = re.compile(r"([0-9]+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value) -> timedelta:
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value <= 0:
            raise ValueError("must be a positive number of seconds")
        if value > MAX_SECONDS:
            raise ValueError(f"must be at most {MAX_SECONDS} seconds (ten years)")
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise ValueError("not a duration")
    text = value.strip().lower().replace(" ", "")
    if text.isascii() and text.isdigit():
        return parse_duration(int(text))
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"'{value}' is not a duration like 30m, 2h, 1d or 1h30m")
    return parse_duration(sum(int(n) * _UNITS[u] for n, u in parts))
