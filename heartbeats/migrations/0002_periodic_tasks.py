"""Create Medic's periodic tasks in django-celery-beat's DatabaseScheduler.

Operators can change the intervals in the Django admin (Periodic tasks); this migration only
creates the rows when they do not exist yet.
"""

from django.db import migrations

from medic.db.periodic import periodic_tasks

TASKS = [
    # (name, task, every, period)
    ("medic: sweep for missed heartbeats", "heartbeats.sweep", 5, "seconds"),
    ("medic: prune old heartbeats", "heartbeats.prune", 1, "hours"),
]


create, remove = periodic_tasks(TASKS)


class Migration(migrations.Migration):
    dependencies = [
        ("heartbeats", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
