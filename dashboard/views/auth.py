"""Sign in and out with Django's session authentication."""

from __future__ import annotations

from django.contrib.auth import views as auth_views


class Login(auth_views.LoginView):
    template_name = "dashboard/login.html"
    redirect_authenticated_user = True
    extra_context = {"title": "Sign in"}


class Logout(auth_views.LogoutView):
    http_method_names = ["post", "options"]
