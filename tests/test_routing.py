"""Route resolution: priority, team, working hours, stop, default route, explain (SRE-10/11/12)."""

from __future__ import annotations

from datetime import datetime
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from alerting import config as cfg
from alerting.routing import route_for
from heartbeats.services import service_create

pytestmark = pytest.mark.django_db

CHICAGO = ZoneInfo("America/Chicago")
OFFICE = {
    "timezone": "America/Chicago",
    "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}],
    "holidays": {"country": "US"},
}


@pytest.fixture
def setup(settings):
    settings.SLACK_BOT_TOKEN = "xoxb"
    settings.SLACK_DEFAULT_CHANNEL = "C0DEFAULT"
    settings.PAGERDUTY_ROUTING_KEY = "R" * 32
    cfg.team_create(name="payments", slack_channel_id="C0PAYMENTS", actor="t")
    slack, _ = cfg.target_create(name="team-slack", kind="slack", config={}, secrets={}, actor="t")
    pd, _ = cfg.target_create(name="pd", kind="pagerduty", config={}, secrets={}, actor="t")
    hook, _ = cfg.target_create(
        name="hook", kind="webhook", config={"url": "http://127.0.0.1:9/x"}, secrets={}, actor="t"
    )
    office = cfg.working_hours_create(name="office", spec=OFFICE, actor="t")
    return {"slack": slack, "pd": pd, "hook": hook, "office": office}


def _channels(route):
    return [
        (g.rule.name if g.rule else None, [(t.channel, t.destination) for t in g.targets])
        for g in route.groups
    ]


def test_no_rules_means_default_route_to_team_channel_and_pagerduty(setup):
    service = service_create(heartbeat_name="ledger", alert_interval=5, team="payments")
    route = route_for(
        service=service, event="trigger", at=datetime(2026, 11, 24, 12, tzinfo=CHICAGO)
    )
    assert route.is_default
    assert _channels(route)[0][1][0] == ("slack", "C0PAYMENTS")
    assert _channels(route)[0][1][1][0] == "pagerduty"
    other = service_create(heartbeat_name="misc", alert_interval=5, team="nobody")
    assert _channels(route_for(service=other, event="trigger", at=route_at()))[0][1][0] == (
        "slack",
        "C0DEFAULT",
    )


def route_at():
    return datetime(2026, 11, 24, 12, tzinfo=CHICAGO)


def test_priority_conditions_page_only_high_priority(setup):
    cfg.rule_create(name="everything", position=10, targets=[setup["slack"]], actor="t")
    cfg.rule_create(
        name="page", position=20, priorities=["p1", "p2"], targets=[setup["pd"]], actor="t"
    )
    service = service_create(
        heartbeat_name="ledger", alert_interval=5, team="payments", priority="p3"
    )
    assert _channels(route_for(service=service, event="trigger", at=route_at())) == [
        ("everything", [("slack", "C0PAYMENTS")])
    ]
    high = route_for(service=service, event="trigger", at=route_at(), priority="p1")
    assert [name for name, _ in _channels(high)] == ["everything", "page"]
    # PagerDuty is never re-notified
    renotify = route_for(service=service, event="renotify", at=route_at(), priority="p1")
    assert _channels(renotify) == [("everything", [("slack", "C0PAYMENTS")]), ("page", [])]


def test_working_hours_choose_the_route_in_the_schedule_zone(setup):
    cfg.rule_create(
        name="day",
        position=10,
        team="payments",
        when="working_hours",
        schedule=setup["office"],
        targets=[setup["slack"]],
        stop=True,
        actor="t",
    )
    cfg.rule_create(
        name="night",
        position=20,
        team="payments",
        when="after_hours",
        schedule=setup["office"],
        targets=[setup["pd"], setup["slack"]],
        stop=True,
        actor="t",
    )
    service = service_create(heartbeat_name="ledger", alert_interval=5, team="payments")

    def rule_at(at):
        return [g.rule.name for g in route_for(service=service, event="trigger", at=at).groups]

    assert rule_at(datetime(2026, 11, 24, 14, tzinfo=CHICAGO)) == ["day"]  # Tuesday afternoon
    assert rule_at(datetime(2026, 11, 24, 23, tzinfo=CHICAGO)) == ["night"]
    assert rule_at(datetime(2026, 11, 28, 14, tzinfo=CHICAGO)) == ["night"]  # Saturday
    assert rule_at(datetime(2026, 11, 26, 14, tzinfo=CHICAGO)) == ["night"]  # Thanksgiving
    # the same instant seen from UTC: 2026-11-24 20:00Z is 14:00 in Chicago
    assert rule_at(datetime(2026, 11, 24, 20, tzinfo=ZoneInfo("UTC"))) == ["day"]
    # a team without rules gets the default route
    other = service_create(heartbeat_name="misc", alert_interval=5, team="infra")
    assert route_for(service=other, event="trigger", at=route_at()).is_default


def test_service_rule_and_stop(setup):
    service = service_create(heartbeat_name="ledger", alert_interval=5, team="payments")
    cfg.rule_create(
        name="ledger-only",
        position=5,
        service=service,
        mode="until_success",
        targets=[setup["hook"], setup["slack"]],
        stop=True,
        actor="t",
    )
    cfg.rule_create(name="everything", position=10, targets=[setup["pd"]], actor="t")
    route = route_for(service=service, event="trigger", at=route_at())
    assert [(g.rule.name, g.mode) for g in route.groups] == [("ledger-only", "until_success")]
    assert [t.channel for t in route.groups[0].targets] == ["webhook", "slack"]
    other = service_create(heartbeat_name="misc", alert_interval=5)
    assert [
        g.rule.name for g in route_for(service=other, event="trigger", at=route_at()).groups
    ] == ["everything"]


def test_disabled_target_is_skipped_and_explained(setup):
    setup["slack"].enabled = False
    setup["slack"].save()
    cfg.rule_create(name="r", targets=[setup["slack"]], actor="t")
    service = service_create(heartbeat_name="ledger", alert_interval=5, team="payments")
    route = route_for(service=service, event="trigger", at=route_at())
    assert route.groups[0].targets == []
    assert any("disabled" in line for line in route.reasons)


def test_explain_route_command_and_api(setup, reader):
    cfg.rule_create(
        name="day",
        position=10,
        when="working_hours",
        schedule=setup["office"],
        targets=[setup["slack"]],
        actor="t",
    )
    service_create(heartbeat_name="ledger", alert_interval=5, team="payments")
    out = StringIO()
    call_command("explain_route", "ledger", "--at", "2026-11-24T14:00:00-06:00", stdout=out)
    text = out.getvalue()
    assert "rule 'day': matches (working hours per 'office' (Tue 2026-11-24 14:00 CST))" in text
    assert "slack C0PAYMENTS (target team-slack)" in text
    night = reader.get("/v2/services/ledger/route", {"at": "2026-11-24T23:00:00-06:00"}).json()
    assert night["default_route"] is True
    assert any("after hours" in r for r in night["reasons"])
    assert reader.get("/v2/services/ledger/route", {"at": "tomorrow"}).status_code == 422
