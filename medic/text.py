"""Text Medic can store: no NUL (PostgreSQL refuses it in text) and no lone UTF-16 surrogates
(``"\\ud800"`` is valid JSON but not encodable as UTF-8, so the database driver fails on it).
DRF's CharField refuses both; the paths that read JSON themselves (v1, the lean heartbeat path)
use this check so that they refuse the same input with a 4xx instead of a 500."""

from __future__ import annotations

import re

_SURROGATE = re.compile(r"[\ud800-\udfff]")


def storable(value: str) -> bool:
    return "\x00" not in value and (value.isascii() or not _SURROGATE.search(value))
