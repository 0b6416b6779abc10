"""Dashboard forms. They shape and check input; the writes happen in the service functions
(heartbeats.services, alerting.config, medic.apikeys), whose errors ``apply_error`` turns into
messages next to the field to fix.

Where the API's serializers hold validation rules (Slack channel ids, webhook URLs, headers,
body templates), the forms run the same serializer, so the browser and the API say the same
thing about the same input.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.core.exceptions import ValidationError
from rest_framework import serializers as drf

from alerting.config_api import TargetSerializer, TeamSerializer
from alerting.models import (
    AlertState,
    Channel,
    NotificationTarget,
    RoutingMode,
    RoutingWhen,
    WorkingHours,
)
from alerting.schedules import DAY_NAMES, ScheduleError, validate_timezone
from alerting.transports import DEFAULT_BODY
from heartbeats import cron
from heartbeats.models import Priority, ScheduleKind, ServiceStatus
from heartbeats.services import cron_period_minutes, service_get
from medic.apikeys import VALID_SCOPES
from medic.durations import parse_duration
from medic.errors import MedicError, to_medic_error
from medic.limits import name_problem


def apply_error(form: forms.Form, exc: MedicError, field_map: dict[str, str] | None = None):
    """Attach a service error to the form: field messages next to their field, the rest on top."""
    field_map = field_map or {}
    if not exc.fields:
        form.add_error(None, exc.message)
        return
    for name, messages in exc.fields.items():
        target = field_map.get(name, name)
        for message in messages:
            if target in form.fields:
                form.add_error(target, message)
            else:
                label = name.replace("_", " ")
                form.add_error(
                    None, f"{label}: {message}" if name != "non_field_errors" else message
                )


def run_serializer(form: forms.Form, serializer, field_map: dict[str, str] | None = None):
    """Validate with an API serializer; its errors land on the form. Returns validated data."""
    try:
        serializer.is_valid(raise_exception=True)
    except drf.ValidationError as exc:
        apply_error(form, to_medic_error(exc), field_map)
        return None
    return serializer.validated_data


def _name_field(**kwargs) -> forms.CharField:
    return forms.CharField(
        max_length=100,
        help_text="Letters, digits, dashes; no '/' and not only digits.",
        **kwargs,
    )


def _check_name(value: str) -> str:
    value = value.strip()
    if name_problem(value):
        raise ValidationError("Must not contain '/' or be only digits.")
    return value


# --- Services ---------------------------------------------------------------------------------

STATUS_FILTERS = [
    ("", "Any status"),
    (ServiceStatus.DOWN, "Down"),
    (ServiceStatus.UP, "Up"),
    (ServiceStatus.NEW, "New"),
    (ServiceStatus.PAUSED, "Paused"),
    ("muted", "Muted"),
]
SORT_CHOICES = [
    ("status", "Problems first"),
    ("name", "Name"),
    ("-last", "Last heartbeat, oldest first"),
    ("last", "Last heartbeat, newest first"),
    ("deadline", "Next deadline"),
    ("team", "Team"),
    ("priority", "Priority"),
]


class ServiceFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", max_length=255)
    status = forms.ChoiceField(choices=STATUS_FILTERS, required=False)
    team = forms.ChoiceField(choices=[], required=False)
    priority = forms.ChoiceField(choices=[("", "Any priority"), *Priority.choices], required=False)
    sort = forms.CharField(required=False)

    def __init__(self, *args, teams: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "Any team"), *((t, t) for t in teams)]

    def value(self, name: str) -> str:
        """A filter's clean value; an invalid one (a stale link) is ignored, not an error."""
        if not self.is_bound:
            return ""
        self.is_valid()
        return self.cleaned_data.get(name) or ""


def _needed_by_choice(form: forms.Form, names: tuple[str, ...]) -> None:
    """Fields required when their group's choice is made (a schedule kind, a window's scope):
    not marked "(optional)" although the form field itself is not required."""
    for name in names:
        form.fields[name].needed_by_choice = True


SCHEDULE_KINDS = [
    (ScheduleKind.INTERVAL, "Interval: a beat every few minutes"),
    (ScheduleKind.AT_LEAST, "At least N beats per window"),
    (ScheduleKind.CRON, "Cron: at set times in a time zone"),
]


class ServiceForm(forms.Form):
    """Every setting of a service. Only the chosen schedule kind's fields are read (the others
    are hidden by the script, and ignored without it). ``payload`` gives the v2 API's fields,
    which the view validates with the API's serializer and writes through heartbeats.services,
    so the browser and the API accept and refuse the same things."""

    heartbeat_name = forms.CharField(
        max_length=255,
        help_text="What clients send heartbeats as. Unique (case-insensitive), no '/'.",
    )
    service_name = forms.CharField(
        max_length=255, required=False, help_text="A readable name; defaults to the heartbeat name."
    )
    team = forms.CharField(
        max_length=100,
        initial="site-reliability",
        widget=forms.TextInput(attrs={"list": "id_team_list", "autocomplete": "off"}),
        help_text="The owning team; its Slack channel hears about alerts.",
    )
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.P3)
    schedule_kind = forms.ChoiceField(
        label="Kind",
        choices=SCHEDULE_KINDS,
        initial=ScheduleKind.INTERVAL,
        required=False,
        widget=forms.RadioSelect(attrs={"data-switch": "schedule_kind"}),
        help_text="What 'on time' means for this service (docs/schedules.md).",
    )
    # interval
    alert_interval = forms.FloatField(
        label="Interval (minutes)",
        min_value=0.1,
        initial=5,
        required=False,
        help_text="Expect at least the threshold of heartbeats within this many minutes.",
    )
    threshold = forms.IntegerField(
        min_value=1, initial=1, required=False, help_text="Heartbeats per interval."
    )
    # at least N per window
    at_least_count = forms.IntegerField(
        label="At least (beats)",
        min_value=1,
        initial=10,
        required=False,
        help_text="How many heartbeats must arrive in every window.",
    )
    at_least_window = forms.FloatField(
        label="Per window of (minutes)",
        min_value=0.1,
        initial=60,
        required=False,
        help_text="The sliding window, e.g. 60 for 'at least 10 per hour'.",
    )
    # cron
    cron_expression = forms.CharField(
        max_length=120,
        required=False,
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
        help_text="Five fields in local time: minute hour day-of-month month day-of-week, "
        "e.g. 0 3 * * * (daily at 03:00) or 30 2 * * 1-5 (weekdays at 02:30).",
    )
    schedule_timezone = forms.CharField(
        label="Time zone",
        max_length=64,
        initial="UTC",
        required=False,
        widget=forms.TextInput(attrs={"list": "id_schedule_timezone_list", "autocomplete": "off"}),
        help_text="An IANA name such as Europe/Berlin (not CET). Skipped and repeated hours "
        "follow the DST rules of docs/schedules.md.",
    )
    cron_repeat_minutes = forms.FloatField(
        label="Repeat an open alert every (minutes)",
        min_value=0.1,
        required=False,
        help_text="Blank: the cron period (a day for a daily job).",
    )
    # every kind
    grace_period_seconds = forms.IntegerField(
        label="Grace (seconds)",
        min_value=0,
        max_value=7 * 86400,
        initial=0,
        help_text="Extra time after each deadline before the service counts as down.",
    )
    # job runs
    max_duration = forms.CharField(
        label="Longest run",
        max_length=20,
        required=False,
        help_text="A run still going after this is hung and alerts: e.g. 30m, 2h, 5400 "
        "(seconds). Blank: off (a run not done by the next deadline alerts instead).",
    )
    failure_threshold = forms.IntegerField(
        label="Failed runs before an alert",
        min_value=1,
        initial=1,
        required=False,
        help_text="Consecutive failed runs that take the service down and alert (blank: 1).",
    )
    slow_run_factor = forms.FloatField(
        label="Slow-run factor",
        required=False,
        help_text="Alert (informational) when a run takes longer than this multiple of the "
        "service's p95 duration, e.g. 2. Blank: off. Needs 5 completed runs.",
    )
    runbook = forms.CharField(
        max_length=1000, required=False, help_text="A link or short instructions for responders."
    )
    active = forms.BooleanField(
        required=False,
        initial=True,
        help_text="Inactive services are paused: heartbeats are refused and no alerts open.",
    )

    # The form field that shows an API field's error, per schedule kind.
    FIELD_MAP = {
        ScheduleKind.INTERVAL: {},
        ScheduleKind.AT_LEAST: {"alert_interval": "at_least_window", "threshold": "at_least_count"},
        ScheduleKind.CRON: {"alert_interval": "cron_repeat_minutes"},
    }

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["heartbeat_name"]
        _needed_by_choice(self, ("alert_interval", "threshold", "at_least_count"))
        _needed_by_choice(self, ("at_least_window", "cron_expression", "schedule_timezone"))

    @classmethod
    def initial_from(cls, service) -> dict:
        initial = {
            f: getattr(service, f)
            for f in (
                "service_name",
                "team",
                "priority",
                "schedule_kind",
                "grace_period_seconds",
                "failure_threshold",
                "slow_run_factor",
                "runbook",
                "active",
                "schedule_timezone",
            )
        }
        if service.max_duration_seconds:
            initial["max_duration"] = duration_label(
                timedelta(seconds=service.max_duration_seconds)
            ).replace(" ", "")
        if service.schedule_kind == ScheduleKind.AT_LEAST:
            initial["at_least_count"] = service.threshold
            initial["at_least_window"] = service.alert_interval
        elif service.schedule_kind == ScheduleKind.CRON:
            initial["cron_expression"] = service.cron_expression
            try:
                period = cron_period_minutes(service.cron_expression, service.schedule_timezone)
            except Exception:  # a stored expression the current rules refuse: show the value
                period = None
            if period is None or abs(period - service.alert_interval) > 0.01:
                initial["cron_repeat_minutes"] = service.alert_interval
        else:
            initial["alert_interval"] = service.alert_interval
            initial["threshold"] = service.threshold
        return initial

    def clean_max_duration(self):
        raw = self.cleaned_data["max_duration"].strip()
        if not raw:
            return None
        try:
            return int(parse_duration(raw).total_seconds())
        except ValueError:
            raise ValidationError(
                f"'{raw}' is not a duration: use 30m, 2h, 1h30m or a number of seconds."
            ) from None

    def clean(self):
        data = super().clean()
        kind = data.get("schedule_kind") or ScheduleKind.INTERVAL
        data["schedule_kind"] = kind
        required = {
            ScheduleKind.INTERVAL: {
                "alert_interval": "Enter the interval in minutes, e.g. 5.",
                "threshold": "Enter how many heartbeats each interval needs (usually 1).",
            },
            ScheduleKind.AT_LEAST: {
                "at_least_count": "Enter how many heartbeats each window needs, e.g. 10.",
                "at_least_window": "Enter the window in minutes, e.g. 60.",
            },
            ScheduleKind.CRON: {
                "cron_expression": "Enter a cron expression such as 0 3 * * * (daily at 03:00).",
                "schedule_timezone": "Enter a time zone such as Europe/Berlin, or UTC.",
            },
        }.get(kind, {})
        for name, message in required.items():
            if name not in self.errors and data.get(name) in (None, ""):
                self.add_error(name, message)
        return data

    def payload(self) -> dict:
        """The v2 API's service fields for what was entered (the chosen kind's only)."""
        data = self.cleaned_data
        kind = data["schedule_kind"]
        out = {
            "service_name": data["service_name"],
            "team": data["team"],
            "priority": data["priority"],
            "schedule_kind": kind,
            "grace_period_seconds": data["grace_period_seconds"],
            "max_duration_seconds": data["max_duration"],
            "failure_threshold": data["failure_threshold"] or 1,
            "slow_run_factor": data["slow_run_factor"],
            "runbook": data["runbook"],
            "active": data["active"],
        }
        if "heartbeat_name" in self.fields:
            out["heartbeat_name"] = data["heartbeat_name"].strip()
        if kind == ScheduleKind.CRON:
            out["cron_expression"] = data["cron_expression"].strip()
            out["schedule_timezone"] = data["schedule_timezone"].strip()
            out["threshold"] = 1
            if data["cron_repeat_minutes"] is not None:
                out["alert_interval"] = data["cron_repeat_minutes"]
        elif kind == ScheduleKind.AT_LEAST:
            out.update(
                alert_interval=data["at_least_window"],
                threshold=data["at_least_count"],
                cron_expression="",
            )
        else:
            out.update(
                alert_interval=data["alert_interval"],
                threshold=data["threshold"],
                cron_expression="",
            )
        return out


MUTE_PRESETS = [("30m", "30 minutes"), ("1h", "1 hour"), ("4h", "4 hours"), ("1d", "1 day")]


class MuteForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        help_text="Why, so others know (shown wherever the service appears).",
        error_messages={"required": "Say why the service is muted."},
    )
    duration = forms.ChoiceField(
        choices=[*MUTE_PRESETS, ("custom", "Custom")],
        initial="1h",
        widget=forms.RadioSelect,
    )
    custom = forms.CharField(
        required=False,
        label="Custom duration",
        max_length=20,
        help_text="e.g. 45m, 2h30m, 3d (at most 90 days).",
    )

    def clean(self):
        data = super().clean()
        choice = data.get("duration")
        raw = data.get("custom", "").strip()
        if choice == "custom" or (raw and choice is None):
            if not raw:
                self.add_error("custom", "Enter a duration such as 45m, 2h or 3d.")
                return data
            try:
                data["length"] = parse_duration(raw)
            except ValueError:
                self.add_error("custom", f"'{raw}' is not a duration: use 45m, 2h, 1d12h.")
        elif choice:
            data["length"] = parse_duration(choice)
        return data


# --- Teams and routing ------------------------------------------------------------------------


class TeamForm(forms.Form):
    name = _name_field()
    slack_channel_id = forms.CharField(
        max_length=64,
        required=False,
        label="Slack channel id",
        help_text="Like C0123ABCD (Slack: channel details, at the bottom), not #name.",
    )

    def __init__(self, *args, instance=None, **kwargs):
        self.instance = instance
        super().__init__(*args, **kwargs)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        payload = {"name": data["name"], "slack_channel_id": data.get("slack_channel_id", "")}
        checked = run_serializer(self, TeamSerializer(self.instance, data=payload))
        return dict(checked) if checked is not None else data


def _parse_header_lines(text: str, *, allow_empty: bool) -> dict[str, str]:
    headers: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise ValidationError(f"Line {number}: write 'Header-Name: value'.")
        if not value.strip() and not allow_empty:
            raise ValidationError(f"Line {number}: '{name.strip()}' has no value.")
        headers[name.strip()] = value.strip()
    return headers


class TargetForm(forms.Form):
    """One form for the three kinds; only the chosen kind's fields are read."""

    name = _name_field()
    kind = forms.ChoiceField(choices=Channel.choices)
    enabled = forms.BooleanField(required=False, initial=True)
    # Slack
    channel = forms.CharField(
        required=False,
        max_length=64,
        label="Slack channel id",
        help_text="Blank: post to the service's team channel.",
    )
    bot_token = forms.CharField(
        required=False,
        label="Bot token",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Blank: use the server's SLACK_BOT_TOKEN.",
    )
    # PagerDuty
    routing_key = forms.CharField(
        required=False,
        label="Routing key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Events API v2 integration key; defaults to PAGERDUTY_ROUTING_KEY.",
    )
    # Webhook
    url = forms.CharField(required=False, max_length=2000, label="URL")
    method = forms.ChoiceField(
        choices=[("POST", "POST"), ("PUT", "PUT"), ("PATCH", "PATCH")], initial="POST"
    )
    headers = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One 'Header-Name: value' per line; stored as plain settings.",
    )
    secret_headers = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "autocomplete": "off"}),
        help_text="Encrypted, never shown again. 'Header-Name:' with no value removes one.",
    )
    body_template = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text="JSON with ${variables}; blank for the default body.",
    )
    timeout_seconds = forms.FloatField(required=False, label="Timeout (seconds)")
    signing_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="At least 16 characters. Leave blank to generate one (shown once).",
    )

    SECRET_FIELDS = ("bot_token", "routing_key", "signing_secret")

    def __init__(self, *args, instance: NotificationTarget | None = None, **kwargs):
        self.instance = instance
        super().__init__(*args, **kwargs)
        if instance is not None:
            self.fields["kind"].disabled = True
            self.fields["signing_secret"].help_text = "Leave blank to keep the current secret."
            for name in ("bot_token", "routing_key"):
                self.fields[name].help_text += " Leave blank to keep the stored one."

    def clean_body_template(self):
        raw = self.cleaned_data["body_template"].strip()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"Not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}."
            ) from exc

    def clean_headers(self):
        return _parse_header_lines(self.cleaned_data["headers"], allow_empty=False)

    def clean_secret_headers(self):
        return _parse_header_lines(self.cleaned_data["secret_headers"], allow_empty=True)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        kind = self.instance.kind if self.instance else data["kind"]
        payload: dict = {"name": data["name"], "enabled": data["enabled"]}
        if not self.instance:
            payload["kind"] = kind
        if kind == Channel.SLACK:
            payload["channel"] = data["channel"]
            if data["bot_token"]:
                payload["bot_token"] = data["bot_token"]
        elif kind == Channel.PAGERDUTY:
            if data["routing_key"]:
                payload["routing_key"] = data["routing_key"]
        else:
            if data["url"] or not self.instance:
                payload["url"] = data["url"]
            payload["method"] = data["method"] or "POST"
            payload["headers"] = data["headers"]
            if data["secret_headers"]:
                payload["secret_headers"] = data["secret_headers"]
            if data["body_template"] is not None:
                payload["body_template"] = data["body_template"]
            elif self.instance and "body_template" in self.instance.config:
                payload["body_template"] = DEFAULT_BODY
            if data["timeout_seconds"] is not None:
                payload["timeout_seconds"] = data["timeout_seconds"]
            if data["signing_secret"]:
                payload["signing_secret"] = data["signing_secret"]
        if not payload.get("url") and kind == Channel.WEBHOOK and not self.instance:
            self.add_error("url", "Required for a webhook target: the http(s) URL to call.")
            return data
        serializer = TargetSerializer(self.instance, data=payload, partial=bool(self.instance))
        checked = run_serializer(self, serializer)
        return dict(checked) if checked is not None else data


class RuleForm(forms.Form):
    name = _name_field()
    position = forms.IntegerField(
        initial=100, help_text="Rules are checked in ascending order; lower runs first."
    )
    enabled = forms.BooleanField(required=False, initial=True)
    service = forms.CharField(
        required=False,
        max_length=255,
        help_text="Only alerts of this service (heartbeat name); blank: any.",
    )
    team = forms.ChoiceField(choices=[], required=False, help_text="Only services of this team.")
    priorities = forms.MultipleChoiceField(
        choices=Priority.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Only alerts of these priorities; none ticked: any.",
    )
    when = forms.ChoiceField(choices=RoutingWhen.choices, initial=RoutingWhen.ALWAYS)
    schedule = forms.ModelChoiceField(
        queryset=WorkingHours.objects.all(),
        required=False,
        empty_label="—",
        help_text="Needed when 'when' is working hours or after hours.",
    )
    mode = forms.ChoiceField(choices=RoutingMode.choices, initial=RoutingMode.ALL)
    stop = forms.BooleanField(
        required=False, help_text="When this rule matches, later rules are not evaluated."
    )

    def __init__(self, *args, teams: list[str], target_slots: int = 5, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "Any team"), *((t, t) for t in teams)]
        targets = [("", "—"), *((str(t.pk), str(t)) for t in NotificationTarget.objects.all())]
        self.target_fields = []
        for i in range(target_slots):
            name = f"target_{i}"
            self.fields[name] = forms.ChoiceField(
                choices=targets, required=False, label=f"Target {i + 1}"
            )
            self.target_fields.append(name)

    def clean_name(self):
        return _check_name(self.cleaned_data["name"])

    def clean_service(self):
        ref = self.cleaned_data["service"].strip()
        if not ref:
            return None
        try:
            return service_get(ref)
        except MedicError:
            raise ValidationError(f"No service with heartbeat name '{ref}'.") from None

    def clean(self):
        data = super().clean()
        chosen: list[NotificationTarget] = []
        by_id = {str(t.pk): t for t in NotificationTarget.objects.all()}
        for name in self.target_fields:
            value = data.get(name)
            if not value:
                continue
            target = by_id.get(value)
            if target in chosen:
                self.add_error(name, f"'{target.name}' is already listed above.")
            elif target is not None:
                chosen.append(target)
        if not chosen and not self.errors:
            self.add_error(self.target_fields[0], "Choose at least one target for the rule.")
        data["targets"] = chosen
        if data.get("when") not in (None, RoutingWhen.ALWAYS) and not data.get("schedule"):
            self.add_error("schedule", "Choose the working-hours schedule that 'when' refers to.")
        return data

    def service_fields(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "position": data["position"],
            "enabled": data["enabled"],
            "service": data["service"],
            "team": data["team"] or "",
            "priorities": list(data["priorities"]),
            "when": data["when"],
            "schedule": data["schedule"],
            "mode": data["mode"],
            "stop": data["stop"],
            "targets": data["targets"],
        }


DAY_CHOICES = [(d, d.capitalize()) for d in DAY_NAMES]
_TIME = re.compile(r"^\d{2}:\d{2}$")


class WorkingHoursForm(forms.Form):
    """A schedule as fields: zone, up to N weekly windows, holidays. Turned into the JSON spec
    that alerting.schedules validates; its error paths come back to the matching field."""

    name = _name_field()
    timezone = forms.CharField(
        max_length=64,
        label="Time zone",
        widget=forms.TextInput(attrs={"list": "id_timezone_list", "autocomplete": "off"}),
        help_text="An IANA name such as Europe/Berlin or America/Chicago (not CET or CST).",
    )
    holidays_country = forms.CharField(
        required=False, max_length=2, label="Holiday country", help_text="e.g. US, DE, GB."
    )
    holidays_subdivision = forms.CharField(
        required=False, max_length=10, label="Subdivision", help_text="e.g. TX, BY (optional)."
    )
    holidays_dates = forms.CharField(
        required=False,
        label="Extra days off",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One YYYY-MM-DD per line.",
    )

    def __init__(self, *args, windows: int = 3, **kwargs):
        super().__init__(*args, **kwargs)
        self.window_rows = []
        for i in range(windows):
            self.fields[f"w{i}_days"] = forms.MultipleChoiceField(
                choices=DAY_CHOICES,
                required=False,
                widget=forms.CheckboxSelectMultiple,
                label=f"Window {i + 1} days",
            )
            self.fields[f"w{i}_start"] = forms.CharField(required=False, max_length=5, label="From")
            self.fields[f"w{i}_end"] = forms.CharField(required=False, max_length=5, label="To")
            self.window_rows.append((f"w{i}_days", f"w{i}_start", f"w{i}_end"))
        self._spec_rows: list[int] = []

    @classmethod
    def initial_from(cls, schedule: WorkingHours) -> dict:
        spec = schedule.spec or {}
        initial = {"name": schedule.name, "timezone": spec.get("timezone", "")}
        for i, window in enumerate(spec.get("windows", [])):
            initial[f"w{i}_days"] = [d.lower()[:3] for d in window.get("days", [])]
            initial[f"w{i}_start"] = window.get("start", "")
            initial[f"w{i}_end"] = window.get("end", "")
        holidays = spec.get("holidays") or {}
        initial["holidays_country"] = holidays.get("country", "")
        initial["holidays_subdivision"] = holidays.get("subdivision", "")
        initial["holidays_dates"] = "\n".join(holidays.get("dates", []))
        return initial

    def clean_name(self):
        return _check_name(self.cleaned_data["name"])

    def clean(self):
        data = super().clean()
        windows = []
        for i, (days, start, end) in enumerate(self.window_rows):
            values = (data.get(days), data.get(start, "").strip(), data.get(end, "").strip())
            if not any(values):
                continue
            if not values[0]:
                self.add_error(days, "Tick the days this window applies to.")
            for field, value in ((start, values[1]), (end, values[2])):
                if not value:
                    self.add_error(field, "Enter a time as HH:MM, e.g. 09:00.")
                elif not _TIME.match(value):
                    self.add_error(field, f"'{value}' is not HH:MM (two digits each: 09:00).")
            windows.append({"days": values[0] or [], "start": values[1], "end": values[2]})
            self._spec_rows.append(i)
        if not windows:
            self.add_error(self.window_rows[0][0], "Add at least one window of working hours.")
        spec: dict = {"timezone": data.get("timezone", "").strip(), "windows": windows}
        holidays: dict = {}
        if data.get("holidays_country"):
            holidays["country"] = data["holidays_country"].strip()
        if data.get("holidays_subdivision"):
            holidays["subdivision"] = data["holidays_subdivision"].strip()
        dates = [d.strip() for d in data.get("holidays_dates", "").splitlines() if d.strip()]
        if dates:
            holidays["dates"] = dates
        if holidays:
            spec["holidays"] = holidays
        data["spec"] = spec
        return data

    def spec_field(self, path: str) -> str | None:
        """The form field for an error path of alerting.schedules (``spec.windows[1].start``)."""
        path = path.removeprefix("spec.")
        match = re.match(r"windows\[(\d+)\](?:\.(\w+))?", path)
        if match:
            index = int(match.group(1))
            row = self._spec_rows[index] if index < len(self._spec_rows) else 0
            part = match.group(2) or "days"
            return f"w{row}_{part}" if part in ("days", "start", "end") else f"w{row}_days"
        if path.startswith("holidays.dates"):
            return "holidays_dates"
        if path.startswith("holidays.subdivision"):
            return "holidays_subdivision"
        if path.startswith("holidays"):
            return "holidays_country"
        if path == "windows":
            return self.window_rows[0][0]
        if path == "timezone":
            return "timezone"
        return None

    def apply_spec_error(self, exc: MedicError) -> None:
        for path, messages in exc.fields.items():
            field = self.spec_field(path) if path.startswith("spec") else path
            for message in messages:
                if path.startswith("holidays.dates[") or "spec.holidays.dates[" in path:
                    number = int(re.search(r"dates\[(\d+)\]", path).group(1)) + 1
                    message = f"Line {number}: {message}"
                if field in self.fields:
                    self.add_error(field, message)
                else:
                    self.add_error(None, message)
        if not exc.fields:
            self.add_error(None, exc.message)


# --- Maintenance windows ----------------------------------------------------------------------

WINDOW_KINDS = [("once", "One-time"), ("recurring", "Recurring")]
WINDOW_SCOPES = [
    ("all", "All services"),
    ("services", "Listed services"),
    ("team", "A team"),
    ("pattern", "A name pattern"),
]
_LOCAL_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")


def _local_datetime(raw: str) -> datetime:
    """A wall-clock time as typed (``2026-03-29T02:30`` from a datetime-local input, or with a
    space); an explicit offset (``...+02:00``) is kept."""
    raw = raw.strip()
    for pattern in _LOCAL_FORMATS:
        try:
            return datetime.strptime(raw, pattern)
        except ValueError:
            continue
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationError(
            f"'{raw}' is not a date and time: use YYYY-MM-DD HH:MM, e.g. 2026-12-05 22:00."
        ) from None
    return value


class MaintenanceWindowForm(forms.Form):
    """A maintenance window as fields. One-time times are typed as local wall-clock time in the
    window's zone (DST rules of heartbeats.cron: a skipped time means the jump, a repeated one
    its first occurrence). ``window_fields`` and ``services`` are what heartbeats.maintenance
    takes; ``api_payload`` is the same in the v2 API's words, for its serializer."""

    name = forms.CharField(max_length=100, help_text="Unique, e.g. db-upgrade or sunday-patching.")
    description = forms.CharField(
        label="Reason",
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why: shown with the window and in its start and end notices.",
    )
    kind = forms.ChoiceField(
        label="Kind",
        choices=WINDOW_KINDS,
        initial="once",
        required=False,
        widget=forms.RadioSelect,
        help_text="Only the fields of the chosen kind are used.",
    )
    timezone = forms.CharField(
        label="Time zone",
        max_length=64,
        initial="UTC",
        widget=forms.TextInput(attrs={"list": "id_timezone_list", "autocomplete": "off"}),
        help_text="An IANA name such as Europe/Berlin or America/New_York (not CET or EST). "
        "Times below are local times in this zone.",
    )
    starts_at = forms.CharField(
        label="Starts",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Local date and time, e.g. 2026-12-05 22:00.",
    )
    ends_at = forms.CharField(
        label="Ends",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="At most 30 days after the start.",
    )
    cron_expression = forms.CharField(
        label="Starts at (cron)",
        max_length=120,
        required=False,
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
        help_text="When each occurrence starts, five fields in local time: minute hour "
        "day-of-month month day-of-week. 0 2 * * 0 is Sundays at 02:00.",
    )
    duration_minutes = forms.IntegerField(
        label="Duration (minutes)",
        min_value=1,
        required=False,
        help_text="How long each occurrence lasts (at most 30 days).",
    )
    scope = forms.ChoiceField(
        label="Covers",
        choices=WINDOW_SCOPES,
        initial="all",
        required=False,
        widget=forms.RadioSelect,
    )
    services = forms.CharField(
        label="Services",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="Heartbeat names, one per line or separated by commas.",
    )
    team = forms.CharField(
        label="Team",
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"list": "id_team_list", "autocomplete": "off"}),
        help_text="Services whose team is this one.",
    )
    pattern = forms.CharField(
        label="Name pattern",
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"spellcheck": "false"}),
        help_text="A glob on heartbeat names, case-insensitive: db-* or *-backup.",
    )
    notify = forms.BooleanField(
        label="Announce start and end",
        required=False,
        initial=True,
        help_text="The covered teams' Slack and webhook routes hear when each occurrence "
        "starts and ends.",
    )
    preview_from = forms.DateField(
        label="Preview from",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Blank: now. A day to preview from (in the window's zone), e.g. the week of "
        "a DST change.",
    )

    def __init__(self, *args, previewing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.previewing = previewing
        if previewing:  # a preview needs the times, not yet a name
            self.fields["name"].required = False
            self.fields["name"].needed_by_choice = True
        self.zone = None
        self.services_list: list = []
        self.window_fields: dict = {}
        self.notes: list[str] = []  # how typed local times were read (DST)
        _needed_by_choice(self, ("starts_at", "ends_at", "cron_expression", "duration_minutes"))
        _needed_by_choice(self, ("services", "team", "pattern"))

    @classmethod
    def initial_from(cls, window) -> dict:
        zone = ZoneInfo(window.time_zone)
        initial = {
            "name": window.name,
            "description": window.description,
            "timezone": window.time_zone,
            "kind": "recurring" if window.recurring else "once",
            "cron_expression": window.cron_expression,
            "duration_minutes": window.duration_minutes,
            "scope": window.scope,
            "team": window.team,
            "pattern": window.pattern,
            "notify": window.notify,
            "services": "\n".join(s.heartbeat_name for s in window.services.all()),
        }
        for name in ("starts_at", "ends_at"):
            value = getattr(window, name)
            if value is not None:
                initial[name] = value.astimezone(zone).strftime("%Y-%m-%dT%H:%M")
        return initial

    def clean_name(self):
        return self.cleaned_data["name"].strip()

    def clean_services(self):
        names = [n.strip() for n in re.split(r"[,\n]", self.cleaned_data["services"])]
        found, unknown = [], []
        for name in dict.fromkeys(n for n in names if n):
            try:
                found.append(service_get(name))
            except MedicError:
                unknown.append(name)
        if unknown:
            listed = ", ".join(f"'{n}'" for n in unknown)
            raise ValidationError(
                f"No service with heartbeat name {listed}: check the spelling "
                "(names are case-insensitive)."
            )
        return found

    def _instant(self, field: str, what: str):
        raw = self.cleaned_data.get(field, "").strip()
        if not raw:
            self.add_error(field, f"Enter when the window {what}, as local date and time.")
            return None
        try:
            typed = _local_datetime(raw)
        except ValidationError as exc:
            self.add_error(field, exc)
            return None
        if typed.tzinfo is not None:
            return typed
        instant = cron.localize(typed, self.zone)
        local = instant.astimezone(self.zone)
        if local.replace(tzinfo=None) != typed:
            self.notes.append(
                f"{typed:%Y-%m-%d %H:%M} does not exist in {self.zone.key} (the clocks skip "
                f"it): the window {what} at the jump, {local:%H:%M} {local.tzname()}."
            )
        elif local.replace(fold=1).utcoffset() != local.utcoffset():
            self.notes.append(
                f"{typed:%Y-%m-%d %H:%M} happens twice in {self.zone.key} (the clocks fall "
                f"back): the window {what} at the first, {local:%H:%M} {local.tzname()}."
            )
        return instant

    def clean(self):
        data = super().clean()
        kind = data.get("kind") or "once"
        scope = data.get("scope") or "all"
        name = data.get("timezone", "")
        try:
            self.zone = validate_timezone(name)
        except ScheduleError as exc:
            if "timezone" not in self.errors:
                for message in exc.fields.get("timezone", [str(exc)]):
                    self.add_error("timezone", message)
        starts = ends = None
        if kind == "once" and self.zone is not None:
            starts = self._instant("starts_at", "starts")
            ends = self._instant("ends_at", "ends")
        services = data.get("services") or []
        self.services_list = services if scope == "services" else []
        self.window_fields = {
            "name": data.get("name", ""),
            "description": data.get("description", "").strip(),
            "time_zone": self.zone.key if self.zone else name,
            "starts_at": starts,
            "ends_at": ends,
            "cron_expression": data.get("cron_expression", "").strip() if kind != "once" else "",
            "duration_minutes": data.get("duration_minutes") if kind != "once" else None,
            "scope": scope,
            "team": data.get("team", "").strip() if scope == "team" else "",
            "pattern": data.get("pattern", "").strip() if scope == "pattern" else "",
            "notify": data.get("notify", False),
        }
        return data

    def api_payload(self) -> dict:
        """The window in the v2 API's words (``POST /v2/maintenance-windows``)."""
        fields = dict(self.window_fields)
        fields["timezone"] = fields.pop("time_zone")
        fields["services"] = [str(s.pk) for s in self.services_list]
        return fields

    def preview_after(self, now: datetime) -> datetime:
        day = self.cleaned_data.get("preview_from")
        if day is None or self.zone is None:
            return now
        return cron.localize(datetime.combine(day, time()), self.zone)


# --- Alerts -----------------------------------------------------------------------------------


class AlertFilterForm(forms.Form):
    service = forms.CharField(required=False, max_length=255, label="Service")
    team = forms.ChoiceField(choices=[], required=False)
    priority = forms.ChoiceField(choices=[("", "Any priority"), *Priority.choices], required=False)
    state = forms.ChoiceField(
        choices=[("", "Open and resolved"), *AlertState.choices], required=False
    )
    opened_from = forms.DateField(
        required=False, label="Opened from", widget=forms.DateInput(attrs={"type": "date"})
    )
    opened_to = forms.DateField(
        required=False, label="to", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, teams: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "Any team"), *((t, t) for t in teams)]

    def clean(self):
        data = super().clean()
        start, end = data.get("opened_from"), data.get("opened_to")
        if start and end and end < start:
            self.add_error("opened_to", "The end date is before the start date.")
        return data


# --- API keys ---------------------------------------------------------------------------------

EXPIRY_CHOICES = [
    ("", "Never"),
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("365", "In a year"),
    ("custom", "Custom"),
]
SCOPE_HELP = {
    "read": "read — list and read everything except API keys",
    "write": "write — send heartbeats and change configuration",
    "admin": "admin — everything, including API keys and target secrets",
}


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Who or what uses it, e.g. 'billing cron'.")
    scopes = forms.MultipleChoiceField(
        choices=[(s, SCOPE_HELP[s]) for s in ("read", "write", "admin")],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Tick at least one scope."},
    )
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, required=False, label="Expires")
    expires_days = forms.FloatField(
        required=False, min_value=0.01, label="Custom expiry (days)", help_text="e.g. 7 or 0.5"
    )
    heartbeat_limit = forms.IntegerField(
        required=False,
        min_value=0,
        label="Heartbeats per minute",
        help_text="Blank: the server default; 0: no limit.",
    )
    management_limit = forms.IntegerField(
        required=False,
        min_value=0,
        label="Management requests per minute",
        help_text="Blank: the server default; 0: no limit.",
    )

    def clean_scopes(self):
        scopes = self.cleaned_data["scopes"]
        unknown = set(scopes) - VALID_SCOPES
        if unknown:
            raise ValidationError(f"Unknown scopes: {', '.join(sorted(unknown))}.")
        return scopes

    def clean(self):
        data = super().clean()
        if data.get("expires") == "custom":
            if not data.get("expires_days"):
                self.add_error("expires_days", "Enter the number of days the key is valid.")
            data["expires_in_days"] = data.get("expires_days")
        elif data.get("expires"):
            data["expires_in_days"] = float(data["expires"])
        else:
            data["expires_in_days"] = None
        limits = {}
        if data.get("heartbeat_limit") is not None:
            limits["heartbeat"] = data["heartbeat_limit"]
        if data.get("management_limit") is not None:
            limits["management"] = data["management_limit"]
        data["rate_limits"] = limits
        return data


def duration_label(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    if seconds or not parts:
        parts.append(f"{seconds}s")
    return " ".join(parts)
