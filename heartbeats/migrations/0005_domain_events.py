"""Service state changes move to the domain-event outbox (medic.events).

A recovery recorded in the old outbox and not yet processed becomes a pending
``service.recovered`` event for the "alerting" consumer, so its alert is still resolved (and the
recovery notified) after the upgrade. Down services get their next still-down check from the
sweep's first pass (``still_down_at`` starts empty and is armed when a service next goes down).
"""

from django.db import migrations, models


def state_changes_to_events(apps, schema_editor):
    ServiceStateChange = apps.get_model("heartbeats", "ServiceStateChange")
    DomainEvent = apps.get_model("events", "DomainEvent")
    EventProgress = apps.get_model("events", "EventProgress")
    pending = ServiceStateChange.objects.filter(
        processed_at__isnull=True, from_status="down", to_status="up"
    ).select_related("service")
    for change in pending.order_by("created_at", "id"):
        event = DomainEvent.objects.create(
            kind="service.recovered",
            service_id=change.service_id,
            service_name=change.service.heartbeat_name,
            occurred_at=change.created_at,
            payload={"down_since": None},
            created_at=change.created_at,
        )
        EventProgress.objects.create(
            consumer="alerting",
            event=event,
            service_id=change.service_id,
            next_attempt_at=change.created_at,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("heartbeats", "0004_leaner_heartbeat_indexes"),
        ("events", "0003_job_completed"),
    ]

    operations = [
        migrations.RunPython(state_changes_to_events, migrations.RunPython.noop),
        migrations.RemoveField(model_name="servicestatechange", name="service"),
        migrations.AddField(
            model_name="service",
            name="still_down_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="service",
            index=models.Index(
                condition=models.Q(("active", True), ("status", "down")),
                fields=["still_down_at"],
                name="service_still_down_idx",
            ),
        ),
        migrations.DeleteModel(name="ServiceStateChange"),
    ]
