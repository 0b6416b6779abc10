"""Server time of the portal's remediation pages: the playbook list with 1,000 playbooks, the
executions list with 100,000 executions (and 2,000 services in ten teams, for the team filter),
and the scripts, agents, jobs (100,000) and audit log (100,000 rows) pages.

Like run.py: a throwaway database next to DATABASE_URL's (``<name>_bench_remediation``,
migrated, removed at the end unless --keep), rows seeded straight into the tables, a viewer
signed in, pages requested through Django's full request stack with the test client. Prints
p50/p95/max and the query count per page.

    source env-with-DATABASE_URL
    .venv/bin/python bench/dashboard/remediation.py --runs 50

Exits 1 when a first page's p95 is over --budget-ms (300 by default). With --keep, the tables
seeded once are reused (audit rows are append-only: they are seeded only into an empty table).
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
from medic.models import ApiKey  # noqa: E402
from remediation.audit.models import AuditEntry  # noqa: E402
from remediation.models import Agent, Job, Script, ScriptVersion  # noqa: E402
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
    ("scripts, first page", "/ui/scripts"),
    ("agents, first page", "/ui/agents"),
    ("jobs, first page", "/ui/jobs"),
    ("jobs, state=failed", "/ui/jobs?state=failed"),
    ("jobs, script + agent", "/ui/jobs?script=script-07&agent=agent-007"),
    ("jobs, page 500", "/ui/jobs?page=500"),
    ("audit, first page", "/ui/audit"),
    ("audit, event=job.*", "/ui/audit?event=job.%2A"),
    ("audit, playbook", "/ui/audit?playbook=pb-0007"),
]
JOB_STATES = ["succeeded"] * 8 + ["failed", "timed_out"]
AUDIT_EVENTS = ["job.finished", "script.run", "execution.started", "step.finished"]
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


def seed_remote(scripts: int, agents: int, jobs: int, audit: int) -> None:
    """Scripts (a version each), agents holding every script (one in ten with a stale hash),
    jobs spread over them, and audit rows: straight into the tables, like seed()."""
    now = timezone.now()
    made = Script.objects.bulk_create(Script(name=f"script-{i:02d}") for i in range(scripts))
    versions = ScriptVersion.objects.bulk_create(
        ScriptVersion(
            script=s,
            version=1,
            sha256=f"{i:064x}",
            run_on_agents=True,
            run_local=i % 2 == 0,
            command=["/bin/true"] if i % 2 == 0 else [],
            agent_labels=["role:web"],
        )
        for i, s in enumerate(made)
    )
    keys = ApiKey.objects.bulk_create(
        ApiKey(name=f"agent {i}", prefix=f"bench{i:06d}", hashed_key="-", scopes=[])
        for i in range(agents)
    )
    services = Service.objects.bulk_create(
        Service(heartbeat_name=f"agent-agent-{i:03d}", alert_interval=5, status="up")
        for i in range(agents)
    )
    held = [{"name": v.script.name, "sha256": v.sha256} for v in versions]
    hosts = Agent.objects.bulk_create(
        Agent(
            name=f"agent-{i:03d}",
            api_key=keys[i],
            service=services[i],
            labels=["role:web"],
            reported_labels=[f"zone:{i % 3}"],
            hostname=f"host-{i:03d}.example",
            os="linux",
            arch="x86_64",
            agent_version="0.4.0",
            scripts=held if i % 10 else [{**held[0], "sha256": "f" * 64}, *held[1:]],
            registered_at=now,
            last_seen_at=now - timedelta(seconds=i),
        )
        for i in range(agents)
    )
    rows = []
    for i in range(jobs):
        state = JOB_STATES[i % len(JOB_STATES)]
        created = now - timedelta(seconds=jobs - i)
        rows.append(
            Job(
                script_version=versions[i % scripts],
                target="agent",
                agent=hosts[i % agents],
                args={},
                state=state,
                exit_code=0 if state == "succeeded" else 1,
                duration_ms=100 + i % 900,
                stdout_tail="ok\n",
                created_at=created,
                started_at=created,
                finished_at=created + timedelta(seconds=1),
            )
        )
    Job.objects.bulk_create(rows, batch_size=5000)
    AuditEntry.objects.bulk_create(
        (
            AuditEntry(
                created_at=now - timedelta(seconds=audit - i),
                actor=f"agent:agent-{i % agents:03d}",
                event=AUDIT_EVENTS[i % len(AUDIT_EVENTS)],
                object_type="job",
                object_id=str(i),
                playbook=f"pb-{i % 1000:04d}",
                service=f"svc-{i % 1000:04d}-{i % 7}",
                execution_id=i,
                details={"state": "succeeded", "exit_code": 0, "duration_ms": 120},
            )
            for i in range(audit)
        ),
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--playbooks", type=int, default=1000)
    parser.add_argument("--executions", type=int, default=100000)
    parser.add_argument("--scripts", type=int, default=50)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=100000)
    parser.add_argument("--audit", type=int, default=100000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument(
        "--only", default="", help="comma-separated words: time only the pages whose label has one"
    )
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
            # The agents' services (agent-*) belong to the remote-execution rows below.
            Service.objects.filter(heartbeat_name__startswith="svc-").delete()
            PlaybookVersion.objects.all().delete()
            Playbook.objects.all().delete()
            started = time.perf_counter()
            seed(args.playbooks, args.executions)
            print(f"seeded in {time.perf_counter() - started:.1f} s")
        if not AuditEntry.objects.exists():
            Job.objects.all().delete()
            Agent.objects.all().delete()
            ApiKey.objects.all().delete()
            Service.objects.filter(heartbeat_name__startswith="agent-").delete()
            ScriptVersion.objects.all().delete()
            Script.objects.all().delete()
            started = time.perf_counter()
            seed_remote(args.scripts, args.agents, args.jobs, args.audit)
            print(
                f"seeded scripts, agents, jobs, audit rows in {time.perf_counter() - started:.1f} s"
            )
        groups_ensure(Group)
        user, _ = User.objects.get_or_create(username="bench-viewer")
        user.groups.add(Group.objects.get(name="viewer"))
        client = Client()
        client.force_login(user)
        print(
            f"database {name}: {Playbook.objects.count()} playbooks, "
            f"{Execution.objects.count()} executions, {Script.objects.count()} scripts, "
            f"{Agent.objects.count()} agents, {Job.objects.count()} jobs, "
            f"{AuditEntry.objects.count()} audit rows; "
            f"{args.runs} runs per page after {args.warmup} warm-ups\n"
        )
        print(f"{'page':32} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'queries':>8}")
        words = [w for w in args.only.split(",") if w]
        for label, path in PAGES:
            if words and not any(w in label for w in words):
                continue
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
