"""Writes for registered scripts and for queueing their runs.

Every change to a script writes a new immutable ``ScriptVersion`` and a remediation audit row
(remediation.audit) in the same transaction; a job pins the version it was queued with. Job
lifecycle (claiming, results, skips, expiry, local runs) is in remediation.jobs; agents in
remediation.agents.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from dataclasses import dataclass

import jsonschema
from celery import signature
from django.db import IntegrityError, transaction
from django.utils import timezone

from medic.errors import Conflict, InvalidInput
from remediation import selectors, wakeup
from remediation.audit.services import audit_record
from remediation.metrics import JOBS_QUEUED
from remediation.models import Agent, Job, JobTarget, Script, ScriptVersion
from remediation.sandbox import ArgumentError, args_to_argv, valid_arg_name

logger = logging.getLogger(__name__)
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_BODY_BYTES = 256 * 1024
# The longest timeout a script may have; the local-run task's time limit is built from it.
MAX_TIMEOUT_SECONDS = 3600
LABEL_MAX = 64
DEFAULT_SCHEMA = {"type": "object", "properties": {}, "additionalProperties": False}
# (field, minimum, maximum); the maximum of the timeout is a setting (the Celery task limit).
LIMIT_RANGES = {
    "cpu_seconds": (1, 86_400),
    "memory_mb": (16, 65_536),
    "open_files": (8, 65_536),
    "processes": (1, 4096),
    "output_bytes": (1024, 1024 * 1024),
}
SPEC_FIELDS = (
    "description",
    "command",
    "body",
    "sha256",
    "args_schema",
    "timeout_seconds",
    *LIMIT_RANGES,
    "run_local",
    "run_on_agents",
    "agent_labels",
)


# --- Validation -------------------------------------------------------------------------------


def _check_spec(spec: dict) -> dict:
    """Validate and normalise a full script spec; raise InvalidInput with every problem."""
    errors: dict[str, list[str]] = {}
    command = spec.get("command") or []
    body = spec.get("body") or ""
    sha256 = (spec.get("sha256") or "").strip().lower()
    if not isinstance(command, list) or not all(isinstance(a, str) and a for a in command):
        errors["command"] = ["Must be a list of non-empty strings (argv; no shell)."]
    elif command and not command[0].startswith("/"):
        errors["command"] = ["The program must be an absolute path (no PATH lookup)."]
    elif any("\x00" in a for a in command):
        errors["command"] = ["Must not contain NUL."]
    if command and body:
        errors["body"] = ["Give a command or a body, not both."]
    if body:
        data = body.encode()
        if len(data) > MAX_BODY_BYTES:
            errors["body"] = [f"At most {MAX_BODY_BYTES} bytes."]
        elif not body.startswith("#!"):
            errors["body"] = ["Must start with a '#!' interpreter line (it is executed directly)."]
        digest = hashlib.sha256(data).hexdigest()
        if sha256 and sha256 != digest:
            errors["sha256"] = [f"Does not match the body (its sha256 is {digest})."]
        sha256 = digest
    elif sha256 and not SHA256_RE.match(sha256):
        errors["sha256"] = ["Must be 64 hex digits (medic-agent hash FILE prints it)."]
    run_local = bool(spec.get("run_local"))
    run_on_agents = bool(spec.get("run_on_agents"))
    if not run_local and not run_on_agents:
        errors.setdefault("run_local", []).append(
            "A script must be allowed to run somewhere: run_local and/or run_on_agents."
        )
    if run_local and not (command or body):
        errors.setdefault("run_local", []).append("Running locally needs a command or a body.")
    if run_on_agents and not sha256:
        errors.setdefault("sha256", []).append(
            "Running on agents needs the sha256 of the script agents hold (or a body)."
        )
    labels = spec.get("agent_labels") or []
    if not isinstance(labels, list) or not all(
        isinstance(x, str) and 0 < len(x) <= LABEL_MAX for x in labels
    ):
        errors["agent_labels"] = [f"Must be a list of labels of 1 to {LABEL_MAX} characters."]
    schema = spec.get("args_schema")
    if schema is None or schema == {}:
        schema = dict(DEFAULT_SCHEMA)
    errors.update(_check_args_schema(schema))
    timeout = spec.get("timeout_seconds")
    max_timeout = MAX_TIMEOUT_SECONDS
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= max_timeout:
        errors["timeout_seconds"] = [f"Must be a whole number of seconds from 1 to {max_timeout}."]
    for name, (low, high) in LIMIT_RANGES.items():
        value = spec.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            errors[name] = [f"Must be a whole number from {low} to {high}."]
    if errors:
        raise InvalidInput(fields=errors)
    return {
        **{k: spec.get(k) for k in SPEC_FIELDS},
        "description": (spec.get("description") or "")[:500],
        "command": command,
        "body": body,
        "sha256": sha256,
        "args_schema": schema,
        "run_local": run_local,
        "run_on_agents": run_on_agents,
        "agent_labels": sorted(set(labels)),
    }


def _check_args_schema(schema) -> dict[str, list[str]]:
    if not isinstance(schema, dict):
        return {"args_schema": ["Must be a JSON Schema object."]}
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return {"args_schema": [f"Not a valid JSON Schema (2020-12): {exc.message}"]}
    problems = []
    if schema.get("type") != "object":
        problems.append('The top level must be {"type": "object", ...}.')
    # Nothing but the declared arguments may reach a script: an open schema would let any
    # caller add --anything=value to its argv.
    if schema.get("additionalProperties") is not False:
        problems.append('The top level must set "additionalProperties": false.')
    bad = [n for n in (schema.get("properties") or {}) if not valid_arg_name(n)]
    if bad:
        problems.append(f"Argument names must be 1 to 64 of A-Z a-z 0-9 _: {', '.join(bad)}.")
    return {"args_schema": problems} if problems else {}


def args_validate(*, version: ScriptVersion, args) -> list[str]:
    """Check arguments against the version's schema; return them as argv entries."""
    if not isinstance(args, dict):
        raise InvalidInput(fields={"args": ["Must be an object of arguments."]})
    validator = jsonschema.Draft202012Validator(version.args_schema)
    errors: dict[str, list[str]] = {}
    for error in sorted(validator.iter_errors(args), key=lambda e: list(e.absolute_path)):
        where = ".".join(["args", *(str(p) for p in error.absolute_path)])
        errors.setdefault(where, []).append(error.message)
    if errors:
        raise InvalidInput("The arguments do not match the script's schema.", fields=errors)
    try:
        return args_to_argv(args)
    except ArgumentError as exc:
        raise InvalidInput(fields={"args": [str(exc)]}) from exc


# --- Scripts ----------------------------------------------------------------------------------


def _spec_of(version: ScriptVersion) -> dict:
    return {name: getattr(version, name) for name in SPEC_FIELDS}


def _audit(actor: str, event: str, script: Script, details: dict) -> None:
    audit_record(
        actor=actor, event=event, object_type="script", object_id=script.name, details=details
    )


def _version_details(version: ScriptVersion, changed: list[str]) -> dict:
    # The audit row names what changed and the content hash, never the body itself.
    return {
        "version": version.version,
        "changed": changed,
        "sha256": version.sha256,
        "run_local": version.run_local,
        "run_on_agents": version.run_on_agents,
        "agent_labels": version.agent_labels,
    }


def script_create(*, name: str, actor: str, **spec) -> ScriptVersion:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise InvalidInput(fields={"name": ["1 to 128 characters from A-Z a-z 0-9 _ . -"]})
    defaults = {
        "timeout_seconds": 60,
        "cpu_seconds": 30,
        "memory_mb": 256,
        "open_files": 64,
        "processes": 32,
        "output_bytes": 65536,
    }
    clean = _check_spec({**defaults, **{k: v for k, v in spec.items() if v is not None}})
    now = timezone.now()
    try:
        with transaction.atomic():
            script = Script.objects.create(name=name, created_at=now, updated_at=now)
            version = ScriptVersion(
                script=script, version=1, created_at=now, created_by=actor, **clean
            )
            version.full_clean()
            version.save()
            _audit(actor, "script.created", script, _version_details(version, sorted(clean)))
    except IntegrityError as exc:
        raise Conflict(
            f"A script named '{name}' already exists; change it with PATCH.",
            code="script_exists",
        ) from exc
    return version


def script_update(*, name: str, actor: str, **changes) -> ScriptVersion:
    """Write the next version: the current spec with ``changes`` applied. No-op changes write
    nothing."""
    with transaction.atomic():
        script = selectors.script_get(name, for_update=True)
        current = script.versions.get(version=script.current_version)
        spec = _spec_of(current)
        changes = {k: v for k, v in changes.items() if k in SPEC_FIELDS}
        if changes.get("body"):
            spec["command"] = []
            if "sha256" not in changes:
                spec["sha256"] = ""
        if changes.get("command"):
            spec["body"] = ""
        spec.update(changes)
        clean = _check_spec(spec)
        changed = sorted(k for k in SPEC_FIELDS if clean[k] != getattr(current, k))
        if not changed and script.enabled:
            return current
        now = timezone.now()
        version = ScriptVersion(
            script=script,
            version=script.current_version + 1,
            created_at=now,
            created_by=actor,
            **clean,
        )
        version.full_clean()
        version.save()
        script.current_version = version.version
        script.enabled = True
        script.updated_at = now
        script.save(update_fields=["current_version", "enabled", "updated_at"])
        _audit(actor, "script.version_created", script, _version_details(version, changed))
    return version


def script_disable(*, name: str, actor: str) -> Script:
    with transaction.atomic():
        script = selectors.script_get(name, for_update=True)
        if script.enabled:
            script.enabled = False
            script.updated_at = timezone.now()
            script.save(update_fields=["enabled", "updated_at"])
            _audit(actor, "script.disabled", script, {"version": script.current_version})
    return script


# --- Runs -------------------------------------------------------------------------------------


@dataclass
class RunTarget:
    local: bool = False
    agent: str | None = None
    labels: list[str] | None = None


def _target_agents(version: ScriptVersion, target: RunTarget) -> list[Agent]:
    if not version.run_on_agents:
        raise InvalidInput(
            f"Script '{version.script.name}' may not run on agents.",
            code="target_not_allowed",
            fields={"target": ["This script is not allowed to run on agents."]},
        )
    required = set(version.agent_labels)
    if target.agent is not None:
        agent = selectors.agent_get(target.agent)
        if not agent.enabled:
            raise Conflict(f"Agent '{agent.name}' is disabled.", code="agent_disabled")
        missing = selectors.labels_missing(agent, required)
        if missing:
            raise InvalidInput(
                f"Agent '{agent.name}' lacks the labels this script requires.",
                code="target_not_allowed",
                fields={"target": [f"Missing label(s): {', '.join(sorted(missing))}."]},
            )
        return [agent]
    wanted = set(target.labels or [])
    agents = [
        a
        for a in Agent.objects.filter(enabled=True).order_by("name")
        if not selectors.labels_missing(a, wanted | required)
    ]
    if not agents:
        raise InvalidInput(
            "No enabled agent carries these labels (and the script's own).",
            code="no_matching_agent",
            fields={"target": [f"No agent has all of: {', '.join(sorted(wanted | required))}."]},
        )
    return agents


def script_run(*, name: str, target: RunTarget, args: dict, actor: str) -> list[Job]:
    """Queue a run of the current version: one job locally, or one per matched agent."""
    script = selectors.script_get(name)
    if not script.enabled:
        raise Conflict(f"Script '{script.name}' is disabled.", code="script_disabled")
    version = script.versions.select_related("script").get(version=script.current_version)
    args_validate(version=version, args=args)
    if target.local:
        if not version.run_local:
            raise InvalidInput(
                f"Script '{script.name}' may not run on the Medic worker.",
                code="target_not_allowed",
                fields={"target": ["This script is not allowed to run locally."]},
            )
        agents: list[Agent | None] = [None]
    else:
        agents = list(_target_agents(version, target))
    batch = uuid.uuid4()
    now = timezone.now()
    with transaction.atomic():
        jobs = [
            Job.objects.create(
                batch=batch,
                script_version=version,
                target=JobTarget.LOCAL if agent is None else JobTarget.AGENT,
                agent=agent,
                args=args,
                requested_by=actor,
                created_at=now,
            )
            for agent in agents
        ]
        _audit(
            actor,
            "script.run",
            script,
            {
                "version": version.version,
                "target": "local" if target.local else [a.name for a in agents if a],
                "jobs": [str(j.pk) for j in jobs],
                "arg_names": sorted(args),
                # Values too (masked like every detail): what ran matters after an incident.
                "args": args,
            },
        )
        if target.local:
            job_id = str(jobs[0].pk)
            # Enqueued by name: remediation.tasks calls back into this module.
            transaction.on_commit(lambda: _enqueue_local(signature(RUN_LOCAL_JOB_TASK), job_id))
        else:
            agent_ids = [a.pk for a in agents if a is not None]
            transaction.on_commit(lambda: wakeup.publish(agent_ids))
    JOBS_QUEUED.labels(target="local" if target.local else "agent").inc(len(jobs))
    return jobs


RUN_LOCAL_JOB_TASK = "remediation.run_local_job"


def _enqueue_local(task, job_id: str) -> None:
    try:
        task.delay(job_id)
    except Exception:
        # The job stays queued; jobs_expire fails it after MEDIC_AGENT_JOB_QUEUE_TTL_SECONDS.
        logger.warning("could not enqueue a local job", extra={"job_id": job_id}, exc_info=True)
