"""The audit log and named secrets, as the playbook engine uses them (one place to look)."""

from __future__ import annotations

from remediation.audit.services import audit_record
from remediation.secrets import services as secrets

MASK = secrets.MASK


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
    """Write an audit row (secrets masked by the audit log); call inside the change's
    transaction."""
    audit_record(
        actor=actor,
        event=event,
        object_type=object_type,
        object_id=str(object_id),
        details=details,
        playbook=playbook,
        service=service,
        execution_id=execution_id,
    )


def secret_names() -> set[str]:
    return secrets.secret_names()


def secret_value(name: str) -> str:
    return secrets.secret_value(name=name)


def mask(text: str) -> str:
    return secrets.secrets_mask(text) if text else text


def mask_value(value):
    """Mask every string inside a JSON-like value (keys included)."""
    return secrets.secrets_mask_data(value)


def masker():
    """One masking function for many values (one look at the secret store)."""
    return secrets.secrets_masker()
