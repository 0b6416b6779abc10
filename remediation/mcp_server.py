"""Medic as an MCP server (the official ``mcp`` SDK): read tools for services, alerts,
playbooks and executions; write tools that start a playbook and decide approvals.

Every call is made with a Medic API key: over stdio (``manage.py mcp``) the key comes from
MEDIC_MCP_API_KEY; over streamable HTTP (``manage.py mcp --http``, path /mcp) each request
carries ``Authorization: Bearer <key>``. Read tools need the ``read`` scope, write tools the
``write`` scope (``admin`` has both); anything else is refused before the tool runs. Write tools
go through the same services as the API (trigger checks, approval setting, four-eyes, audit)
with channel ``mcp``.
"""

from __future__ import annotations

import contextvars
import json
from typing import Any

from asgiref.sync import sync_to_async
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from medic.errors import MedicError

CURRENT_KEY: contextvars.ContextVar = contextvars.ContextVar("medic_mcp_key", default=None)
READ = ToolAnnotations(read_only_hint=True, destructive_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=True)


class Refused(ToolError):
    """A tool call Medic refuses (scope, not found, conflict): the message is the answer."""


def _authorised(scope: str):
    from medic.auth import require_scope

    key = CURRENT_KEY.get()
    if key is None:
        raise Refused("No Medic API key: set MEDIC_MCP_API_KEY or send Authorization: Bearer.")
    try:
        require_scope(key, scope)
    except MedicError as exc:
        raise Refused(exc.message) from exc
    return key


def _call(scope: str, fn, **kwargs) -> Any:
    key = _authorised(scope)
    try:
        return fn(key=key, **kwargs)
    except MedicError as exc:
        raise Refused(f"{exc.code}: {exc.message}") from exc


def _json(value) -> Any:
    return json.loads(json.dumps(value, default=str))


# --- What the tools do (sync, Django ORM) -----------------------------------------------------


def _service_row(s) -> dict:
    return {
        "name": s.heartbeat_name,
        "display_name": s.service_name,
        "status": s.status,
        "team": s.team,
        "priority": s.priority,
        "last_heartbeat_at": s.last_heartbeat_at,
        "consecutive_failures": s.consecutive_failures,
    }


def _list_services(*, key, status: str = "") -> list[dict]:
    from heartbeats.models import Service

    qs = Service.objects.filter(active=True).order_by("heartbeat_name")
    if status:
        qs = qs.filter(status=status)
    return _json([_service_row(s) for s in qs[:500]])


def _get_service(*, key, name: str) -> dict:
    from alerting.models import Alert, AlertState
    from heartbeats.models import Service
    from remediation.playbooks.models import Execution

    service = Service.objects.filter(heartbeat_name__iexact=name).first()
    if service is None:
        raise Refused(f"service_not_found: No service '{name}'.")
    alert = Alert.objects.filter(service=service, state=AlertState.OPEN).first()
    runs = Execution.objects.filter(service=service).select_related("playbook")[:10]
    return _json(
        {
            **_service_row(service),
            "runbook": service.runbook,
            "open_alert": (
                {"id": alert.pk, "summary": alert.summary, "opened_at": alert.opened_at}
                if alert
                else None
            ),
            "recent_executions": [
                {"id": e.pk, "playbook": e.playbook.name, "state": e.state, "at": e.created_at}
                for e in runs
            ],
        }
    )


def _list_alerts(*, key, state: str = "open") -> list[dict]:
    from alerting.models import Alert

    qs = Alert.objects.select_related("service").order_by("-opened_at")
    if state:
        qs = qs.filter(state=state)
    return _json(
        [
            {
                "id": a.pk,
                "service": a.service.heartbeat_name,
                "state": a.state,
                "priority": a.priority,
                "summary": a.summary,
                "opened_at": a.opened_at,
            }
            for a in qs[:200]
        ]
    )


def _list_playbooks(*, key) -> list[dict]:
    from remediation.playbooks.models import Playbook

    rows = []
    for p in Playbook.objects.order_by("name"):
        spec = p.versions.get(version=p.current_version).spec
        rows.append(
            {
                "id": p.pk,
                "name": p.name,
                "version": p.current_version,
                "enabled": p.enabled,
                "approval": "required" if p.demoted_at else spec["approval"],
                "service_pattern": spec["trigger"]["service_pattern"],
                "description": spec.get("description", ""),
            }
        )
    return _json(rows)


def _execution(execution_id: int) -> dict:
    from remediation.playbooks.api import ExecutionDetailOut
    from remediation.playbooks.selectors import execution_get

    return _json(ExecutionDetailOut(execution_get(execution_id)).data)


def _get_execution(*, key, execution_id: int) -> dict:
    return _execution(execution_id)


def _execute(*, key, playbook: str, service: str, variables=None, dry_run=False) -> dict:
    from medic.models import actor_label
    from remediation.approvals.triggers import playbook_execute

    started = playbook_execute(
        playbook=playbook,
        service=service,
        variables=variables or {},
        dry_run=dry_run,
        actor=actor_label(key),
        channel="mcp",
    )
    return _execution(started.execution.pk)


def _decide(*, key, execution_id: int, approve: bool, reason: str = "") -> dict:
    from medic.models import actor_label
    from remediation.approvals.services import approval_decide

    approval = approval_decide(
        execution_id=execution_id,
        actor=actor_label(key),
        approve=approve,
        channel="mcp",
        reason=reason,
    )
    approval.refresh_from_db()
    return _json(
        {
            "execution": execution_id,
            "approval": approval.state,
            "decided_by": approval.decided_by,
            "approvals": approval.approvals,
            "execution_state": approval.execution.state,
        }
    )


def _run(scope: str, fn, **kwargs):
    return sync_to_async(_call, thread_sensitive=False)(scope, fn, **kwargs)


# --- The server -------------------------------------------------------------------------------


def build() -> MCPServer:
    server = MCPServer(
        "medic",
        instructions="Medic: heartbeat monitoring and self-healing. Read services, alerts, "
        "playbooks and executions; start a playbook; approve or decline a waiting run.",
    )

    @server.tool(annotations=READ)
    async def list_services(status: str = "") -> list[dict]:
        """Monitored services (heartbeat name, status up/down/..., team, last heartbeat)."""
        return await _run("read", _list_services, status=status)

    @server.tool(annotations=READ)
    async def get_service(name: str) -> dict:
        """One service by heartbeat name: status, open alert, recent playbook runs."""
        return await _run("read", _get_service, name=name)

    @server.tool(annotations=READ)
    async def list_alerts(state: str = "open") -> list[dict]:
        """Alerts, newest first (state: open, resolved, or empty for all)."""
        return await _run("read", _list_alerts, state=state)

    @server.tool(annotations=READ)
    async def list_playbooks() -> list[dict]:
        """Playbooks with their current version, approval setting and service pattern."""
        return await _run("read", _list_playbooks)

    @server.tool(annotations=READ)
    async def get_execution(execution_id: int) -> dict:
        """One execution: state, steps with results, events, trigger."""
        return await _run("read", _get_execution, execution_id=execution_id)

    @server.tool(annotations=WRITE)
    async def execute_playbook(
        playbook: str, service: str, variables: dict | None = None, dry_run: bool = False
    ) -> dict:
        """Start a playbook (name or id) for a service (heartbeat name). Waits in
        pending_approval when the playbook needs approval. Needs a write-scope key."""
        return await _run(
            "write",
            _execute,
            playbook=playbook,
            service=service,
            variables=variables,
            dry_run=dry_run,
        )

    @server.tool(annotations=WRITE)
    async def approve_execution(execution_id: int, reason: str = "") -> dict:
        """Approve a run waiting for approval. Needs a write-scope key."""
        return await _run("write", _decide, execution_id=execution_id, approve=True, reason=reason)

    @server.tool(annotations=WRITE)
    async def decline_execution(execution_id: int, reason: str = "") -> dict:
        """Decline a run waiting for approval (it is cancelled). Needs a write-scope key."""
        return await _run("write", _decide, execution_id=execution_id, approve=False, reason=reason)

    return server


async def _metrics(key, send) -> None:
    """This process's Prometheus registry (decisions made over MCP are counted here, in
    ``medic_approval_decisions_total{channel="mcp"}``), for a read-scoped key, as the web
    process's /metrics."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

    from medic.auth import require_scope

    try:
        require_scope(key, "read")
    except MedicError as exc:
        body = json.dumps(exc.as_dict()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": exc.status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return
    # Some collectors read the database at scrape time: off the event loop.
    body = await sync_to_async(generate_latest, thread_sensitive=False)(REGISTRY)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", CONTENT_TYPE_LATEST.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def http_app(allowed_hosts: list[str]):
    """The streamable HTTP app at /mcp behind a Bearer-key check, with the transport-security
    allow-list of Host headers this deployment is reached by; /health/live answers 200 for the
    container's health check; /metrics serves this process's metrics to a read-scoped key."""
    from mcp.server.transport_security import TransportSecuritySettings

    from medic.apikeys import api_key_verify

    inner = build().streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(
            enable_dns_rebinding_protection=True, allowed_hosts=allowed_hosts
        ),
    )
    verify = sync_to_async(api_key_verify, thread_sensitive=False)

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return await inner(scope, receive, send)
        if scope.get("path") == "/health/live":
            # The container's health check: the process answers (no key, no database).
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"status": "ok"}'})
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        auth = headers.get("authorization", "")
        key = None
        if auth.lower().startswith("bearer "):
            try:
                key = await verify(auth[7:].strip())
            except MedicError:
                key = None
        if key is None:
            body = json.dumps(
                {
                    "error": {
                        "code": "not_authenticated",
                        "message": "Send a valid Medic API key as Authorization: Bearer.",
                        "fields": {},
                    }
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", b'Bearer realm="medic"'),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        if scope.get("path") == "/metrics":
            await _metrics(key, send)
            return
        token = CURRENT_KEY.set(key)
        try:
            await inner(scope, receive, send)
        finally:
            CURRENT_KEY.reset(token)

    return app
