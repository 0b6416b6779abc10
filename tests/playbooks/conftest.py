"""Fixtures for playbooks: the PRD's example document, a monitored service with an open alert,
and a helper that drives an execution to its end in-process (tasks run inline)."""

from __future__ import annotations

import textwrap

from remediation.playbooks.examples import PRD_EXAMPLE  # noqa: F401 (one definition, re-exported)


def playbook_yaml(
    name: str,
    url: str,
    *,
    pattern: str = "worker-*",
    failures: int = 1,
    extra_trigger: str = "",
    mode: str = "active",
    wait: str = "1s",
    timeout: str = "30s",
) -> str:
    return textwrap.dedent(
        f"""\
        name: {name}
        mode: {mode}
        trigger:
          service_pattern: "{pattern}"
          consecutive_failures: {failures}
        EXTRA
        steps:
          - name: restart
            type: webhook
            url: "{url}/restart"
            timeout: 5s
            retries: 2
            backoff: 1s
            body:
              service: "${{SERVICE_NAME}}"
              alert: "${{ALERT_ID}}"
          - name: settle
            type: wait
            duration: {wait}
          - name: verify
            type: condition
            check: heartbeat_received
            timeout: {timeout}
            interval: 1s
            on_failure: escalate
        """
    ).replace("EXTRA\n", extra_trigger + "\n" if extra_trigger else "")


def post_yaml(client, path: str, text: str, method: str = "post", **extra):
    if client.key:
        extra.setdefault("HTTP_AUTHORIZATION", f"Bearer {client.key}")
    return getattr(client, method)(path, text, content_type="application/yaml", **extra)


# Real worker processes (tests/e2e): re-exported so the end-to-end tests here can use them.
from tests.e2e.conftest import start_web, start_worker  # noqa: E402, F401
