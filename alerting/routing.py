"""Route resolution: which targets an alert event reaches, and why.

Rules are evaluated in ``position`` order. A rule matches when every condition it sets holds
(service, team, priority, working hours); each matching rule contributes its targets as one group
with the rule's mode, and a matching rule with ``stop`` ends the evaluation. When no rule matches,
the default route applies: the team's Slack channel (else ``SLACK_DEFAULT_CHANNEL``) and PagerDuty
with ``PAGERDUTY_ROUTING_KEY``, notify-all. docs/alert-routing.md has worked examples.

The same function serves real alerts and ``explain_route``, so what an operator is shown is what
an alert would do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings

from alerting.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    NotificationEvent,
    NotificationTarget,
    RoutingMode,
    RoutingRule,
    RoutingWhen,
    Team,
)
from alerting.schedules import ScheduleError, parse_schedule


@dataclass
class RoutedTarget:
    channel: str
    destination: str
    target: NotificationTarget | None = None


@dataclass
class RouteGroup:
    rule: RoutingRule | None
    mode: str
    targets: list[RoutedTarget] = field(default_factory=list)


@dataclass
class Route:
    groups: list[RouteGroup] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def is_default(self) -> bool:
        return bool(self.groups) and self.groups[0].rule is None


def slack_channel_for(service, configured: str = "") -> tuple[str, str]:
    """(channel, why): the target's own channel, else the team's, else the default."""
    if configured:
        return configured, "the target's channel"
    team = Team.objects.filter(name=service.team).only("slack_channel_id").first()
    if team and team.slack_channel_id:
        return team.slack_channel_id, f"team '{team.name}' channel"
    if settings.SLACK_DEFAULT_CHANNEL:
        return settings.SLACK_DEFAULT_CHANNEL, "the default channel (team has none)"
    return "", "no channel: the team has none and SLACK_DEFAULT_CHANNEL is empty"


def _resolve_target(
    target: NotificationTarget, service, event: str, reasons: list[str]
) -> RoutedTarget | None:
    label = f"target '{target.name}' ({target.kind})"
    if not target.enabled:
        reasons.append(f"  - {label}: skipped, disabled")
        return None
    if target.kind == Channel.SLACK:
        if not (settings.SLACK_BOT_TOKEN or target.secrets.get("bot_token")):
            reasons.append(f"  - {label}: skipped, no Slack bot token configured")
            return None
        channel, why = slack_channel_for(service, target.config.get("channel", ""))
        if not channel:
            reasons.append(f"  - {label}: skipped, {why}")
            return None
        reasons.append(f"  - {label}: Slack {channel} ({why})")
        return RoutedTarget(Channel.SLACK, channel, target)
    if target.kind == Channel.PAGERDUTY:
        if event == NotificationEvent.RENOTIFY:
            reasons.append(f"  - {label}: not re-notified, PagerDuty owns escalation")
            return None
        if not (target.secrets.get("routing_key") or settings.PAGERDUTY_ROUTING_KEY):
            reasons.append(f"  - {label}: skipped, no routing key")
            return None
        reasons.append(f"  - {label}: PagerDuty")
        return RoutedTarget(Channel.PAGERDUTY, f"PagerDuty via {target.name}", target)
    url = target.config.get("url", "")
    reasons.append(f"  - {label}: {target.config.get('method', 'POST')} {url}")
    return RoutedTarget(Channel.WEBHOOK, url, target)


def _rule_matches(rule: RoutingRule, service, priority: str, at: datetime) -> tuple[bool, str]:
    if rule.service_id is not None and rule.service_id != service.pk:
        return False, "for another service"
    if rule.team and rule.team != service.team:
        return False, f"for team '{rule.team}', service is in '{service.team}'"
    if rule.priorities and priority not in rule.priorities:
        return False, f"for priorities {', '.join(rule.priorities)}, alert is {priority}"
    if rule.when != RoutingWhen.ALWAYS:
        if rule.schedule is None:
            return False, "needs a working-hours schedule and has none"
        try:
            schedule = parse_schedule(rule.schedule.spec)
        except ScheduleError:
            return False, f"schedule '{rule.schedule.name}' is invalid"
        working = schedule.is_working_time(at)
        wanted = rule.when == RoutingWhen.WORKING_HOURS
        local = at.astimezone(schedule.timezone).strftime("%a %Y-%m-%d %H:%M %Z")
        state = "working hours" if working else "after hours"
        if working != wanted:
            return False, f"for {rule.get_when_display()}, it is {state} ({local})"
        return True, f"{state} per '{rule.schedule.name}' ({local})"
    return True, "conditions hold"


def _default_route(service, event: str, reasons: list[str]) -> RouteGroup:
    group = RouteGroup(rule=None, mode=RoutingMode.ALL)
    reasons.append("no rule matched: default route (team Slack channel + PagerDuty)")
    if settings.SLACK_BOT_TOKEN:
        channel, why = slack_channel_for(service)
        if channel:
            group.targets.append(RoutedTarget(Channel.SLACK, channel))
            reasons.append(f"  - Slack {channel} ({why})")
        else:
            reasons.append(f"  - Slack: skipped, {why}")
    else:
        reasons.append("  - Slack: skipped, SLACK_BOT_TOKEN is not set")
    if settings.PAGERDUTY_ROUTING_KEY:
        if event == NotificationEvent.RENOTIFY:
            reasons.append("  - PagerDuty: not re-notified, PagerDuty owns escalation")
        else:
            key = settings.PAGERDUTY_ROUTING_KEY
            group.targets.append(RoutedTarget(Channel.PAGERDUTY, f"routing key …{key[-4:]}"))
            reasons.append("  - PagerDuty (PAGERDUTY_ROUTING_KEY)")
    else:
        reasons.append("  - PagerDuty: skipped, PAGERDUTY_ROUTING_KEY is not set")
    return group


def route_for(*, service, event: str, at: datetime, priority: str | None = None) -> Route:
    priority = priority or service.priority
    route = Route()
    rules = (
        RoutingRule.objects.filter(enabled=True)
        .select_related("schedule")
        .prefetch_related("rule_targets__target")
        .order_by("position", "id")
    )
    for rule in rules:
        matched, why = _rule_matches(rule, service, priority, at)
        if not matched:
            route.reasons.append(f"rule '{rule.name}': no match, {why}")
            continue
        route.reasons.append(f"rule '{rule.name}': matches ({why}), {rule.get_mode_display()}")
        group = RouteGroup(rule=rule, mode=rule.mode)
        for link in rule.rule_targets.all():
            routed = _resolve_target(link.target, service, event, route.reasons)
            if routed is not None:
                group.targets.append(routed)
        route.groups.append(group)
        if rule.stop:
            route.reasons.append(f"rule '{rule.name}' stops evaluation")
            break
    if not route.groups:
        route.groups.append(_default_route(service, event, route.reasons))
    return route


def route_for_alert(*, alert, event: str, at: datetime) -> Route:
    """Where an alert event goes. A trigger is routed by the rules; its re-notifications and its
    resolve go to the destinations its trigger reached (delivered, or still being delivered),
    whatever the rules say now: a 09:30 resolve must reach the PagerDuty that the 23:00 rules
    paged, and nobody hears that an alert ended who never heard it began. PagerDuty is not
    re-notified (it owns escalation), but a remediation's escalation reaches it (a trigger for
    the open incident, with the story). Alerts without any trigger delivery (imported from v1)
    fall back to the rules."""
    follow_trigger = (
        NotificationEvent.RESOLVE,
        NotificationEvent.RENOTIFY,
        NotificationEvent.ESCALATE,
    )
    if event not in follow_trigger:
        return route_for(service=alert.service, event=event, at=at, priority=alert.priority)
    triggers = list(
        Delivery.objects.filter(alert=alert, event=NotificationEvent.TRIGGER)
        .select_related("notification_target", "rule")
        .order_by("id")
    )
    if not triggers:
        return route_for(service=alert.service, event=event, at=at, priority=alert.priority)
    route = Route(reasons=[f"{event} of alert {alert.pk}: the destinations its trigger reached"])
    groups: dict[int | None, RouteGroup] = {}
    seen: set[tuple] = set()
    reached = {DeliveryStatus.SUCCEEDED, DeliveryStatus.PENDING, DeliveryStatus.RETRYING}
    for trigger in triggers:
        label = f"  - {trigger.get_channel_display()} {trigger.target}"
        if trigger.status not in reached:
            route.reasons.append(f"{label}: skipped, the trigger was {trigger.status}")
            continue
        if event == NotificationEvent.RENOTIFY and trigger.channel == Channel.PAGERDUTY:
            route.reasons.append(f"{label}: not re-notified, PagerDuty owns escalation")
            continue
        key = (trigger.channel, trigger.target, trigger.notification_target_id)
        if key in seen:
            continue
        seen.add(key)
        group = groups.get(trigger.rule_id)
        if group is None:
            group = groups[trigger.rule_id] = RouteGroup(rule=trigger.rule, mode=RoutingMode.ALL)
            route.groups.append(group)
        group.targets.append(
            RoutedTarget(trigger.channel, trigger.target, trigger.notification_target)
        )
        route.reasons.append(label)
    return route
