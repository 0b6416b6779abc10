"""The ingest shortcuts answer exactly like the documented path: bench/ingest/contract.py (the
check every benchmark run starts with) run against the test database. It compares the lean
heartbeat view with the DRF view, the one-statement heartbeat_record with its general path, the
WSGI ingest handler (heartbeats/ingest.py) with Django's own handler, the group commit's batch
statement with the one-statement path, and the web front's batches with Django's handler.

Outside a test transaction (``transaction=True``), as in production: the group commit stores
only outside a transaction of the caller's, and the batches are to be checked with it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from django.core import signals
from django.db import close_old_connections

CONTRACT = Path(__file__).resolve().parents[1] / "bench" / "ingest" / "contract.py"


@pytest.mark.django_db(transaction=True)
def test_ingest_shortcuts_answer_like_the_documented_path(capsys):
    spec = importlib.util.spec_from_file_location("ingest_contract", CONTRACT)
    contract = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(contract)

    # As Django's test client does: the test's transaction must survive request boundaries.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        failed = contract.main()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)

    out = capsys.readouterr().out
    assert failed == 0, out
    assert "(WSGI: route, batch)" in out and "(WSGI: django)" in out
    assert "ok   17 requests in one batch" in out
    assert "0 failed" in out
    assert out.count("ok   group commit") == 7
    print(out)
