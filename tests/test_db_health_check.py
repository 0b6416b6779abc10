"""The PostgreSQL backend's connection health check (medic/db/postgresql/base.py): a kept
connection the server dropped is replaced before a request uses it, and a healthy one is reused
without a query."""

from __future__ import annotations

import select
import time

import pytest
from django.db import InterfaceError, OperationalError, connection, connections

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL backend"),
]


@pytest.fixture
def kept(settings):
    """A second, persistent connection to the test database with health checks on, as a web
    worker holds it between requests."""
    wrapper = connections.create_connection("default")
    wrapper.settings_dict.update(CONN_MAX_AGE=600, CONN_HEALTH_CHECKS=True)
    yield wrapper
    wrapper.close()


def _pid(wrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _last_query(pid: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()[0]


def _terminate(wrapper, pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    # Wait until the server's goodbye has reached the kept connection's socket.
    poller = select.poll()
    poller.register(wrapper.connection.pgconn.socket, select.POLLIN)
    deadline = time.monotonic() + 5
    while not poller.poll(50):
        assert time.monotonic() < deadline, "the terminated connection never became readable"


def test_connection_dropped_by_the_server_is_replaced_before_the_next_request(kept):
    pid = _pid(kept)
    kept.close_if_unusable_or_obsolete()  # end of the request: the connection is kept
    _terminate(kept, pid)

    kept.close_if_unusable_or_obsolete()  # the next request starts
    assert _pid(kept) != pid  # answered on a new connection, no error


def test_without_health_checks_the_next_request_fails(kept):
    # The control for the test above: the dropped connection really is unusable.
    kept.settings_dict["CONN_HEALTH_CHECKS"] = False
    pid = _pid(kept)
    kept.close_if_unusable_or_obsolete()
    _terminate(kept, pid)

    kept.close_if_unusable_or_obsolete()
    with pytest.raises((OperationalError, InterfaceError)) as raised:
        _pid(kept)
    assert "terminat" in str(raised.value) or "closed" in str(raised.value)


def test_healthy_connection_is_reused_without_a_query(kept):
    with kept.cursor() as cursor:
        cursor.execute("SELECT 'last statement of the request'")
    pid = kept.connection.info.backend_pid
    kept.close_if_unusable_or_obsolete()

    kept.close_if_health_check_failed()  # what the next request's first query does first

    assert kept.connection is not None and kept.connection.info.backend_pid == pid
    assert _last_query(pid) == "SELECT 'last statement of the request'"


def test_round_trip_check_on_request(kept, settings):
    settings.DATABASE_CONN_HEALTH_CHECK_QUERY = True
    pid = _pid(kept)
    kept.close_if_unusable_or_obsolete()

    kept.close_if_health_check_failed()

    assert _last_query(pid) == "SELECT 1"
