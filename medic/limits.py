"""Business limits and rules shared by several surfaces (API v2, v1, dashboard, import, SQL hot
path). Defined here once; models, serializers and forms refer to these names."""

from __future__ import annotations

import math
from datetime import timedelta

from medic.ids import looks_like_id

# A heartbeat's status (free text in v1: UP, DOWN, DEGRADED, ...) and message.
STATUS_MAX_LENGTH = 32
MESSAGE_MAX_LENGTH = 1000


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name something that URLs also address by numeric id (services,
    teams, targets, rules), or None. An all-digit name would be read as an id; a '/' would
    split the path."""
    if looks_like_id(name):
        return "Must not be only digits (it would be mistaken for an id)."
    if "/" in name:
        return "Must not contain '/'."
    return None


# Documented maxima of a service's numbers (docs/api.md#limits). _validate enforces them on
# every write; the places that compute with stored values clamp to them too (bounded()), so a
# value stored before a bound existed, or edited in the database, cannot make a request fail.
MAX_ALERT_INTERVAL_MINUTES = 60 * 24 * 3660  # about ten years: deadlines stay representable
MAX_THRESHOLD = 10_000
MAX_GRACE_SECONDS = 7 * 86400
MAX_RUN_SECONDS = 30 * 86400  # max_duration_seconds
MAX_FAILURE_THRESHOLD = 1_000
MAX_SLOW_RUN_FACTOR = 1_000
MAX_MUTE = timedelta(days=90)


def bounded(value: float, high: float) -> float:
    """A stored number as computations may use it: within [0, high], NaN read as high."""
    return min(max(value, 0), high) if math.isfinite(value) else high
