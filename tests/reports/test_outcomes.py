"""GET /v2/reports/outcomes and the per-bucket series over the controlled-clock history of
test_success_metrics, extended by a flapping service and an agent's memory: every figure of every
bucket asserted exactly, in JSON and in CSV."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from medic import refusals
from remediation.agents import agent_create, agent_seen
from remediation.reports import series
from remediation.reports.selectors import Period
from tests.reports.test_success_metrics import ENABLED, HOUR, MINUTE, _incident, history  # noqa: F401

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)
E = ENABLED


@pytest.fixture
def outcome_history(history, settings):  # noqa: F811
    from heartbeats.models import Service

    cron = Service.objects.get(heartbeat_name="cron-x")
    # The next day cron-x flaps: three alerts twenty minutes apart, each gone in five minutes.
    for k in range(3):
        start = E + DAY + HOUR + k * 20 * MINUTE
        _incident(cron, start, start + 5 * MINUTE)
    settings.MEDIC_AGENT_HEARTBEAT_SECONDS = 60
    big = agent_create(name="edge-1", actor="t").agent
    small = agent_create(name="edge-2", actor="t").agent
    agent_create(name="edge-3", actor="t")  # never reports
    for at, rss in [(E - 12 * HOUR, 6_000_000), (E + HOUR, 4_000_000), (E + DAY, 7_000_000)]:
        agent_seen(agent_id=big.pk, memory_rss_bytes=rss, agent_version="0.2.0", now=at)
    agent_seen(agent_id=small.pk, memory_rss_bytes=3_100_000, now=E + DAY + HOUR)
    # Refusals, tallied per UTC day by every process (Redis, like the rate limits).
    client = refusals._redis()
    client.delete(*(refusals.KEY.format(day=(E + k * DAY).date()) for k in range(-14, 22)))
    refusals.refused("missing", now=E - 12 * HOUR)
    refusals.refused("invalid", now=E + HOUR)
    refusals.refused("invalid", now=E + 23 * HOUR)
    refusals.refused("login_locked", now=E + 2 * HOUR)
    refusals.rate_limited("ingest", now=E + DAY)
    refusals.refused("revoked", now=E + 10 * DAY)
    return Period(E - DAY, E + 2 * DAY)


def _stats(count, mean, p50, p90, p99):
    return {"count": count, "mean": mean, "p50": p50, "p90": p90, "p99": p99}


def _one(seconds):
    return _stats(1, seconds, seconds, seconds, seconds)


def test_daily_series_figures(outcome_history):
    report = series.outcome_series(outcome_history)
    assert report["bucket"] == "day"
    b0, b1, b2 = report["buckets"]
    assert [(b["start"], b["end"]) for b in (b0, b1, b2)] == [
        (E - DAY, E),
        (E, E + DAY),
        (E + DAY, E + 2 * DAY),
    ]
    # Before playbooks: worker-a on its own in 40 minutes, worker-b by a person in an hour.
    assert b0 == {
        "start": E - DAY,
        "end": E,
        "alerts": 2,
        "mttr": {
            "all": _stats(2, 3000.0, 3000.0, 3480.0, 3588.0),
            "own": _one(2400.0),
            "playbook": None,
            "approved": None,
            "human": _one(3600.0),
        },
        "alert_share": 1.0,
        "false_positive_rate": 0.0,
        "agents_over_memory_threshold": 1,
        "refused_by_reason": {"missing": 1},
    }
    # The day the playbooks came: the same figures as the whole-day report.
    assert b1["alerts"] == 7
    assert b1["mttr"]["all"] == _stats(6, 1250.0, 900.0, 2700.0, 3510.0)
    assert b1["mttr"]["own"] == _stats(3, 700.0, 180.0, 1476.0, 1767.6)
    assert b1["mttr"]["playbook"] == _one(600.0)
    assert b1["mttr"]["approved"] == _one(1200.0)
    assert b1["mttr"]["human"] == _one(3600.0)
    assert (b1["alert_share"], b1["false_positive_rate"]) == (0.4286, 0.2857)
    assert b1["agents_over_memory_threshold"] == 0
    assert b1["refused_by_reason"] == {"invalid": 2, "login_locked": 1}
    # The flapping day.
    assert b2["alerts"] == 3
    assert b2["mttr"]["all"] == b2["mttr"]["own"] == _stats(3, 300.0, 300.0, 300.0, 300.0)
    assert (b2["alert_share"], b2["false_positive_rate"]) == (0.0, 1.0)
    assert b2["agents_over_memory_threshold"] == 1
    assert b2["refused_by_reason"] == {"rate_limited": 1}


def test_weekly_buckets_start_on_monday_and_are_clipped(outcome_history):
    period = Period(E - 12 * DAY, E + 20 * DAY)  # 32 days: weeks
    report = series.outcome_series(period)
    assert report["bucket"] == "week"
    starts = [(b["start"], b["end"]) for b in report["buckets"]]
    assert starts == [
        (E - 12 * DAY, E - 7 * DAY),
        (E - 7 * DAY, E),
        (E, E + 7 * DAY),
        (E + 7 * DAY, E + 14 * DAY),
        (E + 14 * DAY, E + 20 * DAY),
    ]
    assert [b["alerts"] for b in report["buckets"]] == [0, 2, 10, 0, 0]
    assert [b["agents_over_memory_threshold"] for b in report["buckets"]] == [0, 1, 1, 0, 0]
    assert report["buckets"][2]["mttr"]["all"]["count"] == 9
    assert report["buckets"][0]["mttr"]["all"] is None
    assert report["buckets"][0]["alert_share"] is None
    assert [b["refused_by_reason"] for b in report["buckets"]] == [
        {},
        {"missing": 1},
        {"invalid": 2, "login_locked": 1, "rate_limited": 1},
        {"revoked": 1},
        {},
    ]


def test_flapping_and_agents_over_the_threshold(outcome_history):
    from remediation.reports import selectors

    accuracy = selectors.accuracy(outcome_history)
    assert accuracy["alerts"] == 12
    assert (accuracy["repeat_alerts"], accuracy["repeat_share"]) == (2, 0.1667)
    assert accuracy["flapping_services"] == ["cron-x"]
    assert accuracy["resolved_within_interval_unaided"] == 5
    agents = selectors.agents()
    assert agents["threshold_bytes"] == 5_000_000
    assert (agents["agents"], agents["reporting"], agents["max_rss_bytes"]) == (3, 2, 7_000_000)
    assert [
        (a["name"], a["memory_rss_bytes"], a["agent_version"]) for a in agents["over_threshold"]
    ] == [("edge-1", 7_000_000, "0.2.0")]
    assert agents["target"] == {"met": False}


def test_outcomes_api_json_csv_and_bad_input(outcome_history, reader, outsider):
    query = {"from": (E - DAY).isoformat(), "to": (E + 2 * DAY).isoformat()}
    assert outsider.get("/v2/reports/outcomes", query).status_code == 401
    body = reader.get("/v2/reports/outcomes", query).json()
    assert body["since"] == "2027-02-28T00:00:00Z" and body["until"] == "2027-03-03T00:00:00Z"
    assert body["accuracy"]["flapping_services"] == ["cron-x"]
    assert body["agents"]["over_threshold"][0]["name"] == "edge-1"
    assert body["security"]["period"] == {
        "scope": "every process, whole UTC days of the period",
        "refused_by_reason": {"invalid": 2, "login_locked": 1, "missing": 1, "rate_limited": 1},
        "refused_total": 5,
    }
    assert [b["alerts"] for b in body["series"]["buckets"]] == [2, 7, 3]
    # The first name answers the same figures (without the series), with since/until.
    old = reader.get(
        "/v2/reports/success-metrics", {"since": query["from"], "until": query["to"]}
    ).json()
    assert old["mttr"] == body["mttr"] and old["agents"] == body["agents"]
    assert "series" not in old

    response = reader.get("/v2/reports/outcomes", {**query, "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "medic-outcomes-20270228-20270303.csv" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["start", "end", "figure", "value"]
    cells = {(r[0], r[2]): r[3] for r in rows[1:]}
    whole = "2027-02-28T00:00:00+00:00"
    assert cells[(whole, "mttr.overall.p90")] == str(body["mttr"]["overall"]["p90"])
    assert cells[(whole, "accuracy.repeat_alerts")] == "2"
    assert cells[(whole, "accuracy.flapping_services.0")] == "cron-x"
    assert cells[(whole, "coverage.target.met")] == "false"
    assert cells[(whole, "agents.over_threshold.0.memory_rss_bytes")] == "7000000"
    assert cells[("2027-03-01T00:00:00+00:00", "mttr.own.p99")] == "1767.6"
    assert cells[("2027-03-02T00:00:00+00:00", "false_positive_rate")] == "1.0"
    assert cells[("2027-02-28T00:00:00+00:00", "mttr.playbook")] == ""
    assert cells[("2027-02-28T00:00:00+00:00", "agents_over_memory_threshold")] == "1"
    assert cells[("2027-03-01T00:00:00+00:00", "refused_by_reason.invalid")] == "2"
    assert cells[(whole, "security.period.refused_total")] == "5"
    by_accept = reader.get("/v2/reports/outcomes", query, HTTP_ACCEPT="text/csv")
    assert by_accept.content == response.content

    bad = reader.get("/v2/reports/outcomes", {"from": "soon", "since": "x", "format": "xml"})
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"from", "since", "format"}
    backwards = reader.get("/v2/reports/outcomes", {"from": query["to"], "to": query["from"]})
    assert backwards.json()["error"]["fields"] == {"to": ["Must be later than from."]}
    too_long = reader.get(
        "/v2/reports/outcomes", {"from": "2026-01-01T00:00:00Z", "to": "2027-03-01T00:00:00Z"}
    )
    assert too_long.json()["error"]["fields"] == {"from": ["The period is at most 366 days."]}


def test_gauges_for_every_figure_with_bounded_labels(reader, settings):
    from django.utils import timezone

    from tests.factories import ServiceFactory

    now = timezone.now()
    flappy = ServiceFactory(heartbeat_name="queue-1", alert_interval=5)
    for k in range(3):
        start = now - 5 * HOUR + k * 10 * MINUTE
        _incident(flappy, start, start + 2 * MINUTE)
    _incident(flappy, now - 2 * HOUR, now - 2 * HOUR + 20 * MINUTE, how="manual")
    big = agent_create(name="edge-1", actor="t").agent
    agent_seen(agent_id=big.pk, memory_rss_bytes=5_000_001, now=now)
    small = agent_create(name="edge-2", actor="t").agent
    agent_seen(agent_id=small.pk, memory_rss_bytes=5_000_000, now=now)
    text = reader.get("/metrics").content.decode()
    for line in [
        'medic_success_mttr_seconds{ending="own",stat="p99"} 120.0',
        'medic_success_mttr_seconds{ending="human",stat="mean"} 1200.0',
        "medic_success_alerts 4.0",
        "medic_success_false_positive_ratio 0.75",
        "medic_success_repeat_alert_ratio 0.5",
        "medic_success_flapping_services 1.0",
        "medic_success_maintenance_alert_ratio 0.0",
        "medic_success_service_coverage_ratio 0.0",
        "medic_agents_over_memory_threshold 1.0",  # at the threshold is not over it
        "medic_agents_reporting_memory 2.0",
        "medic_agent_memory_max_bytes 5.000001e+06",
        "medic_agent_memory_threshold_bytes 5e+06",
    ]:
        assert line in text, line
    names = {
        line.split("{")[0].split(" ")[0]
        for line in text.splitlines()
        if line.startswith(("medic_success_", "medic_agent_memory", "medic_agents_"))
    }
    # No label names a service, team or agent.
    for line in text.splitlines():
        if line.startswith(tuple(names)) and "{" in line:
            assert "service" not in line and "team" not in line and "edge-" not in line


def test_refusals_without_redis_or_with_it_down(settings, outsider):
    before = refusals.AUTH_FAILURES.labels(reason="missing")._value.get()
    settings.MEDIC_RATE_LIMIT_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    refusals.refused("missing", now=E)
    # The refusal itself stands and is counted; only the tally is lost.
    assert outsider.get("/v2/services").status_code == 401
    assert refusals.AUTH_FAILURES.labels(reason="missing")._value.get() == before + 2
    assert refusals.refused_by_day(E.date(), E.date()) is None
    settings.MEDIC_RATE_LIMIT_REDIS_URL = ""  # the embedded mode
    report = series.outcomes(Period(E, E + 2 * DAY))
    assert report["security"]["period"] is None
    assert [b["refused_by_reason"] for b in report["series"]["buckets"]] == [None, None]


def test_the_text_report_has_flapping_refusals_and_agents(outcome_history):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    args = [
        "--since",
        outcome_history.since.isoformat(),
        "--until",
        outcome_history.until.isoformat(),
    ]
    call_command("success_report", *args, stdout=out)
    text = out.getvalue()
    assert "repeats (within an hour of the service's previous alert): 2; flapping: cron-x" in text
    assert "Security (every process, whole UTC days of the period)" in text
    assert "  requests refused: 5\n    invalid: 2\n" in text
    assert (
        "  2 of 3 agents report; over 5 MB: 1 (target: NOT met)\n    edge-1 0.2.0: 7.0 MB" in text
    )


def test_csv_cells_a_spreadsheet_would_run_are_quoted_as_text():
    from datetime import UTC, datetime

    from remediation.reports import csvout

    at = datetime(2027, 3, 1, tzinfo=UTC)
    report = {
        "since": at,
        "until": at + DAY,
        "coverage": {"top_uncovered": [{"service": "=HYPERLINK(1)", "alerts": 2}]},
        "accuracy": {"false_positive_rate": -0.5, "met": None, "ok": True},
        "series": {"buckets": []},
    }
    rows = list(csv.reader(io.StringIO(csvout.render(report))))
    assert rows[1:] == [
        [
            at.isoformat(),
            (at + DAY).isoformat(),
            "coverage.top_uncovered.0.service",
            "'=HYPERLINK(1)",
        ],
        [at.isoformat(), (at + DAY).isoformat(), "coverage.top_uncovered.0.alerts", "2"],
        [at.isoformat(), (at + DAY).isoformat(), "accuracy.false_positive_rate", "-0.5"],
        [at.isoformat(), (at + DAY).isoformat(), "accuracy.met", ""],
        [at.isoformat(), (at + DAY).isoformat(), "accuracy.ok", "true"],
    ]
