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
        from remediation.reports.metrics import SuccessCollector

        # ready() can run twice in some test set-ups: registering twice raises ValueError.
        with contextlib.suppress(ValueError):
            REGISTRY.register(AgentCollector())
        with contextlib.suppress(ValueError):
            REGISTRY.register(SuccessCollector())
        # Playbooks start from domain events (service down, job failed, alert opened, ...).
        triggers.register()
        # The playbook sweep forgets agent memory days past their retention.
        from remediation.agents import agent_memory_prune
        from remediation.playbooks import hooks

        hooks.register(on_sweep=agent_memory_prune)
