"""Medic's models in the Django admin, for superusers: read-only, like remediation's.

Changes go through the dashboard or the API, whose service functions keep deadlines, audit rows
and encrypted secrets consistent; the admin only lets a superuser look at raw rows. An app that
registers a model itself (in its own admin.py, loaded before this one) keeps its registration.
Secret material (key hashes, encrypted target secrets) is never displayed.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from alerting.models import (
    Alert,
    Delivery,
    DeliveryAttempt,
    NotificationTarget,
    RoutingRule,
    Team,
    WorkingHours,
)
from heartbeats import models as heartbeat_models
from heartbeats.models import Heartbeat, Service
from medic import lockout
from medic.models import ApiKey, AuditEvent


class LockoutAdminLoginForm(AdminAuthenticationForm):
    """The admin's sign-in says when a locked username or address may try again (the lock-out
    itself is enforced by the authentication backend, medic.lockout)."""

    def clean(self):
        username = (self.cleaned_data.get("username") or "").strip()
        if username and self.request is not None:
            wait = lockout.wait_seconds(self.request, username)
            if wait:
                lockout.log_refusal(self.request, username, wait)
                raise ValidationError(lockout.locked_message(wait), code="locked")
        return super().clean()


admin.site.login_form = LockoutAdminLoginForm


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


ADMINS = {
    Service: {
        "list_display": ("heartbeat_name", "status", "team", "priority", "last_heartbeat_at"),
        "list_filter": ("status", "priority", "muted", "active"),
        "search_fields": ("heartbeat_name", "service_name", "team"),
    },
    Heartbeat: {
        "list_display": ("service", "time", "status", "source"),
        "list_select_related": ("service",),
        "raw_id_fields": ("service",),
        "show_full_result_count": False,
    },
    Alert: {
        "list_display": ("id", "service", "state", "priority", "opened_at", "resolved_at"),
        "list_filter": ("state", "priority"),
        "list_select_related": ("service",),
        "raw_id_fields": ("service",),
    },
    Delivery: {
        "list_display": ("id", "alert", "event", "channel", "target", "status", "attempts"),
        "list_filter": ("status", "channel", "event"),
        "raw_id_fields": ("alert",),
    },
    DeliveryAttempt: {
        "list_display": ("delivery", "number", "started_at", "status_code", "duration_ms"),
        "raw_id_fields": ("delivery",),
    },
    Team: {"list_display": ("name", "slack_channel_id", "updated_at"), "search_fields": ("name",)},
    NotificationTarget: {
        "list_display": ("name", "kind", "enabled", "updated_at"),
        "exclude": ("secrets",),
    },
    RoutingRule: {"list_display": ("name", "position", "enabled", "team", "when", "mode", "stop")},
    WorkingHours: {"list_display": ("name", "updated_at")},
    ApiKey: {
        "list_display": ("name", "prefix", "scopes", "created_at", "revoked_at", "last_used_at"),
        "exclude": ("hashed_key",),
    },
    AuditEvent: {
        "list_display": ("created_at", "actor", "event", "object_type", "object_id"),
        "list_filter": ("event",),
        "search_fields": ("actor", "object_id"),
    },
}
for name in ("JobRun", "MaintenanceWindow"):
    model = getattr(heartbeat_models, name, None)
    if model is not None:
        ADMINS[model] = {"raw_id_fields": ("service",)} if name == "JobRun" else {}

for model, options in ADMINS.items():
    if not admin.site.is_registered(model):
        admin.site.register(model, type(f"{model.__name__}Admin", (ReadOnlyAdmin,), options))
