"""The Outcomes page in a real browser (Debian's Chromium, gunicorn): a viewer picks a period and
a team, sees the figures and a chart per metric drawn as SVG, without any Content-Security-Policy
violation, and the agents over the memory threshold. Screenshots at 1280 px and 390 px go to
tests/screenshots/."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from remediation.agents import agent_create, agent_seen
from remediation.playbooks import services as playbooks
from tests.dashboard.browser.kit import DESKTOP, PHONE, add_user, both_widths, shot, sign_in
from tests.factories import ServiceFactory
from tests.reports.test_success_metrics import HOUR, MINUTE, WAIT_PLAYBOOK, _incident

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _history():
    now = timezone.now()
    day = timedelta(days=1)
    playbooks.playbook_save(
        document=WAIT_PLAYBOOK.format(name="restart-api", pattern="api-*"), actor="t"
    )
    api = ServiceFactory(heartbeat_name="api-1", team="web", alert_interval=5)
    db = ServiceFactory(heartbeat_name="db-1", team="data", alert_interval=5)
    for k in range(1, 7):
        opened = now - k * day
        _incident(api, opened, opened + (2 + 3 * k) * MINUTE)
        _incident(db, opened - HOUR, opened - HOUR + 20 * k * MINUTE, how="manual")
    for k in range(3):  # db-1 flaps two days ago
        opened = now - 2 * day + 2 * HOUR + 10 * k * MINUTE
        _incident(db, opened, opened + MINUTE)
    big = agent_create(name="edge-1", actor="t").agent
    for k in range(5, -1, -1):
        agent_seen(
            agent_id=big.pk,
            memory_rss_bytes=4_000_000 + k * 400_000,
            agent_version="0.2.0",
            now=now - k * day,
        )
    small = agent_create(name="edge-2", actor="t").agent
    agent_seen(agent_id=small.pk, memory_rss_bytes=3_100_000, agent_version="0.2.0", now=now)


def test_viewer_reads_the_outcomes_and_their_charts(web, browser):
    add_user("vera", "viewer")
    _history()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(web + "/v2/services")
    assert refused.value.code == 401
    context = browser.new_context(base_url=web, viewport=DESKTOP, device_scale_factor=1)
    page = context.new_page()
    violations = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    sign_in(page, "vera")
    page.get_by_role("link", name="Outcomes", exact=True).click()
    page.get_by_label("Period").select_option("7")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("heading", name="Outcomes", exact=True)).to_be_visible()
    for name in (
        "Median time to resolve per day, by how alerts ended",
        "p90 time to resolve per day, by how alerts ended",
        "Alerts with a playbook per day",
        "Likely false positives per day",
        "Alerts opened per day",
        "Agents over the memory threshold per day",
        "Refused requests per day, by reason",
    ):
        chart = page.get_by_role("img", name=name)
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box["width"] > 300 and box["height"] > 100, name
    # Six days of api-1 (covered) and db-1 alerts, plus db-1's three flaps.
    expect(page.get_by_test_id("coverage")).to_contain_text("6 of 15 alerts, 1 of 2 services")
    expect(page.get_by_test_id("accuracy")).to_contain_text("flapping: db-1")
    # The web server tallied the request without a key above.
    expect(page.get_by_test_id("security")).to_contain_text("refused in the period's days")
    agents = page.get_by_test_id("agents-memory")
    expect(agents).to_contain_text("2 of 2 agents report their memory")
    expect(agents.locator("tbody tr")).to_have_count(0)  # edge-1 is at 4.0 MB today
    expect(agents).to_contain_text("No agent over the threshold.")
    # edge-1 was over 5 MB on three of the last six days: three points above zero.
    points = page.locator('[data-testid="chart-agents"] circle.chart-dot')
    titles = points.evaluate_all("els => els.map(e => e.textContent)")
    assert sum(1 for t in titles if t.endswith(": 1")) == 3, titles
    # The line colours come from the stylesheet (no inline style under the CSP).
    stroke = page.locator('[data-testid="chart-coverage"] polyline').first.evaluate(
        "e => getComputedStyle(e).stroke"
    )
    assert stroke == "rgb(19, 108, 46)"
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    shot(page, "outcomes-1280")
    page.get_by_label("Team").select_option("data")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("coverage")).to_contain_text("0 of 9 alerts")
    assert violations == []
    context.close()
    both_widths(browser, web, "vera", {"outcomes": "/ui/reports/?days=7"})
    phone = browser.new_context(base_url=web, viewport=PHONE, device_scale_factor=1)
    page = phone.new_page()
    sign_in(page, "vera")
    page.goto("/ui/reports/?days=7")
    box = page.get_by_role("img", name="Alerts opened per day").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    phone.close()
