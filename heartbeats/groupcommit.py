"""Group commit for the heartbeat hot path: one transaction for the beats of the same moment.

A durable heartbeat costs a commit, and on the hot path the statement and its commit are most of
what a heartbeat costs the database and a good share of what storing it costs the web process
(one round trip, one statement to bind, one result to read, per beat). Here the beats that a web
process's request threads want stored at the same moment are stored together: the first thread
to arrive leads, takes every beat waiting (up to ``MEDIC_INGEST_BATCH_MAX``, one per service),
stores them with one statement on its own connection, and wakes the others; nobody is answered
before that commit. While a batch commits, the next beats gather, so batches grow with the load
and a lone beat waits for nobody: there is no timer and no added latency when traffic is light.

Durability is unchanged: a request gets its 201 only after the transaction holding its row has
committed; a crash before that answers nothing, and the client retries.

What the statement does is exactly the one-statement path of ``heartbeat_record`` (see its
docstring for why the row lock makes it safe against the sweep), for many services at once: it
moves the deadline of each service that is active, up, with threshold 1 and an interval
schedule, and inserts the beat of each service it moved. A beat whose service is anything else
(unknown, down, recovering, a cron schedule, a threshold above 1) is not stored by it: its
request then stores it through ``heartbeat_record``, whose general path decides as for any
beat. A second beat for a service already in the batch waits for the next batch.

If the statement fails, every beat of the batch fails with the same error and nothing of the
batch is stored (one transaction): each request answers as a failing single beat would.

Used only outside a transaction of the caller's (the batch may be stored on another request's
connection, which could not see it), only on PostgreSQL, and only when
``MEDIC_INGEST_GROUP_COMMIT`` is on.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from django.conf import settings
from django.db import connection

from heartbeats.deadlines import INTERVAL_DEADLINE_PARAMS, interval_deadline_sql
from heartbeats.models import Heartbeat, ScheduleKind, Service, ServiceStatus
from medic.ids import parse_id
from medic.metrics import INGEST_BATCH_SIZE

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Stored:
    """A beat the batch stored, with what the 201 answer shows."""

    heartbeat_id: int
    service_id: int
    heartbeat_name: str
    service_status: str
    next_deadline_at: datetime


@dataclass(frozen=True, slots=True)
class Beat:
    """A beat to store: the service (id or name, as in the URL) and what the beat says."""

    ref: str
    status: str
    message: str
    source: str
    at: datetime


class _Pending:
    __slots__ = ("at", "done", "error", "message", "ref", "result", "source", "status")

    def __init__(self, ref: str, status: str, message: str, source: str, at: datetime) -> None:
        self.ref, self.status, self.message, self.source, self.at = ref, status, message, source, at
        self.done = False  # set under the batcher's lock
        self.result: Stored | None = None
        self.error: BaseException | None = None


def _statement() -> str:
    service, beat = Service._meta.db_table, Heartbeat._meta.db_table
    # Only model metadata is interpolated; every value is a bound parameter. The input's columns
    # are named apart from the service's, so the deadline rule's bare column names are the
    # service's own.
    #
    # The rows are locked in the order of their ids before any is changed ("locked"): two
    # processes' batches that share services then wait for each other instead of deadlocking.
    # The service rows are found by index whatever the planner knows: names through the
    # case-insensitive unique index and ids through the primary key, each as "= ANY(array)",
    # never as a join the planner could turn into a scan of the whole table (a fresh
    # installation has no statistics yet, and a table whose rows are all updated many times a
    # minute carries many dead versions between vacuums).
    return f"""
        WITH named AS (
            SELECT id, lower(heartbeat_name) AS lname
              FROM {service}
             WHERE lower(heartbeat_name) = ANY(%(names)s::text[])
        ), input AS MATERIALIZED (
            SELECT u.n, COALESCE(u.sid, named.id) AS sid, u.beat_status, u.beat_message,
                   u.beat_source, u.beat_at
              FROM unnest(%(n)s::int[], %(sid)s::bigint[], %(name)s::text[], %(status)s::text[],
                          %(message)s::text[], %(source)s::text[], %(at)s::timestamptz[])
                   AS u(n, sid, name, beat_status, beat_message, beat_source, beat_at)
              LEFT JOIN named ON u.sid IS NULL AND named.lname = u.name
        ), locked AS (
            SELECT id FROM {service}
             WHERE id = ANY(ARRAY(SELECT sid FROM input WHERE sid IS NOT NULL))
             ORDER BY id
               FOR UPDATE
        ), moved AS (
            UPDATE {service}
               SET last_status = input.beat_status,
                   last_heartbeat_at = input.beat_at,
                   next_deadline_at = {interval_deadline_sql("input.beat_at")}
              FROM input
             WHERE {service}.id = ANY(ARRAY(SELECT id FROM locked))
               AND {service}.id = input.sid
               AND active AND status = %(up)s AND threshold <= 1 AND schedule_kind = %(kind)s
         RETURNING input.n, {service}.id, heartbeat_name, status, next_deadline_at,
                   input.beat_status, input.beat_message, input.beat_source, input.beat_at
        ), beat AS (
            INSERT INTO {beat} (service_id, time, status, message, source)
            SELECT id, beat_at, beat_status, beat_message, beat_source FROM moved ORDER BY n
         RETURNING id, service_id
        )
        SELECT moved.n, beat.id, moved.id, moved.heartbeat_name, moved.status,
               moved.next_deadline_at
          FROM beat JOIN moved ON moved.id = beat.service_id
    """  # noqa: S608


class Batcher:
    """The beats of this process waiting to be stored, and which request stores them.

    No thread of its own: the first request that finds nobody storing becomes the leader, takes
    every beat waiting (its own among them), stores them on its own database connection and
    wakes the others; a request that finds a leader at work waits for it, then either has its
    answer or leads the next batch. Handing a beat to a writer thread and back would cost two
    thread switches per beat, which is what batching saves.
    """

    def __init__(self, max_batch: int) -> None:
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._waiting: list[_Pending] = []
        self._leading = False

    def store(
        self, *, ref: str, status: str, message: str, source: str, at: datetime
    ) -> Stored | None:
        """Store the beat with the beats waiting now and return it once committed; None when
        the batch did not store it (``heartbeat_record`` then decides). Raises what the
        statement raised."""
        pending = _Pending(ref, status, message, source, at)
        with self._cond:
            self._waiting.append(pending)
            while not pending.done:
                if self._leading:
                    self._cond.wait()
                    continue
                self._leading = True
                batch = self._take()
                self._cond.release()
                try:
                    self._commit(batch)
                finally:
                    self._cond.acquire()
                    self._leading = False
                    for each in batch:
                        each.done = True
                    self._cond.notify_all()
        if pending.error is not None:
            raise pending.error
        return pending.result

    def _take(self) -> list[_Pending]:
        """Up to ``max_batch`` waiting beats, one per service (an UPDATE ... FROM moves a row
        once): a second beat for a service stays for the next batch, in its order."""
        seen: set[str] = set()
        batch: list[_Pending] = []
        left: list[_Pending] = []
        for pending in self._waiting:
            key = pending.ref.lower()
            if key in seen or len(batch) >= self.max_batch:
                left.append(pending)
            else:
                seen.add(key)
                batch.append(pending)
        self._waiting = left
        return batch

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            results = store_together(batch)
        except Exception as exc:  # every beat of the batch fails as a single beat would
            for pending in batch:
                pending.error = exc
            return
        for pending, result in zip(batch, results, strict=True):
            pending.result = result


class _Statement:
    """The batch statement of this process, prepared once per database session."""

    def __init__(self) -> None:
        self.sql = _statement()
        self.prepare = not settings.DATABASE_TRANSACTION_POOLING
        self.planned: weakref.WeakSet = weakref.WeakSet()  # sessions set to the generic plan


_statement_lock = threading.Lock()
_statements: dict[int, _Statement] = {}  # by process id: a forked worker prepares its own


def store_together(beats: Sequence[Beat]) -> list[Stored | None]:
    """Store ``beats`` (at most one per service) with one statement in one transaction on this
    thread's connection, outside any transaction of the caller's; per beat, what was stored, or
    None for a beat it left to ``heartbeat_record`` (its service is not steady, or unknown).
    Raises what the statement raised: then nothing of the batch is stored."""
    if not beats:
        return []
    try:
        rows = _execute(beats)
    except Exception as exc:
        logger.warning("heartbeat batch of %d failed: %s", len(beats), exc)
        raise
    INGEST_BATCH_SIZE.observe(len(beats))
    results: list[Stored | None] = [None] * len(beats)
    for n, heartbeat_id, service_id, name, service_status, deadline in rows:
        results[n] = Stored(heartbeat_id, service_id, name, service_status, deadline)
    return results


def _execute(beats: Sequence[Beat]) -> list[tuple]:
    pid = os.getpid()
    statement = _statements.get(pid)
    if statement is None:
        with _statement_lock:
            statement = _statements.setdefault(pid, _Statement())
    ids: list[int | None] = []
    names: list[str | None] = []
    for beat in beats:
        by_id = parse_id(beat.ref)  # as heartbeat_record: an id, else a name
        ids.append(by_id)
        names.append(None if by_id is not None else beat.ref.lower())
    params = {
        "n": list(range(len(beats))),
        "sid": ids,
        "name": names,
        "names": [name for name in names if name is not None],
        "status": [beat.status for beat in beats],
        "message": [beat.message for beat in beats],
        "source": [beat.source for beat in beats],
        "at": [beat.at for beat in beats],
        "up": ServiceStatus.UP,
        "kind": ScheduleKind.INTERVAL,
        **INTERVAL_DEADLINE_PARAMS,
    }
    # Server-side binding and a prepared statement: the text never changes (the beats are
    # array parameters), so PostgreSQL plans it once per connection, where Django's
    # client-side binding would send new text, planned anew, every time. Not prepared
    # behind a transaction-mode pooler (a prepared statement belongs to one server session).
    # Autocommit: the statement is its own transaction.
    connection.ensure_connection()
    with connection.wrap_database_errors:
        session = connection.connection
        if statement.prepare and session not in statement.planned:
            # Planned once per session, for any batch: its plan (index lookups, see
            # _statement) does not depend on the values, and planning it anew per batch cost
            # more than running it. Only prepared statements are affected, and Medic
            # prepares no other (Django binds parameters client-side).
            with session.cursor() as cursor:
                cursor.execute("SET plan_cache_mode = force_generic_plan")
            statement.planned.add(session)
        with psycopg.Cursor(session) as cursor:
            cursor.execute(statement.sql, params, prepare=statement.prepare)
            return cursor.fetchall()


_batcher: Batcher | None = None
_batcher_pid: int | None = None
_batcher_lock = threading.Lock()


def enabled() -> bool:
    """Whether a heartbeat of this thread may be stored with others (PostgreSQL, outside any
    transaction of the caller's: the batch may be stored on another request's connection)."""
    return (
        settings.MEDIC_INGEST_GROUP_COMMIT
        and connection.vendor == "postgresql"
        and not connection.in_atomic_block
    )


def batcher() -> Batcher:
    """This process's batcher (a forked worker makes its own)."""
    global _batcher, _batcher_pid
    pid = os.getpid()
    if _batcher is None or _batcher_pid != pid:
        with _batcher_lock:
            if _batcher is None or _batcher_pid != pid:
                _batcher = Batcher(settings.MEDIC_INGEST_BATCH_MAX)
                _batcher_pid = pid
    return _batcher
