"""The audit log and named secrets, as the playbook engine uses them.

Audit rows go through ``remediation.audit.services.audit_record`` (which masks secrets itself)
and secrets come from ``remediation.secrets.services``. An installation without those parts
records into the core's ``AuditEvent`` table and knows no secrets (any ``${SECRET.x}`` is then
refused at save time), so the engine never depends on their presence to run.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from medic.models import AuditEvent

MASK = "••••••"


def _module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            return None
        raise


def audit(
    *,
    actor: str,
    event: str,
    object_type: str,
    object_id: str,
    details: dict,
    playbook: str | None = None,
    service: str | None = None,
    execution_id: int | None = None,
) -> None:
    """Write an audit row; call inside the transaction of the change it records."""
    module = _module("remediation.audit.services")
    if module is not None:
        module.audit_record(
            actor=actor,
            event=event,
            object_type=object_type,
            object_id=str(object_id),
            details=details,
            playbook=playbook,
            service=service,
            execution_id=execution_id,
        )
        return
    context = {k: v for k, v in (("playbook", playbook), ("service", service)) if v}
    if execution_id is not None:
        context["execution_id"] = execution_id
    AuditEvent.objects.create(
        actor=actor[:150],
        event=event[:64],
        object_type=object_type[:64],
        object_id=str(object_id)[:64],
        details=mask_value({**context, **details}),
    )


def secret_names() -> set[str]:
    module = _module("remediation.secrets.services")
    return set(module.secret_names()) if module is not None else set()


def secret_value(name: str) -> str:
    module = _module("remediation.secrets.services")
    if module is None:
        from medic.errors import NotFound

        raise NotFound(f"No secret named '{name}'.", code="secret_not_found")
    return module.secret_value(name=name)


def mask(text: str) -> str:
    module = _module("remediation.secrets.services")
    if module is None or not text:
        return text
    return module.secrets_mask(text)


def mask_value(value):
    """Mask every string inside a JSON-like value."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_value(v) for v in value]
    return value
