import contextlib

from django.apps import AppConfig


class SecretsConfig(AppConfig):
    """Named secrets for playbooks (docs/secrets.md), encrypted at rest."""

    name = "remediation.secrets"
    label = "secrets"
    verbose_name = "Remediation secrets"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        from medic.keyring import sealed_store_register
        from remediation.audit.masking import masker_register
        from remediation.secrets.metrics import SecretsCollector
        from remediation.secrets.selectors import secrets_masker
        from remediation.secrets.services import STORE

        masker_register(secrets_masker)
        sealed_store_register(STORE)

        # ready() can run twice in some test set-ups: registering twice raises ValueError.
        with contextlib.suppress(ValueError):
            REGISTRY.register(SecretsCollector())
