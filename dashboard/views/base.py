"""Shared pieces of the dashboard views: the base page, form pages, delete confirmations."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.contrib import messages
from django.core.paginator import Page as PaginatorPage
from django.core.paginator import Paginator
from django.shortcuts import redirect
from django.utils import timezone
from django.views.generic import TemplateView

from dashboard.forms import apply_error
from dashboard.permissions import RoleRequiredMixin
from medic.errors import MedicError
from medic.models import actor_label

PAGE_SIZE = 50


def actor(request) -> str:
    """How a dashboard user appears in audit rows and "muted by": ``user:alice``."""
    return actor_label(request.user)


def day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time()), timezone.get_current_timezone())


class CreatedDays(forms.Form):
    """The "created on these days" filter of list pages: both days included."""

    created_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    created_to = forms.DateField(
        required=False, label="to (inclusive)", widget=forms.DateInput(attrs={"type": "date"})
    )

    def created_range(self) -> dict:
        """``created_from`` (inclusive) and ``created_to`` (exclusive) for a selector."""
        data, out = self.cleaned_data, {}
        if data.get("created_from"):
            out["created_from"] = day_start(data["created_from"])
        if data.get("created_to"):
            out["created_to"] = day_start(data["created_to"] + timedelta(days=1))
        return out


def paginate(request, queryset, per_page: int = PAGE_SIZE) -> PaginatorPage:
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


class Page(RoleRequiredMixin, TemplateView):
    """A dashboard page: role-checked (see dashboard.permissions), rendered from a template."""

    title = ""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("title", self.title)
        return context


class FormPage(Page):
    """GET shows the form; POST validates it and calls ``save``, a service function.

    A ``MedicError`` from the service (a name taken, a rule the service enforces) is shown on
    the form, next to the field it names.
    """

    template_name = "dashboard/form.html"
    submit_label = "Save"
    # A form is only shown to those who may submit it.
    needs_write_to_read = True
    cancel_url = ""
    intro = ""

    def get_object(self):
        return None

    def make_form(self, data=None):
        raise NotImplementedError

    def save(self, form):
        raise NotImplementedError

    def success(self, obj):
        raise NotImplementedError

    def error_field_map(self) -> dict[str, str]:
        return {}

    def get(self, request, *args, **kwargs):
        self.object = self.get_object()
        return self.render_to_response(self.get_context_data(form=self.make_form()))

    def post(self, request, *args, **kwargs):
        self.object = self.get_object()
        form = self.make_form(request.POST)
        if form.is_valid():
            try:
                obj = self.save(form)
            except MedicError as exc:
                apply_error(form, exc, self.error_field_map())
            else:
                return self.success(obj)
        return self.render_to_response(self.get_context_data(form=form))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            object=self.object,
            submit_label=self.submit_label,
            cancel_url=self.cancel_url,
            intro=self.intro,
        )
        return context


class DeletePage(Page):
    """GET asks for confirmation, POST deletes through the service and goes back to the list."""

    template_name = "dashboard/confirm_delete.html"
    what = ""
    needs_write_to_read = True

    def get_object(self):
        raise NotImplementedError

    def delete(self, obj) -> None:
        raise NotImplementedError

    def consequences(self, obj) -> list[str]:
        return []

    def list_url(self) -> str:
        raise NotImplementedError

    def cancel_url(self, obj) -> str:
        return self.list_url()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        obj = self.get_object()
        context.update(
            object=obj,
            what=self.what,
            consequences=self.consequences(obj),
            cancel_url=self.cancel_url(obj),
            title=f"Delete {self.what} {obj}",
        )
        return context

    def post(self, request, *args, **kwargs):
        obj = self.get_object()
        try:
            self.delete(obj)
        except MedicError as exc:
            messages.error(request, exc.message)
            return redirect(request.path)
        messages.success(request, f"Deleted {self.what} {obj}.")
        return redirect(self.list_url())
