"""Create the job-expiry periodic task in django-celery-beat's DatabaseScheduler (editable in the
admin under Periodic tasks; only created when missing)."""

from django.db import migrations

from medic.db.periodic import periodic_tasks

TASKS = [
    # (name, task, every, period)
    ("medic: expire lost and stale script jobs", "remediation.expire_jobs", 30, "seconds"),
]


create, remove = periodic_tasks(TASKS)


class Migration(migrations.Migration):
    dependencies = [
        ("remediation", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
