"""The sweep at scale: its time when nothing is due, and per due service.

Run by run.sh against a throwaway PostgreSQL (durable defaults) and Redis:

    python bench/sweep/sweep.py --services 100000 --due 0,10,100,1000 --repeat 7

Seeds ``--services`` interval services (one created through the service layer, the rest copied
from it in SQL: the same columns and constraints), all up with deadlines spread over the coming
hour, then, for each ``--due`` count, makes that many of them overdue and times ``sweep()`` (the
Celery task's body: every stage, in-process). Each timed pass is followed by an untimed reset
(the services put back up and overdue again). Prints the median and best wall time per count,
the time per due service above the empty sweep, and the plans of the sweep's queries over the
probed indexes, so the claim "cost grows with the due services only" can be read off: the
empty sweep must not grow with the fleet (``--services`` 10000 vs 100000), and its plans must
use the partial indexes, not scan the table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medic.settings")

import django

django.setup()

from django.db import connection, reset_queries, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from heartbeats.models import Service  # noqa: E402
from heartbeats.services import service_create  # noqa: E402
from heartbeats.sweep import _due_services, sweep  # noqa: E402 (the sweep's own query)

PREFIX = "sweep-"


def seed(count: int) -> None:
    have = Service.objects.filter(heartbeat_name__startswith=PREFIX).count()
    if have >= count:
        return
    if have == 0:
        service_create(heartbeat_name=f"{PREFIX}0", alert_interval=60, actor="bench")
        have = 1
    template = Service.objects.get(heartbeat_name=f"{PREFIX}0")
    columns = [
        f.column
        for f in Service._meta.concrete_fields
        if f.column not in ("id", "heartbeat_name", "service_name")
    ]
    cols = ", ".join(columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Service._meta.db_table} (heartbeat_name, service_name, {cols}) "
            f"SELECT %(p)s || n, %(p)s || n, {cols} FROM {Service._meta.db_table}, "
            "generate_series(%(first)s, %(last)s) AS n WHERE id = %(template)s",
            {"p": PREFIX, "first": have, "last": count - 1, "template": template.pk},
        )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Service._meta.db_table}")


def spread_up() -> None:
    """Every service up, its deadline somewhere in the coming hour (none due)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Service._meta.db_table} SET status = 'up', active = true, "
            "still_down_at = NULL, consecutive_failures = 0, last_heartbeat_at = now(), "
            "next_deadline_at = now() + interval '1 minute' + random() * interval '59 minutes' "
            "WHERE heartbeat_name LIKE %s",
            [PREFIX + "%"],
        )


def make_due(count: int) -> None:
    """``count`` services up and overdue (their deadline a second ago); the others up.

    Then VACUUM: resetting every row leaves a dead version of each in the indexes, which a
    running system does not have in bulk (autovacuum and index-entry killing keep up with
    heartbeat updates); without it the first sweep after a reset pays for the reset."""
    spread_up()
    with connection.cursor() as cursor:
        if count:
            cursor.execute(
                f"UPDATE {Service._meta.db_table} SET next_deadline_at = now() - interval "
                f"'1 second' WHERE id IN (SELECT id FROM {Service._meta.db_table} "
                "WHERE heartbeat_name LIKE %s ORDER BY random() LIMIT %s)",
                [PREFIX + "%", count],
            )
        cursor.execute(f"VACUUM ANALYZE {Service._meta.db_table}")


def plans() -> list[str]:
    now = timezone.now()
    out = []
    queries = {
        "due services (mark_down)": _due_services(now)
        .select_for_update(skip_locked=True)
        .order_by("next_deadline_at", "id")[:200],
        "still down": Service.objects.filter(active=True, status="down", still_down_at__lte=now)
        .select_for_update(skip_locked=True)
        .order_by("still_down_at", "id")[:200],
        "mutes to expire": Service.objects.filter(muted=True, mute_until__lte=now).values_list(
            "pk", flat=True
        )[:500],
    }
    for name, qs in queries.items():
        with transaction.atomic():  # the sweep claims its rows in a transaction
            plan = qs.explain(analyze=True, costs=False, timing=False)
        out.append(f"  {name}:")
        out.extend(f"    {line}" for line in plan.splitlines())
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=100_000)
    parser.add_argument("--due", default="0,10,100,1000")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    dues = [int(d) for d in args.due.split(",")]

    started = time.monotonic()
    seed(args.services)
    total = Service.objects.count()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_total_relation_size('{Service._meta.db_table}')")
        size = cursor.fetchone()[0]
    print(
        f"services: {total} ({time.monotonic() - started:.1f} s to seed); the table with its "
        f"indexes: {size / 2**20:.1f} MiB, {size / total:.0f} bytes per service"
    )
    make_due(0)
    sweep()  # warm: imports, connections, caches
    print("plans with nothing due:")
    print("\n".join(plans()))

    wall: dict[int, list[float]] = {}
    cpu: dict[int, list[float]] = {}
    statements: dict[int, int] = {}
    for due in dues:
        wall[due], cpu[due] = [], []
        for _ in range(args.repeat):
            make_due(due)
            reset_queries()  # the log keeps at most 9,000 statements
            with CaptureQueriesContext(connection) as queries:
                c0, t0 = time.process_time(), time.perf_counter()
                result = sweep()
                wall[due].append(time.perf_counter() - t0)
                cpu[due].append(time.process_time() - c0)
            statements[due] = len(queries)
            if len(result.marked_down) != due or result.errors:
                marked = len(result.marked_down)
                print(f"due {due}: the sweep marked {marked} down, {result.errors} errors")
                return 1
    print()
    print("wall and CPU (this process) in ms, medians; statements sent to PostgreSQL per sweep")
    print(
        f"{'due':>6} {'wall':>9} {'best':>9} {'cpu':>8} {'stmts':>6}   per due service:"
        f" {'wall':>6} {'cpu':>6} {'stmts':>6}"
    )
    med = {due: statistics.median(times) * 1e3 for due, times in wall.items()}
    cpu_med = {due: statistics.median(times) * 1e3 for due, times in cpu.items()}
    zero = dues[0] if dues[0] == 0 else None
    for due in dues:
        per = (
            ""
            if zero is None or not due
            else (
                f"{(med[due] - med[zero]) / due:>6.2f} "
                f"{(cpu_med[due] - cpu_med[zero]) / due:>6.2f} "
                f"{(statements[due] - statements[zero]) / due:>6.2f}"
            )
        )
        print(
            f"{due:>6} {med[due]:>9.2f} {min(wall[due]) * 1e3:>9.2f} {cpu_med[due]:>8.2f} "
            f"{statements[due]:>6}   {'':>17}{per}"
        )
    if zero is not None:
        print(
            f"SWEEP services={total} empty_ms={med[zero]:.2f} empty_cpu_ms={cpu_med[zero]:.2f} "
            f"empty_statements={statements[zero]}"
        )
    make_due(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
