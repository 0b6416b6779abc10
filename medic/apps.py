import contextlib

from django.apps import AppConfig


class MedicConfig(AppConfig):
    name = "medic"
    verbose_name = "Medic"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        import medic.keyring  # registers the stored-secrets system check
        import medic.schema  # noqa: F401  (registers the OpenAPI auth extension)
        from medic.collectors import StateCollector

        # ready() can run twice in some test set-ups: registering twice raises ValueError.
        with contextlib.suppress(ValueError):
            REGISTRY.register(StateCollector())
