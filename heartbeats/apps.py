import contextlib

from django.apps import AppConfig


class HeartbeatsConfig(AppConfig):
    name = "heartbeats"
    verbose_name = "Heartbeats"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        from heartbeats.metrics import ServicesCollector

        # ready() can run twice in some test set-ups: registering twice raises ValueError.
        with contextlib.suppress(ValueError):
            REGISTRY.register(ServicesCollector())
