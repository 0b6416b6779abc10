"""Driver for bench/remediation/run.sh: seed services and a playbook, run one sweep, follow the
executions to the end, print the figures."""

from __future__ import annotations

import argparse
import os
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medic.settings")
django.setup()

from django.db import transaction  # noqa: E402
from django.db.models import Max, Min  # noqa: E402
from django.utils import timezone  # noqa: E402

from heartbeats.models import Service  # noqa: E402
from heartbeats.sweep import sweep  # noqa: E402
from medic.events.consumers import events_dispatch  # noqa: E402
from remediation.playbooks.models import Execution, ExecutionStep  # noqa: E402
from remediation.playbooks.services import playbook_save  # noqa: E402

PLAYBOOK = """\
name: bench-restart
max_concurrent: {limit}
trigger: {{service_pattern: "bench-*"}}
steps:
  - name: restart
    type: webhook
    url: "{url}/restart"
    body: {{service: "${{SERVICE_NAME}}", alert: "${{ALERT_ID}}"}}
  - name: notify
    type: webhook
    url: "{url}/notify"
    body: {{service: "${{SERVICE_NAME}}", restart: "${{STEPS.restart.status_code}}"}}
"""


class Counter(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    calls = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with Counter.lock:
            Counter.calls += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("BENCH_TIMEOUT", 0)))
    args = parser.parse_args()
    # Ten minutes, or a second per service on a slow or busy machine, whichever is longer.
    args.timeout = args.timeout or max(600.0, float(args.services))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Counter)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    playbook_save(document=PLAYBOOK.format(url=url, limit=min(10000, args.services)), actor="bench")
    past = timezone.now() - timedelta(minutes=5)
    Service.objects.bulk_create(
        Service(
            heartbeat_name=f"bench-{i:05d}",
            service_name=f"bench-{i:05d}",
            alert_interval=1,
            status="up",
            last_heartbeat_at=past,
            next_deadline_at=past,
        )
        for i in range(args.services)
    )
    started = time.monotonic()
    t0 = timezone.now()
    sweep()
    swept = time.monotonic() - started
    print(
        f"sweep: {swept:.2f} s (marks {args.services} services down; alerts follow from the events)"
    )
    # Domain events are consumed by the workers (dispatch tasks); this process helps too so a
    # slow broker does not skew the figure.
    deadline = started + args.timeout
    first_done = None
    next_report = started + 30
    while time.monotonic() < deadline:
        events_dispatch()
        with transaction.atomic():
            count = Execution.objects.count()
            firsts = ExecutionStep.objects.filter(position=0, finished_at__isnull=False).count()
            finished = Execution.objects.filter(state__in=["completed", "failed"]).count()
        if first_done is None and firsts >= args.services:
            first_done = time.monotonic() - started
        if finished >= args.services:
            break
        if time.monotonic() >= next_report:
            next_report = time.monotonic() + 30
            print(
                f"  {time.monotonic() - started:.0f} s: {count} started, {firsts} first steps "
                f"done, {finished} finished",
                flush=True,
            )
        time.sleep(0.2)
    total = time.monotonic() - started
    steps = ExecutionStep.objects.filter(finished_at__isnull=False)
    span = steps.aggregate(a=Min("started_at"), b=Max("finished_at"))
    step_seconds = (span["b"] - span["a"]).total_seconds() if span["a"] else 0
    starts = Execution.objects.aggregate(a=Min("created_at"), b=Max("created_at"))
    print(
        f"executions started: {count} / {args.services} "
        f"(last one {(starts['b'] - t0).total_seconds():.2f} s after the sweep began)"
        if starts["b"]
        else f"executions started: {count}"
    )
    print(
        f"every first webhook step finished: {first_done:.2f} s after the sweep began"
        if first_done
        else "first steps: unfinished"
    )
    print(f"every execution finished: {total:.2f} s ({finished} / {args.services})")
    print(f"steps finished: {steps.count()}, receiver calls: {Counter.calls}")
    if step_seconds:
        print(
            f"step throughput: {steps.count() / step_seconds:.0f} steps/s "
            f"(first step start to last step end, {step_seconds:.2f} s)"
        )
    if finished < args.services:
        raise SystemExit("not every execution finished within the timeout")


if __name__ == "__main__":
    main()
