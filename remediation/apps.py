import contextlib

from django.apps import AppConfig


class RemediationConfig(AppConfig):
    name = "remediation"
    verbose_name = "Remediation"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        # Registers the tasks, which services enqueue by name.
        from remediation import tasks  # noqa: F401
        from remediation.metrics import AgentCollector
        from remediation.playbooks import triggers

        # ready() can run twice in some test set-ups: registering twice raises ValueError.
        with contextlib.suppress(ValueError):
            REGISTRY.register(AgentCollector())
        # Playbooks start from domain events (service down, job failed, alert opened, ...).
        triggers.register()
