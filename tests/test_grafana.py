"""deploy/grafana/medic.json only queries metrics Medic exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "medic.json"
SUFFIXES = ("_bucket", "_count", "_sum")


def _queried_metrics() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs, "the dashboard has no queries"
    names = set()
    for expr in exprs:
        for name in re.findall(r"\b(medic_[a-z0-9_]+)", expr):
            for suffix in SUFFIXES:
                if name.endswith(suffix):
                    name = name[: -len(suffix)]
            names.add(name)
    return names


def test_dashboard_covers_the_promised_panels():
    titles = " ".join(p["title"].lower() for p in json.loads(DASHBOARD.read_text())["panels"])
    for topic in (
        "heartbeat rate",
        "service states",
        "alert flow",
        "delivery outcomes",
        "sweep lag",
        "job durations",
    ):
        assert topic in titles


def test_every_queried_metric_is_exported(reader):
    exported = reader.get("/metrics").content.decode()
    types = set(re.findall(r"^# TYPE (\S+) ", exported, flags=re.M))
    # counters are declared without the _total suffix in TYPE lines
    declared = types | {t + "_total" for t in types}
    missing = sorted(n for n in _queried_metrics() if n not in declared)
    assert missing == []
