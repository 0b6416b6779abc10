"""The simulated world of the false-alert benchmark, independent of Medic's own code.

Nothing here imports Medic: the schedules, the senders' behaviour, the DST rules of a real cron
daemon and the expected deadlines are computed from first principles (croniter for the cron
grammar, zoneinfo for the clocks), so that replay.py can hold Medic's answers against them.

All instants are integers: microseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import bisect
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from croniter import croniter

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Medic counts a cron beat this long (at most) before a fire time for it; the senders stay well
# inside: see early_limit().
CRON_EARLY_CAP = 5 * MINUTE


def to_us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def to_dt(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def fmt(us: int, zone: str | None = None) -> str:
    moment = to_dt(us)
    text = moment.strftime("%Y-%m-%d %H:%M:%S") + (f".{moment.microsecond:06d}"[:4]) + "Z"
    if zone and zone != "UTC":
        local = moment.astimezone(ZoneInfo(zone))
        text += f" ({local:%m-%d %H:%M:%S %Z} {zone})"
    return text


# --- The clock of a real cron daemon ------------------------------------------------------------


def wall_instant(naive: datetime, zone_name: str) -> int:
    """When a cron daemon in ``zone_name`` runs a job scheduled at wall time ``naive``.

    Existing wall time: that instant; in a repeated (fall-back) hour the first occurrence only.
    Skipped (spring-forward) wall time: the first instant at which the clock shows a later time,
    i.e. the moment of the jump (found by walking whole minutes: every transition since the
    1970s falls on a whole minute).
    """
    zone = ZoneInfo(zone_name)
    first = naive.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive:
        return to_us(first.astimezone(UTC))
    a = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    b = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    moment = min(a, b).replace(second=0, microsecond=0)
    while moment.astimezone(zone).replace(tzinfo=None) <= naive:
        moment += timedelta(minutes=1)
    return to_us(moment)


@dataclass(frozen=True)
class FireTable:
    """Every run of a cron schedule in a period: one per scheduled wall time, at its instant
    (several wall times of a skipped hour all run at the jump). ``distinct`` are the instants."""

    runs: tuple[int, ...]
    distinct: tuple[int, ...]

    def next_after(self, instant: int) -> int | None:
        i = bisect.bisect_right(self.distinct, instant)
        return self.distinct[i] if i < len(self.distinct) else None

    def at_or_before(self, instant: int) -> int | None:
        i = bisect.bisect_right(self.distinct, instant)
        return self.distinct[i - 1] if i else None


@cache
def fire_table(expression: str, zone_name: str, lo: int, hi: int) -> FireTable:
    """Runs whose instant lies in (lo, hi]; the wall-clock walk starts two days early."""
    zone = ZoneInfo(zone_name)
    naive = to_dt(lo).astimezone(zone).replace(tzinfo=None) - timedelta(days=2)
    last_wall = to_dt(hi).astimezone(zone).replace(tzinfo=None) + timedelta(days=1)
    iterator = croniter(expression, naive)
    runs = []
    while True:
        wall = iterator.get_next(datetime)
        instant = wall_instant(wall, zone_name)
        if wall > last_wall:
            break
        if lo < instant <= hi:
            runs.append(instant)
    runs.sort()
    return FireTable(runs=tuple(runs), distinct=tuple(sorted(set(runs))))


def zone_transitions(zone_name: str, lo: int, hi: int) -> list[int]:
    """Instants (whole minutes) in (lo, hi] at which the zone's UTC offset changes."""
    zone = ZoneInfo(zone_name)
    out = []
    hour = lo - lo % HOUR
    previous = to_dt(hour).astimezone(zone).utcoffset()
    while hour < hi:
        nxt = hour + HOUR
        offset = to_dt(nxt).astimezone(zone).utcoffset()
        if offset != previous:
            minute = hour
            while to_dt(minute).astimezone(zone).utcoffset() == previous:
                minute += MINUTE
            if lo < minute <= hi:
                out.append(minute)
            previous = offset
        hour = nxt
    return out


# --- The scenario --------------------------------------------------------------------------------

ZONES = [
    ("America/New_York", 30),
    ("Europe/Berlin", 30),
    ("Asia/Tokyo", 10),
    ("Australia/Sydney", 10),
    ("UTC", 10),
    ("Asia/Kolkata", 10),
]
# (expression, nominal period in minutes, weight, label)
CRON_SCHEDULES = [
    ("*/15 * * * *", 15, 10, "every 15 min"),
    ("0 * * * *", 60, 15, "hourly at :00"),
    ("30 * * * *", 60, 15, "hourly at :30"),
    ("5 */6 * * *", 360, 10, "every 6 h"),
    ("30 2 * * *", 1440, 15, "daily 02:30"),
    ("30 1 * * *", 1440, 15, "daily 01:30"),
    ("0 3 * * *", 1440, 10, "daily 03:00"),
    ("0 9 * * 1-5", 1440, 10, "weekdays 09:00"),
]
# Interval services: alert_interval in minutes, weight.
INTERVALS = [(1, 1), (2, 2), (5, 12), (10, 20), (15, 15), (30, 25), (60, 25)]
# At-least-N services: (N, window minutes, sender period minutes, weight); N * period <= window.
AT_LEAST = [
    (6, 60, 8, 25),
    (3, 30, 8, 10),
    (4, 60, 12, 15),
    (2, 20, 8, 5),
    (12, 180, 12, 10),
    (5, 120, 20, 15),
    (3, 90, 25, 10),
    (4, 240, 50, 10),
]


@dataclass
class ServiceSpec:
    index: int
    name: str
    kind: str  # "interval" | "at_least" | "cron"
    grace_us: int
    team: str = "site-reliability"
    alert_interval: float | None = None  # minutes (the window for at_least); None for cron
    threshold: int = 1
    period_us: int = 0  # the sender's period (interval and at_least)
    cron: str = ""
    zone: str = "UTC"
    nominal_period_us: int = 0  # cron: the usual gap between fire times
    label: str = ""

    def describe(self) -> str:
        grace = f"grace {self.grace_us / SECOND:g}s"
        if self.kind == "cron":
            return f"cron '{self.cron}' {self.zone} ({self.label}), {grace}"
        if self.kind == "at_least":
            return (
                f"at_least {self.threshold} per {self.alert_interval:g} min "
                f"(beats every {self.period_us / MINUTE:g} min), {grace}"
            )
        return f"interval {self.alert_interval:g} min, {grace}"


@dataclass
class WindowSpec:
    name: str
    scope: str  # "team" | "pattern" | "services"
    starts_at: int | None = None
    ends_at: int | None = None
    cron: str = ""
    zone: str = "UTC"
    duration_us: int = 0
    team: str = ""
    pattern: str = ""
    members: list[int] = field(default_factory=list)  # service indexes (scope "services")

    def covers(self, spec: ServiceSpec) -> bool:
        if self.scope == "team":
            return spec.team == self.team
        if self.scope == "pattern":
            return spec.name.startswith(self.pattern.rstrip("*"))
        return spec.index in self.members

    def occurrences(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """(start, end) of every occurrence that overlaps (lo, hi]."""
        if not self.cron:
            return [(self.starts_at, self.ends_at)]
        table = fire_table(self.cron, self.zone, lo - self.duration_us - DAY, hi)
        return [(s, s + self.duration_us) for s in table.distinct if s + self.duration_us > lo]

    def length(self) -> int:
        return self.duration_us if self.cron else self.ends_at - self.starts_at

    def describe(self) -> str:
        what = {"team": f"team {self.team}", "pattern": f"pattern {self.pattern}"}.get(
            self.scope, f"{len(self.members)} listed services"
        )
        if self.cron:
            return f"recurring '{self.cron}' {self.zone}, {self.duration_us // MINUTE} min, {what}"
        return f"one-time {fmt(self.starts_at)} -> {fmt(self.ends_at)}, {what}"


@dataclass
class OutageIntent:
    service: int
    at: int  # the service stops beating after its last beat before this instant
    cause: str  # "random" | "dst" | "maintenance"
    extra_us: int  # how long after the expected deadline it starts beating again


@dataclass
class Scenario:
    start: int
    end: int
    tick_us: int
    services: list[ServiceSpec]
    windows: list[WindowSpec]
    intents: list[OutageIntent]
    transitions: dict[str, list[int]]
    # Negative control only (--inject-late): this share of beats arrives later than grace.
    late_fraction: float = 0.0


def _pick(rng: random.Random, table, weight_at: int):
    return rng.choices(table, weights=[row[weight_at] for row in table])[0]


def build_scenario(*, services: int, days: int, seed: int, start: datetime, tick_s: int):
    rng = random.Random(seed)
    lo, hi = to_us(start), to_us(start + timedelta(days=days))
    specs: list[ServiceSpec] = []
    for i in range(services):
        roll = rng.random()
        kind = "interval" if roll < 0.4 else ("at_least" if roll < 0.6 else "cron")
        team = "payments" if rng.random() < 0.06 else rng.choice(["core", "data", "web", "ops"])
        prefix = "batch-" if rng.random() < 0.06 else ""
        name = f"{prefix}{kind.replace('_', '')}-{i:04d}"
        if kind == "interval":
            minutes = _pick(rng, INTERVALS, 1)[0]
            grace = max(1, round(minutes * 60 * rng.uniform(0.1, 0.5))) * SECOND
            spec = ServiceSpec(
                i, name, kind, grace, team, alert_interval=minutes, period_us=minutes * MINUTE
            )
        elif kind == "at_least":
            n, window, period, _ = _pick(rng, AT_LEAST, 3)
            grace = max(1, round(period * 60 * rng.uniform(0.1, 0.5))) * SECOND
            spec = ServiceSpec(
                i,
                name,
                kind,
                grace,
                team,
                alert_interval=window,
                threshold=n,
                period_us=period * MINUTE,
            )
        else:
            expression, period, _, label = _pick(rng, CRON_SCHEDULES, 2)
            zone = _pick(rng, ZONES, 1)[0]
            # At least 2 min, at most a third of the period (and 30 min): a late beat can never
            # be mistaken for an early one for the next fire time.
            grace = round(min(max(120, period * 60 * rng.uniform(0.05, 0.3)), 1800)) * SECOND
            spec = ServiceSpec(
                i,
                name,
                kind,
                grace,
                team,
                cron=expression,
                zone=zone,
                nominal_period_us=period * MINUTE,
                label=label,
            )
        specs.append(spec)

    members = sorted(rng.sample(range(services), max(1, services * 3 // 100)))
    windows = [
        WindowSpec(
            "storage-migration",
            "team",
            starts_at=lo + 9 * DAY + HOUR,
            ends_at=lo + 9 * DAY + 3 * HOUR,
            team="payments",
        ),
        WindowSpec(
            "nightly-batch",
            "pattern",
            cron="30 2 * * *",
            zone="Europe/Berlin",
            duration_us=60 * MINUTE,
            pattern="batch-*",
        ),
        WindowSpec(
            "sunday-deploys",
            "services",
            cron="0 6 * * 0",
            zone="America/New_York",
            duration_us=120 * MINUTE,
            members=members,
        ),
    ]
    transitions = {zone: zone_transitions(zone, lo, hi) for zone, _ in ZONES}

    intents: list[OutageIntent] = []
    used: set[int] = set()
    # Outages start after a settling day and leave time to be noticed before the end.
    first, last = lo + min(DAY, (hi - lo) // 5), hi - min(4 * DAY, (hi - lo) // 3)

    def free(candidates):
        return [s for s in candidates if s.index not in used]

    # Genuine outages at random times: ~3% of services.
    for spec in rng.sample(specs, max(1, services * 3 // 100)):
        used.add(spec.index)
        at = rng.randint(first, last)
        intents.append(OutageIntent(spec.index, at, "random", _extra(rng, spec)))
    # Outages across a DST change: the missed run is the one the change moves (~1% of services).
    dst_cron = free(s for s in specs if s.kind == "cron" and transitions.get(s.zone))
    for spec in rng.sample(dst_cron, min(len(dst_cron), max(1, services // 100))):
        used.add(spec.index)
        change = transitions[spec.zone][0]
        before = 14 * HOUR if spec.nominal_period_us >= DAY else rng.randint(0, 45 * MINUTE)
        intents.append(OutageIntent(spec.index, change - before, "dst", _extra(rng, spec)))
    # Outages inside maintenance windows (deploys): alerts open, held back (~1.5% of services).
    for window in windows:
        covered = free(
            s
            for s in specs
            if window.covers(s)
            and (s.kind != "cron" or s.nominal_period_us <= HOUR)
            and _max_silence(s) < window.length()
        )
        occurrences = [o for o in window.occurrences(lo, hi) if first < o[0] < last]
        for spec in rng.sample(covered, min(len(covered), max(1, services // 200))):
            if not occurrences:
                break
            used.add(spec.index)
            begin, end = rng.choice(occurrences)
            at = begin + rng.randint(0, (end - begin) // 5)
            intents.append(OutageIntent(spec.index, at, "maintenance", _extra(rng, spec)))
    return Scenario(lo, hi, tick_s * SECOND, specs, windows, intents, transitions)


def _max_silence(spec: ServiceSpec) -> int:
    """Longest on-time silence before the deadline passes (roughly): interval plus grace."""
    if spec.kind == "cron":
        return spec.nominal_period_us + spec.grace_us
    return int(spec.alert_interval * MINUTE) + spec.grace_us


def _extra(rng: random.Random, spec: ServiceSpec) -> int:
    """How long after its expected deadline an outage lasts: at least a minute (so it is an
    outage under every definition), up to a few periods."""
    if spec.kind == "cron":
        return rng.randint(MINUTE, max(2 * MINUTE, min(spec.nominal_period_us * 3 // 2, 6 * HOUR)))
    return rng.randint(MINUTE, int(3 * spec.alert_interval * MINUTE) + 10 * MINUTE)


# --- The senders ---------------------------------------------------------------------------------


def _jitter(rng: random.Random, grace: int, early_max: int, late_fraction: float = 0.0) -> int:
    """Mostly a few seconds late; sometimes late by up to 90% of grace; sometimes early."""
    if late_fraction and rng.random() < late_fraction:
        return grace + 10 * SECOND + int(rng.uniform(0, grace / 2))  # beyond grace: an incident
    roll = rng.random()
    if roll < 0.85:
        return int(rng.uniform(0.2 * SECOND, max(0.3 * SECOND, min(5 * SECOND, 0.3 * grace))))
    if roll < 0.93:
        return int(rng.uniform(0.3 * grace, 0.9 * grace))
    return -int(rng.uniform(0, early_max))


def early_limit(spec: ServiceSpec, fire: int, table: FireTable) -> int:
    """Cron: how early a beat may come for ``fire`` (90% of Medic's documented tolerance:
    min(grace, 5 min, half the period to the next fire time))."""
    nxt = table.next_after(fire)
    period = (nxt - fire) if nxt else spec.nominal_period_us
    return int(0.9 * min(spec.grace_us, CRON_EARLY_CAP, period // 2))


@dataclass
class Beat:
    at: int
    fire: int = 0  # cron: the fire instant this run belongs to


@dataclass
class Outage:
    service: int
    cause: str
    last_beat: int | None  # the last beat sent before it (None: never beat)
    begins: int  # just after the last beat
    expected_deadline: int  # when Medic should notice it (independent computation)
    resumes: int  # beats before this instant are lost
    last_index: int  # index (in the sent beats) of the last beat before it; -1 if none
    recovered_at: int | None = None  # set by the replay: the beat that brought it back up


class Expect:
    """The expected deadline after each sent beat, from the schedule alone."""

    def __init__(self, spec: ServiceSpec, start: int, table: FireTable | None):
        self.spec = spec
        self.start = start
        self.table = table
        self.recent: deque[int] = deque(maxlen=spec.threshold)

    def after(self, beat: Beat) -> int:
        spec = self.spec
        if spec.kind == "cron":
            nxt = self.table.next_after(beat.fire)
            return (nxt if nxt is not None else 2**62) + spec.grace_us
        window = int(spec.alert_interval * MINUTE)
        self.recent.append(beat.at)
        if len(self.recent) < spec.threshold:
            return self.start + window + spec.grace_us
        return self.recent[0] + window + spec.grace_us

    def initial(self) -> int:
        spec = self.spec
        if spec.kind == "cron":
            return self.table.next_after(self.start) + spec.grace_us
        return self.start + int(spec.alert_interval * MINUTE) + spec.grace_us


def plan(scenario: Scenario, spec: ServiceSpec, seed: int) -> tuple[list[Beat], list[Outage]]:
    """The beats a service sends in the simulated period, and its outages with the deadline at
    which each must be noticed."""
    rng = random.Random(f"{seed}:{spec.index}")
    lo, hi = scenario.start, scenario.end
    beats: list[Beat] = []
    table = None
    if spec.kind == "cron":
        table = fire_table(spec.cron, spec.zone, lo, hi + 8 * DAY)
        for fire in table.runs:
            if fire > hi:
                break
            early = early_limit(spec, fire, table)
            at = max(lo + 1000, fire + _jitter(rng, spec.grace_us, early, scenario.late_fraction))
            beats.append(Beat(at, fire))
    else:
        at_nominal = lo + int(rng.uniform(0, spec.period_us))
        while at_nominal < hi:
            # Never early by more than 5% of grace: two successive beats are never further
            # apart than the period plus 95% of grace.
            jitter = _jitter(rng, spec.grace_us, spec.grace_us // 20, scenario.late_fraction)
            beats.append(Beat(max(lo + 1000, at_nominal + jitter)))
            at_nominal += spec.period_us
    beats = [b for b in beats if b.at < hi]
    beats.sort(key=lambda b: b.at)

    outages: list[Outage] = []
    for intent in sorted(
        (i for i in scenario.intents if i.service == spec.index), key=lambda i: i.at
    ):
        sent = [b for b in beats if b.at < intent.at]
        expect = Expect(spec, lo, table)
        deadline = expect.initial()
        for beat in sent:
            deadline = expect.after(beat)
        last = sent[-1].at if sent else None
        resumes = deadline + intent.extra_us
        if deadline + MINUTE >= hi:
            continue  # would not be noticed inside the simulated period: not an outage here
        begins = (last + 1) if last is not None else lo
        beats = [b for b in beats if not (begins <= b.at < resumes)]
        outages.append(
            Outage(spec.index, intent.cause, last, begins, deadline, resumes, len(sent) - 1)
        )
    return beats, outages
