"""The single gate for every dashboard view.

``RoleRequiredMixin`` runs before the view's own code: a request without a session is sent to the
login page; a safe method (GET, HEAD) needs the view's ``read_role``, anything else its
``write_role``. A user below it gets a 403 page, whatever the form or button looked like, so a
viewer's forged POST is refused here and never reaches a service function.
"""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.template.response import TemplateResponse

from dashboard.roles import ROLE_HELP, Role, role_of
from medic.errors import NotFound

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def forbidden(request, needed: Role | None, role: Role | None) -> TemplateResponse:
    context = {
        "needed": needed,
        "needed_help": ROLE_HELP.get(needed, ""),
        "current_role": role,
    }
    return TemplateResponse(request, "dashboard/403.html", context, status=403)


def not_found(request, message: str = "") -> TemplateResponse:
    return TemplateResponse(request, "dashboard/404.html", {"message": message}, status=404)


class RoleRequiredMixin:
    read_role: Role = Role.VIEWER
    write_role: Role = Role.OPERATOR
    # Forms and confirmations: showing them needs the role that may submit them.
    needs_write_to_read = False

    def needed_role(self, method: str) -> Role:
        if method in SAFE_METHODS and not self.needs_write_to_read:
            return self.read_role
        return max(self.read_role, self.write_role)

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        role = role_of(request.user)
        needed = self.needed_role(request.method)
        if role is None or role < needed:
            return forbidden(request, needed, role)
        request.medic_role = role
        try:
            return super().dispatch(request, *args, **kwargs)
        except Http404 as exc:
            # The project's 404 handler answers API clients in JSON; people get a page.
            return not_found(request, str(exc) if exc.args else "")
        except NotFound as exc:
            return not_found(request, exc.message)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        role = self.request.medic_role
        context["can_write"] = role >= self.write_role
        return context
