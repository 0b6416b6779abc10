"""Real HTTP servers on 127.0.0.1 that stand in for Slack, PagerDuty and webhook receivers.

They record every request. ``Receiver`` answers from a script of responses (then a default), so
tests can make a receiver fail twice and then succeed, answer slowly, or refuse; ``FakeServer``
answers from a function (tests/fakes.py builds Slack and PagerDuty on it).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)

    def json(self):
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes | Callable[[], object] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_type: str = "application/json"


class FakeServer:
    """A real HTTP server on 127.0.0.1 whose answers come from ``handle(request) -> Reply``.
    A reply whose body is a callable streams what the callable yields (chunked), for as long as
    the client reads."""

    def __init__(self, handle: Callable[[Received], Reply]) -> None:
        self.requests: list[Received] = []
        self.reply_sizes: list[int] = []
        self.handle = handle
        self._cond = threading.Condition()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                received = Received(self.command, self.path, dict(self.headers.items()), body)
                reply = fake.handle(received)
                with fake._cond:
                    fake.requests.append(received)
                    fake.reply_sizes.append(-1 if callable(reply.body) else len(reply.body))
                    fake._cond.notify_all()
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if callable(reply.body):
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        for chunk in reply.body():
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.write(b"0\r\n\r\n")
                    else:
                        self.send_header("Content-Length", str(len(reply.body)))
                        self.end_headers()
                        self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client stopped reading: its choice

            do_POST = do_GET = do_PUT = do_PATCH = _serve

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} request(s), got {len(self.requests)}")
                self._cond.wait(remaining)
            return list(self.requests)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


class Receiver(FakeServer):
    """Answers from a script of responses (then a default)."""

    def __init__(self, *, default_status: int = 200, default_body: bytes = b"{}") -> None:
        self.script: list[tuple[int, bytes, float]] = []
        self.default = (default_status, default_body, 0.0)
        self._script_lock = threading.Lock()
        super().__init__(self._next)

    def _next(self, request: Received) -> Reply:
        with self._script_lock:
            status, payload, delay = self.script.pop(0) if self.script else self.default
        return Reply(status, payload, delay=delay)

    def respond(self, status: int, body: bytes = b"{}", delay: float = 0.0) -> Receiver:
        """Queue one scripted response (used before the default)."""
        with self._script_lock:
            self.script.append((status, body, delay))
        return self
