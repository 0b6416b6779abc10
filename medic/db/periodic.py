"""Data-migration helpers for the periodic tasks in django-celery-beat's DatabaseScheduler.

Each app's migration lists its tasks; rows are created only when missing, so operators keep the
intervals they changed in the Django admin (Periodic tasks). Migrations import this module: keep
its functions' behaviour stable.
"""

from __future__ import annotations

from collections.abc import Callable

# (name, task, every, period): period is an IntervalSchedule period ("seconds", "hours", ...).
Task = tuple[str, str, int, str]


def periodic_tasks(tasks: list[Task]) -> tuple[Callable, Callable]:
    """The (create, remove) functions of a RunPython operation for ``tasks``."""

    def create(apps, schema_editor) -> None:
        IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
        for name, task, every, period in tasks:
            schedule, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
            PeriodicTask.objects.get_or_create(
                name=name, defaults={"task": task, "interval": schedule, "enabled": True}
            )

    def remove(apps, schema_editor) -> None:
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
        PeriodicTask.objects.filter(name__in=[t[0] for t in tasks]).delete()

    return create, remove
