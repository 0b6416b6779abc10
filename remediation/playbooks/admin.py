"""Django admin for superusers: the stop switch is editable here; playbooks, versions and
executions are read-only (they change through the API, which versions and audits them)."""

from django.contrib import admin

from remediation.playbooks.models import (
    CircuitBreaker,
    Execution,
    Playbook,
    PlaybookVersion,
    RemediationSwitch,
)


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Playbook)
class PlaybookAdmin(ReadOnly):
    list_display = ("name", "current_version", "enabled", "demoted_at", "updated_at")


@admin.register(PlaybookVersion)
class PlaybookVersionAdmin(ReadOnly):
    list_display = ("playbook", "version", "mode", "author", "reason", "created_at")
    list_filter = ("playbook",)


@admin.register(Execution)
class ExecutionAdmin(ReadOnly):
    list_display = ("id", "playbook", "service_name", "state", "mode", "created_at", "outcome")
    list_filter = ("state", "mode", "playbook")


@admin.register(CircuitBreaker)
class CircuitBreakerAdmin(ReadOnly):
    list_display = ("scope", "key", "opened_at", "opened_reason", "reset_at", "reset_by")


@admin.register(RemediationSwitch)
class RemediationSwitchAdmin(admin.ModelAdmin):
    """The stop-all switch (also POST /v2/remediation/stop)."""

    list_display = ("__str__", "reason", "changed_by", "changed_at")
    fields = ("stopped", "reason")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        from remediation.playbooks.services import remediation_switch_set

        remediation_switch_set(
            stopped=obj.stopped,
            actor=f"user:{request.user.get_username()}",
            reason=obj.reason,
        )
