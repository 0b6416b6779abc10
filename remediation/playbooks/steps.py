"""What each step type does, given a claimed step: webhook, script, wait, condition, escalate.

Executors return a ``StepOutcome`` and write nothing themselves: the engine records the outcome
with a compare-and-set on the claim. Side effects are made repeat-safe here: a webhook carries an
``Idempotency-Key`` fixed per execution and step, and a script step's jobs are created once, in
the transaction that claims the step (``script_dispatch``), and only watched afterwards.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests
from django.conf import settings

from remediation.playbooks import compliance
from remediation.playbooks.models import Execution, ExecutionStep
from remediation.playbooks.spec import variables_in
from remediation.playbooks.variables import Scope, render

SUCCEEDED = "succeeded"
FAILED = "failed"
WAIT = "wait"
ESCALATE = "escalate"


@dataclass
class StepOutcome:
    status: str
    result: dict = field(default_factory=dict)
    request: dict | None = None
    resume_at: datetime | None = None
    message: str = ""
    # A failure that another attempt cannot fix (a refused argument, a 4xx): no retry.
    final: bool = False


@dataclass
class StepContext:
    execution: Execution
    step: ExecutionStep
    spec: dict
    scope: Scope
    now: datetime

    @property
    def deadline(self) -> datetime:
        return self.step.started_at + timedelta(seconds=self.spec["timeout_seconds"])


def idempotency_key(execution_id: int, step_name: str) -> str:
    """The same for every retry and every resume of one step of one execution."""
    return f"medic-{execution_id}-{step_name}"


def _secrets_used(value, scope: Scope) -> list[str]:
    names = [v.strip()[7:] for v in variables_in(value) if v.strip().startswith("SECRET.")]
    return [scope.lookup(f"SECRET.{n}", reveal=True) for n in names]


def scrub(text: str, plaintexts: list[str]) -> str:
    """Mask secrets in something a remote party sent back (it may echo what we sent)."""
    for secret in plaintexts:
        if secret:
            text = text.replace(secret, compliance.MASK)
    return compliance.mask(text)


def _cap(text: str) -> str:
    limit = settings.MEDIC_PLAYBOOK_CAPTURE_BYTES
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode(errors="replace") + "…"


# --- webhook ----------------------------------------------------------------------------------


def webhook_request(ctx: StepContext, *, reveal: bool) -> dict:
    spec = ctx.spec
    headers = render(spec["headers"], ctx.scope, reveal=reveal)
    headers["Idempotency-Key"] = idempotency_key(ctx.execution.pk, spec["name"])
    return {
        "method": spec["method"],
        "url": render(spec["url"], ctx.scope, reveal=reveal),
        "headers": headers,
        "body": render(spec["body"], ctx.scope, reveal=reveal),
        "timeout_seconds": spec["timeout_seconds"],
    }


def _json_path(document, path: str):
    value = document
    for key, index in re.findall(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]", path.lstrip("$")):
        if key:
            if not isinstance(value, dict) or key not in value:
                return _MISSING
            value = value[key]
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                return _MISSING
            value = value[int(index)]
    return value


_MISSING = object()


def _webhook_success(success: dict, status: int, text: str) -> tuple[bool, str]:
    wanted = success.get("status")
    if wanted and status not in wanted:
        return False, f"status {status} is not one of {wanted}"
    if not wanted and not 200 <= status < 300:
        return False, f"status {status} is not 2xx"
    if success.get("json_path"):
        try:
            document = json.loads(text)
        except ValueError:
            return False, "the body is not JSON"
        value = _json_path(document, success["json_path"])
        if value is _MISSING:
            return False, f"{success['json_path']} is not in the body"
        if success.get("has_equals") and value != success.get("equals"):
            return False, f"{success['json_path']} is {value!r}, not {success.get('equals')!r}"
        if not success.get("has_equals") and not value:
            return False, f"{success['json_path']} is {value!r}"
    if success.get("regex") and not re.search(success["regex"], text):
        return False, f"the body does not match /{success['regex']}/"
    return True, ""


def run_webhook(ctx: StepContext) -> StepOutcome:
    shown = webhook_request(ctx, reveal=False)
    real = webhook_request(ctx, reveal=True)
    plaintexts = _secrets_used(ctx.spec, ctx.scope)
    body = real["body"]
    kwargs: dict = {"headers": {"User-Agent": "medic-playbooks/2", **real["headers"]}}
    if isinstance(body, dict | list):
        kwargs["json"] = body
    elif body is not None:
        kwargs["data"] = str(body).encode()
    try:
        response = requests.request(
            real["method"],
            real["url"],
            timeout=(min(5, real["timeout_seconds"]), real["timeout_seconds"]),
            allow_redirects=False,
            **kwargs,
        )
    except requests.RequestException as exc:
        error = scrub(f"{type(exc).__name__}: {exc}", plaintexts)
        return StepOutcome(FAILED, {"status": FAILED, "error": error}, shown, message=error)
    text = response.content[: settings.MEDIC_PLAYBOOK_CAPTURE_BYTES * 4].decode(
        response.encoding or "utf-8", errors="replace"
    )
    ok, why = _webhook_success(ctx.spec["success"], response.status_code, text)
    result = {
        "status": SUCCEEDED if ok else FAILED,
        "status_code": response.status_code,
        "body": _cap(scrub(text, plaintexts)),
    }
    if ok:
        return StepOutcome(SUCCEEDED, result, shown)
    # A 4xx other than 408/429 will not change on a resend.
    final = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
    return StepOutcome(FAILED, {**result, "error": why}, shown, message=why, final=final)


# --- script -----------------------------------------------------------------------------------


def script_args(ctx: StepContext) -> dict:
    return render(ctx.spec["args"], ctx.scope, reveal=False)


def script_dispatch(ctx: StepContext) -> list[str]:
    """Queue the script's job(s). Runs inside the transaction that claims the step, so the jobs
    exist exactly when the claim does."""
    from remediation.services import RunTarget, script_run

    target = ctx.spec["target"]
    jobs = script_run(
        name=ctx.spec["script"],
        target=RunTarget(
            local=bool(target.get("local")), agent=target.get("agent"), labels=target.get("labels")
        ),
        args=script_args(ctx),
        actor=f"playbook:{ctx.execution.playbook.name}#{ctx.execution.pk}",
    )
    return [str(job.pk) for job in jobs]


def run_script(ctx: StepContext) -> StepOutcome:
    from remediation.jobs import LOST_DETAIL
    from remediation.models import Job, JobState

    ids = ctx.step.result.get("jobs") or []
    jobs = list(Job.objects.filter(pk__in=ids).order_by("agent__name"))
    request = {"script": ctx.spec["script"], "target": ctx.spec["target"], "args": script_args(ctx)}
    if not all(job.finished for job in jobs):
        if ctx.now >= ctx.deadline:
            # A job still queued or running may yet run: another attempt could run it twice.
            return StepOutcome(
                FAILED,
                {"status": FAILED, "jobs": ids, "error": "timed out waiting for the script"},
                request,
                message="timed out waiting for the script",
                final=True,
            )
        poll = timedelta(seconds=settings.MEDIC_PLAYBOOK_POLL_SECONDS)
        return StepOutcome(
            WAIT, {"jobs": ids}, request, resume_at=min(ctx.now + poll, ctx.deadline)
        )
    wanted = ctx.spec["success_exit_codes"]
    good = all(
        job.state in (JobState.SUCCEEDED, JobState.FAILED) and job.exit_code in wanted
        for job in jobs
    )
    first = jobs[0] if jobs else None
    output = "\n".join(j.stdout_tail + j.stderr_tail for j in jobs)
    result = {
        "status": SUCCEEDED if good else FAILED,
        "jobs": ids,
        "exit_code": first.exit_code if first else None,
        "output": _cap(compliance.mask(output)),
        "job_states": {str(j.pk): j.state for j in jobs},
    }
    if good:
        return StepOutcome(SUCCEEDED, result, request)
    why = "; ".join(
        f"job {j.pk}: {j.state} (exit code {j.exit_code}){' ' + j.detail if j.detail else ''}"
        for j in jobs
    )
    # A lost job (its runner died mid-script) may have done its work: never run it again.
    lost = any(j.detail == LOST_DETAIL for j in jobs)
    return StepOutcome(
        FAILED, {**result, "error": why[:1000]}, request, message=why[:500], final=lost
    )


# --- wait and condition -----------------------------------------------------------------------


def run_wait(ctx: StepContext) -> StepOutcome:
    until = ctx.step.started_at + timedelta(seconds=ctx.spec["duration_seconds"])
    request = {"duration_seconds": ctx.spec["duration_seconds"], "until": until.isoformat()}
    if ctx.now >= until:
        return StepOutcome(SUCCEEDED, {"status": SUCCEEDED}, request)
    return StepOutcome(WAIT, {}, request, resume_at=until)


def _compare(spec: dict, value) -> tuple[bool, str]:
    if spec.get("has_equals") and value != spec.get("equals"):
        return False, f"{spec['field']} is {value!r}, not {spec.get('equals')!r}"
    if spec.get("one_of") is not None and value not in spec["one_of"]:
        return False, f"{spec['field']} is {value!r}, not one of {spec['one_of']!r}"
    if spec.get("matches") and not re.search(spec["matches"], "" if value is None else str(value)):
        return False, f"{spec['field']} does not match /{spec['matches']}/"
    return True, ""


def run_condition(ctx: StepContext) -> StepOutcome:
    from heartbeats.selectors import heartbeat_received_since, service_status

    spec = ctx.spec
    check = spec["check"]
    request = {"check": check, "timeout_seconds": spec["timeout_seconds"]}
    if check == "step":
        value = (ctx.scope.steps.get(spec["step"]) or {}).get(spec["field"])
        ok, why = _compare(spec, value)
        request.update(step=spec["step"], field=spec["field"], value=value)
        # An earlier step's result does not change: decided at once.
        if ok:
            return StepOutcome(SUCCEEDED, {"status": SUCCEEDED}, request)
        return StepOutcome(
            FAILED, {"status": FAILED, "error": why}, request, message=why, final=True
        )
    service_id = ctx.execution.service_id
    if check == "heartbeat_received":
        request["since"] = ctx.step.started_at.isoformat()
        ok = service_id is not None and heartbeat_received_since(
            service_id=service_id, since=ctx.step.started_at
        )
        why = "no heartbeat since the step started"
    else:
        ok = service_id is not None and service_status(service_id=service_id) == "up"
        why = "the service is not up"
    if ok:
        return StepOutcome(SUCCEEDED, {"status": SUCCEEDED}, request)
    if ctx.now >= ctx.deadline:
        return StepOutcome(
            FAILED,
            {"status": FAILED, "error": why},
            request,
            message=f"{why} ({spec['timeout_seconds']}s)",
            final=True,
        )
    poll = timedelta(seconds=spec["interval_seconds"])
    return StepOutcome(WAIT, {}, request, resume_at=min(ctx.now + poll, ctx.deadline))


def run_escalate(ctx: StepContext) -> StepOutcome:
    message = render(ctx.spec.get("message") or "", ctx.scope, reveal=False)
    return StepOutcome(ESCALATE, {"status": SUCCEEDED}, {"message": message}, message=message)


EXECUTORS = {
    "webhook": run_webhook,
    "script": run_script,
    "wait": run_wait,
    "condition": run_condition,
    "escalate": run_escalate,
}


def describe(ctx: StepContext) -> dict:
    """Shadow mode: what the step would do, variables resolved, secrets masked."""
    spec = ctx.spec
    kind = spec["type"]
    if kind == "webhook":
        return webhook_request(ctx, reveal=False)
    if kind == "script":
        return {"script": spec["script"], "target": spec["target"], "args": script_args(ctx)}
    if kind == "wait":
        return {"duration_seconds": spec["duration_seconds"]}
    if kind == "condition":
        return {
            k: spec.get(k) for k in ("check", "timeout_seconds", "step", "field") if spec.get(k)
        }
    return {"message": render(spec.get("message") or "", ctx.scope, reveal=False)}
