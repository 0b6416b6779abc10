from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The remediation audit log (docs/audit.md). Its own app label so that its migrations are
    numbered independently of the rest of remediation."""

    name = "remediation.audit"
    label = "audit"
    verbose_name = "Remediation audit log"
    default_auto_field = "django.db.models.BigAutoField"
