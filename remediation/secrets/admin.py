from django.contrib import admin

from remediation.admin import ReadOnlyAdmin
from remediation.secrets.models import Secret


@admin.register(Secret)
class SecretAdmin(ReadOnlyAdmin):
    """Names and key ids only; secrets are set through the API (write-only, audited)."""

    list_display = ("name", "key_id", "created_at", "updated_at", "updated_by")
    fields = ("name", "key_id", "created_at", "updated_at", "created_by", "updated_by")
    search_fields = ("name",)
