"""Scripts, agents, jobs and the audit log in a real browser (Debian's Chromium, gunicorn): an
operator registers a script (the form shows the API's message for a body without a #! line),
sees its hash, finds the agent that holds it and whether the hashes match, filters the jobs and
opens one, then filters the audit log, pages it and exports it as JSON Lines and CSV. A viewer
sees the pages without controls; the server refuses the viewer's forged POSTs.

Screenshots of each page at 1280 px and 390 px go to MEDIC_SCREENSHOTS_DIR (tests/screenshots/).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from remediation import jobs
from remediation.agents import agent_create, agent_register
from remediation.models import Script, ScriptVersion
from remediation.services import RunTarget, script_run
from tests.dashboard.browser.kit import DESKTOP, add_user, both_widths, shot, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BODY = '#!/bin/sh\nprintf "rotated %s\\n" "$1"\n'
SCHEMA = (
    '{"type": "object", "properties": {"path": {"type": "string", "pattern": "^/var/log/[a-z]+$"}},'
    ' "required": ["path"], "additionalProperties": false}'
)


def _agent_with_a_job(sha256: str) -> str:
    """web-1 registers holding rotate-logs (and a file the server does not know), runs it once."""
    agent = agent_create(name="web-1", labels=["role:web"], actor="user:ada").agent
    agent_register(
        agent_id=agent.pk,
        hostname="web-1.example",
        os="linux",
        arch="x86_64",
        agent_version="0.4.0",
        labels=["env:prod"],
        scripts=[
            {"name": "rotate-logs", "sha256": sha256},
            {"name": "old-cleanup", "sha256": "e" * 64},
        ],
    )
    [job] = script_run(
        name="rotate-logs",
        target=RunTarget(agent="web-1"),
        args={"path": "/var/log/nginx"},
        actor="user:otto",
    )
    jobs.job_claim_next(agent_id=agent.pk)
    jobs.job_report_result(
        agent_id=agent.pk,
        job_id=str(job.pk),
        result=jobs.Result(
            exit_code=0,
            duration_ms=840,
            stdout_tail="rotated --path=/var/log/nginx\n",
            stderr_tail="",
            timed_out=False,
            signal=None,
        ),
    )
    return str(job.pk)


def test_operator_registers_a_script_and_follows_it_to_agents_jobs_and_the_audit_log(
    web,
    browser,
):
    add_user("otto", "operator")
    add_user("vera", "viewer")
    context = browser.new_context(base_url=web, viewport=DESKTOP, device_scale_factor=1)
    page = context.new_page()
    sign_in(page, "otto")

    # register a script: the API's validation, shown next to the field
    page.get_by_role("link", name="Scripts", exact=True).click()
    expect(page.get_by_text("No scripts yet")).to_be_visible()
    page.get_by_role("link", name="Register a script").click()
    page.get_by_label("Name", exact=True).fill("rotate-logs")
    page.get_by_label("Description").fill("Rotate one log directory")
    page.get_by_label("A script body (starts with #!)").check()
    expect(page.get_by_label(re.compile(r"^Command"))).to_be_hidden()
    page.get_by_label(re.compile(r"^Body")).fill(BODY.replace("#!/bin/sh\n", ""))
    page.get_by_label("Arguments schema (JSON)").fill(SCHEMA)
    page.get_by_label("May run on agents").check()
    page.get_by_label("Agent labels required").fill("role:web")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_text("Must start with a '#!' interpreter line").first).to_be_visible()
    expect(page.get_by_label(re.compile(r"^Body"))).to_be_focused()
    shot(page, "script-form-error-1280")
    page.get_by_label(re.compile(r"^Body")).fill(BODY)
    page.get_by_role("button", name="Register").click()
    page.wait_for_url(re.compile(r"/ui/scripts/rotate-logs$"))
    expect(page.get_by_text("Registered rotate-logs (version 1).")).to_be_visible()
    version = ScriptVersion.objects.get(script__name="rotate-logs")
    assert version.body == BODY and version.run_on_agents and version.agent_labels == ["role:web"]
    assert version.created_by == "user:otto"
    expect(page.get_by_test_id("sha256")).to_have_text(version.sha256)
    shot(page, "script-1280")
    page.get_by_role("link", name="New version").click()
    expect(page.get_by_label(re.compile(r"^Body"))).to_have_value(BODY)  # from the current one
    shot(page, "script-form-1280")
    page.get_by_role("link", name="Scripts", exact=True).click()
    expect(page.locator('tr[data-script="rotate-logs"]')).to_contain_text("v1")
    shot(page, "scripts-1280")

    # an agent that holds it (and a file the server does not know) has run it once
    job_id = _agent_with_a_job(version.sha256)
    page.get_by_role("link", name="Agents", exact=True).click()
    row = page.locator('tr[data-agent="web-1"]')
    expect(row.get_by_test_id("agent-status")).to_have_text("online")  # registered: a heartbeat
    expect(row).to_contain_text("role:web")
    expect(row).to_contain_text("env:prod")
    expect(row).to_contain_text("0.4.0")
    expect(row.get_by_test_id("mismatches")).to_have_text("1 not matching")
    shot(page, "agents-1280")
    row.get_by_role("link", name="web-1").click()
    held = page.get_by_test_id("held")
    expect(held.locator('tr[data-script="rotate-logs"]')).to_contain_text("hash matches")
    expect(held.locator('tr[data-script="old-cleanup"]')).to_contain_text("not registered here")
    shot(page, "agent-1280")

    # the job history, filtered, and the job's page
    page.get_by_role("link", name="Jobs", exact=True).click()
    expect(page.get_by_test_id("jobs")).to_contain_text("rotate-logs")
    page.get_by_label("State").select_option("failed")  # applied at once
    expect(page.get_by_text("No job matches these filters")).to_be_visible()
    page.get_by_label("State").select_option("succeeded")
    expect(page.get_by_test_id("jobs")).to_contain_text("web-1")
    shot(page, "jobs-1280")
    page.get_by_role("link", name=job_id[:8]).click()
    expect(page.get_by_test_id("stdout")).to_have_text("rotated --path=/var/log/nginx\n")
    expect(page.get_by_test_id("exit-code")).to_have_text("0")
    expect(page.get_by_test_id("duration")).to_have_text("840 ms")
    shot(page, "job-1280")

    # the audit log: filter by a family of events, then export what is shown
    page.get_by_role("link", name="Audit log", exact=True).click()
    expect(page.get_by_test_id("audit")).to_contain_text("job.finished")
    page.get_by_label("Event").fill("script.*")
    page.get_by_role("button", name="Apply").click()
    table = page.get_by_test_id("audit")
    expect(table).to_contain_text("script.created")
    expect(table).not_to_contain_text("job.finished")
    shot(page, "audit-1280")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export JSON Lines").click()
    rows = [json.loads(line) for line in Path(download.value.path()).read_text().splitlines()]
    assert {r["event"] for r in rows} == {"script.created", "script.run"}
    assert rows[0]["object_id"] == "rotate-logs" and rows[0]["actor"] == "user:otto"
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    assert download.value.suggested_filename.endswith(".csv")
    table_rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [r["event"] for r in table_rows] == [r["event"] for r in rows]
    # a filter the API refuses is shown, with the API's message
    page.get_by_label("Execution").fill("abc")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("filter-errors")).to_contain_text(
        "execution: A valid integer is required."
    )
    context.close()

    pages = {
        "scripts": "/ui/scripts",
        "script": "/ui/scripts/rotate-logs",
        "script-form": "/ui/scripts/rotate-logs/edit",
        "agents": "/ui/agents",
        "agent": "/ui/agents/web-1",
        "jobs": "/ui/jobs",
        "job": f"/ui/jobs/{job_id}",
        "audit": "/ui/audit",
    }
    both_widths(browser, web, "otto", pages)

    # a viewer reads every page, gets no controls, and the server refuses the viewer's POSTs
    context = browser.new_context(base_url=web, viewport=DESKTOP, device_scale_factor=1)
    page = context.new_page()
    sign_in(page, "vera")
    page.goto("/ui/scripts")
    assert page.get_by_role("link", name="Register a script").count() == 0
    page.goto("/ui/scripts/rotate-logs")
    for control in ("New version", "Disable"):
        assert page.get_by_role("link", name=control).count() == 0
        assert page.get_by_role("button", name=control).count() == 0
    for name, path in pages.items():
        if name != "script-form":  # forms are for those who may submit them
            page.goto(path)
            expect(page.locator("h1")).to_be_visible()
    token = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")
    for path, form in (
        ("/ui/scripts/new", {"name": "sneaky", "content": "command", "command": "/bin/sh"}),
        ("/ui/scripts/rotate-logs/edit", {"content": "command", "command": "/bin/sh"}),
        ("/ui/scripts/rotate-logs/disable", {}),
    ):
        response = page.request.post(
            path,
            form={"csrfmiddlewaretoken": token, **form},
            headers={"Referer": f"{web}/ui/scripts"},
        )
        assert response.status == 403, path
    assert list(Script.objects.values_list("name", "current_version", "enabled")) == [
        ("rotate-logs", 1, True)
    ]
    context.close()
