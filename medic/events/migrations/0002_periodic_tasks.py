"""Create the outbox's periodic tasks in django-celery-beat's DatabaseScheduler (only when the
rows do not exist yet; operators change intervals in the Django admin)."""

from django.db import migrations

from medic.db.periodic import periodic_tasks

TASKS = [
    # (name, task, every, period)
    ("medic: dispatch pending domain events", "medic.events.sweep", 5, "seconds"),
    ("medic: prune old domain events", "medic.events.prune", 1, "hours"),
]


create, remove = periodic_tasks(TASKS)


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
