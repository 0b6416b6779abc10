"""The alert rules in deploy/prometheus/ pass their promtool unit tests, and every alert has a
test case in which it fires."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def test_promtool_unit_tests_pass():
    assert shutil.which("promtool"), "promtool is missing (scripts/test.sh installs prometheus)"
    for args in (["check", "rules", "medic-rules.yml"], ["test", "rules", "medic-rules.test.yml"]):
        done = subprocess.run(["promtool", *args], cwd=RULES, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_firing_case():
    rules = yaml.safe_load((RULES / "medic-rules.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    cases = yaml.safe_load((RULES / "medic-rules.test.yml").read_text())["tests"]
    firing = {
        case["alertname"]
        for test in cases
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts - firing == set(), "alerts without a case in which they fire"
