"""Slack users (admins only): which Slack user acts as which Medic user on approval buttons.

Without a link, a Slack user is matched by the e-mail address Slack has verified; a link set
here is checked first, so a Slack account with another address can still act as its owner.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse

from dashboard.roles import Role, role_of
from dashboard.slack_links import slack_link_set
from dashboard.views.apikeys import AdminPage
from dashboard.views.base import FormPage, actor


class SlackLinkList(AdminPage):
    template_name = "dashboard/slack_links/list.html"
    title = "Slack users"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        users = list(
            get_user_model()
            .objects.filter(is_active=True)
            .select_related("slack_link")
            .prefetch_related("groups")
            .order_by("username")
        )
        for user in users:
            user.role = role_of(user)
        context["users"] = users
        return context


class SlackLinkForm(forms.Form):
    slack_user_id = forms.CharField(
        required=False,
        max_length=32,
        label="Slack user id",
        help_text="Like U024BE7LH (in Slack: the profile, ⋮, Copy member ID). Empty removes the "
        "link; the verified e-mail address is then used.",
    )


class SlackLinkEdit(FormPage):
    read_role = Role.ADMIN
    write_role = Role.ADMIN
    submit_label = "Save link"

    def get_object(self):
        return get_object_or_404(get_user_model(), pk=self.kwargs["pk"], is_active=True)

    def make_form(self, data=None):
        link = getattr(self.object, "slack_link", None)
        return SlackLinkForm(data, initial={"slack_user_id": link.slack_user_id if link else ""})

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.object
        context.update(
            title=f"Slack user of {user.get_username()}",
            cancel_url=reverse("dashboard:slack_links"),
            intro=f"Clicks on Slack approval buttons by this Slack user act as "
            f"{user.get_username()} ({user.email or 'no e-mail'}), before any e-mail match.",
        )
        return context

    def save(self, form):
        return slack_link_set(
            user_id=self.object.pk,
            slack_user_id=form.cleaned_data["slack_user_id"],
            actor=actor(self.request),
        )

    def success(self, link):
        name = self.object.get_username()
        if link is None:
            messages.success(self.request, f"{name} has no Slack link: the e-mail match applies.")
        else:
            messages.success(self.request, f"Slack user {link.slack_user_id} now acts as {name}.")
        return redirect("dashboard:slack_links")
