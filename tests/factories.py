"""factory-boy factories for test data. Services go through ``service_create`` (deadlines and
audit rows as in production); heartbeats and alerts are plain rows (history, v1 imports)."""

from __future__ import annotations

import factory
from django.utils import timezone

from alerting.models import Alert, AlertReason, AlertState
from heartbeats.models import Heartbeat, HeartbeatSource, Service
from heartbeats.services import service_create


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service

    heartbeat_name = "billing-worker"
    alert_interval = 5

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return service_create(**kwargs)


class HeartbeatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Heartbeat

    service = factory.SubFactory(ServiceFactory)
    time = factory.LazyFunction(timezone.now)
    status = "UP"
    source = HeartbeatSource.V1


class AlertFactory(factory.django.DjangoModelFactory):
    """An alert as v1 left it: ``open_`` picks the state, ``cycle`` the notification count."""

    class Meta:
        model = Alert
        exclude = ("open_", "cycle")

    open_ = True
    cycle = 1
    service = factory.SubFactory(ServiceFactory)
    dedup_key = factory.LazyAttribute(lambda a: f"medic-{a.service.heartbeat_name}")
    external_reference_id = factory.LazyAttribute(lambda a: f"medic-{a.service.heartbeat_name}")
    state = factory.LazyAttribute(lambda a: AlertState.OPEN if a.open_ else AlertState.RESOLVED)
    reason = AlertReason.MISSED_HEARTBEAT
    priority = factory.LazyAttribute(lambda a: a.service.priority)
    summary = factory.LazyAttribute(lambda a: f"{a.service.heartbeat_name}: no heartbeat")
    opened_at = factory.LazyFunction(timezone.now)
    resolved_at = factory.LazyAttribute(lambda a: None if a.open_ else a.opened_at)
    notify_count = factory.SelfAttribute("cycle")
