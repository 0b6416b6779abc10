"""What counts as an object id in a URL, a query parameter or a v1 field: ASCII digits only.

``str.isdigit()`` is true for superscript, circled, Arabic-Indic and fullwidth digits too, and
``int()`` accepts some of them: an Arabic-Indic 3 in ``/v2/services/...`` named service 3 and a
superscript 1 crashed ``int()``. One rule, used by every lookup that takes "an id or a name", so
a name that merely looks numeric in another script stays a name.
"""

from __future__ import annotations

# Ids are bigint primary keys; a longer run of digits cannot be one (and must not reach the
# database as an out-of-range integer).
MAX_ID_DIGITS = 18


def parse_id(ref: str | int) -> int | None:
    """The id ``ref`` names, or None when it is not an id (then it may be a name)."""
    if isinstance(ref, int):
        return ref
    if ref.isascii() and ref.isdigit() and len(ref) <= MAX_ID_DIGITS:
        return int(ref)
    return None


def looks_like_id(value: str) -> bool:
    """A name that would be read as an id: digits only (of any script, so humans are not fooled
    either)."""
    return value.isdigit()
