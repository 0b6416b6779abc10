"""Medic's MCP server driven by the SDK's own client: over stdio (``manage.py mcp`` launched by
the client with MEDIC_MCP_API_KEY) and over streamable HTTP (``manage.py mcp --http``, /mcp with
a Bearer key). Read tools answer; a write key starts a playbook and approves it; a read-scope
key cannot call write tools; no key is a 401."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.error
import urllib.request

import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from heartbeats.services import service_create
from remediation.playbooks import services
from remediation.playbooks.models import Execution, ExecutionState
from tests.conftest import _key
from tests.e2e.conftest import ROOT, Proc, free_port, process_env
from tests.playbooks.conftest import playbook_yaml

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def world(db):
    service_create(heartbeat_name="worker-1", alert_interval=1)
    services.playbook_save(
        document=playbook_yaml(
            "restart-worker", "http://127.0.0.1:9", extra_trigger="approval: required"
        ),
        actor="tests",
    )
    return {
        "read": _key(["read"], "mcp reader"),
        "write": _key(["read", "write"], "mcp writer"),
        "hook": _key(["write"], "mcp write-only"),
    }


def _data(result):
    assert not result.is_error, result
    if result.structured_content is not None:
        value = result.structured_content
        return value.get("result", value) if isinstance(value, dict) else value
    return json.loads(result.content[0].text)


def _error(result) -> str:
    assert result.is_error
    return result.content[0].text


async def _session(client, approver_client=None):
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) >= {
        "list_services",
        "get_service",
        "list_alerts",
        "list_playbooks",
        "get_execution",
        "execute_playbook",
        "approve_execution",
        "decline_execution",
    }
    assert tools["list_services"].annotations.read_only_hint is True
    names = [s["name"] for s in _data(await client.call_tool("list_services", {}))]
    assert names == ["worker-1"]
    playbooks = _data(await client.call_tool("list_playbooks", {}))
    assert playbooks[0]["name"] == "restart-worker" and playbooks[0]["approval"] == "required"
    started = _data(
        await client.call_tool(
            "execute_playbook", {"playbook": "restart-worker", "service": "worker-1"}
        )
    )
    assert started["state"] == "pending_approval"
    got = _data(await client.call_tool("get_execution", {"execution_id": started["id"]}))
    assert got["id"] == started["id"] and got["trigger"]["kind"] == "mcp"
    return started["id"]


def _stdio(secret: str) -> Client:
    env = process_env(MEDIC_MCP_API_KEY=secret)
    return Client(
        StdioServerParameters(
            command=sys.executable, args=["manage.py", "mcp"], env=env, cwd=str(ROOT)
        )
    )


def test_stdio_read_and_write_tools(world):
    async def main():
        async with _stdio(world["write"]) as client:
            execution_id = await _session(client)
            decided = _data(
                await client.call_tool(
                    "decline_execution", {"execution_id": execution_id, "reason": "not now"}
                )
            )
            assert decided["approval"] == "declined"
        async with _stdio(world["read"]) as reader:
            assert _data(await reader.call_tool("list_alerts", {"state": ""})) == []
            refused = await reader.call_tool(
                "execute_playbook", {"playbook": "restart-worker", "service": "worker-1"}
            )
            assert "needs 'write'" in _error(refused)
        return execution_id

    execution_id = asyncio.run(main())
    assert Execution.objects.get(pk=execution_id).state == ExecutionState.CANCELLED
    assert Execution.objects.count() == 1


def test_streamable_http_with_bearer_keys(world, tmp_path):
    port = free_port()
    proc = Proc(
        [sys.executable, "manage.py", "mcp", "--http", "--port", str(port)],
        process_env(),
        tmp_path / "mcp.log",
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(urllib.request.Request(url, method="POST", data=b"{}"))
            except urllib.error.HTTPError as exc:
                assert exc.code == 401  # no key
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(proc.output()) from None
                time.sleep(0.3)

        async def connect(secret: str):
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {secret}"})
            return Client(streamable_http_client(url, http_client=http))

        async def main():
            async with await connect(world["write"]) as client:
                execution_id = await _session(client)
            async with await connect(world["read"]) as reader:
                refused = await reader.call_tool(
                    "approve_execution", {"execution_id": execution_id}
                )
                assert "needs 'write'" in _error(refused)
                service = _data(await reader.call_tool("get_service", {"name": "worker-1"}))
                assert service["recent_executions"][0]["state"] == "pending_approval"
            async with await connect(world["write"]) as client:
                decided = _data(
                    await client.call_tool("approve_execution", {"execution_id": execution_id})
                )
                assert decided["approval"] == "approved"
            return execution_id

        execution_id = asyncio.run(main())
        assert Execution.objects.get(pk=execution_id).state != ExecutionState.PENDING_APPROVAL

        # The process's own metrics: the decision made over MCP is counted there.
        metrics = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(
            urllib.request.Request(metrics, headers={"Authorization": f"Bearer {world['read']}"})
        ) as answer:
            assert answer.status == 200
            text = answer.read().decode()
        assert 'medic_approval_decisions_total{channel="mcp",decision="approved"} 1.0' in text
        for headers, status in (({}, 401), ({"Authorization": f"Bearer {world['hook']}"}, 403)):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(urllib.request.Request(metrics, headers=headers))
            assert refused.value.code == status
    finally:
        proc.stop()
