"""The agent gateway: the ASGI application that serves medic-agent's long polls.

    uvicorn remediation.gateway:application --host 0.0.0.0 --port 8001

Why a separate process: a long poll must not hold a thread, so ``/v2/agent/*`` are async views
waiting on asyncio events. Under Django's ASGI handler every sync-only middleware in the stack
(WhiteNoise here) makes Django run the request, view included, through a per-request thread:
serving the whole application under uvicorn would hold a thread per waiting agent after all. The
gateway therefore runs Django's ASGI handler with no middleware (the agent views need none:
no sessions, CSRF or templates; they authenticate and render errors themselves) and serves only
the agent protocol, plus health and metrics for its own monitoring. Everything else stays with
the WSGI web service (gunicorn); a reverse proxy routes ``/v2/agent/`` here.
"""

from __future__ import annotations

import json
import os

import django
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medic.settings")
django.setup(set_prefix=False)

SERVED_PREFIXES = ("/v2/agent/", "/health", "/metrics")


class AgentGatewayHandler(ASGIHandler):
    """Django's ASGI handler with an empty middleware chain: async views stay on the loop."""

    async def __call__(self, scope, receive, send) -> None:
        # Django wraps each request in a ThreadSensitiveContext, which gives the request its
        # own executor thread for thread-sensitive work (the sync receivers of request_started
        # and request_finished, e.g. close_old_connections) and keeps it until the request
        # ends: one idle thread per waiting poll. Without the context that little work shares
        # one thread; the agent views run their database work on the loop's pool.
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        get_response = self._get_response_async if is_async else self._get_response
        self._middleware_chain = convert_exception_to_response(get_response)


_handler = AgentGatewayHandler()
_NOT_FOUND = json.dumps(
    {
        "error": {
            "code": "not_found",
            "message": "The agent gateway serves /v2/agent/* only; use the web service.",
            "fields": {},
        }
    }
).encode()


async def application(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http" and not scope["path"].startswith(SERVED_PREFIXES):
        await send(
            {
                "type": "http.response.start",
                "status": 404,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(_NOT_FOUND)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _NOT_FOUND})
        return
    await _handler(scope, receive, send)
