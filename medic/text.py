"""Text Medic can store: no NUL (PostgreSQL refuses it in text) and no lone UTF-16 surrogates
(``"\\ud800"`` is valid JSON but not encodable as UTF-8, so the database driver fails on it).
DRF's CharField refuses both; the paths that read JSON themselves (v1, the lean heartbeat path)
use this check so that they refuse the same input with a 4xx instead of a 500."""

from __future__ import annotations

import re

_SURROGATE = re.compile(r"[\ud800-\udfff]")


def storable(value: str) -> bool:
    return "\x00" not in value and (value.isascii() or not _SURROGATE.search(value))


class UnstorableQueryMiddleware:
    """Refuse an API request whose query string holds text nothing can store or compare (a NUL
    reaching a filter made PostgreSQL fail with a 500): 400 in the v2 envelope."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/v2/") and request.META.get("QUERY_STRING"):
            bad = sorted(
                {k for k, values in request.GET.lists() for v in [k, *values] if not storable(v)}
            )
            if bad:
                from medic.errors import InvalidParameter, error_response

                error = InvalidParameter(
                    fields={
                        k: ["Must not contain NUL or unpaired surrogate characters."] for k in bad
                    }
                )
                return error_response(error)
        return self.get_response(request)
