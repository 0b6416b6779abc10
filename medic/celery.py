import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medic.settings")

app = Celery("medic")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _serve_worker_metrics(sender=None, **kwargs) -> None:
    from django.conf import settings

    from medic import worker_metrics

    pool = getattr(getattr(sender, "pool_cls", None), "__module__", "")
    if "prefork" in pool:
        import logging

        logging.getLogger(__name__).warning(
            "worker metrics need --pool threads (or solo): prefork children keep their own "
            "registries, which the endpoint cannot see"
        )
    worker_metrics.start(
        settings.MEDIC_WORKER_METRICS_ADDR, require_key=settings.MEDIC_WORKER_METRICS_REQUIRE_KEY
    )
