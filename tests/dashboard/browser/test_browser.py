"""The dashboard in a real browser: Debian's Chromium driven by Playwright against gunicorn on
the test database (tests/e2e's start_web). An admin signs in, creates a team, an API key and a
service, sends a heartbeat through the API, lets the service go overdue, mutes it, and revokes
the key; a viewer finds no controls and a forged POST is refused.

Screenshots of the main pages at 1280 px and 390 px are written to MEDIC_SCREENSHOTS_DIR, by
default tests/screenshots/ (git-ignored), for review.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from heartbeats.models import MaintenanceWindow, Service
from tests.dashboard.browser.kit import DESKTOP, add_user, both_widths, shot, sign_in
from tests.sweep import sweep

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _api(base_url: str, method: str, path: str, key: str, body: dict | None = None) -> int:
    request = urllib.request.Request(
        base_url + path,
        method=method,
        data=json.dumps(body or {}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        return urllib.request.urlopen(request, timeout=5).status
    except urllib.error.HTTPError as exc:
        return exc.code


def _badge(page, name: str):
    return page.locator(f'tr[data-service="{name}"] .badge').first


def test_admin_runs_medic_from_the_browser(web, browser):
    add_user("ada", "admin")
    context = browser.new_context(base_url=web, viewport=DESKTOP, device_scale_factor=1)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())

    page.goto("/ui/")
    assert page.url.endswith("/ui/login?next=/ui/")
    shot(page, "login-1280")
    sign_in(page, "ada")
    expect(page.get_by_text("No services yet")).to_be_visible()
    shot(page, "services-empty-1280")

    # a team with its Slack channel; the form explains a wrong channel id
    page.get_by_role("link", name="Routing").click()
    page.get_by_role("link", name="New team").click()
    page.get_by_label("Name").fill("payments")
    page.get_by_label("Slack channel id").fill("#payments")
    page.get_by_role("button", name="Create team").click()
    expect(
        page.get_by_text("A Slack channel id such as C0123ABCD (not a #name).").first
    ).to_be_visible()
    shot(page, "team-form-error-1280")
    page.get_by_label("Slack channel id").fill("C0PAYMENTS")
    page.get_by_role("button", name="Create team").click()
    page.wait_for_url(re.compile(r"/ui/teams$"))
    expect(page.locator('[data-testid="teams"]').get_by_text("C0PAYMENTS")).to_be_visible()

    # a service with a short interval
    page.get_by_role("link", name="Services").click()
    page.get_by_role("link", name="New service").first.click()
    page.get_by_label("Heartbeat name").fill("checkout-worker")
    page.get_by_label("Service name").fill("Checkout worker")
    page.get_by_label("Team").fill("payments")
    page.get_by_label("Priority").select_option("p2")
    page.get_by_label("Interval (minutes)").fill("0.1")
    shot(page, "service-form-1280")
    page.get_by_role("button", name="Create service").click()
    page.wait_for_url(re.compile(r"/ui/services/\d+$"))
    expect(page.get_by_text("Created checkout-worker.")).to_be_visible()
    page.get_by_role("link", name="Services").click()
    expect(_badge(page, "checkout-worker")).to_have_text("new")

    # an API key: the secret is shown once, with a copy button
    page.get_by_role("link", name="API keys").click()
    page.get_by_role("link", name="New API key").first.click()
    page.get_by_label("Name").fill("checkout heartbeats")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_test_id("secret").inner_text().strip()
    assert secret.startswith("mdk_")
    expect(page.get_by_role("button", name="Copy")).to_be_visible()
    shot(page, "apikey-created-1280")

    # a heartbeat through the API turns the service up
    assert _api(web, "POST", "/v2/heartbeat/checkout-worker", secret, {"status": "UP"}) == 201
    page.goto("/ui/")
    expect(_badge(page, "checkout-worker")).to_have_text("up")
    expect(page.get_by_test_id("down-count")).to_have_text("0 down")
    shot(page, "services-up-1280")

    # overdue: the sweep (run here, as the worker would) marks it down and opens the alert
    deadline = Service.objects.get(heartbeat_name="checkout-worker").next_deadline_at
    time.sleep(max(0.0, (deadline - timezone.now()).total_seconds()) + 0.2)
    assert sweep().marked_down
    page.goto("/ui/")
    expect(_badge(page, "checkout-worker")).to_have_text("down")
    expect(page.get_by_test_id("down-count")).to_have_text("1 down")
    expect(page.get_by_test_id("open-alerts")).to_have_text("1 open alert")
    shot(page, "services-down-1280")
    page.get_by_role("link", name="checkout-worker").click()
    expect(page.get_by_text("Down.", exact=True)).to_be_visible()
    page.get_by_role("link", name=re.compile(r"^#\d+$")).first.click()
    timeline = page.get_by_test_id("timeline")
    expect(timeline.get_by_text("Opened", exact=True)).to_be_visible()
    expect(timeline.get_by_text("Nobody was notified")).to_be_visible()
    shot(page, "alert-1280")

    # mute it with a reason and a preset
    page.get_by_role("link", name="checkout-worker").first.click()
    page.get_by_role("button", name="Mute").click()  # no reason yet: the form says so
    expect(page.get_by_text("Say why the service is muted.").first).to_be_visible()
    page.get_by_label("Reason").fill("Payment provider outage, tracked in INC-42")
    page.get_by_text("4 hours").click()
    page.get_by_role("button", name="Mute").click()
    banner = page.get_by_test_id("mute-banner")
    expect(banner).to_contain_text("Payment provider outage, tracked in INC-42")
    expect(banner).to_contain_text("by user:ada until")
    shot(page, "service-muted-1280")
    page.goto("/ui/")
    row = page.locator('tr[data-service="checkout-worker"]')
    expect(row.locator(".badge.muted")).to_be_visible()
    page.goto("/ui/alerts")
    expect(page.locator('[data-testid="alerts"] .badge.muted')).to_be_visible()
    shot(page, "alerts-1280")

    # revoke the key: the API refuses it from then on
    page.goto("/ui/api-keys")
    row = page.locator('tr[data-key="checkout heartbeats"]')
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("Revoked checkout heartbeats")).to_be_visible()
    expect(row.get_by_text("revoked")).to_be_visible()
    shot(page, "apikeys-1280")
    deadline_at = time.monotonic() + 10
    while _api(web, "POST", "/v2/heartbeat/checkout-worker", secret) != 401:
        assert time.monotonic() < deadline_at, "the revoked key still works"
        time.sleep(0.25)

    # the rest of the main pages, for review
    for name, path in {
        "teams": "/ui/teams",
        "targets": "/ui/targets",
        "rules": "/ui/rules",
        "working-hours-form": "/ui/working-hours/new",
        "maintenance": "/ui/maintenance",
    }.items():
        page.goto(path)
        shot(page, f"{name}-1280")
    context.close()

    service = Service.objects.get(heartbeat_name="checkout-worker")
    both_widths(
        browser,
        web,
        "ada",
        {
            "services": "/ui/",
            "service": f"/ui/services/{service.pk}",
            "alerts": "/ui/alerts",
            "alert": f"/ui/alerts/{service.alerts.get().pk}",
            "apikeys": "/ui/api-keys",
            "teams": "/ui/teams",
        },
    )


def test_operator_plans_a_cron_service_and_a_maintenance_window(web, browser):
    add_user("otto", "operator")
    context = browser.new_context(base_url=web, viewport=DESKTOP, device_scale_factor=1)
    page = context.new_page()
    sign_in(page, "otto")

    # a nightly job on a cron schedule: choosing the kind shows its fields only
    page.goto("/ui/services/new")
    expect(page.get_by_label("Interval (minutes)")).to_be_visible()
    expect(page.get_by_label("Cron expression")).to_be_hidden()
    page.get_by_text("Cron: at set times in a time zone").click()
    expect(page.get_by_label("Interval (minutes)")).to_be_hidden()
    page.get_by_label("Heartbeat name").fill("nightly-backup")
    page.get_by_label("Team").fill("payments")
    page.get_by_label("Cron expression").fill("30 2 * *")
    page.get_by_label("Time zone", exact=True).fill("Europe/Berlin")
    page.get_by_label("Grace (seconds)").fill("900")
    page.get_by_label("Longest run").fill("2h")
    page.get_by_role("button", name="Create service").click()
    expect(page.get_by_text("Use five fields: minute hour day-of-month").first).to_be_visible()
    expect(page.get_by_label("Cron expression")).to_be_focused()  # the field to fix
    page.get_by_label("Cron expression").fill("30 2 * * *")
    shot(page, "service-form-cron-1280")
    page.get_by_role("button", name="Create service").click()
    page.wait_for_url(re.compile(r"/ui/services/\d+$"))
    expect(page.get_by_test_id("schedule")).to_have_text(
        "cron 30 2 * * * Europe/Berlin, grace 15 min"
    )
    expect(page.get_by_test_id("next-expected")).to_contain_text(re.compile(r"0[23]:[03]0 CES?T"))
    expect(page.get_by_text("after 2 h")).to_be_visible()
    shot(page, "service-cron-1280")

    # a daily maintenance window at 02:30 Berlin time, previewed across spring forward
    page.get_by_role("link", name="Plan a window for this service").click()
    expect(page.get_by_label("Services", exact=True)).to_have_value("nightly-backup")
    page.get_by_label("Name", exact=True).fill("backup-quiet-time")
    page.get_by_label("Reason").fill("The backup restarts the database")
    page.get_by_label("Recurring", exact=True).check()
    expect(page.get_by_label("Starts", exact=True)).to_be_hidden()
    page.get_by_label("Time zone", exact=True).fill("Europe/Berlin")
    page.get_by_label("Starts at (cron)").fill("30 2 * * *")
    page.get_by_label("Duration (minutes)").fill("60")
    page.get_by_label("Preview from").fill("2027-03-26")
    page.get_by_role("button", name="Preview").click()
    preview = page.get_by_test_id("preview")
    expect(preview).to_contain_text("Next 5 occurrences in Europe/Berlin")
    expect(preview).to_contain_text("Sat 2027-03-27 02:30 CET (UTC+01:00)")
    expect(preview).to_contain_text("Sun 2027-03-28 03:00 CEST (UTC+02:00)")
    expect(preview).to_contain_text("02:30 does not exist on 2027-03-28")
    expect(preview).to_contain_text("Mon 2027-03-29 02:30 CEST (UTC+02:00)")
    assert MaintenanceWindow.objects.count() == 0  # a preview saves nothing
    shot(page, "maintenance-form-preview-1280")
    page.get_by_role("button", name="Create window").click()
    page.wait_for_url(re.compile(r"/ui/maintenance$"))
    expect(page.get_by_text("Created maintenance window backup-quiet-time.")).to_be_visible()
    expect(page.get_by_role("link", name="backup-quiet-time")).to_be_visible()
    shot(page, "maintenance-list-1280")
    window = MaintenanceWindow.objects.get(name="backup-quiet-time")
    assert (window.cron_expression, window.duration_minutes, window.time_zone) == (
        "30 2 * * *",
        60,
        "Europe/Berlin",
    )
    assert [s.heartbeat_name for s in window.services.all()] == ["nightly-backup"]

    # a one-time window with the end before the start: the form says so, nothing is saved
    page.get_by_role("link", name="New window").click()
    page.get_by_label("Name", exact=True).fill("db-upgrade")
    page.get_by_label("Time zone", exact=True).fill("America/New_York")
    page.get_by_label("Starts", exact=True).fill("2027-12-04T22:00")
    page.get_by_label("Ends", exact=True).fill("2027-12-04T21:00")
    page.get_by_role("button", name="Create window").click()
    expect(page.get_by_text("Must be after the start.").first).to_be_visible()
    shot(page, "maintenance-form-error-1280")
    context.close()
    both_widths(browser, web, "otto", {"maintenance-form": f"/ui/maintenance/{window.pk}/edit"})


def test_viewer_cannot_change_anything(web, browser):
    add_user("vera", "viewer")
    service = Service.objects.create(
        heartbeat_name="ledger", service_name="Ledger", alert_interval=5, team="payments"
    )
    context = browser.new_context(base_url=web, viewport=DESKTOP, device_scale_factor=1)
    page = context.new_page()
    sign_in(page, "vera")
    expect(page.locator('tr[data-service="ledger"]')).to_be_visible()
    assert page.get_by_role("link", name="New service").count() == 0
    assert page.get_by_role("link", name="API keys").count() == 0
    page.get_by_role("link", name="ledger").click()
    for control in ("Edit", "Delete", "Mute", "Unmute"):
        assert page.get_by_role("button", name=control).count() == 0
        assert page.get_by_role("link", name=control, exact=True).count() == 0
    shot(page, "service-viewer-1280")

    # a forged POST, with a valid session and CSRF token, is refused by the role check
    token = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(
        f"/ui/services/{service.pk}/mute",
        form={"csrfmiddlewaretoken": token, "reason": "forged", "duration": "1d"},
        headers={"Referer": f"{web}/ui/services/{service.pk}"},
    )
    assert response.status == 403
    assert "can't do this here" in response.text()
    service.refresh_from_db()
    assert not service.muted
    response = page.request.post(
        "/ui/api-keys/new",
        form={"csrfmiddlewaretoken": token, "name": "backdoor", "scopes": "admin"},
        headers={"Referer": f"{web}/ui/api-keys/new"},
    )
    assert response.status == 403
    page.goto("/ui/api-keys")
    expect(page.get_by_text("can't do this here")).to_be_visible()
    shot(page, "forbidden-1280")
    context.close()
