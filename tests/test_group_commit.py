"""Group commit (heartbeats/groupcommit.py): the beats waiting at one moment are stored by one
statement in one transaction, each answered only after that commit; what the statement does not
store (a service that is not steady) is handed back and a second beat for a service waits for
the next batch, never lost; a failing batch stores nothing and fails every beat in it."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
import urllib.request
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from prometheus_client import REGISTRY

from heartbeats import groupcommit
from heartbeats.models import Heartbeat, HeartbeatSource, Service, ServiceStatus
from heartbeats.services import heartbeat_record, service_create
from medic.apikeys import api_key_create
from tests.e2e.conftest import start_web  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def _steady(name: str, **fields) -> Service:
    service = service_create(heartbeat_name=name, alert_interval=5, **fields)
    heartbeat_record(service_ref=service.pk)  # new -> up
    service.refresh_from_db()
    assert service.status == ServiceStatus.UP
    return service


def _pending(ref: str, at, status: str = "UP", message: str = "") -> groupcommit._Pending:
    return groupcommit._Pending(ref, status, message, HeartbeatSource.V2, at)


def test_one_statement_stores_the_steady_beats_and_hands_back_the_rest():
    steady = [_steady(f"gc-steady-{i}") for i in range(4)]
    down = _steady("gc-down")
    Service.objects.filter(pk=down.pk).update(status=ServiceStatus.DOWN)
    threshold = _steady("gc-threshold")
    Service.objects.filter(pk=threshold.pk).update(threshold=2)  # up, and needs 2 beats a window
    service_create(heartbeat_name="gc-new", alert_interval=5)  # never beat: its first beat decides
    _steady("gc-paused")
    Service.objects.filter(heartbeat_name="gc-paused").update(active=False)
    before = Heartbeat.objects.count()
    at = timezone.now()
    batch = [
        _pending("gc-steady-0", at, "ok", "first"),
        _pending("GC-STEADY-1", at),  # names are case-insensitive
        _pending(str(steady[2].pk), at, "DOWN", "by id"),
        _pending("gc-down", at),
        _pending("gc-threshold", at),
        _pending("gc-new", at),
        _pending("gc-paused", at),
        _pending("gc-nope", at),
        _pending("gc-steady-0", at, "ok", "second"),  # same service: the next batch
        _pending("gc-steady-3", at),
    ]
    batcher = groupcommit.Batcher(max_batch=64)
    batcher._waiting = list(batch)
    first = batcher._take()
    assert first == batch[:8] + batch[9:]  # one beat per service; the second waits its turn
    assert batcher._waiting == [batch[8]]
    batcher._commit(first)
    assert all(p.error is None for p in batch)

    stored = {i: p.result for i, p in enumerate(batch) if p.result is not None}
    assert set(stored) == {0, 1, 2, 9}
    for i, service in ((0, steady[0]), (1, steady[1]), (2, steady[2]), (9, steady[3])):
        result = stored[i]
        row = Service.objects.get(pk=service.pk)
        beat = Heartbeat.objects.get(pk=result.heartbeat_id)
        assert (result.service_id, result.heartbeat_name) == (service.pk, service.heartbeat_name)
        assert result.service_status == row.status == ServiceStatus.UP
        assert result.next_deadline_at == row.next_deadline_at == at + timedelta(minutes=5)
        assert row.last_heartbeat_at == beat.time == at
        assert (beat.service_id, beat.status, beat.message) == (
            service.pk,
            batch[i].status,
            batch[i].message,
        )
        assert row.last_status == batch[i].status
    assert Heartbeat.objects.count() == before + 4  # nothing else was written
    with connection.cursor() as cursor:  # one transaction wrote every row of the batch
        cursor.execute(
            "SELECT count(DISTINCT xmin::text) FROM heartbeats_heartbeat WHERE id = ANY(%s)",
            [[r.heartbeat_id for r in stored.values()]],
        )
        assert cursor.fetchone()[0] == 1
        cursor.execute(
            "SELECT count(DISTINCT xmin::text) FROM heartbeats_service WHERE id = ANY(%s)",
            [[s.pk for s in steady]],
        )
        assert cursor.fetchone()[0] == 1

    # The second beat for gc-steady-0 goes in the next batch, and is stored by it.
    assert batch[8].result is None
    again = batcher._take()
    assert again == [batch[8]] and batcher._waiting == []
    batcher._commit(again)
    again = again[0]
    assert again.result is not None
    assert Heartbeat.objects.get(pk=again.result.heartbeat_id).message == "second"
    assert Heartbeat.objects.count() == before + 5


def test_a_failing_batch_stores_nothing_and_fails_every_beat():
    _steady("gc-a")
    _steady("gc-b")
    before = Heartbeat.objects.count()
    at = timezone.now()
    # A NUL can never reach the writer (the lean path refuses it); here it makes the statement fail.
    batch = [_pending("gc-a", at), _pending("gc-b", at, message="a\x00b")]
    groupcommit.Batcher(max_batch=64)._commit(batch)
    assert all(p.result is None for p in batch)
    assert all(p.error is not None and p.error is batch[0].error for p in batch)
    assert Heartbeat.objects.count() == before  # gc-a's beat was not stored either
    # The connection is usable afterwards.
    ok = _pending("gc-a", at)
    groupcommit.Batcher(max_batch=64)._commit([ok])
    assert ok.result is not None and ok.error is None


def test_concurrent_beats_are_stored_once_each_in_shared_batches():
    services = [_steady(f"gc-many-{i}") for i in range(10)]
    batcher = groupcommit.Batcher(max_batch=8)
    before = Heartbeat.objects.count()
    results: dict[int, groupcommit.Stored | None] = {}
    errors: list[BaseException] = []

    def beats(thread: int) -> None:
        try:
            for i in range(thread, 200, 16):
                results[i] = batcher.store(
                    ref=services[i % 10].heartbeat_name,
                    status="UP",
                    message=str(i),
                    source=HeartbeatSource.V2,
                    at=timezone.now(),
                )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()  # each thread's own connection, before the database is dropped

    batches = REGISTRY.get_sample_value("medic_ingest_batch_size_count") or 0
    with batcher._cond:  # as if a batch were committing: every thread's first beat waits
        batcher._leading = True
    threads = [threading.Thread(target=beats, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    for _ in range(3000):
        with batcher._cond:
            if len(batcher._waiting) == 16:
                batcher._leading = False  # the batch "committed": one of them leads the next
                batcher._cond.notify_all()
                break
        time.sleep(0.01)
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == list(range(200)) and None not in results.values()
    ids = [r.heartbeat_id for r in results.values()]
    assert len(set(ids)) == 200
    assert Heartbeat.objects.count() == before + 200
    stored = dict(Heartbeat.objects.filter(pk__in=ids).values_list("pk", "message"))
    assert {int(stored[r.heartbeat_id]) for r in results.values()} == set(range(200))
    assert all(stored[r.heartbeat_id] == str(i) for i, r in results.items())
    # The 16 waiting beats (10 services) went in batches of up to 8: fewer batches than beats.
    assert (REGISTRY.get_sample_value("medic_ingest_batch_size_count") or 0) - batches < 200


def test_heartbeats_over_http_are_stored_once_each_and_answered_after_commit(start_web):  # noqa: F811
    services = [_steady(f"gc-http-{i}") for i in range(8)]
    secret = api_key_create(name="gc", scopes=["write"], actor="test").secret
    url = start_web(workers=2)
    before = Heartbeat.objects.count()

    def beat(i: int) -> tuple[int, dict]:
        service = services[i % len(services)]
        request = urllib.request.Request(
            f"{url}/v2/heartbeat/{service.heartbeat_name}",
            data=json.dumps({"status": "UP", "message": f"m{i}"}).encode(),
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(beat, range(240)))
    assert {status for status, _ in answers} == {201}
    ids = {body["id"] for _, body in answers}
    assert len(ids) == 240
    # Every 201 is a committed row with what the answer said.
    rows = {b.pk: b for b in Heartbeat.objects.filter(pk__in=ids)}
    assert len(rows) == 240 and Heartbeat.objects.count() == before + 240
    for _, body in answers:
        row = rows[body["id"]]
        assert row.service_id == body["service"] and row.status == body["status"] == "UP"
        assert body["service_status"] == "up"
    for service in services:
        row = Service.objects.get(pk=service.pk)
        assert row.next_deadline_at == row.last_heartbeat_at + timedelta(minutes=5)
