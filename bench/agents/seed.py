"""Create N agents (one API key each), a read key for /metrics and a script to queue.

Prints nothing but writes the keys, one per line, to the file given; the read key first.
"""

from __future__ import annotations

import os
import sys

import django


def main() -> None:
    count, out = int(sys.argv[1]), sys.argv[2]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medic.settings")
    django.setup()
    from argon2 import PasswordHasher

    import medic.apikeys
    from medic.apikeys import api_key_create
    from remediation.agents import agent_create
    from remediation.services import script_create

    # Bench only: cheap argon2 parameters, so that hashing 1,000 keys here and verifying each
    # once in the gateway (its first request) take seconds. Verification reads the parameters
    # from the stored hash; the steady state measured (waiting polls) never hashes.
    medic.apikeys._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    script_create(
        name="bench_noop",
        actor="bench",
        body="#!/bin/sh\nexit 0\n",
        args_schema={
            "type": "object",
            "properties": {"n": {"type": "integer"}},
            "additionalProperties": False,
        },
        run_on_agents=True,
    )
    metrics_key = api_key_create(
        name="bench metrics", scopes=["read"], rate_limits={"management": 0}, actor="bench"
    )
    lines = [metrics_key.secret]
    lines += [agent_create(name=f"bench-{i:05d}", actor="bench").secret for i in range(count)]
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
