"""Load generator for the agent gateway: N agents long-polling at once, jobs queued to them.

Stdlib asyncio HTTP/1.1 (one connection per agent, keep-alive). Measures the gateway's resident
memory before and while N polls wait, its thread count, and for each queued job the time from
queueing (the service call that commits it and publishes the wake-up) to its arrival in a poll
response. Queueing goes through remediation.services.script_run in this process, so both ends
of each measurement use the same clock.

    python bench/agents/loadgen.py --port P --pid PID --keys FILE [--jobs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import sys
import time

import django


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1))


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^Threads:\s+(\d+)", f.read(), re.M).group(1))


class Conn:
    def __init__(self, port: int, key: str) -> None:
        self.port, self.key = port, key
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        try:
            return await self._request(method, path, body)
        except (ConnectionError, asyncio.IncompleteReadError):
            # The server closed an idle keep-alive connection: reconnect once, as agents do.
            self.writer = None
            return await self._request(method, path, body)

    async def _request(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {self.key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionResetError("connection closed by the server")
        status = int(status_line.split(b" ", 2)[1])
        length, chunked = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if not chunked:
            return status, (await self.reader.readexactly(length) if length else b"")
        payload = b""
        while True:
            size = int((await self.reader.readline()).strip(), 16)
            chunk = await self.reader.readexactly(size + 2)
            if size == 0:
                return status, payload
            payload += chunk[:-2]


async def metric(port: int, key: str, name: str) -> float:
    status, body = await Conn(port, key).request("GET", "/metrics")
    match = re.search(rf"^{name} ([0-9.e+]+)$", body.decode(), re.M)
    return float(match.group(1)) if status == 200 and match else 0.0


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--keys", required=True)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--wait", type=int, default=60)
    opts = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medic.settings")
    django.setup()
    from remediation.services import RunTarget, script_run

    with open(opts.keys) as f:
        read_key, *agent_keys = f.read().split()
    n = len(agent_keys)
    figures: dict = {"agents": n, "rss_start_kib": rss_kib(opts.pid)}

    conns = [Conn(opts.port, key) for key in agent_keys]
    registration = json.dumps(
        {"hostname": "bench", "os": "linux", "arch": "x86_64", "agent_version": "bench"}
    ).encode()
    gate = asyncio.Semaphore(20)

    async def register(conn: Conn) -> None:
        async with gate:
            status, body = await conn.request("POST", "/v2/agent/register", registration)
            assert status == 200, (status, body)

    started = time.monotonic()
    await asyncio.gather(*(register(c) for c in conns))
    figures["registration_seconds"] = round(time.monotonic() - started, 1)
    await asyncio.sleep(2)
    figures["rss_registered_kib"] = rss_kib(opts.pid)
    figures["threads_registered"] = threads(opts.pid)

    arrivals: dict[str, float] = {}
    stop = asyncio.Event()
    errors: list = []

    async def agent_loop(index: int, conn: Conn) -> None:
        while not stop.is_set():
            try:
                status, body = await conn.request("GET", f"/v2/agent/jobs?wait={opts.wait}")
            except Exception as exc:
                if not stop.is_set():
                    errors.append(repr(exc))
                return
            if status == 200:
                arrivals[json.loads(body)["id"]] = time.monotonic()
            elif status != 204:
                errors.append((status, body[:200]))
                return

    loops = [asyncio.create_task(agent_loop(i, c)) for i, c in enumerate(conns)]
    deadline = time.monotonic() + 60
    waiting = 0.0
    while time.monotonic() < deadline:
        waiting = await metric(opts.port, read_key, "medic_agent_long_polls")
        if waiting >= n:
            break
        print(
            f"  {int(waiting)} polls waiting, gateway CPU {cpu_seconds(opts.pid):.1f} s",
            file=sys.stderr,
        )
        await asyncio.sleep(1)
    figures["polls_waiting"] = int(waiting)
    await asyncio.sleep(2)
    figures["rss_waiting_kib"] = rss_kib(opts.pid)
    figures["threads_waiting"] = threads(opts.pid)

    queued: dict[str, float] = {}
    rng = random.Random(7)
    for i in range(opts.jobs):
        agent = f"bench-{rng.randrange(n):05d}"
        t0 = time.monotonic()
        (job,) = await asyncio.to_thread(
            script_run,
            name="bench_noop",
            target=RunTarget(agent=agent),
            args={"n": i},
            actor="bench",
        )
        queued[str(job.pk)] = t0
        await asyncio.sleep(0.02)
    deadline = time.monotonic() + 15
    while len(arrivals.keys() & queued.keys()) < len(queued) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    figures["rss_after_jobs_kib"] = rss_kib(opts.pid)
    stop.set()
    for task in loops:
        task.cancel()
    await asyncio.gather(*loops, return_exceptions=True)

    latencies = sorted(arrivals[j] - t for j, t in queued.items() if j in arrivals)
    figures["jobs_queued"] = len(queued)
    figures["jobs_delivered"] = len(latencies)
    if latencies:
        figures["latency_ms_p50"] = round(statistics.median(latencies) * 1000, 1)
        figures["latency_ms_p99"] = round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1)
        figures["latency_ms_max"] = round(latencies[-1] * 1000, 1)
    figures["errors"] = len(errors)
    print(json.dumps(figures, indent=2))
    if errors:
        print("first errors:", errors[:5], file=sys.stderr)
    ok = figures["polls_waiting"] >= n and figures["jobs_delivered"] == len(queued)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    asyncio.run(main())
