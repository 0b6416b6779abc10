from django.contrib import admin

from remediation.admin import ReadOnlyAdmin
from remediation.audit.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """Read-only: audit rows are append-only (the retention purge is the only delete)."""

    list_display = ("id", "created_at", "actor", "event", "object_type", "object_id", "service")
    list_filter = ("event", "object_type")
    search_fields = ("actor", "object_id", "playbook", "service")
    date_hierarchy = "created_at"
