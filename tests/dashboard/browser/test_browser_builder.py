"""The playbook form builder in a real browser (Debian's Chromium, gunicorn, a real Celery worker
with beat, a real HTTP receiver for the webhook step): an operator builds a playbook with the
form, switches to YAML and back without losing anything (fields the form does not show
included), fixes a validation error shown at its line, previews the draft against a service,
saves it in shadow mode, sees a shadow execution appear when the service goes down, promotes it
and watches a real execution complete on its page. A viewer sees all of it and previews too;
the server answers 403 to every change the viewer posts.

Screenshots at 1280 px and 390 px go to MEDIC_SCREENSHOTS_DIR (tests/screenshots/ by default).
"""

from __future__ import annotations

import re

import pytest
import yaml
from playwright.sync_api import expect

from heartbeats.services import heartbeat_record, service_create
from remediation.playbooks.models import FINAL_STATES, Execution, Playbook
from tests.dashboard.browser.kit import (
    DESKTOP,
    PHONE,
    add_user,
    both_widths,
    run_now,
    shot,
    sign_in,
)
from tests.playbooks.test_durability_e2e import FAST, _broker, _ensure_beat_schedule, _wait  # noqa: F401
from tests.receivers import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _field(page, label: str, step: int | None = None):
    """A field of the form: of the playbook and its trigger, or of step number ``step``."""
    if step is None:
        return page.locator("[data-builder]").get_by_label(label, exact=True).first
    return page.get_by_test_id("builder-step").nth(step).get_by_label(label, exact=True)


def _both_shots(page, name: str) -> None:
    shot(page, f"{name}-1280")
    page.set_viewport_size(PHONE)
    shot(page, f"{name}-390")
    page.set_viewport_size(DESKTOP)


def test_operator_builds_a_playbook_with_the_form(web, browser, start_worker):
    _ensure_beat_schedule()
    add_user("otto", "operator")
    add_user("vera", "viewer")
    service = service_create(heartbeat_name="fb-worker", alert_interval=0.05, team="payments")
    heartbeat_record(service_ref=service.pk)
    with Receiver() as receiver:
        context = browser.new_context(base_url=web, viewport=DESKTOP, device_scale_factor=1)
        page = context.new_page()
        sign_in(page, "otto")
        page.goto("/ui/playbooks/new")
        editor = page.get_by_label("Playbook YAML")
        # a field the form does not show, written in YAML first: it must survive the form
        editor.fill(
            editor.input_value().replace("approval: none\n", "approval: none\nverify_window: 5m\n")
        )

        page.get_by_role("tab", name="Form").click()
        expect(page.get_by_role("tab", name="Form")).to_have_attribute("aria-selected", "true")
        expect(editor).to_be_hidden()
        expect(page.get_by_test_id("kept-fields").first).to_contain_text("verify_window")
        _field(page, "Name").fill("restart-fb")
        _field(page, "Service pattern").fill("fb-*")
        _field(page, "Consecutive failures").fill("1")
        expect(_field(page, "Mode")).to_have_value("shadow")
        _field(page, "URL", 0).fill(f"{receiver.url}/restart")
        _field(page, "Timeout", 0).fill("5s")
        _field(page, "Retries", 0).fill("2")
        _field(page, "Duration", 1).fill("1s")
        _field(page, "Timeout", 2).fill("60s")
        _field(page, "Look every", 2).fill("1s")
        # add a step, move it up, then remove it: keyboard-reachable buttons
        page.get_by_label("New step of type").select_option("escalate")
        page.get_by_role("button", name="Add step").click()
        expect(page.get_by_test_id("builder-step")).to_have_count(4)
        expect(_field(page, "Name", 3)).to_be_focused()
        page.get_by_role("button", name="Move step 4 up").click()
        expect(page.get_by_test_id("builder-step").nth(2)).to_contain_text("escalate-4")
        expect(page.get_by_role("button", name="Move step 3 up")).to_be_focused()
        page.get_by_role("button", name="Remove step 3").click()
        expect(page.get_by_test_id("builder-step")).to_have_count(3)
        # a validation error, reported at the line of the YAML the form writes
        _field(page, "Duration", 1).fill("soon")
        problem = page.locator("[data-problems] li[data-line]").filter(has_text="steps[1].duration")
        expect(problem).to_be_visible()
        expect(page.get_by_test_id("builder-step").nth(1).locator(".field-error")).to_contain_text(
            "line"
        )
        expect(_field(page, "Duration", 1)).to_have_attribute("aria-invalid", "true")
        _both_shots(page, "playbook-builder")
        line = int(problem.get_attribute("data-line"))

        # "line N" opens the YAML at that line; typing replaces it
        problem.get_by_role("button", name=f"line {line}").click()
        expect(editor).to_be_visible()
        assert editor.input_value().splitlines()[line - 1] == "    duration: soon"
        shot(page, "playbook-builder-yaml-error-1280")
        page.keyboard.type("    duration: 1s")
        expect(page.locator("[data-problems]")).to_contain_text("Valid.")
        built = yaml.safe_load(editor.input_value())
        assert built["name"] == "restart-fb" and built["verify_window"] == "5m"
        assert built["trigger"] == {"service_pattern": "fb-*", "consecutive_failures": 1}
        assert built["mode"] == "shadow" and built["approval"] == "none"
        assert [s["name"] for s in built["steps"]] == [
            "restart-service",
            "wait-for-recovery",
            "verify-heartbeat",
        ]
        assert built["steps"][0] == {
            "name": "restart-service",
            "type": "webhook",
            "url": f"{receiver.url}/restart",
            "method": "POST",
            "body": {"service": "${SERVICE_NAME}"},
            "timeout": "5s",
            "retries": 2,
        }
        assert built["steps"][1]["duration"] == "1s"
        assert built["steps"][2]["interval"] == "1s" and built["steps"][2]["timeout"] == "60s"
        text = editor.input_value()

        # back to the form: nothing lost, and with no change the YAML text stays as it was
        page.get_by_role("tab", name="Form").click()
        expect(_field(page, "Duration", 1)).to_have_value("1s")
        expect(_field(page, "Service pattern")).to_have_value("fb-*")
        page.get_by_role("tab", name="YAML").click()
        assert editor.input_value() == text

        # preview the draft against the real service
        page.get_by_label("Service", exact=True).fill("fb-worker")
        page.get_by_role("button", name="Preview").click()
        preview = page.get_by_test_id("preview-steps")
        expect(preview).to_contain_text(f"{receiver.url}/restart")
        expect(preview).to_contain_text('"service": "fb-worker"')
        expect(page.get_by_test_id("preview")).to_contain_text("0 of 0 trigger events")
        _both_shots(page, "playbook-preview")

        page.get_by_label("Reason for this change").fill("built with the form")
        page.get_by_role("button", name="Save new version").click()
        page.wait_for_url(re.compile(r"/ui/playbooks/restart-fb$"))
        expect(page.get_by_test_id("mode")).to_have_text("shadow")
        assert receiver.requests == []

        # the service goes down: the real sweep and the worker's consumer start a shadow run
        worker = start_worker(beat=True, **FAST)
        shadow = _wait(
            lambda: Execution.objects.filter(mode="shadow", state__in=FINAL_STATES).first(),
            120,
            "a shadow execution to finish",
            [worker],
        )
        assert receiver.requests == []  # shadow calls nothing
        page.reload()
        expect(page.get_by_test_id("recent-executions")).to_contain_text(f"#{shadow.pk}")
        # the playbook page previews the saved version: the failure it just fired for is there
        page.get_by_label("Service", exact=True).fill("fb-worker")
        page.get_by_role("button", name="Preview").click()
        expect(page.get_by_test_id("preview-triggers")).to_contain_text("fires")
        page.goto("/ui/executions")
        expect(page.get_by_test_id("executions")).to_contain_text("restart-fb")
        page.get_by_role("link", name=f"#{shadow.pk}", exact=True).click()
        expect(page.get_by_test_id("steps")).to_contain_text("shadowed")

        page.goto("/ui/playbooks/restart-fb")
        page.get_by_role("button", name="Promote to active").click()
        expect(page.get_by_test_id("mode")).to_have_text("active")
        assert Playbook.objects.get(name="restart-fb").versions.get(version=2).mode == "active"

        run = run_now(page, "fb-worker", service, receiver, worker)
        assert receiver.requests[0].json() == {"service": "fb-worker"}
        _both_shots(page, "execution-built-with-form")
        page.goto("/ui/playbooks/restart-fb")
        _both_shots(page, "playbook-built-with-form")
        page.goto("/ui/playbooks?team=payments")
        expect(page.get_by_test_id("playbooks")).to_contain_text("restart-fb")
        _both_shots(page, "playbooks-team-filter")
        context.close()

    # a viewer sees all of it, previews too, and the server refuses every change
    context = browser.new_context(base_url=web, viewport=DESKTOP, device_scale_factor=1)
    page = context.new_page()
    sign_in(page, "vera")
    page.goto("/ui/playbooks/restart-fb")
    expect(page.get_by_test_id("versions")).to_contain_text("built with the form")
    for control in ("Promote to active", "Switch to shadow", "Run now", "Restore this version"):
        assert page.get_by_role("button", name=control).count() == 0
    assert page.get_by_role("link", name="Edit YAML").count() == 0
    page.get_by_label("Service", exact=True).fill("fb-worker")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("preview-steps")).to_contain_text("restart-service")
    page.goto(f"/ui/executions/{run.pk}")
    expect(page.get_by_test_id("state")).to_have_text("completed")
    both_widths(browser, web, "vera", {"playbook-viewer": "/ui/playbooks/restart-fb"})
    token = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")
    executions = Execution.objects.count()
    source = Playbook.objects.get(name="restart-fb").versions.get(version=2).source
    for path, form in (
        ("/ui/playbooks/new", {"source": source.replace("restart-fb", "sneaky")}),
        ("/ui/playbooks/restart-fb/edit", {"source": source, "reason": "x"}),
        ("/ui/playbooks/document", {"source": source}),
        ("/ui/playbooks/validate", {"source": source}),
        ("/ui/playbooks/restart-fb/mode", {"mode": "shadow"}),
        ("/ui/playbooks/restart-fb/restore", {"version": "1"}),
        ("/ui/playbooks/restart-fb/reset", {}),
        ("/ui/playbooks/restart-fb/run", {"service": str(service.pk)}),
        (f"/ui/executions/{shadow.pk}/cancel", {}),
    ):
        response = page.request.post(
            path,
            form={"csrfmiddlewaretoken": token, **form},
            headers={"Referer": f"{web}/ui/playbooks/restart-fb"},
        )
        assert response.status == 403, path
    assert Playbook.objects.get(name="restart-fb").current_version == 2
    assert not Playbook.objects.filter(name="sneaky").exists()
    assert Execution.objects.count() == executions
    context.close()
