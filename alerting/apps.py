import contextlib

from django.apps import AppConfig


class AlertingConfig(AppConfig):
    name = "alerting"
    verbose_name = "Alerting"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        # Registers the tasks, which other modules enqueue by name.
        from alerting import tasks  # noqa: F401
        from alerting.consumer import CONSUMER, HANDLERS, handle
        from alerting.metrics import AlertsCollector
        from alerting.sealed import STORE
        from medic.events.consumers import consumer_register
        from medic.keyring import sealed_store_register

        consumer_register(CONSUMER, handle, kinds=set(HANDLERS))
        sealed_store_register(STORE)
        # ready() can run twice in some test set-ups: registering twice raises ValueError.
        with contextlib.suppress(ValueError):
            REGISTRY.register(AlertsCollector())
