"""JSON types are kept in v2 bodies: ``"5"`` is not the integer 5, ``0`` is not the string ``"0"``,
``1`` is not ``true``.

DRF coerces by default (an IntegerField takes ``"5"``, a CharField takes ``0`` and stores
``"0"``), so the API accepted bodies its own schema calls invalid, and a client that sent the
wrong type got a stored value it did not mean. Installed once (``MedicConfig.ready``), for every
DRF serializer: a field of a serializer given the parsed JSON body (``request.data``, as
``JSONBodyParser`` parsed it) refuses a value of another JSON type, with the field's usual
message. Query strings and forms stay as they are (every value there is a string), and v1
(compat/) parses its bodies itself, as v1 did.
"""

from __future__ import annotations

from contextvars import ContextVar

from rest_framework import fields
from rest_framework.parsers import JSONParser

# The body the current request's JSON parser produced (one request per thread or task).
_json_body: ContextVar[object] = ContextVar("medic_json_body", default=None)


class JSONBodyParser(JSONParser):
    """DRF's JSON parser, remembering what it parsed so that fields can tell a JSON body."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        _json_body.set(data)
        return data


def _from_json(field) -> bool:
    data = getattr(field.root, "initial_data", None)
    return data is not None and data is _json_body.get()


def _integral(value) -> bool:
    return not isinstance(value, bool) and (
        isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    )


def _number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


# field class -> (what a JSON value must be, the field's own error key)
_RULES = (
    (fields.CharField, lambda v: isinstance(v, str), "invalid"),
    (fields.IntegerField, _integral, "invalid"),
    (fields.FloatField, _number, "invalid"),
    (fields.DecimalField, _number, "invalid"),
    (fields.BooleanField, lambda v: isinstance(v, bool), "invalid"),
)


def _strict(cls, accepts, key):
    lenient = cls.to_internal_value

    def to_internal_value(self, data):
        if _from_json(self) and not accepts(data):
            self.fail(key)
        return lenient(self, data)

    to_internal_value.lenient = lenient
    return to_internal_value


def install() -> None:
    for cls, accepts, key in _RULES:
        if not hasattr(cls.to_internal_value, "lenient"):
            cls.to_internal_value = _strict(cls, accepts, key)
