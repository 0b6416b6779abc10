"""The approval page in a real browser (Debian's Chromium, gunicorn): a viewer reaches it from
the inbox and sees everything but the decision form (the server refuses the viewer's forged POST
with 403); an operator approves with a reason; an admin who had the page open and clicks Decline
afterwards is told who decided. No Content-Security-Policy violation on the way.

Screenshots of the approval page at 1280 px and 390 px go to tests/screenshots/.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from remediation.approvals.models import ApprovalRequest
from remediation.playbooks.models import ExecutionState
from tests.approvals.test_portal_approval import TOKEN, _with_history
from tests.dashboard.browser.kit import DESKTOP, add_user, both_widths, shot, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _watch_csp(page, seen: list[str]) -> None:
    page.on(
        "console",
        lambda m: seen.append(m.text) if "Content Security Policy" in m.text else None,
    )


def test_viewer_sees_operator_decides_and_a_late_admin_is_told(web, browser):
    execution = _with_history()
    add_user("vera", "viewer")
    add_user("otto", "operator")
    add_user("ada", "admin")
    path = f"/ui/approvals/{execution.pk}"
    violations: list[str] = []

    # the viewer: from the inbox to the page; everything shown, no form; a forged POST is 403
    viewer = browser.new_context(base_url=web, viewport=DESKTOP, device_scale_factor=1)
    page = viewer.new_page()
    _watch_csp(page, violations)
    sign_in(page, "vera")
    page.get_by_role("link", name="Approvals", exact=True).click()
    page.get_by_role("link", name=f"#{execution.pk}").click()
    page.wait_for_url(re.compile(rf"{path}$"))
    expect(page.get_by_test_id("approval-state")).to_have_text("pending")
    expect(page.get_by_test_id("alert-timeline")).to_contain_text("Opened")
    expect(page.get_by_test_id("heartbeats")).to_contain_text("queue stuck at 9000")
    expect(page.get_by_test_id("diff")).to_contain_text("${SECRET.restart_token}")
    expect(page.get_by_test_id("preview")).to_contain_text("Bearer ••••••")
    expect(page.get_by_test_id("preview")).to_contain_text('"service": "worker-1"')
    expect(page.get_by_test_id("earlier")).to_contain_text("worker-0")
    expect(page.get_by_test_id("read-only")).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    assert TOKEN not in page.content()
    csrf = next(c["value"] for c in viewer.cookies() if c["name"] == "csrftoken")
    forged = page.request.post(
        web + path,
        form={"decision": "approve", "reason": "forged"},
        headers={"X-CSRFToken": csrf, "Referer": web + path},
    )
    assert forged.status == 403
    assert ApprovalRequest.objects.get(execution=execution).state == "pending"
    viewer.close()

    # the phone width, while it waits
    both_widths(browser, web, "otto", {"approval": path})

    # an admin opens the page, and does not click yet
    late = browser.new_context(base_url=web, viewport=DESKTOP, device_scale_factor=1)
    late_page = late.new_page()
    _watch_csp(late_page, violations)
    sign_in(late_page, "ada")
    late_page.goto(path)
    expect(late_page.get_by_role("button", name="Decline")).to_be_visible()

    # the operator approves with a reason
    context = browser.new_context(base_url=web, viewport=DESKTOP, device_scale_factor=1)
    page = context.new_page()
    _watch_csp(page, violations)
    sign_in(page, "otto")
    page.goto(path)
    shot(page, "approval-1280")
    page.get_by_label("Reason").fill("checked the queue, restart is safe")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("Approved: the execution runs now.")).to_be_visible()
    expect(page.get_by_test_id("outcome")).to_contain_text("Approved by user:otto (portal)")
    expect(page.get_by_test_id("outcome")).to_contain_text("checked the queue, restart is safe")
    expect(page.get_by_test_id("approval-state")).to_have_text("approved")
    shot(page, "approval-decided-1280")
    context.close()

    # the admin clicks Decline on the page opened before: told who decided, nothing changes
    late_page.get_by_label("Reason").fill("not during peak")
    late_page.get_by_role("button", name="Decline").click()
    expect(late_page.get_by_text(re.compile(r"Already approved by user:otto"))).to_be_visible()
    expect(late_page.get_by_test_id("approval-state")).to_have_text("approved")
    late.close()

    request = ApprovalRequest.objects.get(execution=execution)
    assert request.state == "approved" and request.decided_by == "user:otto"
    assert request.channel == "portal"
    execution.refresh_from_db()
    assert execution.state != ExecutionState.PENDING_APPROVAL
    assert violations == []
