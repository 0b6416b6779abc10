import logging
import os
import warnings

from celery import Celery
from celery.exceptions import SecurityWarning
from celery.signals import after_setup_logger, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medic.settings")

app = Celery("medic")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

if os.environ.get("MEDIC_EMBEDDED", "").lower() in {"1", "true", "yes", "on"}:
    # The embedded mode is a trial in the user's own terminal, often a root shell in a container:
    # Celery's warning about root is about pickle-era remote code execution, which this worker
    # (JSON only) does not allow. Production images run as an unprivileged user.
    warnings.filterwarnings("ignore", category=SecurityWarning)


@after_setup_logger.connect
def _quiet_routine_task_lines(**kwargs) -> None:
    # The sweep and the outbox run every few seconds: "sending due task", "task received" and
    # "task succeeded" lines for them say that nothing happened. Tasks log what they did; a
    # failed or retried task is still logged (at WARNING or ERROR) by these loggers.
    for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace"):
        logging.getLogger(name).setLevel(logging.WARNING)


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
