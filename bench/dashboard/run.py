"""Server time of the dashboard's services page with 10,000 services.

Creates a throwaway database next to DATABASE_URL's (``<name>_bench_dashboard``, migrated,
removed at the end unless --keep), fills it with BENCH_SERVICES services (10,000 by default: a
tenth down, some muted, open alerts for the down ones, twenty teams), signs a viewer in and
requests pages through Django's full request stack (middleware, view, queries, template
rendering) with the test client. Prints p50/p95/max and the query count per page.

    source env-with-DATABASE_URL
    .venv/bin/python bench/dashboard/run.py            # 50 timed runs per page after 5 warm-ups
    .venv/bin/python bench/dashboard/run.py --runs 200 --services 20000

Exits 1 when the first page's p95 is over --budget-ms (300 by default). docs/dashboard.md has
the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medic.settings")

import django

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

from alerting.models import Alert, Team  # noqa: E402
from dashboard.roles import groups_ensure  # noqa: E402
from heartbeats.models import Service  # noqa: E402

PAGES = [
    ("first page (default: problems first)", "/ui/"),
    ("search", "/ui/?q=svc-04"),
    ("filter down + team", "/ui/?status=down&team=team-07"),
    ("sort by last heartbeat, page 100", "/ui/?sort=-last&page=100"),
    ("alerts, first page", "/ui/alerts"),
]


def seed(count: int) -> None:
    """Rows straight into the tables: a fixture for a read benchmark, not a write path."""
    now = timezone.now()
    Team.objects.bulk_create(Team(name=f"team-{t:02d}") for t in range(20))
    services = []
    for i in range(count):
        down = i % 10 == 0
        services.append(
            Service(
                heartbeat_name=f"svc-{i:05d}",
                service_name=f"Service {i}",
                alert_interval=[1, 5, 15, 60][i % 4],
                team=f"team-{i % 20:02d}",
                priority=f"p{i % 5 + 1}",
                status="down" if down else ("paused" if i % 97 == 0 else "up"),
                active=i % 97 != 0,
                muted=i % 50 == 0,
                mute_until=now + timedelta(hours=2) if i % 50 == 0 else None,
                mute_reason="bench" if i % 50 == 0 else "",
                last_heartbeat_at=now - timedelta(seconds=(i * 37) % 7200),
                last_status="UP",
                next_deadline_at=now + timedelta(seconds=(i * 53) % 3600 - 600),
            )
        )
    Service.objects.bulk_create(services, batch_size=2000)
    down = Service.objects.filter(status="down").only("id", "heartbeat_name")
    Alert.objects.bulk_create(
        (
            Alert(
                service=s,
                dedup_key=f"medic-{s.heartbeat_name}",
                reason="missed_heartbeat",
                priority="p3",
                summary=f"{s.heartbeat_name}: no heartbeat",
                opened_at=now - timedelta(minutes=5),
                notify_count=1,
            )
            for s in down
        ),
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def measure(client: Client, path: str, runs: int, warmup: int) -> tuple[list[float], int]:
    for _ in range(warmup):
        assert client.get(path).status_code == 200
    timings = []
    queries = 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(path)
            timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
        queries = len(captured.captured_queries)
    return timings, queries


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--services", type=int, default=int(os.environ.get("BENCH_SERVICES", 10000))
    )
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--budget-ms", type=float, default=300.0)
    parser.add_argument("--keep", action="store_true", help="keep the database (reused next run)")
    args = parser.parse_args()

    if connection.vendor != "postgresql":
        print("DATABASE_URL must point at PostgreSQL (the production database).", file=sys.stderr)
        return 2
    setup_test_environment()
    # Its own name, so a test run on the same server (test_<name>) is never disturbed.
    connection.settings_dict["TEST"]["NAME"] = connection.settings_dict["NAME"] + "_bench_dashboard"
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=args.keep)
    try:
        if Service.objects.count() != args.services:
            Service.objects.all().delete()
            Team.objects.all().delete()
            started = time.perf_counter()
            seed(args.services)
            print(f"seeded {args.services} services in {time.perf_counter() - started:.1f} s")
        groups_ensure(Group)
        user, _ = User.objects.get_or_create(username="bench-viewer")
        user.groups.add(Group.objects.get(name="viewer"))
        client = Client()
        client.force_login(user)
        print(
            f"database {name}: {Service.objects.count()} services, "
            f"{Alert.objects.filter(state='open').count()} open alerts; "
            f"{args.runs} runs per page after {args.warmup} warm-ups\n"
        )
        print(f"{'page':42} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'queries':>8}")
        first_p95 = None
        for label, path in PAGES:
            timings, queries = measure(client, path, args.runs, args.warmup)
            p95 = percentile(timings, 0.95)
            first_p95 = first_p95 if first_p95 is not None else p95
            print(
                f"{label:42} {statistics.median(timings):8.1f} {p95:8.1f} "
                f"{max(timings):8.1f} {queries:8d}"
            )
    finally:
        connection.creation.destroy_test_db(name, verbosity=0, keepdb=args.keep)
    verdict = "within" if first_p95 <= args.budget_ms else "OVER"
    print(f"\nfirst page p95 {first_p95:.1f} ms: {verdict} the {args.budget_ms:.0f} ms budget")
    return 0 if first_p95 <= args.budget_ms else 1


if __name__ == "__main__":
    sys.exit(main())
