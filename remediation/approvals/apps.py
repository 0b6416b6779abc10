from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "remediation.approvals"
    label = "approvals"
    verbose_name = "Approvals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from remediation.approvals import services
        from remediation.playbooks import hooks

        hooks.register(
            on_parked=services.approval_request_open,
            on_recovered=services.approvals_recovered,
            on_sweep=services.approvals_due,
        )
