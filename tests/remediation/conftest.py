"""Fixtures for remote execution: scripts, agents with their keys, an agent API client."""

from __future__ import annotations

import hashlib

import pytest

from remediation.agents import agent_create
from remediation.services import script_create
from tests.conftest import ApiClient

GREET_BODY = '#!/bin/sh\nprintf "hello %s\\n" "$*"\n'
GREET_SHA = hashlib.sha256(GREET_BODY.encode()).hexdigest()
GREET_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "pattern": "^[A-Za-z0-9 -]{1,40}$"}},
    "required": ["name"],
    "additionalProperties": False,
}


@pytest.fixture
def greet(db):
    """A script that may run locally and on agents labelled role:web."""
    return script_create(
        name="greet",
        actor="tests",
        body=GREET_BODY,
        args_schema=GREET_SCHEMA,
        run_local=True,
        run_on_agents=True,
        agent_labels=["role:web"],
    )


def register(client: ApiClient, **extra) -> dict:
    body = {
        "hostname": "web-1.example",
        "os": "linux",
        "arch": "x86_64",
        "agent_version": "0.1.0",
        "labels": ["env:test"],
        "scripts": [{"name": "greet", "sha256": GREET_SHA}],
    }
    body.update(extra)
    response = client.post("/v2/agent/register", body)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def web1(db):
    """An agent (name web-1, label role:web) and an API client holding its key."""
    issued = agent_create(name="web-1", labels=["role:web"], actor="tests")
    return issued.agent, ApiClient(issued.secret)


@pytest.fixture
def db1(db):
    issued = agent_create(name="db-1", labels=["role:db"], actor="tests")
    return issued.agent, ApiClient(issued.secret)
