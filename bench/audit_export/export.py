"""Audit export memory and speed: ``export.py seed N`` fills the audit table up to N rows;
``export.py run FORMAT`` streams GET /v2/audit/export through Django's handler, discarding
the body, and prints rows, bytes, seconds and the process's peak RSS before and after. Run
each export in a fresh process (run.sh does): peak RSS never goes down."""

from __future__ import annotations

import os
import resource
import sys
import time
from datetime import UTC, datetime, timedelta

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medic.settings")

import django

django.setup()

from django.test import Client  # noqa: E402

from medic.apikeys import api_key_create  # noqa: E402
from remediation.audit.models import AuditEntry  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DETAILS = {
    "script": "restart_nginx",
    "state": "succeeded",
    "exit_code": 0,
    "stdout_tail": "x" * 400,
    "headers": {"Authorization": "Bearer ••••••", "Content-Type": "application/json"},
}


def seed(total: int) -> None:
    have = AuditEntry.objects.count()
    batch = 5000
    for start in range(have, total, batch):
        AuditEntry.objects.bulk_create(
            AuditEntry(
                created_at=T0 + timedelta(seconds=i),
                actor=f"key:bench#{i % 5}",
                event="job.finished",
                object_type="job",
                object_id=str(i),
                service=f"svc-{i % 100}",
                execution_id=i // 5,
                details={**DETAILS, "i": i},
            )
            for i in range(start, min(start + batch, total))
        )
    print(f"rows: {AuditEntry.objects.count()}")


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(fmt: str) -> None:
    key = api_key_create(name="bench export", scopes=["read"], actor="bench").secret
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    client.get("/v2/audit", {"limit": 1})  # warm: imports, connection, key cache
    before = peak_mib()
    started = time.perf_counter()
    response = client.get("/v2/audit/export", {"format": fmt})
    assert response.status_code == 200 and response.streaming
    size = lines = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        lines += chunk.count(b"\n")
    elapsed = time.perf_counter() - started
    rows = lines - (1 if fmt == "csv" else 0)
    print(
        f"format={fmt} rows={rows} bytes={size} seconds={elapsed:.2f} "
        f"rows_per_s={rows / elapsed:.0f} peak_rss_before_mib={before:.1f} "
        f"peak_rss_after_mib={peak_mib():.1f}"
    )


if __name__ == "__main__":
    if sys.argv[1] == "seed":
        seed(int(sys.argv[2]))
    else:
        run(sys.argv[2])
