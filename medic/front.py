"""Medic's web front, in production and in the embedded mode: an event loop reads each request
whole; heartbeats are answered a batch at a time, every other request by a thread.

Served by uvicorn (its event loop and C HTTP parser): in production by gunicorn's uvicorn
workers (deploy/gunicorn.conf.py, medic/webworker.py), in the embedded mode by
``medic.webserve`` (``make run``).

**Whole requests.** Under a threaded WSGI server a request takes a thread as soon as its headers
arrive, and the body is read by that thread: a client that sends its headers and then trickles
(or stalls) its body holds the thread for as long as it likes (seven such clients once left
``make run``'s eight threads to nobody, the health probe included). Here the event loop accepts
connections and reads requests, headers and body, at no cost but a buffer; what a buffering
proxy does, in the same process:

- a body is kept up to ``DATA_UPLOAD_MAX_MEMORY_SIZE`` plus one byte (enough for the application
  to refuse a longer one with its 413 envelope); the rest is read and dropped;
- a body must arrive whole within ``MEDIC_FRONT_BODY_SECONDS``, else 408 in the error envelope
  and the connection is closed.

**Heartbeats** that the ingest handler takes (heartbeats/ingest.py: ``POST /v2/heartbeat/...``
with an API key and a plain JSON body) are answered a batch at a time (``Heartbeats``): the loop
gathers them while ``MEDIC_INGEST_THREADS`` threads answer the batches before
(``IngestHandler.answer_together``: the middleware, authentication and rate limits of each
request, their beats stored with one statement), and sends each answer itself. One hand-off to a
thread per batch rather than two per request, and the batches grow with the load: this is what
takes ingest past 2,000 heartbeats/s on two cores (docs/performance.md).

**Every other request** is handed, complete, to one of ``MEDIC_FRONT_THREADS`` threads, which
runs Medic's WSGI application (``medic.wsgi``: body framing, the heartbeat route, Django); the
response goes back as the application produces it, with the event loop's flow control (a
streamed export is not gathered in memory), and the application's ``close()`` runs (Django ends
the request there: database connections, the ``request_finished`` signal).
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from django.conf import settings

from medic.wsgi import application as wsgi_application  # configures the settings
from medic.wsgi import ingest as ingest_handler

if TYPE_CHECKING:
    from heartbeats.ingest import IngestHandler

logger = logging.getLogger(__name__)

TIMEOUT_BODY = json.dumps(
    {
        "error": {
            "code": "request_timeout",
            "message": "The request body did not arrive in time.",
            "fields": {},
        }
    }
).encode()


INTERNAL_BODY = json.dumps(
    {
        "error": {
            "code": "internal",
            "message": "Internal server error; it has been logged.",
            "fields": {},
        }
    }
).encode()


class Front:
    """An ASGI application running a WSGI application on a thread pool, complete requests only;
    heartbeats, when an ingest handler is given, a batch at a time on threads of their own."""

    def __init__(
        self,
        app,
        *,
        threads: int,
        body_limit: int | None,
        body_seconds: float,
        ingest: IngestHandler | None = None,
        batch_max: int = 128,
        batch_threads: int = 1,
    ) -> None:
        self.app = app
        self.body_limit = body_limit
        self.body_seconds = body_seconds
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="medic-web")
        self.ingest = ingest
        self.heartbeats = None if ingest is None else Heartbeats(ingest, batch_max, batch_threads)

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
        if self.heartbeats is not None and self._heartbeat(environ, body):
            status, headers, content = await self.heartbeats.answer(environ)
            await send(
                {"type": "http.response.start", "status": status, "headers": asgi_headers(headers)}
            )
            await send({"type": "http.response.body", "body": content, "more_body": False})
            return
        await loop.run_in_executor(self.executor, self._run, environ, send, loop)

    def _heartbeat(self, environ: dict, body: bytes) -> bool:
        """Whether the ingest handler answers this request (read whole, its length known)."""
        return (
            "HTTP_TRANSFER_ENCODING" not in environ
            and self.ingest.eligible(environ)
            and self.ingest.takes(environ, body)
        )

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
            head["headers"] = asgi_headers(headers)
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


class Heartbeats:
    """The heartbeat requests of this process, answered a batch at a time.

    The event loop collects the requests the ingest handler takes; a thread answers them
    together (``IngestHandler.answer_together``: their beats stored with one statement, each
    answered after that commit) while the loop collects the next ones. A lone request waits for
    nobody (a free thread takes it at once); under load, batches grow with what arrives while
    the threads are busy, up to ``batch_max``. With ``threads`` of them, a batch is prepared
    while another waits for its commit. One hand-off to a thread per batch, none per request,
    and the answers are sent by the loop itself.
    """

    def __init__(self, ingest: IngestHandler, batch_max: int, threads: int = 1) -> None:
        self.ingest = ingest
        self.batch_max = batch_max
        self.threads = threads
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="medic-ingest")
        self.waiting: list[tuple[dict, asyncio.Future]] = []
        self.busy = 0

    def answer(self, environ: dict) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting.append((environ, future))
        if self.busy < self.threads and len(self.waiting) == 1:
            # At the end of this turn of the loop: the requests read in the same turn go too.
            self.busy += 1
            loop.call_soon(self._next, loop)
        return future

    def _next(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self.waiting = self.waiting[: self.batch_max], self.waiting[self.batch_max :]
        environs = [environ for environ, _ in batch]
        done = loop.run_in_executor(self.executor, self.ingest.answer_together, environs)
        done.add_done_callback(functools.partial(self._answered, loop, batch))

    def _answered(self, loop, batch: list[tuple[dict, asyncio.Future]], done) -> None:
        try:
            answers = done.result()
        except Exception:  # outside any request's own handling: a defect; answered 500
            logger.exception("heartbeat batch of %d failed", len(batch))
            internal = (500, [("Content-Type", "application/json")], INTERNAL_BODY)
            answers = [internal] * len(batch)
        for (_, future), answer in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(answer)
        if self.waiting:
            self._next(loop)
        else:
            self.busy -= 1


def asgi_headers(headers) -> list[tuple[bytes, bytes]]:
    # Django writes Set-Cookie values with a leading space; HTTP/1.1 allows none.
    return [(k.lower().encode("latin-1"), v.strip().encode("latin-1")) for k, v in headers]


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
    ingest=ingest_handler,
    batch_max=settings.MEDIC_INGEST_BATCH_MAX,
    batch_threads=settings.MEDIC_INGEST_THREADS,
)
