"""Teams, notification targets, routing rules and working-hours schedules.

Operators change teams, rules and schedules; targets hold secrets, so changing them is for
admins (as in the API, where target writes need the admin scope). Secrets are write-only: the
forms never render a stored value, only which secrets are set.
"""

from __future__ import annotations

import functools
import json
import zoneinfo
from datetime import timedelta

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from alerting import config as cfg
from alerting.models import NotificationTarget, RoutingRule, Team, WorkingHours
from alerting.schedules import ScheduleError, parse_schedule, validate_timezone
from dashboard import selectors
from dashboard.forms import RuleForm, TargetForm, TeamForm, WorkingHoursForm
from dashboard.roles import Role
from dashboard.views.base import DeletePage, FormPage, Page, actor
from heartbeats.models import Service
from medic.errors import MedicError


class RoutingPage(Page):
    tab = ""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["tab"] = self.tab
        return context


class RoutingForm(FormPage):
    tab = ""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["tab"] = self.tab
        return context


# --- Teams ------------------------------------------------------------------------------------


class TeamList(RoutingPage):
    template_name = "dashboard/routing/teams.html"
    title = "Teams"
    tab = "teams"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["teams"] = selectors.teams_with_counts()
        known = {t.name for t in context["teams"]}
        context["unregistered"] = [n for n in selectors.team_names() if n not in known]
        return context


class TeamEdit(RoutingForm):
    tab = "teams"
    template_name = "dashboard/routing/team_form.html"
    intro = (
        "Services name their team; alerts for them go to the team's Slack channel unless a "
        "routing rule says otherwise."
    )

    def get_object(self):
        pk = self.kwargs.get("pk")
        return get_object_or_404(Team, pk=pk) if pk else None

    def make_form(self, data=None):
        initial = {"name": self.request.GET.get("name", "")}
        if self.object:
            initial = {"name": self.object.name, "slack_channel_id": self.object.slack_channel_id}
        return TeamForm(data, instance=self.object, initial=initial)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["title"] = f"Team {self.object.name}" if self.object else "New team"
        context["submit_label"] = "Save team" if self.object else "Create team"
        context["cancel_url"] = reverse("dashboard:teams")
        if self.object:
            context["team_services"] = Service.objects.filter(team=self.object.name).order_by(
                "heartbeat_name"
            )[:50]
        return context

    def save(self, form):
        data = form.cleaned_data
        fields = {"name": data["name"], "slack_channel_id": data.get("slack_channel_id", "")}
        if self.object:
            return cfg.team_update(ref=self.object.pk, actor=actor(self.request), **fields)
        return cfg.team_create(actor=actor(self.request), **fields)

    def success(self, team):
        messages.success(self.request, f"Saved team {team.name}.")
        return redirect("dashboard:teams")


class TeamDelete(DeletePage):
    what = "team"

    def get_object(self):
        return get_object_or_404(Team, pk=self.kwargs["pk"])

    def consequences(self, team):
        count = Service.objects.filter(team=team.name).count()
        return [
            f"{count} service(s) name this team; they keep the name, and their alerts go to "
            "the default Slack channel unless a rule routes them."
        ]

    def delete(self, team):
        cfg.team_delete(ref=team.pk, actor=actor(self.request))

    def list_url(self):
        return reverse("dashboard:teams")


# --- Notification targets ---------------------------------------------------------------------


class TargetList(RoutingPage):
    template_name = "dashboard/routing/targets.html"
    title = "Notification targets"
    tab = "targets"
    write_role = Role.ADMIN

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        targets = list(NotificationTarget.objects.prefetch_related("rules").order_by("name"))
        for target in targets:
            target.secret_names = cfg.secret_names(target)
        context["targets"] = targets
        return context


def _target_initial(target: NotificationTarget) -> dict:
    config = target.config
    initial = {
        "name": target.name,
        "kind": target.kind,
        "enabled": target.enabled,
        "channel": config.get("channel", ""),
        "url": config.get("url", ""),
        "method": config.get("method", "POST"),
        "headers": "\n".join(f"{k}: {v}" for k, v in config.get("headers", {}).items()),
        "timeout_seconds": config.get("timeout_seconds"),
    }
    if "body_template" in config:
        initial["body_template"] = json.dumps(config["body_template"], indent=2)
    return initial


class TargetEdit(RoutingForm):
    tab = "targets"
    template_name = "dashboard/routing/target_form.html"
    write_role = Role.ADMIN

    def get_object(self):
        pk = self.kwargs.get("pk")
        return get_object_or_404(NotificationTarget, pk=pk) if pk else None

    def make_form(self, data=None):
        if self.object:
            initial = _target_initial(self.object)
        else:
            initial = {"kind": self.request.GET.get("kind", "slack")}
        return TargetForm(data, instance=self.object, initial=initial)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["title"] = (
            f"Target {self.object.name}" if self.object else "New notification target"
        )
        context["submit_label"] = "Save target" if self.object else "Create target"
        context["cancel_url"] = reverse("dashboard:targets")
        context["stored_secrets"] = cfg.secret_names(self.object) if self.object else []
        return context

    def save(self, form):
        data = form.cleaned_data
        who = actor(self.request)
        if self.object:
            return cfg.target_update(
                ref=self.object.pk,
                actor=who,
                name=data["name"],
                enabled=data["enabled"],
                config=data.get("config") or {},
                secrets=data.get("secrets") or {},
            )
        target, generated = cfg.target_create(
            actor=who,
            name=data["name"],
            kind=data["kind"],
            enabled=data["enabled"],
            config=data.get("config") or {},
            secrets=data.get("secrets") or {},
        )
        target.generated_secret = generated
        return target

    def success(self, target):
        generated = getattr(target, "generated_secret", None)
        if generated:
            # Shown once, in this response only: it is stored encrypted and never shown again.
            response = TemplateResponse(
                self.request,
                "dashboard/secret_once.html",
                {
                    "title": f"Target {target.name} created",
                    "secret": generated,
                    "what": "webhook signing secret",
                    "explain": "Receivers verify the X-Medic-Signature header with it.",
                    "back_url": reverse("dashboard:targets"),
                    "back_label": "Back to notification targets",
                },
            )
            response["Cache-Control"] = "no-store"
            return response
        messages.success(self.request, f"Saved target {target.name}.")
        return redirect("dashboard:targets")


class TargetDelete(DeletePage):
    what = "notification target"
    write_role = Role.ADMIN

    def get_object(self):
        return get_object_or_404(NotificationTarget, pk=self.kwargs["pk"])

    def consequences(self, target):
        rules = [r.name for r in target.rules.all()]
        if rules:
            return [f"It is used by routing rules {', '.join(rules)}: remove it there first."]
        return ["Past deliveries keep their record; they no longer link to it."]

    def delete(self, target):
        cfg.target_delete(ref=target.pk, actor=actor(self.request))

    def list_url(self):
        return reverse("dashboard:targets")


# --- Routing rules ----------------------------------------------------------------------------


class RuleList(RoutingPage):
    template_name = "dashboard/routing/rules.html"
    title = "Routing rules"
    tab = "rules"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["rules"] = (
            RoutingRule.objects.select_related("service", "schedule")
            .prefetch_related("rule_targets__target")
            .order_by("position", "id")
        )
        return context


class RuleEdit(RoutingForm):
    tab = "rules"
    template_name = "dashboard/routing/rule_form.html"
    intro = (
        "Rules are checked in position order. Every matching rule adds its targets; a matching "
        "rule with 'stop' ends the search. When none matches, alerts take the default route "
        "(team Slack channel and PagerDuty)."
    )

    def get_object(self):
        pk = self.kwargs.get("pk")
        if not pk:
            return None
        return get_object_or_404(RoutingRule.objects.select_related("service", "schedule"), pk=pk)

    def make_form(self, data=None):
        initial: dict = {}
        slots = 5
        if self.object:
            rule = self.object
            links = list(rule.rule_targets.select_related("target").order_by("position"))
            slots = max(5, len(links) + 2)
            initial = {
                "name": rule.name,
                "position": rule.position,
                "enabled": rule.enabled,
                "service": rule.service.heartbeat_name if rule.service else "",
                "team": rule.team,
                "priorities": rule.priorities,
                "when": rule.when,
                "schedule": rule.schedule,
                "mode": rule.mode,
                "stop": rule.stop,
            }
            for i, link in enumerate(links):
                initial[f"target_{i}"] = str(link.target_id)
        teams = selectors.team_names()
        if self.object and self.object.team and self.object.team not in teams:
            teams.append(self.object.team)  # a rule may name a team nothing else uses
        return RuleForm(data, initial=initial, teams=teams, target_slots=slots)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["title"] = f"Rule {self.object.name}" if self.object else "New routing rule"
        context["submit_label"] = "Save rule" if self.object else "Create rule"
        context["cancel_url"] = reverse("dashboard:rules")
        context["no_targets"] = not NotificationTarget.objects.exists()
        return context

    def save(self, form):
        fields = form.service_fields()
        if self.object:
            return cfg.rule_update(ref=self.object.pk, actor=actor(self.request), **fields)
        return cfg.rule_create(actor=actor(self.request), **fields)

    def success(self, rule):
        messages.success(self.request, f"Saved rule {rule.name}.")
        return redirect("dashboard:rules")


class RuleDelete(DeletePage):
    what = "routing rule"

    def get_object(self):
        return get_object_or_404(RoutingRule, pk=self.kwargs["pk"])

    def delete(self, rule):
        cfg.rule_delete(ref=rule.pk, actor=actor(self.request))

    def list_url(self):
        return reverse("dashboard:rules")


# --- Working hours ----------------------------------------------------------------------------


@functools.cache
def time_zone_names() -> list[str]:
    """Location-based IANA names (Area/Location) and UTC: what schedules accept."""
    areas = ("Africa/", "America/", "Antarctica/", "Asia/", "Atlantic/", "Australia/", "Europe/")
    names = []
    for name in zoneinfo.available_timezones():
        if name.startswith((*areas, "Indian/", "Pacific/")):
            try:
                validate_timezone(name)  # drops legacy aliases the schedules refuse
            except ScheduleError:
                continue
            names.append(name)
    return ["UTC", *sorted(names)]


def describe(spec: dict) -> tuple[str, object]:
    try:
        schedule = parse_schedule(spec)
    except ScheduleError:
        return "invalid schedule", None
    return schedule.describe(), schedule


class WorkingHoursList(RoutingPage):
    template_name = "dashboard/routing/working_hours.html"
    title = "Working hours"
    tab = "working-hours"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        now = timezone.now()
        rows = []
        for schedule in WorkingHours.objects.prefetch_related("rules").order_by("name"):
            text, parsed = describe(schedule.spec)
            rows.append(
                {
                    "schedule": schedule,
                    "description": text,
                    "working": parsed.is_working_time(now) if parsed else None,
                    "next_change": parsed.next_change(now) if parsed else None,
                    "rules": [r.name for r in schedule.rules.all()],
                }
            )
        context["rows"] = rows
        return context


class WorkingHoursEdit(RoutingForm):
    tab = "working-hours"
    template_name = "dashboard/routing/working_hours_form.html"

    def get_object(self):
        pk = self.kwargs.get("pk")
        return get_object_or_404(WorkingHours, pk=pk) if pk else None

    def make_form(self, data=None):
        if self.object:
            initial = WorkingHoursForm.initial_from(self.object)
            rows = max(3, len(self.object.spec.get("windows", [])) + 1)
        else:
            initial = {
                "timezone": "UTC",
                "w0_days": ["mon", "tue", "wed", "thu", "fri"],
                "w0_start": "09:00",
                "w0_end": "17:00",
            }
            rows = 3
        if data is not None:
            rows = max(rows, sum(1 for k in data if k.endswith("_start")))
        return WorkingHoursForm(data, initial=initial, windows=min(rows, 50))

    def post(self, request, *args, **kwargs):
        self.object = self.get_object()
        form = self.make_form(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                if self.object:
                    schedule = cfg.working_hours_update(
                        ref=self.object.pk,
                        actor=actor(request),
                        name=data["name"],
                        spec=data["spec"],
                    )
                else:
                    schedule = cfg.working_hours_create(
                        name=data["name"], spec=data["spec"], actor=actor(request)
                    )
            except MedicError as exc:
                form.apply_spec_error(exc)
            else:
                messages.success(request, f"Saved schedule {schedule.name}.")
                return redirect("dashboard:working_hours")
        return self.render_to_response(self.get_context_data(form=form))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["title"] = (
            f"Working hours {self.object.name}" if self.object else "New working-hours schedule"
        )
        context["submit_label"] = "Save schedule" if self.object else "Create schedule"
        context["cancel_url"] = reverse("dashboard:working_hours")
        context["zones"] = time_zone_names()
        if self.object:
            text, parsed = describe(self.object.spec)
            now = timezone.now()
            context["description"] = text
            if parsed:
                context["working_now"] = parsed.is_working_time(now)
                context["next_change"] = parsed.next_change(now)
                context["preview_until"] = now + timedelta(days=7)
        return context


class WorkingHoursDelete(DeletePage):
    what = "working-hours schedule"

    def get_object(self):
        return get_object_or_404(WorkingHours, pk=self.kwargs["pk"])

    def consequences(self, schedule):
        rules = [r.name for r in schedule.rules.all()]
        if rules:
            return [f"Routing rules {', '.join(rules)} use it: change them first."]
        return []

    def delete(self, schedule):
        cfg.working_hours_delete(ref=schedule.pk, actor=actor(self.request))

    def list_url(self):
        return reverse("dashboard:working_hours")
