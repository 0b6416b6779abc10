"""One error type for the whole project and one renderer for it.

Services raise ``MedicError`` subclasses; the DRF exception handler (and ``error_response`` for the
few plain Django views) renders ``{"error": {"code", "message", "fields"}}``. Views never build
error bodies by hand.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class MedicError(Exception):
    status = 400
    code = "bad_request"
    default_message = "The request is invalid."

    def __init__(
        self,
        message: str | None = None,
        *,
        fields: dict[str, list[str]] | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.fields = fields or {}
        if code:
            self.code = code
        self.headers = headers or {}
        super().__init__(self.message)

    def with_status(self, status: int) -> MedicError:
        self.status = status
        return self

    def as_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "fields": self.fields}}


class InvalidInput(MedicError):
    status = 422
    code = "invalid"
    default_message = "Some fields are invalid."


class InvalidParameter(InvalidInput):
    """A query parameter (a filter, a page size) the endpoint cannot honour: refused like an
    invalid field (422, ``fields`` names it), never ignored, so a typo does not silently widen
    a listing."""

    default_message = "A query parameter is invalid."


def one_of(name: str, values) -> InvalidParameter:
    return InvalidParameter(fields={name: [f"One of {', '.join(values)}."]})


class MalformedRequest(MedicError):
    status = 400
    code = "malformed"
    default_message = "The request body is not valid JSON."


class NotAuthenticated(MedicError):
    status = 401
    code = "not_authenticated"
    default_message = "An API key is required: send 'Authorization: Bearer mdk_...'."


class Forbidden(MedicError):
    status = 403
    code = "forbidden"
    default_message = "This API key lacks the scope for this action."


class NotFound(MedicError):
    status = 404
    code = "not_found"
    default_message = "Not found."


class Conflict(MedicError):
    status = 409
    code = "conflict"
    default_message = "The request conflicts with the current state."


class PayloadTooLarge(MedicError):
    status = 413
    code = "payload_too_large"
    default_message = "The request body is too large."


class Throttled(MedicError):
    status = 429
    code = "rate_limited"
    default_message = "Too many requests."


def error_response(exc: MedicError) -> JsonResponse:
    response = JsonResponse(exc.as_dict(), status=exc.status)
    for name, value in exc.headers.items():
        response[name] = value
    return response


def _flatten(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            if isinstance(value, dict):
                for sub, msgs in _flatten(value).items():
                    out[f"{key}.{sub}"] = msgs
            elif isinstance(value, list):
                msgs = []
                for i, item in enumerate(value):
                    if isinstance(item, dict):
                        for sub, sub_msgs in _flatten(item).items():
                            out[f"{key}[{i}].{sub}"] = sub_msgs
                    else:
                        msgs.append(str(item))
                if msgs:
                    out[key] = msgs
            else:
                out[key] = [str(value)]
        return out
    if isinstance(detail, list):
        return {"non_field_errors": [str(d) for d in detail]}
    return {"non_field_errors": [str(detail)]}


def to_medic_error(exc: Exception) -> MedicError | None:
    """Translate Django's and DRF's exceptions into the envelope's vocabulary."""
    if isinstance(exc, MedicError):
        return exc
    if isinstance(exc, Http404):
        return NotFound()
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge(
            f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
        )
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return MalformedRequest("The request has too many fields.")
    if isinstance(exc, PermissionDenied):
        return Forbidden()
    if isinstance(exc, DataError) and "NUL (0x00)" in str(exc):
        # PostgreSQL can neither store nor compare text with NUL: a name or id containing one
        # that reached a query (a lookup by name) is bad input, whichever field carried it.
        return InvalidInput("Text must not contain NUL (0x00) characters.")
    if isinstance(exc, DjangoValidationError):
        fields = (
            {k: [str(m) for m in v] for k, v in exc.message_dict.items()}
            if hasattr(exc, "error_dict")
            else {"non_field_errors": [str(m) for m in exc.messages]}
        )
        return InvalidInput(fields=fields)
    if isinstance(exc, drf_exceptions.ValidationError):
        return InvalidInput(fields=_flatten(exc.detail))
    if isinstance(exc, drf_exceptions.ParseError):
        return MalformedRequest(str(exc.detail))
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        return NotAuthenticated(str(exc.detail))
    if isinstance(exc, drf_exceptions.PermissionDenied):
        return Forbidden(str(exc.detail))
    if isinstance(exc, drf_exceptions.NotFound):
        return NotFound(str(exc.detail))
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return MedicError(str(exc.detail), code="method_not_allowed").with_status(405)
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return MedicError(str(exc.detail), code="unsupported_media_type").with_status(415)
    if isinstance(exc, drf_exceptions.NotAcceptable):
        return MedicError(str(exc.detail), code="not_acceptable").with_status(406)
    if isinstance(exc, drf_exceptions.Throttled):
        return Throttled(str(exc.detail))
    if isinstance(exc, drf_exceptions.APIException):
        return MedicError(str(exc.detail), code=exc.default_code).with_status(exc.status_code)
    return None


def exception_handler(exc: Exception, context: dict) -> Response | None:
    error = to_medic_error(exc)
    if error is None:
        return None  # a real bug: let Django log it and answer 500
    request = context.get("request")
    if request is not None:
        # Errors are JSON whatever the view renders otherwise: an HTML view (the Swagger UI)
        # would render its page for the error, and that page re-runs the authentication that
        # just failed (a 500 for a bad key at /v2/docs/).
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type
    headers = dict(error.headers)
    if error.status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="medic"')
    return Response(error.as_dict(), status=error.status, headers=headers)
