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


class SlackFake(FakeServer):
    """Slack's Web API as approvals use it: auth.test names the bot; chat.postMessage and
    chat.update echo the message with a channel and ts (chat.update of a ts it never posted is
    ``message_not_found``, as Slack answers); users.info answers for the users a test registers
    (else ``ok: false, user_not_found``); a wrong token is ``invalid_auth``; anything else (a
    ``response_url``) is ``ok``. ``fail_next`` queues Slack's refusals for a method."""

    def __init__(self, token: str = "xoxb-test") -> None:
        self.token = token
        self.users: dict[str, dict] = {}
        self._ts = 0
        self._ts_lock = threading.Lock()
        self._posted: set[tuple[str, str]] = set()
        self._failures: list[tuple[str, int, str, dict]] = []
        super().__init__(self._reply)

    def fail_next(self, method: str, error: str, status: int = 200, **headers: str) -> SlackFake:
        """Answer the next call of ``method`` with this refusal, e.g.
        ``fail_next("chat.update", "ratelimited", 429, **{"Retry-After": "1"})``."""
        self._failures.append((method, status, error, headers))
        return self

    def _reply(self, received: Received) -> Reply:
        method = received.path.split("?")[0].rsplit("/", 1)[-1]
        with self._ts_lock:
            failure = next((f for f in self._failures if f[0] == method), None)
            if failure is not None:
                self._failures.remove(failure)
        if failure is not None:
            _, status, error, headers = failure
            body = json.dumps({"ok": False, "error": error}).encode()
            return Reply(status, body, headers=dict(headers))
        status, body = self._answer(received)
        return Reply(status, body)

    def calls(self, method: str) -> list[Received]:
        return [r for r in self.requests if r.path.split("?")[0].endswith("/" + method)]

    def _answer(self, received: Received) -> tuple[int, bytes]:
        from urllib.parse import parse_qs, urlsplit

        path = urlsplit(received.path)
        method = path.path.rsplit("/", 1)[-1]
        if method not in ("chat.postMessage", "chat.update", "users.info", "auth.test"):
            return 200, b"ok"
        if received.headers.get("Authorization") != f"Bearer {self.token}":
            return 200, json.dumps({"ok": False, "error": "invalid_auth"}).encode()
        if method == "auth.test":
            identity = {"user_id": "UMEDIC", "bot_id": "BMEDIC", "team_id": "T1", "user": "medic"}
            return 200, json.dumps({"ok": True, **identity}).encode()
        if "json" in received.headers.get("Content-Type", ""):
            args = json.loads(received.body or b"{}")
        else:
            query = parse_qs(path.query)
            query.update(parse_qs(received.body.decode()))
            args = {k: v[0] for k, v in query.items()}
        if method == "users.info":
            user = self.users.get(args.get("user", ""))
            if user is None:
                return 200, json.dumps({"ok": False, "error": "user_not_found"}).encode()
            return 200, json.dumps({"ok": True, "user": user}).encode()
        if not args.get("channel"):
            return 200, json.dumps({"ok": False, "error": "channel_not_found"}).encode()
        if method == "chat.postMessage":
            with self._ts_lock:
                self._ts += 1
                ts = f"1700000000.{self._ts:06d}"
                self._posted.add((args["channel"], ts))
        else:
            ts = args.get("ts", "")
            if (args["channel"], ts) not in self._posted:
                return 200, json.dumps({"ok": False, "error": "message_not_found"}).encode()
        message = {"text": args.get("text"), "blocks": args.get("blocks"), "ts": ts}
        return 200, json.dumps(
            {"ok": True, "channel": args["channel"], "ts": ts, "message": message}
        ).encode()
