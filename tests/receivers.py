"""Real HTTP servers on 127.0.0.1 that stand in for Slack, PagerDuty and webhook receivers.

They record every request and answer from a script of responses (then a default), so tests can
make a receiver fail twice and then succeed, answer slowly, or refuse.
"""

from __future__ import annotations

import json
import threading
import time
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


class Receiver:
    def __init__(self, *, default_status: int = 200, default_body: bytes = b"{}") -> None:
        self.requests: list[Received] = []
        self.script: list[tuple[int, bytes, float]] = []
        self.default = (default_status, default_body, 0.0)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with receiver._cond:
                    receiver.requests.append(
                        Received(self.command, self.path, dict(self.headers.items()), body)
                    )
                    status, payload, delay = (
                        receiver.script.pop(0) if receiver.script else receiver.default
                    )
                    receiver._cond.notify_all()
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def respond(self, status: int, body: bytes = b"{}", delay: float = 0.0) -> Receiver:
        """Queue one scripted response (used before the default)."""
        with self._lock:
            self.script.append((status, body, delay))
        return self

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} request(s) at {self.url}, got {len(self.requests)}"
                    )
                self._cond.wait(remaining)
            return list(self.requests)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
