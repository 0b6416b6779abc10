"""The PRD's example playbook, verbatim: the portal's editor starts from it (in shadow mode,
so a first save records what it would do before it does anything) and the tests use it."""

from __future__ import annotations

PRD_EXAMPLE = """\
name: restart-worker
description: Restart the worker service and verify recovery
trigger:
  service_pattern: "worker-*"
  consecutive_failures: 3
approval: none
steps:
  - name: restart-service
    type: webhook
    url: "https://internal-api/restart"
    method: POST
    body:
      service: "${SERVICE_NAME}"
  - name: wait-for-recovery
    type: wait
    duration: 30s
  - name: verify-heartbeat
    type: condition
    check: heartbeat_received
    timeout: 60s
    on_failure: escalate
"""

NEW_PLAYBOOK = PRD_EXAMPLE.replace("approval: none\n", "mode: shadow\napproval: none\n", 1)
