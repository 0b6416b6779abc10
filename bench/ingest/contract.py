"""Check that the shortcuts of the ingest hot path change nothing but speed.

1. ``POST /v2/heartbeat/{service}`` is routed to the plain-Django function that
   ``HeartbeatCreate.as_view()`` returns; it hands anything unusual to the DRF view it wraps.
   The same requests go to both; status, headers, body (ids and times masked) and the metrics
   each one moved must be equal.
2. ``heartbeat_record`` stores a steady-state beat with one SQL statement; its general path
   locks the row and runs ``beat_apply``. Twin services (same configuration, both up) get the
   same beat, one through each; the resulting service rows, heartbeat rows and results must be
   equal, for a range of intervals and grace periods (the statement computes the deadline
   itself).

3. The WSGI ingest handler (heartbeats/ingest.py, mounted by ``medic.wsgi``) answers the lean
   view's requests without Django's URL resolution and unused middleware. The same requests go
   through it and through Django's own WSGI handler; status line, every header and the body
   must be equal, and the handler must have answered exactly the requests the lean view handles
   itself (the others are handed to Django). Every middleware of ``settings.MIDDLEWARE`` must
   be either in its list or in its list of middleware it leaves out, in the same order.

4. The group commit (heartbeats/groupcommit.py) stores a batch of steady-state beats with one
   statement. Twin services get the same beat, one through a batch, one through the
   one-statement ``heartbeat_record``; service rows, heartbeat rows and the answer's values
   must be equal.

5. The web front (medic/front.py) hands heartbeat requests to the ingest handler a batch at a
   time (``IngestHandler.answer_together``: one pass of the middleware to see which requests it
   lets through, their keys authenticated and their rate limits charged in one round trip, their
   beats stored with one statement, a second pass of the middleware with each outcome). Every
   request the front would batch goes through it alone and, at the end, all of them in one
   batch; each answer must equal Django's for the same request alone, and the metrics moved
   their sum.

Run by run.sh against the benchmark database before the load (its services are named
``contract-*``, so the benchmark's row check is unaffected); exits 1 on any difference.
"""

from __future__ import annotations

import io
import os
import re
import sys
from http import HTTPStatus
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medic.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.forms.models import model_to_dict  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402
from prometheus_client import REGISTRY  # noqa: E402

from heartbeats.api import HeartbeatCreate  # noqa: E402
from heartbeats.ingest import INGEST_MIDDLEWARE, NOT_FOR_INGEST, IngestHandler  # noqa: E402
from heartbeats.models import Service  # noqa: E402
from heartbeats.services import (  # noqa: E402
    beat_apply,
    heartbeat_record,
    service_create,
    service_get_active,
)
from medic import ratelimit  # noqa: E402
from medic.apikeys import api_key_create, key_cache  # noqa: E402
from medic.auth import presented_key_in  # noqa: E402
from medic.wsgi import django_application  # noqa: E402

HEADERS = ("Content-Type", "Allow", "WWW-Authenticate", "Vary", "Retry-After")
VOLATILE = ("id", "time", "next_deadline_at")
# (interval minutes, grace seconds) of the twin services parts 2 and 4 compare.
TWIN_CONFIGS = [(5, 0), (0.1, 0), (1 / 3, 7), (2.5, 30), (60, 0), (1440, 3600), (0.7, 1)]


def _masked(body: str) -> str:
    """A response body compared byte for byte, with ids and times masked."""
    for key in VOLATILE:
        body = re.sub(rf'"{key}":(\s*)("[^"]*"|\d+|null)', rf'"{key}":\1<{key}>', body)
    return body


def _service(name: str, active: bool) -> Service:
    found = Service.objects.filter(heartbeat_name=name).first()
    return found or service_create(heartbeat_name=name, alert_interval=60, active=active)


def _metrics() -> dict:
    wanted = {"medic_auth_failures_total", "medic_heartbeats_total", "medic_rate_limited_total"}
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for m in REGISTRY.collect()
        for s in m.samples
        if s.name in wanted
    }


def _fresh(spend: list[int]) -> dict:
    """Every path starts from the same state: key cache and rate-limit counters empty, except
    for the budgets a case spends on purpose (one request of each key id in ``spend``). Returns
    the metrics before the request, for ``_moved``."""
    key_cache.clear()
    ratelimit.backend().clear()
    for key_id in spend:
        ratelimit.hit("heartbeat", str(key_id), 1)
    return _metrics()


def _moved(before: dict) -> dict:
    after = _metrics()
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def _spent(spend: int | None) -> list[int]:
    return [] if spend is None else [spend]


def _call(view, request, service: str, spend: int | None) -> tuple[dict, dict]:
    before = _fresh(_spent(spend))
    response = view(request, service=service)
    if hasattr(response, "render"):
        response = response.render()
    moved = _moved(before)
    body = _masked(response.content.decode())
    headers = {h: response.get(h) for h in HEADERS}
    if headers["Retry-After"] is not None:
        headers["Retry-After"] = "<n>"
    shape = {"status": response.status_code, "headers": headers, "body": body}
    return shape, {"moved": moved}


def _wsgi(app, environ: dict, body: bytes, spend: int | None) -> tuple[dict, dict]:
    before = _fresh(_spent(spend))
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer.update(status=status, headers=sorted(headers))

    environ = dict(environ, **{"wsgi.input": io.BytesIO(body)})
    response = app(environ, start_response)
    try:
        raw = b"".join(response)
    finally:
        response.close()
    return _shape(answer["status"], answer["headers"], raw), {"moved": _moved(before)}


def _shape(status: str, headers: list[tuple[str, str]], raw: bytes) -> dict:
    """An answer as compared: status line, headers (sorted; values that vary masked), body."""

    def volatile(name: str, value: str) -> str:
        if name.lower() in ("retry-after", "x-ratelimit-reset"):
            return "<n>"
        if name.lower() == "content-length":  # the body's ids and times vary in length
            return "<length of the body>" if value == str(len(raw)) else value
        return value

    headers = [(name, volatile(name, value)) for name, value in sorted(headers)]
    return {"status": status, "headers": headers, "body": _masked(raw.decode())}


def _remaining(shape: dict, expected: str, alone: str) -> dict:
    """The shape with X-RateLimit-Remaining shown as alone when it is what the batch's order
    makes it (``expected``), else left as it is (a difference)."""
    headers = [
        (name, alone if name == "X-RateLimit-Remaining" and value == expected else value)
        for name, value in shape["headers"]
    ]
    return {**shape, "headers": headers}


def _together(route: IngestHandler, requests: list[tuple[dict, bytes]], spend: list[int]):
    """Part 5: requests answered together by the ingest handler, as the web front does."""
    before = _fresh(spend)
    environs = []
    for environ, body in requests:
        environ = dict(environ, **{"wsgi.input": io.BytesIO(body)})
        if not (route.eligible(environ) and route.takes(environ, body)):
            raise AssertionError(f"the front would not hand {environ['PATH_INFO']} to the batch")
        environs.append(environ)
    answers = route.answer_together(environs)
    moved = _moved(before)
    shapes = [
        _shape(f"{code} {HTTPStatus(code).phrase}", headers, raw) for code, headers, raw in answers
    ]
    return shapes, {"moved": moved}


def _twin(name: str, interval: float, grace: int) -> Service:
    """One of a pair of services with the same configuration, up (its first beat, new -> up,
    taken by the general path)."""
    service = Service.objects.filter(heartbeat_name=name).first() or service_create(
        heartbeat_name=name, alert_interval=interval, grace_period_seconds=grace
    )
    heartbeat_record(service_ref=service.pk)
    return service


def _record_paths() -> tuple[int, int]:
    """Part 2: the one-statement path against the general path, on twin services."""
    failures = 0
    configs = TWIN_CONFIGS
    at = timezone.now()
    for n, (interval, grace) in enumerate(configs):
        twins = [_twin(f"contract-{way}-{n}", interval, grace) for way in ("statement", "general")]
        with CaptureQueriesContext(connection) as queries:
            fast = heartbeat_record(
                service_ref=twins[0].heartbeat_name.upper(), status=" ok ", message="m", at=at
            )
        with transaction.atomic():
            locked = service_get_active(twins[1].pk)
            general_beat, _ = beat_apply(service=locked, now=at, status=" ok ", message="m")
        rows = []
        for service, beat in ((fast.service, fast.heartbeat), (locked, general_beat)):
            stored = Service.objects.get(pk=service.pk)
            volatile = ("id", "heartbeat_name", "service_name", "date_added", "date_modified")
            rows.append(
                {
                    "returned": {
                        k: v for k, v in model_to_dict(service).items() if k not in volatile
                    },
                    "stored": {k: v for k, v in model_to_dict(stored).items() if k not in volatile},
                    "beat": {
                        k: v
                        for k, v in model_to_dict(beat.__class__.objects.get(pk=beat.pk)).items()
                        if k not in ("id", "service")
                    },
                    "beat returned": (beat.time, beat.status, beat.message, beat.source),
                }
            )
        one_statement = len(queries) == 1 and queries[0]["sql"].lstrip().startswith("WITH")
        same = rows[0] == rows[1] and one_statement
        failures += not same
        label = f"interval {interval:g} min, grace {grace} s"
        print(f"  {'ok  ' if same else 'DIFF'} heartbeat_record {label}")
        if not same:
            print(f"       one statement: {one_statement} ({len(queries)} queries)")
            print(f"       statement: {rows[0]}")
            print(f"       general:   {rows[1]}")
    return len(configs), failures


def group_commit_paths() -> tuple[int, int]:
    """Part 4: one batch of the group commit against the one-statement path, on twin services."""
    from heartbeats.groupcommit import Batcher, _Pending
    from heartbeats.models import Heartbeat, HeartbeatSource

    failures = 0
    configs = TWIN_CONFIGS
    at = timezone.now()
    batch, twins = [], []
    for n, (interval, grace) in enumerate(configs):
        pair = [_twin(f"contract-gc-{path}-{n}", interval, grace) for path in ("batch", "single")]
        twins.append(pair)
        ref = str(pair[0].pk) if n % 2 else pair[0].heartbeat_name.upper()
        batch.append(_Pending(ref, "ok", f"m{n}", HeartbeatSource.V2, at))
    Batcher(max_batch=len(batch))._commit(batch)
    for n, ((batched, single), pending) in enumerate(zip(twins, batch, strict=True)):
        ref = str(single.pk) if n % 2 else single.heartbeat_name.upper()
        fast = heartbeat_record(service_ref=ref, status=" ok ", message=f"m{n}", at=at)
        rows = []
        volatile = ("id", "heartbeat_name", "service_name", "date_added", "date_modified")
        for service, beat_id, answer in (
            (
                batched,
                pending.result and pending.result.heartbeat_id,
                pending.result and (pending.result.service_status, pending.result.next_deadline_at),
            ),
            (single, fast.heartbeat.pk, (fast.service.status, fast.service.next_deadline_at)),
        ):
            stored = Service.objects.get(pk=service.pk)
            beat = Heartbeat.objects.filter(pk=beat_id).first()
            rows.append(
                {
                    "stored": {k: v for k, v in model_to_dict(stored).items() if k not in volatile},
                    "beat": beat
                    and {
                        k: v for k, v in model_to_dict(beat).items() if k not in ("id", "service")
                    },
                    "answer": answer,
                }
            )
        same = pending.error is None and rows[0] == rows[1]
        failures += not same
        interval, grace = configs[n]
        mark = "ok  " if same else "DIFF"
        print(f"  {mark} group commit interval {interval:g} min, grace {grace} s")
        if not same:
            print(f"       batch:  {rows[0]} {pending.error!r}")
            print(f"       single: {rows[1]}")
    return len(configs), failures


def main() -> int:
    # Every case runs at the same instant: the answers (X-RateLimit-Remaining, Retry-After) must
    # not depend on when the check runs, only on what each case spent.
    frozen = ratelimit.now()
    ratelimit.configure(clock=lambda: frozen)
    try:
        return _main()
    finally:
        ratelimit.configure()


def _main() -> int:
    active = _service("contract-active", True)
    _service("contract-inactive", False)
    writer = api_key_create(name="contract writer", scopes=["write"], actor="bench").secret
    reader = api_key_create(name="contract reader", scopes=["read"], actor="bench").secret
    limited = api_key_create(
        name="contract limited", scopes=["write"], rate_limits={"heartbeat": 1}, actor="bench"
    )
    spent = limited.secret
    bad = writer[:-4] + ("aaaa" if not writer.endswith("aaaa") else "bbbb")
    factory = RequestFactory()
    lean = HeartbeatCreate.as_view()
    drf = lean.__wrapped__

    j = "application/json"
    cases = [
        # name, service, body, content type, extra headers
        ("no body", "contract-active", b"", None, {}),
        ("empty object", "contract-active", b"{}", j, {}),
        ("status and message", "contract-active", b'{"status":"DOWN","message":"m"}', j, {}),
        ("whitespace trimmed", "contract-active", b'{"status":"  ok ","message":" x "}', j, {}),
        ("unicode", "contract-active", '{"message":"h\u00e9 \u2028"}'.encode(), j, {}),
        ("charset param", "contract-active", b"{}", "application/json; charset=utf-8", {}),
        ("by id", str(active.pk), b"{}", j, {}),
        ("case-insensitive name", "CONTRACT-Active", b"{}", j, {}),
        ("numeric status", "contract-active", b'{"status":5}', j, {}),
        ("blank status", "contract-active", b'{"status":"  "}', j, {}),
        ("null status", "contract-active", b'{"status":null}', j, {}),
        ("long status", "contract-active", b'{"status":"' + b"x" * 33 + b'"}', j, {}),
        ("long message", "contract-active", b'{"message":"' + b"x" * 1001 + b'"}', j, {}),
        ("nul character", "contract-active", b'{"message":"a\\u0000"}', j, {}),
        ("surrogate", "contract-active", b'{"message":"a\\ud800"}', j, {}),
        ("list body", "contract-active", b"[1]", j, {}),
        ("malformed JSON", "contract-active", b"{nope", j, {}),
        ("NaN", "contract-active", b'{"status":"UP","x":NaN}', j, {}),
        ("text/plain", "contract-active", b"{}", "text/plain", {}),
        ("no content type", "contract-active", b"{}", "", {}),
        ("Accept html", "contract-active", b"{}", j, {"HTTP_ACCEPT": "text/html"}),
        ("Accept indent", "contract-active", b"{}", j, {"HTTP_ACCEPT": j + "; indent=2"}),
        ("Accept any", "contract-active", b"{}", j, {"HTTP_ACCEPT": "*/*"}),
        ("host not allowed", "contract-active", b"{}", j, {"HTTP_HOST": "medic.evil.example"}),
        ("unknown service", "contract-nope", b"{}", j, {}),
        ("inactive service", "contract-inactive", b"{}", j, {}),
        ("no key", "contract-active", b"{}", j, {"key": None}),
        ("wrong key", "contract-active", b"{}", j, {"key": bad}),
        ("malformed key", "contract-active", b"{}", j, {"key": "nope"}),
        ("basic auth", "contract-active", b"{}", j, {"HTTP_AUTHORIZATION": "Basic eDp5"}),
        ("read scope", "contract-active", b"{}", j, {"key": reader}),
        ("X-API-Key", "contract-active", b"{}", j, {"key": None, "HTTP_X_API_KEY": writer}),
        ("no key, bad body", "contract-active", b"{nope", j, {"key": None}),
        ("rate limited", "contract-active", b"{}", j, {"key": spent, "spend": limited.key.pk}),
    ]
    failures = 0
    kept = [m for m in settings.MIDDLEWARE if m not in NOT_FOR_INGEST]
    if kept != list(INGEST_MIDDLEWARE):
        print(f"  DIFF middleware: settings keep {kept}, the ingest handler {INGEST_MIDDLEWARE}")
        failures += 1
    available = IngestHandler.available()
    if not available:
        print("  DIFF the heartbeat URL is not the lean heartbeat view: no ingest handler")
        failures += 1
    handed: list[str] = []

    def to_django(environ, start_response):  # counts the requests the handler hands over
        handed.append(environ["PATH_INFO"])
        return django_application(environ, start_response)

    route = IngestHandler(fallback=to_django)
    together: list[tuple] = []  # part 5: the requests the web front would answer in batches
    total = 0
    for name, service, body, ctype, extra in cases:
        extra = dict(extra)
        key = extra.pop("key", writer)
        spend = extra.pop("spend", None)
        if key is not None:
            extra.setdefault("HTTP_AUTHORIZATION", f"Bearer {key}")
        results = []
        for view in (lean, drf):
            request = factory.post(
                f"/v2/heartbeat/{service}",
                data=body,
                content_type=ctype or "application/octet-stream",
                **extra,
            )
            if not ctype:
                request.META.pop("CONTENT_TYPE", None)
            results.append(_call(view, request, service, spend))
        (lean_shape, lean_info), (drf_shape, drf_info) = results
        same = lean_shape == drf_shape and lean_info["moved"] == drf_info["moved"]
        # Part 3: the WSGI route against Django's handler.
        environ = {k: v for k, v in request.META.items() if k != "wsgi.input"}
        takes_lean = (
            HeartbeatCreate.lean_request(request.META)
            and HeartbeatCreate.lean_fields(request.META, body) is not None
        )
        handed.clear()
        route_shape, route_info = _wsgi(route, environ, body, spend)
        django_shape, django_info = _wsgi(django_application, environ, body, spend)
        route_same = (
            route_shape == django_shape
            and route_info["moved"] == django_info["moved"]
            and (len(handed) == 0) == takes_lean
        )
        # Part 5: alone in a batch of the web front, against Django's handler.
        batch_same = True
        if takes_lean:
            (batch_shape,), batch_info = _together(route, [(environ, body)], _spent(spend))
            batch_same = batch_shape == django_shape and batch_info["moved"] == django_info["moved"]
            together.append((name, environ, body, spend, django_shape, django_info["moved"]))
            total += 1
        failures += not same
        failures += not route_same
        failures += not batch_same
        mark = "ok  " if same and route_same and batch_same else "DIFF"
        how = "route, batch" if takes_lean else "django"
        print(f"  {mark} {lean_shape['status']} {name} (WSGI: {how})")
        if not same:
            print(f"       lean: {lean_shape} {lean_info}")
            print(f"       drf:  {drf_shape} {drf_info}")
        if not route_same:
            print(f"       route ({len(handed)} handed over): {route_shape} {route_info}")
            print(f"       django: {django_shape} {django_info}")
        if not batch_same:
            print(f"       batch: {batch_shape} {batch_info}")
            print(f"       django: {django_shape} {django_info}")
    # Part 5, all at once: every request the front would batch, in one batch (several beats for
    # one service among them): each answer as Django's alone, the metrics moved as their sum.
    shapes, info = _together(
        route,
        [(environ, body) for _, environ, body, *_ in together],
        [spend for _, _, _, spend, _, _ in together if spend is not None],
    )
    summed: dict = {}
    for *_, moved in together:
        for k, v in moved.items():
            summed[k] = summed.get(k, 0) + v
    # One budget per key, charged in the batch's order: a key's n-th request in the batch sees
    # n requests spent (alone, each saw one), the rest of its answer as alone.
    spent: dict[str, int] = {}
    for (name, environ, *_, django_shape, _), shape in zip(together, shapes, strict=True):
        presented = presented_key_in(environ)
        limit = dict(shape["headers"]).get("X-RateLimit-Limit")
        if limit is not None and shape["status"] != "429 Too Many Requests":
            spent[presented] = spent.get(presented, 0) + 1
            alone = dict(django_shape["headers"])
            expected = int(alone["X-RateLimit-Remaining"]) + 1 - spent[presented]
            shape = _remaining(shape, str(expected), alone["X-RateLimit-Remaining"])
        if shape != django_shape:
            print(f"  DIFF {name} in one batch of {len(together)}: {shape}")
            print(f"       django: {django_shape}")
            failures += 1
    if info["moved"] != summed:
        print(f"  DIFF metrics of one batch of {len(together)}: {info['moved']}, alone: {summed}")
        failures += 1
    print(f"  {'ok  ' if failures == 0 else 'DIFF'} {len(together)} requests in one batch")
    total += len(together) + 1
    checked, record_failures = _record_paths()
    total += 2 * len(cases) + checked
    failures += record_failures
    checked, batch_failures = group_commit_paths()
    total += checked
    failures += batch_failures
    print(f"{total - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
