"""The embedded mode's web front: an event loop reads each request whole, then a thread runs it.

``make run`` has no reverse proxy in front of it. Under a threaded WSGI server a request takes a
thread as soon as its headers arrive, and the body is read by that thread: a client that sends
its headers and then trickles (or stalls) its body holds the thread for as long as it likes, and
seven such clients left ``make run``'s eight threads to nobody, the health probe included.

Here uvicorn's event loop accepts connections and reads requests, headers and body, at no cost
but a buffer; only a complete request is handed to one of ``MEDIC_FRONT_THREADS`` threads, which
runs Medic's WSGI application (``medic.wsgi``: body framing, the heartbeat route, Django). What
a buffering proxy does in production (docs/deployment.md), in the same process:

- a body is kept up to ``DATA_UPLOAD_MAX_MEMORY_SIZE`` plus one byte (enough for the application
  to refuse a longer one with its 413 envelope); the rest is read and dropped;
- a body must arrive whole within ``MEDIC_FRONT_BODY_SECONDS``, else 408 in the error envelope
  and the connection is closed;
- the response goes back as the application produces it, with the event loop's flow control
  (a streamed export is not gathered in memory), and the application's ``close()`` runs (Django
  ends the request there: database connections, the ``request_finished`` signal).
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings

from medic.wsgi import application as wsgi_application  # configures the settings

TIMEOUT_BODY = json.dumps(
    {
        "error": {
            "code": "request_timeout",
            "message": "The request body did not arrive in time.",
            "fields": {},
        }
    }
).encode()


class Front:
    """An ASGI application running a WSGI application on a thread pool, complete requests only."""

    def __init__(self, app, *, threads: int, body_limit: int | None, body_seconds: float) -> None:
        self.app = app
        self.body_limit = body_limit
        self.body_seconds = body_seconds
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="medic-web")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":  # served with lifespan off; no websockets
            return
        try:
            async with asyncio.timeout(self.body_seconds):
                body = await self._body(receive)
        except TimeoutError:
            await _send_whole(send, 408, TIMEOUT_BODY, close=True)
            return
        if body is None:  # the client went away before its body was complete
            return
        loop = asyncio.get_running_loop()
        environ = wsgi_environ(scope, body)
        await loop.run_in_executor(self.executor, self._run, environ, send, loop)

    async def _body(self, receive) -> bytes | None:
        parts: list[bytes] = []
        kept = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            room = len(chunk) if self.body_limit is None else self.body_limit + 1 - kept
            if room > 0 and chunk:
                parts.append(chunk[:room])
                kept += min(len(chunk), room)
            if not message.get("more_body", False):
                return b"".join(parts)

    def _run(self, environ: dict, send, loop: asyncio.AbstractEventLoop) -> None:
        """In a pool thread: run the application, hand each piece of its answer to the loop and
        wait until the loop has taken it (the transport's flow control reaches the thread)."""

        def emit(message: dict) -> None:
            asyncio.run_coroutine_threadsafe(send(message), loop).result()

        head: dict = {}
        sent = False

        def start_response(status: str, headers, exc_info=None):
            if exc_info and sent:
                raise exc_info[1].with_traceback(exc_info[2])
            head["status"] = int(status.split(" ", 1)[0])
            # Django writes Set-Cookie values with a leading space; HTTP/1.1 allows none.
            head["headers"] = [
                (k.lower().encode("latin-1"), v.strip().encode("latin-1")) for k, v in headers
            ]
            return write

        def write(data: bytes) -> None:
            nonlocal sent
            if not sent:
                emit({"type": "http.response.start", **head})
                sent = True
            if data:
                emit({"type": "http.response.body", "body": data, "more_body": True})

        result = self.app(environ, start_response)
        try:
            for chunk in result:
                if chunk:
                    write(chunk)
            if not sent:
                emit({"type": "http.response.start", **head})
            emit({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


async def _send_whole(send, status: int, body: bytes, *, close: bool = False) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def wsgi_environ(scope: dict, body: bytes) -> dict:
    """PEP 3333's environ for an ASGI HTTP scope and its whole body."""
    server = scope.get("server") or ("127.0.0.1", 80)
    client = scope.get("client") or ("", 0)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode().decode("latin-1"),
        "PATH_INFO": scope["path"].encode().decode("latin-1"),
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "REMOTE_ADDR": client[0],
        "REMOTE_PORT": str(client[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        if "_" in name:  # X-Forwarded_For would pass for X-Forwarded-For (gunicorn drops these too)
            continue
        key = {"content-length": "CONTENT_LENGTH", "content-type": "CONTENT_TYPE"}.get(
            name, "HTTP_" + name.upper().replace("-", "_")
        )
        value = raw_value.decode("latin-1")
        if key in environ:
            value = environ[key] + ("; " if key == "HTTP_COOKIE" else ",") + value
        environ[key] = value
    return environ


application = Front(
    wsgi_application,
    threads=settings.MEDIC_FRONT_THREADS,
    body_limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
    body_seconds=settings.MEDIC_FRONT_BODY_SECONDS,
)
