"""The agent gateway under uvicorn: many waiting polls, no thread each, wake-up under 1 s."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import urllib.request

import pytest

from medic.apikeys import api_key_create
from remediation.agents import agent_create
from remediation.services import RunTarget, script_run
from tests.remediation.conftest import GREET_BODY, GREET_SCHEMA
from tests.remediation.processes import start_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
AGENTS = 60


async def _request(port: int, method: str, path: str, key: str, body: bytes = b"") -> tuple:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    data = await reader.read()
    writer.close()
    status = int(data.split(b" ", 2)[1])
    payload = data.split(b"\r\n\r\n", 1)[1]
    return status, payload, time.monotonic()


def _metric(url: str, key: str, name: str) -> float:
    req = urllib.request.Request(url + "/metrics", headers={"Authorization": f"Bearer {key}"})
    text = urllib.request.urlopen(req, timeout=5).read().decode()
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def _threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^Threads:\s+(\d+)", f.read(), re.M).group(1))


@pytest.fixture
def gateway(tmp_path):
    procs = []
    yield lambda: start_gateway(tmp_path, procs)
    for proc in procs:
        proc.stop()


def test_waiting_polls_hold_no_thread_and_wake_within_a_second(gateway):
    from remediation.services import script_create

    script_create(
        name="greet", actor="t", body=GREET_BODY, args_schema=GREET_SCHEMA, run_on_agents=True
    )
    keys = [agent_create(name=f"a{i}", actor="t").secret for i in range(AGENTS)]
    reader = api_key_create(name="metrics", scopes=["read"]).secret
    url, proc = gateway()
    port = int(url.rsplit(":", 1)[1])
    threads_idle = _threads(proc.popen.pid)

    async def scenario():
        register = json.dumps(
            {"hostname": "h", "os": "linux", "arch": "x86_64", "agent_version": "t"}
        ).encode()
        for key in keys:  # sequential: the first request of each key costs one argon2 check
            status, _, _ = await _request(port, "POST", "/v2/agent/register", key, register)
            assert status == 200
        polls = [
            asyncio.create_task(_request(port, "GET", "/v2/agent/jobs?wait=20", key))
            for key in keys
        ]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            waiting = await asyncio.to_thread(_metric, url, reader, "medic_agent_long_polls")
            if waiting >= AGENTS:
                break
            await asyncio.sleep(0.2)
        assert waiting == AGENTS
        threads_waiting = _threads(proc.popen.pid)
        # the loop's thread pool and a few helpers, not one thread per waiting poll
        pool = min(32, (os.cpu_count() or 1) + 4)
        assert threads_waiting <= threads_idle + pool + 4 < AGENTS, (threads_idle, threads_waiting)
        latencies = []
        for i in (3, 17, 42):
            queued_at = time.monotonic()
            await asyncio.to_thread(
                script_run,
                name="greet",
                target=RunTarget(agent=f"a{i}"),
                args={"name": "x"},
                actor="t",
            )
            status, payload, answered_at = await asyncio.wait_for(polls[i], 5)
            assert status == 200
            assert json.loads(payload)["script"]["name"] == "greet"
            latencies.append(answered_at - queued_at)
        assert max(latencies) < 1.0, latencies
        for task in polls:
            task.cancel()
        await asyncio.gather(*polls, return_exceptions=True)

    asyncio.run(scenario())


def test_the_gateway_serves_only_the_agent_protocol(gateway):
    key = api_key_create(name="reader", scopes=["read"]).secret
    url, _ = gateway()
    req = urllib.request.Request(url + "/v2/services", headers={"Authorization": f"Bearer {key}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=5)
    assert refused.value.code == 404
    assert json.loads(refused.value.read())["error"]["code"] == "not_found"
    anonymous = urllib.request.Request(url + "/v2/agent/jobs?wait=0")
    with pytest.raises(urllib.error.HTTPError) as unauthenticated:
        urllib.request.urlopen(anonymous, timeout=5)
    assert unauthenticated.value.code == 401
