"""Job runs on the service page (durations, p50/p95/p99, the chart) and the maintenance-window
list (active, upcoming, past), both read-only views of heartbeats' models."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from heartbeats.maintenance import window_create
from heartbeats.models import JobRun

pytestmark = pytest.mark.django_db


def _runs(service, durations_ms: list[int], failed: tuple[int, ...] = ()) -> None:
    now = timezone.now()
    for i, ms in enumerate(durations_ms):
        started = now - timedelta(hours=len(durations_ms) - i)
        JobRun.objects.create(
            service=service,
            run_id=f"run-{i}",
            status="failed" if i in failed else "completed",
            started_at=started,
            ended_at=started + timedelta(milliseconds=ms),
            duration_ms=ms,
            exit_code=1 if i in failed else 0,
            created_at=started,
        )


def test_job_runs_with_percentiles_and_chart(viewer, world):
    service = world["service"]
    _runs(service, [1000 * (i + 1) for i in range(20)], failed=(19,))
    html = viewer.get(f"/ui/services/{service.pk}").content.decode()
    section = html[html.index('id="h-runs"') : html.index('id="h-heartbeats"')]
    assert "<strong>19</strong>completed" in section
    assert "<strong>10.0 s</strong>p50" in section  # 1..19 s, completed runs only
    assert "<strong>18.1 s</strong>p95" in section
    assert "<strong>18.8 s</strong>p99" in section
    bars = re.findall(r'<rect class="(ok|failed)"', section)
    assert len(bars) == 20 and bars[-1] == "failed"
    assert '<line class="p95"' in section
    assert section.count("<tr>") == 21  # header + the 20 most recent runs
    assert "never completed" not in section


def test_job_runs_below_five_say_why_there_are_no_percentiles(viewer, world):
    _runs(world["service"], [500, 700])
    html = viewer.get(f"/ui/services/{world['service'].pk}").content.decode()
    assert "Percentiles need at least 5 completed runs; there are 2." in html
    assert "<strong>700 ms</strong>longest" in html


def test_no_runs(viewer, world):
    html = viewer.get(f"/ui/services/{world['service'].pk}").content.decode()
    assert "No job runs reported." in html


def test_maintenance_windows_active_upcoming_past(viewer, world):
    now = timezone.now()
    # daily, half an hour, twelve hours from now on Berlin's clock: upcoming whatever the time
    cron = f"0 {(now.astimezone(ZoneInfo('Europe/Berlin')) + timedelta(hours=12)).hour} * * *"
    window_create(
        actor="tests",
        name="db-upgrade",
        starts_at=now - timedelta(minutes=10),
        ends_at=now + timedelta(minutes=50),
        scope="team",
        team="payments",
    )
    window_create(
        actor="tests",
        name="nightly-backup",
        cron_expression=cron,
        duration_minutes=30,
        time_zone="Europe/Berlin",
        scope="pattern",
        pattern="billing-*",
    )
    window_create(
        actor="tests",
        name="old-move",
        starts_at=now - timedelta(days=3),
        ends_at=now - timedelta(days=2),
        scope="all",
    )
    html = viewer.get("/ui/maintenance").content.decode()
    active = html[html.index("Active now") : html.index("Upcoming")]
    upcoming = html[html.index("Upcoming") : html.index("Past")]
    past = html[html.index("Past") :]
    assert "db-upgrade" in active and "a team: payments" in active and "open</span> until" in active
    assert "nightly-backup" in upcoming and f"{cron}</span> (Europe/Berlin) for 30 min" in upcoming
    assert len(re.findall(r"<time [^>]*>in ", upcoming)) == 3  # the next three occurrences
    assert "old-move" in past
    # the service page lists the windows covering it
    detail = viewer.get(f"/ui/services/{world['service'].pk}").content.decode()
    section = detail[detail.index('id="h-maint"') :]
    assert "db-upgrade" in section and ">active</span>" in section
    assert "nightly-backup" in section and "old-move" not in section
