"""Seed the benchmark database: N services named PREFIX0000.. through the service layer.

Run by run.sh with the benchmark's environment (DATABASE_URL, SECRET_KEY, ...):
    python bench/ingest/seed.py 1000 bench- [interval minutes, default 60]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medic.settings")

import django

django.setup()

from heartbeats.models import Service  # noqa: E402
from heartbeats.services import service_create  # noqa: E402


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    prefix = sys.argv[2] if len(sys.argv) > 2 else "bench-"
    interval = float(sys.argv[3]) if len(sys.argv) > 3 else 60
    existing = set(Service.objects.values_list("heartbeat_name", flat=True))
    for i in range(count):
        name = f"{prefix}{i:04d}"
        if name not in existing:
            # By default a long interval: nothing goes overdue while the benchmark runs.
            service_create(heartbeat_name=name, alert_interval=interval, actor="bench")
    print(Service.objects.filter(heartbeat_name__startswith=prefix).count())


if __name__ == "__main__":
    main()
