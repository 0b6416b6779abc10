"""Where other parts of remediation plug into the engine without the engine importing them
(approvals registers here from its AppConfig.ready):

- ``parked``: ``fn(execution=, spec=, demoted=, now=)`` in the transaction that parks an
  execution in ``pending_approval``;
- ``recovered``: ``fn(service_id=)`` when the ``service.recovered`` event is consumed;
- ``sweep``: ``fn()`` on every playbook sweep (deadlines kept in the database).
"""

from __future__ import annotations

from collections.abc import Callable

parked: list[Callable] = []
recovered: list[Callable] = []
sweep: list[Callable] = []


def register(*, on_parked=None, on_recovered=None, on_sweep=None) -> None:
    for hooks, fn in ((parked, on_parked), (recovered, on_recovered), (sweep, on_sweep)):
        if fn is not None and fn not in hooks:
            hooks.append(fn)
