from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "remediation.approvals"
    label = "approvals"
    verbose_name = "Approvals"
    default_auto_field = "django.db.models.BigAutoField"
