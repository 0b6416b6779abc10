"""Outcome scoring and automatic demotion.

A completed execution is scored once: ``recovered`` if its service is up again (a heartbeat
after the execution started) by the end of the playbook's verify window, ``not_recovered``
otherwise. When the recent success rate of a playbook's automatic, active runs falls below
MEDIC_PLAYBOOK_DEMOTION_THRESHOLD, the playbook is demoted: automatic runs then wait for
approval, an alert says so and the audit log records it. Saving a new version lifts it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from remediation.playbooks import compliance, engine, metrics
from remediation.playbooks.models import (
    HISTORY_KIND,
    Execution,
    ExecutionState,
    Mode,
    Outcome,
    Playbook,
)


def _recovered(execution: Execution) -> bool:
    from heartbeats.selectors import heartbeat_received_since, service_status

    if execution.service_id is None:
        return False
    return service_status(service_id=execution.service_id) == "up" and heartbeat_received_since(
        service_id=execution.service_id, since=execution.created_at
    )


def outcomes_score(*, now: datetime | None = None, limit: int = 500) -> int:
    now = now or timezone.now()
    # History recorded from another system (the v1 import) is not scored by today's status.
    pending = (
        Execution.objects.filter(state=ExecutionState.COMPLETED, outcome="")
        .exclude(trigger__kind=HISTORY_KIND)
        .order_by("verify_until")[:limit]
    )
    scored = 0
    touched: set[int] = set()
    for execution in pending.select_related("playbook"):
        if _recovered(execution):
            outcome = Outcome.RECOVERED
        elif execution.verify_until is not None and now >= execution.verify_until:
            outcome = Outcome.NOT_RECOVERED
        else:
            continue
        with transaction.atomic():
            updated = Execution.objects.filter(pk=execution.pk, outcome="").update(
                outcome=outcome, outcome_at=now
            )
            if updated:
                execution.events.create(at=now, kind="scored", message=outcome)
        if updated:
            scored += 1
            metrics.OUTCOMES.labels(playbook=execution.playbook.name, outcome=outcome).inc()
            if execution.mode == Mode.ACTIVE and execution.automatic:
                touched.add(execution.playbook_id)
    for playbook_id in touched:
        demote_if_failing(playbook_id=playbook_id)
    return scored


def recent_success_rate(playbook: Playbook) -> tuple[float | None, int]:
    window = settings.MEDIC_PLAYBOOK_DEMOTION_WINDOW_RUNS
    outcomes = list(
        Execution.objects.filter(
            playbook=playbook,
            mode=Mode.ACTIVE,
            automatic=True,
            version__version=playbook.current_version,
        )
        .exclude(outcome="")
        .order_by("-outcome_at", "-id")
        .values_list("outcome", flat=True)[:window]
    )
    if not outcomes:
        return None, 0
    return sum(o == Outcome.RECOVERED for o in outcomes) / len(outcomes), len(outcomes)


def demote_if_failing(*, playbook_id: int) -> bool:
    from alerting.models import AlertReason
    from alerting.services import alert_notice

    with transaction.atomic():
        playbook = Playbook.objects.select_for_update().get(pk=playbook_id)
        if playbook.demoted_at is not None:
            return False
        rate, runs = recent_success_rate(playbook)
        if rate is None or runs < settings.MEDIC_PLAYBOOK_DEMOTION_MIN_RUNS:
            return False
        threshold = settings.MEDIC_PLAYBOOK_DEMOTION_THRESHOLD
        if rate >= threshold:
            return False
        reason = (
            f"v{playbook.current_version} recovered {rate:.0%} of its last {runs} automatic runs "
            f"(threshold {threshold:.0%})"
        )
        playbook.demoted_at = timezone.now()
        playbook.demoted_reason = reason
        playbook.save(update_fields=["demoted_at", "demoted_reason"])
        compliance.audit(
            actor=engine.SYSTEM,
            event="playbook.demoted",
            object_type="playbook",
            object_id=playbook.name,
            details={"reason": reason, "success_rate": rate, "runs": runs},
            playbook=playbook.name,
        )
        last = (
            Execution.objects.filter(playbook=playbook, service__isnull=False)
            .select_related("service")
            .order_by("-id")
            .first()
        )
        if last is not None:
            alert_notice(
                service=last.service,
                reason=AlertReason.PLAYBOOK_DEMOTED,
                summary=f"Playbook {playbook.name} now needs approval: {reason}.",
                dedup_key=f"medic-demoted-{playbook.name}-v{playbook.current_version}",
                details={"playbook": playbook.name, "success_rate": rate, "runs": runs},
                dedup_window=timedelta(days=1),
            )
    metrics.DEMOTIONS.labels(playbook=playbook.name).inc()
    return True
