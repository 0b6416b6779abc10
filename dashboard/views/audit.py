"""The remediation audit log in the portal: filter, page through, export.

Everything but the HTML is the API's: the filters are parsed by ``audit_filter_parse`` (the same
parameters, values and messages as ``GET /v2/audit``), the rows come from the same selector and
the same cursor paginator (stable pages while rows are appended, no OFFSET scans), details are
masked by the same masker, and Export is ``audit_export_response``, the body of
``GET /v2/audit/export``.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from django.utils import timezone
from rest_framework.exceptions import APIException
from rest_framework.request import Request

from dashboard.views.base import Page
from medic.errors import MedicError
from remediation.audit import selectors
from remediation.audit.api import (
    EXPORT_FORMATS,
    AuditFilterIn,
    AuditPage,
    InvalidFilter,
    audit_export_response,
    audit_filter_parse,
)
from remediation.audit.masking import masker

FILTERS = tuple(AuditFilterIn().fields)
# Read by the paginator (cursor, limit) or by Export (format), not filters.
NOT_FILTERS = {"cursor", "limit", "format"}


def _given(request) -> dict[str, str]:
    """The filters the form sent: an empty field is no filter (an API client omits it)."""
    return {k: v for k, v in request.GET.items() if k not in NOT_FILTERS and v.strip()}


def _relative(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


class AuditLog(Page):
    template_name = "dashboard/audit/list.html"
    title = "Audit log"

    def get(self, request, *args, **kwargs):
        context = self.get_context_data(**kwargs)
        return self.render_to_response(context, status=400 if context["errors"] else 200)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        given = _given(self.request)
        errors: dict[str, list[str]] = {}
        entries: list = []
        paginator = AuditPage()
        try:
            filters = audit_filter_parse(given, set())
            entries = paginator.paginate_queryset(
                selectors.audit_list(filters), Request(self.request)
            )
        except MedicError as exc:
            errors = exc.fields or {"": [exc.message]}
        except APIException as exc:  # DRF's paginator refuses a cursor it cannot decode
            errors = {"cursor": [str(exc.detail)]}
        mask = masker()
        for entry in entries:
            entry.masked = mask(entry.details)
        query = urlencode([(k, v) for k, v in given.items() if k in FILTERS and k not in errors])
        context.update(
            values={name: given.get(name, "") for name in FILTERS},
            errors=errors,
            entries=entries,
            filtered=bool(given),
            next_url=_relative(paginator.get_next_link()) if entries else None,
            previous_url=_relative(paginator.get_previous_link()) if entries else None,
            export_query=query,
            formats=EXPORT_FORMATS,
            now=timezone.now(),
        )
        return context


class AuditExport(Page):
    """Export links: the current filters, streamed as JSON Lines or CSV, oldest first."""

    def get(self, request, *args, **kwargs):
        fmt = request.GET.get("format", "json")
        try:
            if fmt not in EXPORT_FORMATS:
                raise InvalidFilter(fields={"format": [f"One of {', '.join(EXPORT_FORMATS)}."]})
            filters = audit_filter_parse(_given(request), set())
        except MedicError as exc:
            # The page again, with what to fix (the same messages as the list's).
            view = AuditLog(request=request, args=(), kwargs={})
            context = view.get_context_data()
            context.update(errors=exc.fields or {"": [exc.message]}, entries=[])
            return view.render_to_response(context, status=400)
        return audit_export_response(filters, fmt)
