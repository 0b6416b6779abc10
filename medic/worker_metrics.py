"""The Celery worker's own Prometheus endpoint.

The sweep and the notification tasks run in worker processes, so their counters and histograms
live there. Workers run with ``--pool threads`` (one process, one registry), and serve that
registry on ``MEDIC_WORKER_METRICS_ADDR`` (host:port; empty disables it). Scrape it beside the web
``/metrics``; see docs/operations.md.

The endpoint answers only ``/metrics`` and requires the same read-scoped API key as the web one
when ``MEDIC_WORKER_METRICS_REQUIRE_KEY`` is on (the default outside the embedded mode).
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

logger = logging.getLogger(__name__)
_server: ThreadingHTTPServer | None = None


class _Handler(BaseHTTPRequestHandler):
    require_key = True

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            self._reply(404, b"not found\n", "text/plain")
            return
        if self.require_key and not self._authorised():
            self._reply(401, b"a read-scoped API key is required\n", "text/plain")
            return
        self._reply(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)

    def _authorised(self) -> bool:
        from django.db import close_old_connections

        from medic.apikeys import api_key_verify
        from medic.errors import MedicError

        header = self.headers.get("Authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret:
            return False
        try:
            key = api_key_verify(secret.strip())
        except MedicError:
            return False
        finally:
            close_old_connections()
        return "read" in key.scopes or "admin" in key.scopes

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def start(addr: str, *, require_key: bool) -> ThreadingHTTPServer | None:
    global _server
    if not addr or _server is not None:
        return _server
    host, _, port = addr.rpartition(":")
    handler = type("Handler", (_Handler,), {"require_key": require_key})
    try:
        _server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), handler)
    except OSError as exc:
        logger.error("worker metrics endpoint could not bind %s: %s", addr, exc)
        return None
    _server.daemon_threads = True
    threading.Thread(target=_server.serve_forever, name="metrics", daemon=True).start()
    logger.info("worker metrics on http://%s/metrics", addr)
    return _server
