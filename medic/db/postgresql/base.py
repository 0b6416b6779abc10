"""Django's PostgreSQL backend with a cheaper connection health check.

With ``CONN_HEALTH_CHECKS`` on, Django checks a kept connection before the first query of
every request by sending ``SELECT 1``: a round trip, and on the heartbeat path about a fifth of
the request's CPU (docs/performance.md). This backend asks the socket instead. An idle
connection in autocommit mode has nothing to read: whatever the server sent while it sat idle
is the server going away (the ``FATAL: terminating connection`` of a restart, failover or
``pg_terminate_backend``, followed by end of file) or a reset. So a connection whose socket is
readable (or in error) while idle is closed and replaced before the request uses it, exactly
as a failed ``SELECT 1`` would have done, and a quiet one is used without a round trip.

What the socket cannot show, a peer that vanished without a word (a host powered off, a
network partition), a ``SELECT 1`` would not catch quickly either: it would wait for the TCP
timeout. Set ``DATABASE_CONN_HEALTH_CHECK_QUERY=1`` to go back to Django's query.

Anything unusual (a transaction left open, a connection psycopg already knows to be broken or
closed) is handed to Django's own check.
"""

from __future__ import annotations

import select

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self) -> None:
        if (
            self.connection is None
            or not self.health_check_enabled
            or self.health_check_done
            or self.pool
            or settings.DATABASE_CONN_HEALTH_CHECK_QUERY
        ):
            return super().close_if_health_check_failed()
        if not self._idle_socket_quiet():
            self.close()
        self.health_check_done = True

    def _idle_socket_quiet(self) -> bool:
        """True when the kept connection is idle and the server has sent nothing since."""
        connection = self.connection
        if connection.closed or connection.broken:
            return False
        pgconn = connection.pgconn
        if pgconn.status != pq.ConnStatus.OK:
            return False
        if pgconn.transaction_status != pq.TransactionStatus.IDLE:
            # Not the state a connection is left in between requests: ask the server.
            return self.is_usable()
        try:
            poller = select.poll()
            poller.register(pgconn.socket, select.POLLIN | select.POLLPRI)
            events = poller.poll(0)
        except (OSError, ValueError, psycopg.Error):
            return False
        return not events
