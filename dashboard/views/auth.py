"""Sign in and out with Django's session authentication, behind the sign-in lock-out.

The lock-out itself (counting, refusing before the password is checked, clearing on success)
is ``medic.lockout``, enforced by the authentication backend for every way to sign in; this view
asks first so that a locked sign-in gets 429, ``Retry-After`` and a message saying when to try
again.
"""

from __future__ import annotations

from django.contrib.auth import views as auth_views

from medic import lockout


def _username(request) -> str:
    return (request.POST.get("username") or "").strip()[:150]


class Login(auth_views.LoginView):
    template_name = "dashboard/login.html"
    redirect_authenticated_user = True
    extra_context = {"title": "Sign in"}

    def post(self, request, *args, **kwargs):
        username = _username(request)
        wait = lockout.wait_seconds(request, username) if username else 0
        if wait:
            lockout.log_refusal(request, username, wait)
            return self.refuse(request, username, wait)
        return super().post(request, *args, **kwargs)

    def refuse(self, request, username: str, wait: int):
        form = self.get_form_class()(request, initial={"username": username})
        context = self.get_context_data(form=form, locked_message=lockout.locked_message(wait))
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(wait)
        return response


class Logout(auth_views.LogoutView):
    http_method_names = ["post", "options"]
