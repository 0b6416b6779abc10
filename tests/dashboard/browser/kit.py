"""What the browser tests share: Debian's Chromium and its flags, the viewport sizes, where
screenshots go, and the steps every story starts with (a user of a role, signing in, a
screenshot). The fixtures (the web server, the browser) are in this directory's conftest.py."""

from __future__ import annotations

import os
import re
from pathlib import Path

from django.contrib.auth.models import Group, User
from playwright.sync_api import expect

from dashboard.roles import groups_ensure
from heartbeats.services import heartbeat_record
from remediation.playbooks.models import Execution, ExecutionState
from tests.e2e.conftest import ROOT
from tests.playbooks.test_durability_e2e import _wait

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(os.environ.get("MEDIC_SCREENSHOTS_DIR") or ROOT / "tests" / "screenshots")
PASSWORD = "a long browser password"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def add_user(username: str, group: str) -> User:
    groups_ensure(Group)  # transactional tests flush the rows of data migrations
    user = User.objects.create_user(username, password=PASSWORD)
    user.groups.add(Group.objects.get(name=group))
    return user


def sign_in(page, username: str) -> None:
    page.goto("/ui/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/ui/$"))


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def both_widths(browser, base_url: str, username: str, pages: dict[str, str]) -> None:
    """Screenshots of ``pages`` (name -> path) at the phone width."""
    context = browser.new_context(base_url=base_url, viewport=PHONE, device_scale_factor=1)
    page = context.new_page()
    sign_in(page, username)
    for name, path in pages.items():
        page.goto(path)
        shot(page, f"{name}-390")
    context.close()


def run_now(page, target: str, service, receiver, worker):
    """ "Run now" on ``target`` from a playbook's page, then watch the execution's page while the
    real worker runs it (its webhook reaches ``receiver``; the service keeps beating so its
    condition step passes) until the page shows it completed. Returns the execution."""
    page.get_by_label("Run now on").select_option(label=target)
    page.get_by_role("button", name="Run now").click()
    page.wait_for_url(re.compile(r"/ui/executions/\d+$"))
    run = Execution.objects.get(pk=int(page.url.rsplit("/", 1)[1]))
    assert run.mode == "active"
    receiver.wait_for(1, timeout=60)
    _wait(
        lambda: (
            heartbeat_record(service_ref=service.pk)
            and Execution.objects.filter(pk=run.pk, state=ExecutionState.COMPLETED).exists()
        ),
        90,
        "the execution to complete",
        [worker],
    )
    # the page refreshed itself (no reload here) until the execution finished
    expect(page.get_by_test_id("state")).to_have_text("completed", timeout=30000)
    return run
