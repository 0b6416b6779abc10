"""Business limits and rules shared by several surfaces (API v2, v1, dashboard, import, SQL hot
path). Defined here once; models, serializers and forms refer to these names."""

from __future__ import annotations

# A heartbeat's status (free text in v1: UP, DOWN, DEGRADED, ...) and message.
STATUS_MAX_LENGTH = 32
MESSAGE_MAX_LENGTH = 1000


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name something that URLs also address by numeric id (services,
    teams, targets, rules), or None. An all-digit name would be read as an id; a '/' would
    split the path."""
    if name.isdigit():
        return "Must not be only digits (it would be mistaken for an id)."
    if "/" in name:
        return "Must not contain '/'."
    return None
