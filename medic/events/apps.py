import contextlib

from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "medic.events"
    label = "events"
    verbose_name = "Domain events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        from medic.events.collectors import ConsumerLagCollector

        # ready() can run twice in some test set-ups: registering twice raises ValueError.
        with contextlib.suppress(ValueError):
            REGISTRY.register(ConsumerLagCollector())
