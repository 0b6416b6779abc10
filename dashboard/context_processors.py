"""Template context for dashboard pages: the role, the navigation and the header counts."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject

from dashboard.nav import nav_for
from dashboard.roles import Role, role_of
from dashboard.selectors import header_counts


def dashboard(request) -> dict:
    if not request.path.startswith("/ui/") or not request.user.is_authenticated:
        return {}
    role = role_of(request.user)
    return {
        "medic_role": role,
        "is_operator": role is not None and role >= Role.OPERATOR,
        "is_admin": role is not None and role >= Role.ADMIN,
        "nav": nav_for(request.path, role),
        # Two COUNT queries, run only when a template shows them.
        "header_counts": SimpleLazyObject(header_counts),
    }
