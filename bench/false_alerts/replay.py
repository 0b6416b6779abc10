"""Replay a simulated month through Medic's real heartbeat path and real sweep (see README.md).

Run by run.sh with a throwaway database:
    python bench/false_alerts/replay.py [--services 1000] [--days 30] [--seed 1]
                                        [--start 2026-03-01] [--workers 2] [--verbose]

Clock. Simulated time is an integer (microseconds). Beats are events, in time order per service;
the sweep runs on the 5-second grid (start + k * SWEEP_TICK_SECONDS, the interval
of the `medic: sweep for missed heartbeats` periodic task) only at ticks
where something can happen: the first tick at or after the earliest deadline of any service
that can go down (Medic's own next_deadline_at, as heartbeat_record returned it), the first tick
after a service recovered, every maintenance window boundary, and once an hour regardless.
Beats at or before a tick are applied before the sweep of that tick. The real
``heartbeats.sweep.sweep(now=tick)`` decides; a check after every sweep makes sure no service
that can go down is left past its deadline (that would be a Medic bug, reported as such).

Workers. Services are split over worker processes that apply beats concurrently between two
sweeps. A worker applies a beat only if its time is at or before both the next planned sweep
and the first tick at which one of its own services is due; the coordinator then sweeps at the
earliest of the points where the workers stopped. Beats of other services that a worker applied
past that point cannot change what the sweep decides: deadlines only move later on a beat, and
every one of that worker's services was due after the point when the beat was applied.
"""

from __future__ import annotations

import argparse
import heapq
import multiprocessing
import os
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medic.settings")

import django

django.setup()

import model as m  # noqa: E402
from django.db import connections  # noqa: E402

from alerting.models import Alert, AlertState  # noqa: E402
from alerting.sweep import alerting_sweep  # noqa: E402
from heartbeats.deadlines import deadline_compute  # noqa: E402
from heartbeats.maintenance import window_create  # noqa: E402
from heartbeats.models import ScheduleKind, Service, ServiceStatus  # noqa: E402
from heartbeats.services import heartbeat_record, service_create  # noqa: E402
from heartbeats.sweep import sweep  # noqa: E402
from medic.events.consumers import events_dispatch  # noqa: E402

DUEABLE = {ServiceStatus.NEW, ServiceStatus.UP}
FOREVER = 2**62
# The interval of the `medic: sweep for missed heartbeats` periodic task (a migration creates it).
SWEEP_TICK_SECONDS = 5


def ceil_tick(instant: int, start: int, tick: int) -> int:
    if instant <= start:
        return start
    return start + -(-(instant - start) // tick) * tick


# --- Setup ---------------------------------------------------------------------------------------


def create_services(scenario: m.Scenario) -> dict[int, int]:
    """Register every service through service_create, then move its registration to the start
    of the simulated period and recompute its first deadline with deadline_compute."""
    pks: dict[int, int] = {}
    for spec in scenario.services:
        fields = {
            "heartbeat_name": spec.name,
            "team": spec.team,
            "grace_period_seconds": spec.grace_us // m.SECOND,
            "threshold": spec.threshold,
        }
        if spec.kind == "cron":
            fields |= {
                "schedule_kind": ScheduleKind.CRON,
                "cron_expression": spec.cron,
                "schedule_timezone": spec.zone,
            }
        else:
            fields |= {
                "schedule_kind": ScheduleKind.AT_LEAST
                if spec.kind == "at_least"
                else ScheduleKind.INTERVAL,
                "alert_interval": spec.alert_interval,
            }
        pks[spec.index] = service_create(actor="bench", **fields).pk
    start = m.to_dt(scenario.start)
    Service.objects.update(date_added=start, date_modified=start)
    services = list(Service.objects.all())
    for service in services:
        service.next_deadline_at = deadline_compute(service=service, nth_recent_at=None)
    Service.objects.bulk_update(services, ["next_deadline_at"], batch_size=500)
    return pks


def create_windows(scenario: m.Scenario, pks: dict[int, int]) -> None:
    for window in scenario.windows:
        fields = {"name": window.name, "scope": window.scope, "notify": False}
        if window.cron:
            fields |= {
                "cron_expression": window.cron,
                "duration_minutes": window.duration_us // m.MINUTE,
                "time_zone": window.zone,
            }
        else:
            fields |= {"starts_at": m.to_dt(window.starts_at), "ends_at": m.to_dt(window.ends_at)}
        if window.scope == "team":
            fields["team"] = window.team
        if window.scope == "pattern":
            fields["pattern"] = window.pattern
        services = None
        if window.scope == "services":
            services = list(Service.objects.filter(pk__in=[pks[i] for i in window.members]))
        window_create(actor="bench", services=services, **fields)


# --- Workers -------------------------------------------------------------------------------------


class Shard:
    """The services of one worker: their beats, Medic's view of their deadlines, the checks."""

    def __init__(self, scenario: m.Scenario, specs, pks, seed: int):
        self.scenario = scenario
        self.specs = {s.index: s for s in specs}
        self.pk = {s.index: pks[s.index] for s in specs}
        self.index_of = {pk: i for i, pk in self.pk.items()}
        self.beats: dict[int, list[m.Beat]] = {}
        self.outages: list[m.Outage] = []
        self.outage_at: dict[tuple[int, int], m.Outage] = {}
        self.expect: dict[int, m.Expect] = {}
        for spec in specs:
            beats, outages = m.plan(scenario, spec, seed)
            self.beats[spec.index] = beats
            self.outages += outages
            for outage in outages:
                self.outage_at[(spec.index, outage.last_index)] = outage
            table = None
            if spec.kind == "cron":
                table = m.fire_table(spec.cron, spec.zone, scenario.start, scenario.end + 8 * m.DAY)
            self.expect[spec.index] = m.Expect(spec, scenario.start, table)
        self.outages_of: dict[int, list[m.Outage]] = {}
        for outage in self.outages:
            self.outages_of.setdefault(outage.service, []).append(outage)
        self.position = dict.fromkeys(self.specs, 0)
        self.queue = [(b[0].at, i) for i, b in self.beats.items() if b]
        heapq.heapify(self.queue)
        self.deadline: dict[int, int] = {}
        self.status: dict[int, str] = {}
        self.due: list[tuple[int, int]] = []
        self.parked: set[int] = set()
        self.sent = Counter()
        self.kind_seconds = Counter()
        self.disagreements: list[tuple] = []
        self.disagreement_count = 0
        self.medic_deadline_at_outage: dict[tuple[int, int], int] = {}
        self.seconds_in_beats = 0.0

    def load(self, indexes=None) -> None:
        """Medic's deadline and status of (some of) the services, from the database."""
        pks = [self.pk[i] for i in (indexes if indexes is not None else self.specs)]
        rows = Service.objects.filter(pk__in=pks).values_list("pk", "next_deadline_at", "status")
        for pk, deadline, status in rows:
            self.track(self.index_of[pk], m.to_us(deadline) if deadline else FOREVER, status)

    def track(self, index: int, deadline: int, status: str) -> None:
        self.deadline[index] = deadline
        self.status[index] = status
        if status in DUEABLE and index not in self.parked:
            heapq.heappush(self.due, (deadline, index))

    def due_tick(self) -> int:
        """The first sweep tick at which one of these services is overdue (per Medic's data)."""
        while self.due:
            deadline, index = self.due[0]
            if (
                self.deadline[index] == deadline
                and self.status[index] in DUEABLE
                and index not in self.parked
            ):
                return ceil_tick(deadline, self.scenario.start, self.scenario.tick_us)
            heapq.heappop(self.due)
        return FOREVER

    def advance(self, limit: int) -> tuple[int, list[int]]:
        """Apply beats in time order while they are at or before ``limit`` and before the first
        tick at which one of these services is due. Returns that tick and the recovery times."""
        recovered = []
        started = time.monotonic()
        due = self.due_tick()
        while self.queue and self.queue[0][0] <= min(limit, due):
            at, index = heapq.heappop(self.queue)
            position = self.position[index]
            beat = self.beats[index][position]
            self.position[index] = position + 1
            if position + 1 < len(self.beats[index]):
                heapq.heappush(self.queue, (self.beats[index][position + 1].at, index))
            kind = self.specs[index].kind
            clock = time.perf_counter()
            result = heartbeat_record(service_ref=self.pk[index], at=m.to_dt(at))
            self.kind_seconds[kind] += time.perf_counter() - clock
            service = result.service
            self.sent[kind] += 1
            deadline = m.to_us(service.next_deadline_at)
            expected = self.expect[index].after(beat)
            if deadline != expected:
                self.disagreement_count += 1
                if len(self.disagreements) < 25:
                    self.disagreements.append((index, at, beat.fire, expected, deadline))
            if (index, position) in self.outage_at:
                self.medic_deadline_at_outage[(index, position)] = deadline
            self.parked.discard(index)
            self.track(index, deadline, service.status)
            if result.recovered:
                recovered.append(at)
                for outage in self.outages_of.get(index, []):
                    if outage.begins <= at and outage.recovered_at is None:
                        outage.recovered_at = at
            due = self.due_tick()
        self.seconds_in_beats += time.monotonic() - started
        return due, recovered

    def mark_down(self, indexes) -> None:
        for index in indexes:
            self.status[index] = ServiceStatus.DOWN

    def park(self, indexes) -> None:
        """Services Medic left past their deadline after a sweep: watched again on next beat."""
        self.parked.update(indexes)


def worker_main(conn, scenario, specs, pks, seed) -> None:
    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
        try:
            _worker(conn, scenario, specs, pks, seed)
        finally:
            profile.disable()
            profile.dump_stats(os.environ["BENCH_PROFILE"] + f".{os.getpid()}")
        return
    _worker(conn, scenario, specs, pks, seed)


def _worker(conn, scenario, specs, pks, seed) -> None:
    connections.close_all()
    shard = Shard(scenario, specs, pks, seed)
    shard.load()
    for outage in shard.outages:
        if outage.last_index < 0:
            shard.medic_deadline_at_outage[(outage.service, -1)] = shard.deadline[outage.service]
    conn.send(("ready", shard.due_tick()))
    while True:
        message = conn.recv()
        if message[0] == "advance":
            conn.send(("advanced", *shard.advance(message[1]), sum(shard.sent.values())))
        elif message[0] == "swept":
            _, down, refresh, park = message
            shard.mark_down(down)
            if refresh is None or refresh:
                shard.load(refresh)
            shard.park(park)
            conn.send(("due", shard.due_tick()))
        elif message[0] == "finish":
            conn.send(
                (
                    "result",
                    {
                        "outages": shard.outages,
                        "medic_deadline_at_outage": shard.medic_deadline_at_outage,
                        "sent": shard.sent,
                        "kind_seconds": shard.kind_seconds,
                        "disagreements": shard.disagreements,
                        "disagreement_count": shard.disagreement_count,
                        "seconds_in_beats": shard.seconds_in_beats,
                        "unsent": sum(len(shard.beats[i]) - shard.position[i] for i in shard.beats),
                    },
                )
            )
            conn.close()
            return


# --- Coordinator ---------------------------------------------------------------------------------


class Coordinator:
    def __init__(self, scenario: m.Scenario, pks: dict[int, int], workers: int, seed: int):
        self.scenario = scenario
        self.pks = pks
        self.index_of = {pk: i for i, pk in pks.items()}
        self.owner = {i: i % workers for i in pks}
        context = multiprocessing.get_context("fork")
        self.pipes = []
        self.processes = []
        connections.close_all()
        for w in range(workers):
            parent, child = context.Pipe()
            specs = [s for s in scenario.services if s.index % workers == w]
            process = context.Process(
                target=worker_main, args=(child, scenario, specs, pks, seed), daemon=True
            )
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)
        self.due = [self.receive(p, "ready")[0] for p in self.pipes]
        self.alerts: list[dict] = []
        self.sweeps = 0
        self.sweep_seconds = 0.0
        self.sweep_errors = 0
        self.left_overdue: list[tuple] = []

    @staticmethod
    def receive(pipe, kind):
        message = pipe.recv()
        if message[0] != kind:
            raise RuntimeError(f"worker answered {message[0]!r}, expected {kind!r}")
        return message[1:]

    def planned_ticks(self) -> list[int]:
        s = self.scenario
        ticks = set(range(s.start + m.HOUR, s.end + 1, m.HOUR))
        for window in s.windows:
            for begin, end in window.occurrences(s.start, s.end):
                for edge in (begin, end):
                    if s.start < edge <= s.end:
                        ticks.add(ceil_tick(edge, s.start, s.tick_us))
        ticks.add(s.end)
        return sorted(ticks)

    def run(self) -> None:
        s = self.scenario
        extra = self.planned_ticks()
        heapq.heapify(extra)
        began = time.monotonic()
        sent = [0] * len(self.pipes)
        next_report = s.start + m.DAY
        while True:
            # Workers stop earlier by themselves where one of their services is overdue.
            target = extra[0] if extra else FOREVER
            if target > s.end:
                break
            for pipe in self.pipes:
                pipe.send(("advance", target))
            stops = []
            for w, pipe in enumerate(self.pipes):
                due, recovered, sent[w] = self.receive(pipe, "advanced")
                self.due[w] = due
                stops.append(min(target, due))
                for at in recovered:
                    heapq.heappush(extra, ceil_tick(at, s.start, s.tick_us))
            now = min(stops)
            self.sweep_at(now)
            while extra and extra[0] <= now:
                heapq.heappop(extra)
            if now >= next_report:
                next_report += m.DAY
                print(
                    f"    day {(now - s.start) // m.DAY:>3}: {sum(sent):>9,} beats, "
                    f"{len(self.alerts):>3} alerts, {time.monotonic() - began:6.0f}s",
                    flush=True,
                )

    def sweep_at(self, now: int) -> None:
        started = time.monotonic()
        result = sweep(now=m.to_dt(now))
        # What beat also runs on the same tick: the event dispatch (alerts open and resolve)
        # and alerting's own pass.
        events_dispatch()
        result.errors += alerting_sweep(now=m.to_dt(now)).errors
        self.sweep_seconds += time.monotonic() - started
        self.sweeps += 1
        self.sweep_errors += result.errors
        down = defaultdict(list)
        if result.marked_down:
            services = {
                pk: (deadline, last)
                for pk, deadline, last in Service.objects.filter(
                    pk__in=result.marked_down
                ).values_list("pk", "next_deadline_at", "last_heartbeat_at")
            }
            for row in Alert.objects.filter(
                service_id__in=result.marked_down, state=AlertState.OPEN, opened_at=m.to_dt(now)
            ).values("id", "service_id", "opened_at", "suppressed", "reason"):
                deadline, last = services[row["service_id"]]
                self.alerts.append(
                    row
                    | {
                        "index": self.index_of[row["service_id"]],
                        "opened": m.to_us(row["opened_at"]),
                        "medic_deadline": m.to_us(deadline),
                        "last_heartbeat": m.to_us(last) if last else None,
                    }
                )
            for pk in result.marked_down:
                index = self.index_of[pk]
                down[self.owner[index]].append(index)
        # Nothing that can go down may be left past its deadline after a sweep.
        overdue = list(
            Service.objects.filter(
                active=True, status__in=list(DUEABLE), next_deadline_at__lte=m.to_dt(now)
            ).values_list("pk", "next_deadline_at", "status")
        )
        park = defaultdict(list)
        for pk, deadline, status in overdue:
            index = self.index_of[pk]
            self.left_overdue.append((index, now, m.to_us(deadline), status))
            park[self.owner[index]].append(index)
        for w, pipe in enumerate(self.pipes):
            # Rows the sweep pushed a minute forward after an error: re-read the whole shard.
            # Services left overdue (a Medic bug) are re-read and parked until their next beat.
            refresh = None if result.errors else park.get(w, [])
            pipe.send(("swept", down.get(w, []), refresh, park.get(w, [])))
        for w, pipe in enumerate(self.pipes):
            self.due[w] = self.receive(pipe, "due")[0]

    def finish(self) -> list[dict]:
        results = []
        for pipe in self.pipes:
            pipe.send(("finish",))
        for pipe in self.pipes:
            results.append(self.receive(pipe, "result")[0])
        for process in self.processes:
            process.join(timeout=30)
        return results


# --- Ground truth and report ---------------------------------------------------------------------


def covering_occurrence(scenario: m.Scenario, spec: m.ServiceSpec, instant: int):
    for window in scenario.windows:
        if not window.covers(spec):
            continue
        for begin, end in window.occurrences(instant - m.DAY, instant + m.DAY):
            if begin <= instant < end:
                return window.name, begin, end
    return None


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[rank]


RULES = """\
rules  An alert is correct when it opens while its service is in a genuine outage: from just
       after the last beat before the outage until the first beat after it. Any other alert is a
       false alert. An outage during which no alert opens is missed. Detection delay = the
       alert's opened_at - the expected deadline, computed from the schedule alone: interval:
       last beat + interval + grace; at_least: N-th most recent beat + window + grace (start of
       the period + window + grace with fewer than N); cron: the next fire time after the last
       beat's run + grace (a real cron daemon: a wall time skipped by DST runs at the jump, a
       repeated one runs once, at its first occurrence). Within one interval: 0 <= delay <= the
       sweep interval. Maintenance: detection continues in a window. An outage alert that opens
       inside an occurrence of a window covering the service must be suppressed, one that opens
       outside must not; both count as correct detections."""


def report(args, scenario, coordinator, results, wall) -> int:
    s = scenario
    tick = s.tick_us
    specs = s.services
    outages: list[m.Outage] = [o for r in results for o in r["outages"]]
    medic_at: dict = {}
    for r in results:
        medic_at |= r["medic_deadline_at_outage"]
    sent = sum((r["sent"] for r in results), Counter())
    beats = sum(sent.values())
    alerts = coordinator.alerts

    by_service = defaultdict(list)
    for outage in outages:
        by_service[outage.service].append(outage)
    matched: dict[int, dict] = {}
    false_alerts = []
    duplicate = 0
    suppression_wrong = []
    for alert in alerts:
        index = alert["index"]
        hit = next((o for o in by_service[index] if o.begins <= alert["opened"] < o.resumes), None)
        if hit is None:
            false_alerts.append(alert)
            continue
        if id(hit) in matched:
            duplicate += 1
            continue
        matched[id(hit)] = alert
        expected_held = covering_occurrence(s, specs[index], alert["opened"]) is not None
        if alert["suppressed"] != expected_held:
            suppression_wrong.append((alert, expected_held))

    missed = [o for o in outages if id(o) not in matched]
    states = dict(Alert.objects.values_list("id", "state"))
    # An outage's alert is resolved once the service is back up (by the sweep after the beat
    # that brought it back), and still open if it never came back before the end.
    resolution_wrong = [
        (o, matched[id(o)])
        for o in outages
        if id(o) in matched
        and (states[matched[id(o)]["id"]] == AlertState.RESOLVED) != (o.recovered_at is not None)
    ]
    delays = []
    late = []
    deadline_mismatch = []
    for outage in outages:
        medic = medic_at.get((outage.service, outage.last_index))
        if medic is not None and medic != outage.expected_deadline:
            deadline_mismatch.append((outage, medic))
        alert = matched.get(id(outage))
        if alert is None:
            continue
        delay = alert["opened"] - outage.expected_deadline
        delays.append(delay / m.SECOND)
        if not 0 <= delay <= tick:
            late.append((outage, alert, delay))
    within = len(delays) - len(late)
    suppressed = sum(1 for a in alerts if a["suppressed"])
    in_db = Alert.objects.count()
    still_open = Alert.objects.filter(state=AlertState.OPEN).count()
    disagreements = sum(r["disagreement_count"] for r in results)
    unsent = sum(r["unsent"] for r in results)
    kinds = Counter(spec.kind for spec in specs)
    causes = Counter(o.cause for o in outages)
    zones = Counter(x.zone for x in specs if x.kind == "cron")
    changes = [f"{z} {m.fmt(t, z)}" for z, ts in s.transitions.items() for t in ts]
    worker_seconds = sum(r["seconds_in_beats"] for r in results)

    print()
    print(
        f"== Medic false-alert benchmark: {len(specs)} services, {args.days} days, seed {args.seed}"
    )
    if s.late_fraction:
        print(f"NEGATIVE CONTROL: {s.late_fraction:.2%} of beats are sent later than grace")
    print(f"simulated    {m.fmt(s.start)} -> {m.fmt(s.end)}, sweep grid {tick / m.SECOND:g}s")
    print(f"DST changes  {len(changes)}: " + "; ".join(changes))
    print(
        "services     "
        + ", ".join(f"{kinds[k]} {k}" for k in ("interval", "at_least", "cron"))
        + "; cron zones "
        + ", ".join(f"{z} {n}" for z, n in zones.most_common())
    )
    for n, window in enumerate(s.windows):
        covered = sum(1 for spec in specs if window.covers(spec))
        print(
            f"{'windows' if n == 0 else '':12} {window.name}: {window.describe()}, "
            f"covers {covered} services"
        )
    print(
        f"beats        {beats:,} sent through heartbeat_record ("
        + ", ".join(f"{k} {sent[k]:,}" for k in ("interval", "at_least", "cron"))
        + ")"
        + (f"; {unsent} NOT SENT" if unsent else "")
    )
    print(
        f"sweeps       {coordinator.sweeps:,} calls of sweep(now=tick), "
        f"{coordinator.sweep_seconds:.1f}s in total; sweep errors {coordinator.sweep_errors}"
    )
    print(
        f"outages      {len(outages)} genuine ("
        + ", ".join(f"{causes[c]} {c}" for c in ("random", "dst", "maintenance"))
        + ")"
    )
    print(
        f"alerts       {len(alerts)} opened ({in_db} Alert rows), {suppressed} suppressed by a "
        f"maintenance window when opened, {still_open} still open at the end"
    )
    load = os.getloadavg()
    print(
        f"wall time    {wall['total']:.0f}s (setup {wall['setup']:.0f}s, replay "
        f"{wall['replay']:.0f}s: {beats / max(wall['replay'], 1e-9):,.0f} beats/s with "
        f"{args.workers} workers, {1000 * worker_seconds / max(1, beats):.2f} ms per beat in a "
        f"worker); {os.cpu_count()} CPUs, load average {load[0]:.1f} at the end"
    )
    kind_seconds = sum((r["kind_seconds"] for r in results), Counter())
    print(
        "per beat     time inside heartbeat_record: "
        + ", ".join(
            f"{k} {1000 * kind_seconds[k] / max(1, sent[k]):.2f} ms"
            for k in ("interval", "at_least", "cron")
        )
    )
    print(RULES)
    print()
    print(f"false alerts         {len(false_alerts)}")
    print(f"missed outages       {len(missed)}")
    if delays:
        print(
            f"detection delay      p50 {percentile(delays, 0.5):.2f}s, "
            f"p95 {percentile(delays, 0.95):.2f}s, max {max(delays):.2f}s, "
            f"min {min(delays):.2f}s"
        )
    print(f"within one interval  {within} of {len(outages)} outages")
    print(f"suppression errors   {len(suppression_wrong)}")
    print(
        f"resolution errors    {len(resolution_wrong)} (alert open although the service "
        "recovered, or resolved although it did not)"
    )
    print(
        f"deadline checks      {disagreements} of {beats:,} beats where Medic's next_deadline_at "
        f"differs from the schedule's; {len(deadline_mismatch)} at an outage's start"
    )
    print(f"left overdue         {len(coordinator.left_overdue)} (services due but not marked)")

    def describe(index):
        return f"{specs[index].name} [{specs[index].describe()}]"

    for alert in false_alerts[:10]:
        zone = specs[alert["index"]].zone
        last = alert["last_heartbeat"]
        print(
            f"  FALSE ALERT {describe(alert['index'])}: opened {m.fmt(alert['opened'], zone)}, "
            f"Medic's deadline {m.fmt(alert['medic_deadline'], zone)}, last heartbeat "
            + (m.fmt(last, zone) if last else "none")
        )
    for outage in missed[:10]:
        zone = specs[outage.service].zone
        print(
            f"  MISSED {outage.cause} outage of {describe(outage.service)}: silent from "
            f"{m.fmt(outage.begins, zone)} to {m.fmt(outage.resumes, zone)}, expected "
            f"deadline {m.fmt(outage.expected_deadline, zone)}"
        )
    for outage, alert, delay in late[:10]:
        zone = specs[outage.service].zone
        print(
            f"  LATE {describe(outage.service)}: expected "
            f"{m.fmt(outage.expected_deadline, zone)}, opened {m.fmt(alert['opened'], zone)} "
            f"({delay / m.SECOND:+.1f}s)"
        )
    for alert, expected in suppression_wrong[:10]:
        print(
            f"  SUPPRESSION {describe(alert['index'])}: opened {m.fmt(alert['opened'])}, "
            f"suppressed={alert['suppressed']}, expected {expected}"
        )
    for outage, alert in resolution_wrong[:10]:
        print(
            f"  RESOLUTION {describe(outage.service)}: recovered at "
            + (m.fmt(outage.recovered_at) if outage.recovered_at else "never")
            + f", alert {states[alert['id']]}"
        )
    for outage, medic in deadline_mismatch[:10]:
        zone = specs[outage.service].zone
        print(
            f"  DEADLINE {describe(outage.service)} at outage start: expected "
            f"{m.fmt(outage.expected_deadline, zone)}, Medic {m.fmt(medic, zone)}"
        )
    shown = [d for r in results for d in r["disagreements"]][:10]
    for index, at, fire, expected, actual in shown:
        zone = specs[index].zone
        print(
            f"  BEAT DEADLINE {describe(index)}: beat {m.fmt(at, zone)}"
            + (f" for fire {m.fmt(fire, zone)}" if fire else "")
            + f": expected {m.fmt(expected, zone)}, Medic {m.fmt(actual, zone)}"
        )
    for index, now, deadline, status in coordinator.left_overdue[:10]:
        print(
            f"  LEFT OVERDUE {describe(index)} ({status}): deadline {m.fmt(deadline)}, "
            f"sweep at {m.fmt(now)}"
        )
    if args.verbose:
        for outage in outages:
            zone = specs[outage.service].zone
            alert = matched.get(id(outage))
            opened = (
                f"{m.fmt(alert['opened'])} suppressed={alert['suppressed']}" if alert else "never"
            )
            print(
                f"  outage {outage.cause:11} {describe(outage.service)}: expected "
                f"{m.fmt(outage.expected_deadline, zone)}, opened {opened}"
            )

    failed = []
    if false_alerts:
        failed.append("false alerts")
    if missed:
        failed.append("missed outages")
    if late:
        failed.append("detected later than one sweep interval after the deadline (or before it)")
    checks = []
    if suppression_wrong:
        checks.append("suppression")
    if resolution_wrong:
        checks.append("resolution")
    if duplicate:
        checks.append("several alerts for one outage")
    if coordinator.left_overdue:
        checks.append("services left past their deadline")
    if in_db != len(alerts):
        checks.append("alerts opened outside the sweeps seen")
    if disagreements or deadline_mismatch:
        checks.append("deadlines that differ from the schedule")
    if unsent:
        checks.append("beats not sent")
    if not outages:
        checks.append("no outage simulated")
    print()
    print(
        "target (0 false alerts, 0 missed outages, every outage within one sweep interval): "
        + ("met" if not failed else "MISSED: " + "; ".join(failed))
    )
    print(
        "checks (suppression, deadlines, bookkeeping): "
        + ("ok" if not checks else "FAILED: " + "; ".join(checks))
    )
    return 1 if failed or checks else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", default="2026-03-01", help="UTC date (default 2026-03-01)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--verbose", action="store_true", help="list every outage")
    parser.add_argument(
        "--inject-late",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="negative control: this share of beats arrives later than grace, which the "
        "benchmark must report as false alerts (and fail)",
    )
    args = parser.parse_args()

    began = time.monotonic()
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    scenario = m.build_scenario(
        services=args.services,
        days=args.days,
        seed=args.seed,
        start=start,
        tick_s=SWEEP_TICK_SECONDS,
    )
    scenario.late_fraction = args.inject_late
    pks = create_services(scenario)
    create_windows(scenario, pks)
    print(
        f"==> {len(pks)} services and {len(scenario.windows)} maintenance windows created; "
        f"replaying {args.days} days with {args.workers} workers"
    )
    coordinator = Coordinator(scenario, pks, args.workers, args.seed)
    ready = time.monotonic()
    coordinator.run()
    results = coordinator.finish()
    done = time.monotonic()
    wall = {"setup": ready - began, "replay": done - ready, "total": done - began}
    return report(args, scenario, coordinator, results, wall)


if __name__ == "__main__":
    sys.exit(main())
