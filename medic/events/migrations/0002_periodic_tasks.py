"""Create the outbox's periodic tasks in django-celery-beat's DatabaseScheduler (only when the
rows do not exist yet; operators change intervals in the Django admin)."""

from django.db import migrations

TASKS = [
    # (name, task, every, period)
    ("medic: dispatch pending domain events", "medic.events.sweep", 5, "seconds"),
    ("medic: prune old domain events", "medic.events.prune", 1, "hours"),
]


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, every, period in TASKS:
        schedule, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
        PeriodicTask.objects.get_or_create(
            name=name, defaults={"task": task, "interval": schedule, "enabled": True}
        )


def remove(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[t[0] for t in TASKS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
