"""Inbound webhooks: other systems start a playbook by posting to a URL.

``POST /hooks/<token>`` with ``X-Medic-Timestamp: <unix seconds>`` and
``X-Medic-Signature: v1=<hex HMAC-SHA256(signing secret, "<timestamp>.<raw body>")>``. A wrong
token is 404, a bad signature or a timestamp more than five minutes away 401, the same signature
twice 401 (a replay). The mapping picks the service and the variables out of the payload by
dotted path; the Alertmanager format maps each firing alert and starts one execution per
service (a group of alerts for the same service starts one).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from prometheus_client import Counter

from medic import crypto
from medic.errors import InvalidInput, MedicError, NotAuthenticated
from remediation.approvals.models import Channel, HookFormat, InboundHook
from remediation.approvals.triggers import playbook_execute, playbook_find
from remediation.playbooks import compliance

WINDOW = 300
PATH = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")
REFUSED = Counter(
    "medic_hook_requests_refused_total",
    "Inbound webhook requests refused (bad_signature, stale, replayed).",
    ["why"],
)


@dataclass(frozen=True)
class Created:
    hook: InboundHook
    token: str
    signing_secret: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _mapping(format_: str, mapping) -> dict:
    if not isinstance(mapping, dict):
        raise InvalidInput(fields={"mapping": ["An object: {service, variables}."]})
    default = "labels.service" if format_ == HookFormat.ALERTMANAGER else ""
    service = mapping.get("service", default)
    variables = mapping.get("variables") or {}
    problems = []
    if not isinstance(service, str) or not PATH.match(service):
        problems.append("service: a dotted path into the payload, e.g. labels.service.")
    if not isinstance(variables, dict):
        problems.append("variables: an object of NAME: dotted.path.")
    else:
        for name, path in variables.items():
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", str(name)):
                problems.append(f"variables: '{name}' is not a usable variable name.")
            elif not isinstance(path, str) or not PATH.match(path):
                problems.append(f"variables.{name}: a dotted path into the payload.")
    if problems:
        raise InvalidInput(fields={"mapping": problems})
    return {"service": service, "variables": dict(variables)}


def hook_create(*, name: str, playbook: str, format: str, mapping: dict, actor: str) -> Created:
    if format not in HookFormat.values:
        raise InvalidInput(fields={"format": [f"One of {', '.join(HookFormat.values)}."]})
    found = playbook_find(playbook)
    clean = _mapping(format, mapping)
    token = secrets.token_urlsafe(32)
    signing_secret = "whsec_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        if InboundHook.objects.filter(name=name).exists():
            raise InvalidInput(fields={"name": [f"A hook named '{name}' exists."]})
        hook = InboundHook.objects.create(
            name=name,
            playbook=found,
            format=format,
            mapping=clean,
            token_hash=_digest(token),
            signing_secret=crypto.encrypt(signing_secret),
            created_by=actor[:150],
        )
        compliance.audit(
            actor=actor,
            event="hook.created",
            object_type="inbound_hook",
            object_id=str(hook.pk),
            details={"name": name, "format": format, "mapping": clean},
            playbook=found.name,
        )
    return Created(hook, token, signing_secret)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def _refuse(why: str, message: str) -> MedicError:
    REFUSED.labels(why=why).inc()
    return NotAuthenticated(message, code=why)


def _verified(token: str, timestamp: str, signature: str, body: bytes) -> InboundHook:
    hook = InboundHook.objects.select_related("playbook").filter(token_hash=_digest(token)).first()
    if hook is None or not hook.enabled:
        # 401 like any other wrong credential: the token is one, and whether a token exists is
        # not something to tell a caller who does not hold it.
        raise _refuse("unknown_hook", "No enabled hook has this token.")
    expected = sign(crypto.decrypt(hook.signing_secret), timestamp, body)
    if not timestamp.isdigit() or not hmac.compare_digest(expected, signature):
        raise _refuse("bad_signature", "The X-Medic-Signature does not match.")
    if abs(time.time() - int(timestamp)) > WINDOW:
        raise _refuse("stale", "X-Medic-Timestamp is more than five minutes away.")
    if not cache.add(f"hook-signature:{hook.pk}:{signature}", 1, timeout=WINDOW + 60):
        raise _refuse("replayed", "This request was already received.")
    return hook


def _pick(data, path: str):
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _targets(hook: InboundHook, payload: dict) -> list[tuple[str, dict]]:
    """(service, variables) per execution to start, in payload order, one per service."""
    mapping = hook.mapping
    items = [payload]
    if hook.format == HookFormat.ALERTMANAGER:
        alerts = payload.get("alerts")
        if not isinstance(alerts, list):
            raise InvalidInput(fields={"alerts": ["Alertmanager sends a list of alerts."]})
        items = [a for a in alerts if isinstance(a, dict) and a.get("status") == "firing"]
    seen: dict[str, dict] = {}
    for item in items:
        service = _pick(item, mapping["service"])
        if not isinstance(service, str) or not service or service in seen:
            continue
        variables = {}
        for name, path in mapping["variables"].items():
            value = _pick(item, path)
            if isinstance(value, str | int | float | bool):
                variables[name] = value
        seen[service] = variables
    return list(seen.items())


def hook_receive(*, token: str, timestamp: str, signature: str, body: bytes) -> dict:
    hook = _verified(token, timestamp, signature, body)
    try:
        payload = json.loads(body or b"null")
    except ValueError as exc:
        raise InvalidInput("The body is not JSON.", fields={"body": [str(exc)]}) from exc
    if not isinstance(payload, dict):
        raise InvalidInput(fields={"body": ["A JSON object."]})
    targets = _targets(hook, payload)
    started, refused = [], []
    for service, variables in targets:
        try:
            result = playbook_execute(
                playbook=hook.playbook_id,
                service=service,
                variables=variables,
                actor=f"hook:{hook.name}",
                channel=Channel.WEBHOOK,
            )
        except MedicError as exc:
            refused.append({"service": service, "code": exc.code, "message": exc.message})
            continue
        started.append(
            {
                "service": service,
                "execution": result.execution.pk,
                "state": result.execution.state,
            }
        )
    InboundHook.objects.filter(pk=hook.pk).update(last_used_at=timezone.now())
    return {
        "hook": hook.name,
        "playbook": hook.playbook.name,
        "started": started,
        "refused": refused,
    }
