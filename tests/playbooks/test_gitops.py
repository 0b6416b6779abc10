"""manage.py playbooks apply DIR [--dry-run] / export DIR."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from remediation.playbooks.models import Playbook, PlaybookVersion
from tests.playbooks.conftest import PRD_EXAMPLE

pytestmark = pytest.mark.django_db


def _call(*args) -> str:
    out = StringIO()
    call_command("playbooks", *args, stdout=out)
    return out.getvalue()


def test_apply_dry_run_apply_again_and_export_round_trip(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    (source / "restart-worker.yaml").write_text(PRD_EXAMPLE)
    out = _call("apply", str(source), "--dry-run")
    assert "create restart-worker -> v1" in out and "dry run: nothing saved" in out
    assert not Playbook.objects.exists()
    out = _call("apply", str(source), "--reason", "from git")
    assert "1 created, 0 updated, 0 unchanged" in out
    assert PlaybookVersion.objects.get().reason == "from git"
    (source / "restart-worker.yaml").write_text(PRD_EXAMPLE.replace("30s", "40s"))
    out = _call("apply", str(source))
    assert "update restart-worker -> v2" in out
    assert "-    duration: 30s\n+    duration: 40s" in out
    assert "0 created, 0 updated, 1 unchanged" in _call("apply", str(source))
    target = tmp_path / "out"
    _call("export", str(target))
    assert (target / "restart-worker.yaml").read_text() == PRD_EXAMPLE.replace("30s", "40s")


def test_an_invalid_file_applies_nothing_and_names_file_and_line(tmp_path):
    (tmp_path / "a.yaml").write_text(PRD_EXAMPLE)
    (tmp_path / "b.yaml").write_text(
        PRD_EXAMPLE.replace("restart-worker", "b").replace("30s", "soon")
    )
    with pytest.raises(CommandError) as exc:
        _call("apply", str(tmp_path))
    assert f"{tmp_path / 'b.yaml'}:16: steps[1].duration" in str(exc.value)
    assert not Playbook.objects.exists()
