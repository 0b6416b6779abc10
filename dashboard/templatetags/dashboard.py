"""Presentation helpers: relative times, status badges, query strings, form fields, charts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from django import template
from django.conf import settings
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from heartbeats.deadlines import next_beat_expected
from heartbeats.models import Priority, ServiceStatus

register = template.Library()

UTC_FORMAT = "%Y-%m-%d %H:%M:%S UTC"


def _span(delta: timedelta) -> str:
    seconds = abs(int(delta.total_seconds()))
    if seconds < 45:
        return f"{seconds}s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours = seconds / 3600
    if hours < 24:
        return f"{hours:.1f} h".replace(".0 h", " h")
    days = seconds / 86400
    return f"{days:.1f} d".replace(".0 d", " d")


def relative(value: datetime, now: datetime | None = None) -> str:
    now = now or timezone.now()
    delta = value - now
    if abs(delta.total_seconds()) < 5:
        return "just now"
    return f"in {_span(delta)}" if delta.total_seconds() > 0 else f"{_span(delta)} ago"


@register.simple_tag
def reltime(value: datetime | None, now: datetime | None = None, empty: str = "—"):
    """``3 min ago`` with the exact UTC time in the tooltip (and for screen readers)."""
    if value is None:
        return format_html('<span class="muted-text">{}</span>', empty)
    exact = value.astimezone(UTC).strftime(UTC_FORMAT)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', value.isoformat(), exact, relative(value, now)
    )


@register.filter
def utc(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime(UTC_FORMAT) if value else "—"


@register.filter
def minutes(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 1440 and value % 1440 == 0:
        return f"{int(value // 1440)} d"
    if value >= 60 and value % 60 == 0:
        return f"{int(value // 60)} h"
    if value == int(value):
        return f"{int(value)} min"
    if value < 1:
        return f"{round(value * 60)} s"
    return f"{value:g} min"


@register.filter
def seconds(value: int | None) -> str:
    value = int(value or 0)
    if value < 60:
        return f"{value} s"
    if value < 3600:
        mins, secs = divmod(value, 60)
        return f"{mins} min {secs} s" if secs else f"{mins} min"
    return _span(timedelta(seconds=value))


@register.filter
def ms(value: float | None) -> str:
    """Milliseconds as a readable duration: 850 ms, 12.4 s, 3 min 20 s, 1 h 5 min."""
    if value is None:
        return "—"
    value = float(value)
    if value < 1000:
        return f"{value:.0f} ms"
    total = value / 1000
    if total < 60:
        return f"{total:.1f} s"
    mins, secs = divmod(int(total), 60)
    if mins < 60:
        return f"{mins} min {secs} s" if secs else f"{mins} min"
    hours, mins = divmod(mins, 60)
    return f"{hours} h {mins} min" if mins else f"{hours} h"


def is_muted(service, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return bool(service.muted and (service.mute_until is None or service.mute_until > now))


@register.filter
def muted(service) -> bool:
    return is_muted(service)


@register.simple_tag
def mute_text(service, now: datetime | None = None) -> str:
    """``muted by user:alice until 2026-… UTC (in 55 min): deploying``."""
    if not is_muted(service, now):
        return ""
    text = "muted"
    if service.muted_by:
        text += f" by {service.muted_by}"
    if service.mute_until:
        text += f" until {utc(service.mute_until)} ({relative(service.mute_until, now)})"
    if service.mute_reason:
        text += f": {service.mute_reason}"
    return text


STATUS_LABELS = {
    ServiceStatus.UP: "up",
    ServiceStatus.DOWN: "down",
    ServiceStatus.NEW: "new",
    ServiceStatus.PAUSED: "paused",
}


@register.simple_tag
def status_badge(service, now: datetime | None = None, show_mute: bool = True):
    """The status badge, and the muted badge (who, until when, why in its tooltip)."""
    html = format_html(
        '<span class="badge st-{}" title="{}">{}</span>',
        service.status,
        service.get_status_display(),
        STATUS_LABELS.get(service.status, service.status),
    )
    if show_mute and is_muted(service, now):
        html += format_html(
            ' <span class="badge muted" title="{}">muted</span>', mute_text(service, now)
        )
    return html


@register.simple_tag
def priority_badge(priority: str):
    label = Priority(priority).label if priority in Priority.values else priority
    return format_html(
        '<span class="prio prio-{}" title="{}">{}</span>', priority, label, priority.upper()
    )


@register.simple_tag
def schedule_summary(service):
    """One line: what "on time" means for this service."""
    kind = getattr(service, "schedule_kind", "interval")
    grace = (
        f", grace {seconds(service.grace_period_seconds)}" if service.grace_period_seconds else ""
    )
    if kind == "cron" and getattr(service, "cron_expression", ""):
        zone = getattr(service, "schedule_timezone", "UTC")
        return format_html("cron <code>{}</code> {}{}", service.cron_expression, zone, grace)
    beats = "1 beat" if service.threshold == 1 else f"{service.threshold} beats"
    if kind == "at_least":
        return f"at least {beats} / {minutes(service.alert_interval)}{grace}"
    return f"{beats} / {minutes(service.alert_interval)}{grace}"


def zone_offset(value: datetime) -> str:
    """``UTC+02:00``, ``UTC-05:00``, ``UTC+05:45``: the offset of an aware time."""
    return offset_text(value.utcoffset())


def offset_text(offset: timedelta | None) -> str:
    offset = offset or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    total = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{total // 60:02d}:{total % 60:02d}"


def zone_time(value: datetime, zone_name: str, with_day: bool = True) -> str:
    """``Sun 2026-03-29 03:00 CEST (UTC+02:00)``: local time in ``zone_name``, its abbreviation
    and offset (just ``... UTC`` for UTC)."""
    local = value.astimezone(ZoneInfo(zone_name))
    text = local.strftime("%a %Y-%m-%d %H:%M" if with_day else "%Y-%m-%d %H:%M")
    if zone_name == "UTC":
        return f"{text} UTC"
    return f"{text} {local.tzname()} ({zone_offset(local)})"


@register.filter
def zoned(value: datetime | None, zone_name: str) -> str:
    """``{{ when|zoned:window.time_zone }}``: local time, abbreviation and offset."""
    if value is None:
        return "—"
    try:
        return zone_time(value, zone_name, with_day=False)
    except (ValueError, KeyError):
        return utc(value)


@register.simple_tag
def next_expected(service, now: datetime | None = None):
    """When the next heartbeat is due (the deadline without grace), in the service's zone for
    cron schedules; relative to now."""
    due = next_beat_expected(service) if service.active else None
    if due is None:
        return mark_safe('<span class="muted-text">—</span>')
    if getattr(service, "schedule_kind", "interval") == "cron":
        try:
            text = zone_time(due, service.schedule_timezone)
        except (ValueError, KeyError):
            text = utc(due)
        return format_html("{} · {}", text, reltime(due, now))
    return reltime(due, now)


@register.simple_tag
def deadline(service, now: datetime | None = None):
    """The next deadline, or what stands in for it (overdue, paused)."""
    if service.status == ServiceStatus.PAUSED or not service.active:
        return mark_safe('<span class="muted-text">paused</span>')
    if service.next_deadline_at is None:
        return mark_safe('<span class="muted-text">—</span>')
    if service.status == ServiceStatus.DOWN:
        late = _span((now or timezone.now()) - service.next_deadline_at)
        return format_html(
            '<span class="overdue" title="deadline was {}">overdue {}</span>',
            utc(service.next_deadline_at),
            late,
        )
    return reltime(service.next_deadline_at, now)


@register.simple_tag
def qs(request, **changes) -> str:
    """The current query string with ``changes`` applied (None removes a key). A change of any
    filter sends the user back to page 1."""
    params = request.GET.copy()
    if "page" not in changes:
        params.pop("page", None)
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = value
    encoded = urlencode([(k, v) for k in params for v in params.getlist(k)])
    return f"?{encoded}" if encoded else "?"


@register.simple_tag
def sort_link(request, key: str, label: str, current: str):
    """A column header that sorts by ``key``; clicking the current column reverses it."""
    direction = None
    if current == key:
        direction, target = "ascending", f"-{key}"
    elif current == f"-{key}":
        direction, target = "descending", key
    else:
        target = key
    arrow = {"ascending": " ▲", "descending": " ▼"}.get(direction, "")
    return format_html(
        '<a href="{}" class="sort{}"{}>{}{}</a>',
        qs(request, sort=target),
        " current" if direction else "",
        format_html(' aria-sort="{}"', direction) if direction else "",
        label,
        arrow,
    )


@register.inclusion_tag("dashboard/_field.html")
def field(bound_field, datalist=None, css: str = ""):
    return {"field": bound_field, "datalist": datalist or [], "css": css}


@register.inclusion_tag("dashboard/_pagination.html", takes_context=True)
def pagination(context, page, noun: str = "items"):
    return {"page": page, "request": context["request"], "noun": noun}


@register.inclusion_tag("dashboard/_duration_chart.html")
def duration_chart(points: list[dict], top_ms: int, p95_ms: float | None = None):
    """Server-rendered SVG bars of run durations (oldest left), with the p95 as a line."""
    width, height, pad = 600, 120, 4
    if not points or not top_ms:
        return {"bars": [], "width": width, "height": height}
    scale = max(top_ms, p95_ms or 0) * 1.1
    step = (width - 2 * pad) / len(points)
    bars = []
    for i, point in enumerate(points):
        h = max(1.0, (point["ms"] / scale) * (height - 2 * pad))
        bars.append(
            {
                "x": round(pad + i * step + step * 0.1, 1),
                "y": round(height - pad - h, 1),
                "w": round(step * 0.8, 1),
                "h": round(h, 1),
                "failed": point["failed"],
                "label": f"{point['run'].run_id}: {ms(point['ms'])}",
            }
        )
    p95_y = round(height - pad - (p95_ms / scale) * (height - 2 * pad), 1) if p95_ms else None
    return {
        "bars": bars,
        "width": width,
        "height": height,
        "p95_y": p95_y,
        "p95": ms(p95_ms),
        "top": ms(top_ms),
    }


@register.filter
def lookup(mapping, key):
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.filter
def bound(form, name: str):
    """``form|bound:"field_name"``: a bound field chosen by a variable name."""
    return form[name]


@register.filter
def is_web_url(value: str) -> bool:
    """Only http(s) links become links (a runbook could hold ``javascript:...``)."""
    return urlsplit(value or "").scheme in ("http", "https")


@register.filter
def megabytes(value: int | None) -> str:
    """Bytes in decimal megabytes (10^6, the unit of the agent memory threshold)."""
    return "—" if value is None else f"{value / 1_000_000:.1f} MB"


@register.simple_tag
def agent_memory(agent):
    """The resident memory an agent last reported, flagged when over the threshold
    (MEDIC_AGENT_MEMORY_THRESHOLD_BYTES); a dash when it never reported any."""
    rss = agent.memory_rss_bytes
    threshold = settings.MEDIC_AGENT_MEMORY_THRESHOLD_BYTES
    if rss is None or rss <= threshold:
        return megabytes(rss)
    return format_html(
        '{} <span class="badge bad" data-testid="over-memory">over {}</span>',
        megabytes(rss),
        f"{threshold / 1_000_000:g} MB",
    )


@register.filter
def pretty_json(value) -> str:
    """A JSON-like value as indented JSON (escaped by the template like any text)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


JOB_STATE_BADGE = {"succeeded": "good", "failed": "bad", "timed_out": "bad", "skipped": "bad"}


@register.simple_tag
def job_state(state: str):
    """A job's state as a badge: green when it succeeded, red when it did not."""
    return format_html(
        '<span class="badge {}">{}</span>', JOB_STATE_BADGE.get(state, "neutral"), state
    )


@register.filter
def short_id(value) -> str:
    """The first 8 characters of a UUID: enough to tell jobs apart on a page."""
    return str(value)[:8]


AGENT_STATUS_BADGE = {"online": "good", "offline": "bad"}


@register.simple_tag
def agent_status(status: str):
    """An agent's status (remediation.selectors.agent_status) as a badge."""
    return format_html(
        '<span class="badge {}" data-testid="agent-status">{}</span>',
        AGENT_STATUS_BADGE.get(status, "neutral"),
        status,
    )
