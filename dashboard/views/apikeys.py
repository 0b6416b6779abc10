"""API keys (admins only): create, rotate, revoke. A new or rotated secret is shown once, in the
response to the POST that made it, and is never stored in the session or anywhere else."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from dashboard.forms import ApiKeyForm
from dashboard.roles import Role
from dashboard.views.base import FormPage, Page, actor
from medic import apikeys
from medic.models import ApiKey


def _secret_page(request, issued: apikeys.IssuedKey, verb: str) -> TemplateResponse:
    response = TemplateResponse(
        request,
        "dashboard/secret_once.html",
        {
            "title": f"API key {issued.key.name} {verb}",
            "secret": issued.secret,
            "what": "API key",
            "explain": "Send it as 'Authorization: Bearer <key>'.",
            "key": issued.key,
            "back_url": reverse("dashboard:apikeys"),
            "back_label": "Back to API keys",
        },
    )
    response["Cache-Control"] = "no-store"
    return response


class AdminPage(Page):
    read_role = Role.ADMIN
    write_role = Role.ADMIN


class ApiKeyList(AdminPage):
    template_name = "dashboard/apikeys/list.html"
    title = "API keys"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["keys"] = ApiKey.objects.order_by("revoked_at", "-created_at", "-id")
        context["now"] = timezone.now()
        return context


class ApiKeyCreate(FormPage):
    write_role = Role.ADMIN
    title = "New API key"
    submit_label = "Create key"
    intro = "The secret is shown once, right after you create the key: copy it then."

    def make_form(self, data=None):
        return ApiKeyForm(data, initial={"scopes": ["write"]})

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["cancel_url"] = reverse("dashboard:apikeys")
        return context

    def error_field_map(self):
        return {"expires_in_days": "expires_days", "rate_limits": "heartbeat_limit"}

    def save(self, form):
        data = form.cleaned_data
        return apikeys.api_key_create(
            name=data["name"],
            scopes=data["scopes"],
            expires_in_days=data["expires_in_days"],
            rate_limits=data["rate_limits"],
            actor=actor(self.request),
        )

    def success(self, issued):
        return _secret_page(self.request, issued, "created")


class ApiKeyRotate(AdminPage):
    http_method_names = ["post"]

    def post(self, request, pk: int):
        key = get_object_or_404(ApiKey, pk=pk)
        issued = apikeys.api_key_rotate(key_id=key.pk, actor=actor(request))
        return _secret_page(request, issued, "rotated")


class ApiKeyRevoke(AdminPage):
    http_method_names = ["post"]

    def post(self, request, pk: int):
        key = get_object_or_404(ApiKey, pk=pk)
        apikeys.api_key_revoke(key_id=key.pk, actor=actor(request))
        messages.success(request, f"Revoked {key.name}: requests with it are refused from now on.")
        return redirect("dashboard:apikeys")
