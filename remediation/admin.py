from django.contrib import admin

from remediation.models import Agent, Job, Script, ScriptVersion


class ReadOnlyAdmin(admin.ModelAdmin):
    """Changes go through the API (services write versions and audit rows), never the admin."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Script)
class ScriptAdmin(ReadOnlyAdmin):
    list_display = ("name", "current_version", "enabled", "updated_at")
    search_fields = ("name",)


@admin.register(ScriptVersion)
class ScriptVersionAdmin(ReadOnlyAdmin):
    list_display = ("script", "version", "sha256", "run_local", "run_on_agents", "created_at")
    list_filter = ("run_local", "run_on_agents")


@admin.register(Agent)
class AgentAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "enabled",
        "hostname",
        "agent_version",
        "memory_rss_bytes",
        "last_seen_at",
    )
    search_fields = ("name", "hostname")


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ("id", "script_version", "target", "agent", "state", "exit_code", "created_at")
    list_filter = ("state", "target")
