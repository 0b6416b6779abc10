"""Create alerting's periodic pass in django-celery-beat's DatabaseScheduler (only when the row
does not exist yet; operators change the interval in the Django admin). It took over re-notify,
held-alert release, reconcile and overdue deliveries from the heartbeats sweep."""

from django.db import migrations

from medic.db.periodic import periodic_tasks

TASKS = [
    # (name, task, every, period)
    ("medic: re-notify and deliver open alerts", "alerting.sweep", 5, "seconds"),
]


create, remove = periodic_tasks(TASKS)


class Migration(migrations.Migration):
    dependencies = [
        ("alerting", "0005_delivery_pacing"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
