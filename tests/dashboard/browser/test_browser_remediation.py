"""Remediation in a real browser (Debian's Chromium, gunicorn, a real Celery worker with beat):
an operator writes a playbook in the YAML editor, fixes the validation error shown at its line,
saves it in shadow mode, sees a shadow execution appear when the service goes down, promotes the
playbook to active and watches a real execution complete on its live detail page. A viewer sees
all of it; the server refuses the viewer's changes.

Screenshots of the remediation pages at 1280 px and 390 px go to tests/screenshots/.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from heartbeats.services import heartbeat_record, service_create
from remediation.playbooks.models import FINAL_STATES, Execution, Playbook
from tests.dashboard.browser.kit import DESKTOP, add_user, both_widths, run_now, shot, sign_in
from tests.playbooks.conftest import playbook_yaml
from tests.playbooks.test_durability_e2e import FAST, _broker, _ensure_beat_schedule, _wait  # noqa: F401
from tests.receivers import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_operator_writes_shadows_promotes_and_watches_a_playbook(web, browser, start_worker):
    _ensure_beat_schedule()
    add_user("otto", "operator")
    add_user("vera", "viewer")
    with Receiver() as receiver:
        good = playbook_yaml(
            "restart-pw", receiver.url, pattern="pw-*", mode="shadow", timeout="60s"
        )
        bad = good.replace("type: wait", "type: sleep")
        bad_line = bad.splitlines().index("    type: sleep") + 1

        context = browser.new_context(base_url=web, viewport=DESKTOP, device_scale_factor=1)
        page = context.new_page()
        sign_in(page, "otto")
        page.get_by_role("link", name="Playbooks", exact=True).click()
        page.get_by_role("link", name="New playbook").click()
        editor = page.get_by_label("Playbook YAML")
        editor.fill(bad)
        problem = page.locator(f'[data-problems] li[data-line="{bad_line}"]')
        expect(problem).to_contain_text("steps[1].type")
        expect(page.locator("[data-gutter] .bad")).to_have_text(str(bad_line))
        shot(page, "playbook-editor-1280")
        problem.get_by_role("button", name=f"line {bad_line}").click()
        page.keyboard.type("    type: wait")  # the line is selected: typing replaces it
        assert editor.input_value() == good
        expect(page.locator("[data-problems]")).to_contain_text("Valid.")
        page.get_by_label("Reason for this change").fill("first draft, shadow")
        page.get_by_role("button", name="Save new version").click()
        page.wait_for_url(re.compile(r"/ui/playbooks/restart-pw$"))
        expect(page.get_by_test_id("mode")).to_have_text("shadow")

        # the service goes down: the real sweep and the worker's consumer start a shadow run
        service = service_create(heartbeat_name="pw-worker", alert_interval=0.05)
        heartbeat_record(service_ref=service.pk)
        worker = start_worker(beat=True, **FAST)
        shadow = _wait(
            lambda: Execution.objects.filter(mode="shadow", state__in=FINAL_STATES).first(),
            120,
            "a shadow execution to finish",
            [worker],
        )
        assert receiver.requests == []  # shadow records what it would do, calls nothing
        page.goto("/ui/executions")
        expect(page.get_by_test_id("executions")).to_contain_text("restart-pw")
        shot(page, "executions-1280")
        page.get_by_role("link", name=f"#{shadow.pk}", exact=True).click()
        expect(page.get_by_test_id("steps")).to_contain_text("shadowed")
        shot(page, "execution-shadow-1280")

        page.goto("/ui/playbooks/restart-pw")
        page.get_by_role("button", name="Promote to active").click()
        expect(page.get_by_test_id("mode")).to_have_text("active")
        assert Playbook.objects.get(name="restart-pw").versions.get(version=2).mode == "active"

        # Run now: a real execution, watched on its page while the worker runs it
        run = run_now(page, "pw-worker", service, receiver, worker)
        assert not run.automatic
        expect(page.get_by_test_id("condition")).to_contain_text("heartbeat_received: passed")
        shot(page, "execution-1280")
        page.goto("/ui/playbooks/restart-pw")
        shot(page, "playbook-1280")
        page.goto("/ui/playbooks")
        shot(page, "playbooks-1280")
        context.close()
        both_widths(
            browser,
            web,
            "otto",
            {
                "playbooks": "/ui/playbooks",
                "playbook": "/ui/playbooks/restart-pw",
                "playbook-editor": "/ui/playbooks/restart-pw/edit",
                "executions": "/ui/executions",
                "execution": f"/ui/executions/{shadow.pk}",
                "approvals": "/ui/approvals",
            },
        )

    # a viewer sees everything, and the server refuses the viewer's changes
    context = browser.new_context(base_url=web, viewport=DESKTOP, device_scale_factor=1)
    page = context.new_page()
    sign_in(page, "vera")
    page.goto("/ui/playbooks/restart-pw")
    expect(page.get_by_test_id("versions")).to_contain_text("first draft, shadow")
    for control in ("Promote to active", "Switch to shadow", "Run now", "Restore this version"):
        assert page.get_by_role("button", name=control).count() == 0
    page.goto(f"/ui/executions/{shadow.pk}")
    expect(page.get_by_test_id("timeline")).to_be_visible()
    token = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")
    for path, form in (
        ("/ui/playbooks/restart-pw/mode", {"mode": "shadow"}),
        ("/ui/playbooks/restart-pw/restore", {"version": "1"}),
        ("/ui/playbooks/new", {"source": good.replace("restart-pw", "sneaky")}),
    ):
        response = page.request.post(
            path,
            form={"csrfmiddlewaretoken": token, **form},
            headers={"Referer": f"{web}/ui/playbooks/restart-pw"},
        )
        assert response.status == 403, path
    assert Playbook.objects.get(name="restart-pw").current_version == 2
    assert not Playbook.objects.filter(name="sneaky").exists()
    context.close()


def test_yaml_typed_before_the_editor_script_runs_is_checked(web, browser):
    """On a slow page the operator can paste into the editor before its script has run: the
    problems of that text show all the same, without another keystroke."""
    add_user("otto", "operator")
    context = browser.new_context(base_url=web, viewport=DESKTOP, device_scale_factor=1)
    page = context.new_page()
    sign_in(page, "otto")
    held = []
    page.route("**/dashboard/remediation*.js", lambda route: held.append(route))  # held
    page.goto("/ui/playbooks/new", wait_until="commit")
    bad = playbook_yaml("early-paste", "http://127.0.0.1:9/x").replace("type: wait", "type: sleep")
    bad_line = bad.splitlines().index("    type: sleep") + 1
    page.get_by_label("Playbook YAML").fill(bad)
    for _ in range(600):  # the browser asks for the script while parsing; we hold it
        if held:
            break
        page.wait_for_timeout(50)
    assert len(held) == 1 and page.locator("[data-problems] li").count() == 0
    held[0].continue_()
    expect(page.locator(f'[data-problems] li[data-line="{bad_line}"]')).to_contain_text(
        "steps[1].type"
    )
    context.close()
