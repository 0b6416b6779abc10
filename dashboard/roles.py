"""Dashboard roles: who may look, who may change things, who may manage keys.

A user's role comes from Django groups (created by this app's data migration); superusers are
always admins. Roles are ordered, so "at least operator" is a comparison. The one place that
checks them for requests is ``dashboard.permissions.RoleRequiredMixin``.
"""

from __future__ import annotations

from enum import IntEnum


class Role(IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()


GROUP_ROLES = {"viewer": Role.VIEWER, "operator": Role.OPERATOR, "admin": Role.ADMIN}
ROLE_HELP = {
    Role.VIEWER: "sees services, alerts and routing; changes nothing",
    Role.OPERATOR: "runs Medic day to day: services, mutes, teams, routing rules, schedules",
    Role.ADMIN: "everything, plus notification-target secrets and API keys",
}
_UNSET = object()


def role_of(user) -> Role | None:
    """The user's highest role, or None (signed out, inactive, or in no Medic group)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    cached = getattr(user, "_medic_role", _UNSET)
    if cached is not _UNSET:
        return cached
    if user.is_superuser:
        role = Role.ADMIN
    else:
        names = user.groups.filter(name__in=GROUP_ROLES).values_list("name", flat=True)
        role = max((GROUP_ROLES[n] for n in names), default=None)
    user._medic_role = role
    return role


def groups_ensure(group_model) -> None:
    """Create the role groups (idempotent); used by the data migration and by tests."""
    for name in GROUP_ROLES:
        group_model.objects.get_or_create(name=name)
