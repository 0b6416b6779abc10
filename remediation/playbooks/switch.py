"""Is remediation stopped? The one switch has two halves: MEDIC_REMEDIATION_ENABLED and the
RemediationSwitch row (POST /v2/remediation/stop). Either one off stops everything."""

from __future__ import annotations

from django.conf import settings

from remediation.playbooks.models import RemediationSwitch


def remediation_stopped() -> str:
    """Why remediation is stopped right now ('' when it is not)."""
    if not settings.MEDIC_REMEDIATION_ENABLED:
        return "MEDIC_REMEDIATION_ENABLED is off"
    switch = RemediationSwitch.objects.filter(pk=1, stopped=True).first()
    if switch is not None:
        return f"stopped by {switch.changed_by}" + (f": {switch.reason}" if switch.reason else "")
    return ""
