import contextlib

from django.apps import AppConfig


class PlaybooksConfig(AppConfig):
    name = "remediation.playbooks"
    label = "playbooks"
    verbose_name = "Playbooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        from remediation.playbooks.metrics import PlaybookCollector

        with contextlib.suppress(ValueError):
            REGISTRY.register(PlaybookCollector())
