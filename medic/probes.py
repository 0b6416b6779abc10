"""Probe paths answered before host validation.

Health checks and Prometheus address a process by its own address (``127.0.0.1:8000`` inside a
container, ``web:8000`` from Prometheus), which is not a public host name in ``ALLOWED_HOSTS``:
Django would refuse them with 400 ``DisallowedHost``. This middleware, first in the chain, hands
``GET /health/live``, ``GET /health/ready`` and ``GET /metrics`` to their views before anything
calls ``request.get_host()``. Nothing in those answers depends on the host name: the health
views report process, database and broker state, and ``/metrics`` still requires a read-scoped
API key. Every other path (``/health`` included) keeps Django's host validation.
"""

from __future__ import annotations

from medic import health

PROBES = {"/health/live": health.live, "/health/ready": health.ready, "/metrics": health.metrics}


class ProbeMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        view = PROBES.get(request.path_info)
        if view is not None and request.method == "GET":
            return view(request)
        return self.get_response(request)
