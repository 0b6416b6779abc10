"""Server time of the portal's remediation pages: the playbook list with 1,000 playbooks and the
executions list with 100,000 executions (and 2,000 services in ten teams, for the team filter).

Like run.py: a throwaway database next to DATABASE_URL's (``<name>_bench_remediation``,
migrated, removed at the end unless --keep), rows seeded straight into the tables, a viewer
signed in, pages requested through Django's full request stack with the test client. Prints
p50/p95/max and the query count per page.

    source env-with-DATABASE_URL
    .venv/bin/python bench/dashboard/remediation.py --runs 50

Exits 1 when a first page's p95 is over --budget-ms (300 by default).
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
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medic.settings")

import django

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402
from run import measure, percentile  # noqa: E402

from dashboard.roles import groups_ensure  # noqa: E402
from heartbeats.models import Service  # noqa: E402
from remediation.playbooks.models import Execution, Playbook, PlaybookVersion  # noqa: E402
from remediation.playbooks.services import validation_context  # noqa: E402
from remediation.playbooks.spec import parse_yaml, validate  # noqa: E402

PAGES = [
    ("playbooks, first page", "/ui/playbooks"),
    ("playbooks, mode=shadow", "/ui/playbooks?mode=shadow"),
    ("playbooks, team=team-3", "/ui/playbooks?team=team-3"),
    ("executions, first page", "/ui/executions"),
    ("executions, state=failed", "/ui/executions?state=failed"),
    ("executions, page 500", "/ui/executions?page=500"),
]
DOCUMENT = """\
name: {name}
mode: {mode}
trigger:
  service_pattern: "svc-{n:04d}-*"
  consecutive_failures: 2
steps:
  - name: restart
    type: webhook
    url: "https://internal-api/restart"
  - name: settle
    type: wait
    duration: 30s
"""
STATES = ["completed"] * 7 + ["failed", "cancelled", "timed_out"]


def seed(playbooks: int, executions: int) -> None:
    now = timezone.now()
    context = validation_context()
    made = Playbook.objects.bulk_create(
        Playbook(name=f"pb-{i:04d}", current_version=1) for i in range(playbooks)
    )
    versions = []
    for i, p in enumerate(made):
        source = DOCUMENT.format(name=p.name, mode="shadow" if i % 4 == 0 else "active", n=i)
        spec = validate(parse_yaml(source), context)
        versions.append(
            PlaybookVersion(
                playbook=p, version=1, source=source, spec=spec, mode=spec["mode"], author="bench"
            )
        )
    versions = PlaybookVersion.objects.bulk_create(versions)
    rows = []
    for i in range(executions):
        version = versions[i % playbooks]
        state = STATES[i % len(STATES)]
        rows.append(
            Execution(
                playbook_id=version.playbook_id,
                version=version,
                mode=version.mode,
                service_name=f"svc-{i % playbooks:04d}-{i % 7}",
                state=state,
                created_at=now - timedelta(seconds=executions - i),
                finished_at=now - timedelta(seconds=executions - i - 1),
                outcome=("recovered" if i % 3 else "not_recovered") if state == "completed" else "",
            )
        )
    Execution.objects.bulk_create(rows, batch_size=5000)
    # Two services per playbook pattern, over ten teams: the team filter matches each playbook's
    # pattern against the team's 200 services.
    Service.objects.bulk_create(
        Service(
            heartbeat_name=f"svc-{i // 2:04d}-{i % 2}",
            service_name=f"svc-{i // 2:04d}-{i % 2}",
            team=f"team-{i % 10}",
            alert_interval=60,
        )
        for i in range(2 * playbooks)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--playbooks", type=int, default=1000)
    parser.add_argument("--executions", type=int, default=100000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--budget-ms", type=float, default=300.0)
    parser.add_argument("--keep", action="store_true", help="keep the database (reused next run)")
    args = parser.parse_args()

    if connection.vendor != "postgresql":
        print("DATABASE_URL must point at PostgreSQL (the production database).", file=sys.stderr)
        return 2
    setup_test_environment()
    connection.settings_dict["TEST"]["NAME"] = (
        connection.settings_dict["NAME"] + "_bench_remediation"
    )
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=args.keep)
    firsts = []
    try:
        if Execution.objects.count() != args.executions:
            Execution.objects.all().delete()
            Service.objects.all().delete()
            PlaybookVersion.objects.all().delete()
            Playbook.objects.all().delete()
            started = time.perf_counter()
            seed(args.playbooks, args.executions)
            print(f"seeded in {time.perf_counter() - started:.1f} s")
        groups_ensure(Group)
        user, _ = User.objects.get_or_create(username="bench-viewer")
        user.groups.add(Group.objects.get(name="viewer"))
        client = Client()
        client.force_login(user)
        print(
            f"database {name}: {Playbook.objects.count()} playbooks, "
            f"{Execution.objects.count()} executions; "
            f"{args.runs} runs per page after {args.warmup} warm-ups\n"
        )
        print(f"{'page':32} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'queries':>8}")
        for label, path in PAGES:
            timings, queries = measure(client, path, args.runs, args.warmup)
            p95 = percentile(timings, 0.95)
            if "first page" in label:
                firsts.append(p95)
            print(
                f"{label:32} {statistics.median(timings):8.1f} {p95:8.1f} "
                f"{max(timings):8.1f} {queries:8d}"
            )
    finally:
        connection.creation.destroy_test_db(name, verbosity=0, keepdb=args.keep)
    worst = max(firsts)
    verdict = "within" if worst <= args.budget_ms else "OVER"
    print(f"\nworst first page p95 {worst:.1f} ms: {verdict} the {args.budget_ms:.0f} ms budget")
    return 0 if worst <= args.budget_ms else 1


if __name__ == "__main__":
    sys.exit(main())
