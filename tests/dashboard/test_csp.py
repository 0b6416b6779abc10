"""Every portal and admin page (and the API docs) carries a Content-Security-Policy that allows
no inline script or style, and none of them needs one: no style attributes, no <style>, no
inline <script> (JSON data blocks aside)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from heartbeats.services import service_create
from medic.csp import POLICY

pytestmark = pytest.mark.django_db

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)


def _assert_strict(response):
    assert response["Content-Security-Policy"] == POLICY
    assert "'unsafe-inline'" not in POLICY
    html = response.content.decode()
    assert not INLINE_SCRIPT.search(html), INLINE_SCRIPT.search(html).group(0)
    assert "<style" not in html.lower()
    assert not re.search(r"\sstyle=\"", html), re.search(r".{60}\sstyle=\".{40}", html)


PORTAL = [
    "/ui/",
    "/ui/services/new",
    "/ui/services/{pk}",
    "/ui/services/{pk}/edit",
    "/ui/services/{pk}/delete",
    "/ui/alerts",
    "/ui/teams",
    "/ui/teams/new",
    "/ui/maintenance",
    "/ui/maintenance/new",
    "/ui/routing/targets/new",
    "/ui/routing/rules/new",
    "/ui/routing/working-hours/new",
    "/ui/keys",
]


def test_portal_pages_have_a_strict_policy_and_no_inline_code(superuser):
    service = service_create(heartbeat_name="job", alert_interval=5)
    checked = 0
    for path in PORTAL:
        response = superuser.get(path.format(pk=service.pk))
        if response.status_code == 404:
            continue  # a page this build does not have
        assert response.status_code == 200, (path, response.status_code)
        _assert_strict(response)
        checked += 1
    assert checked >= 8
    _assert_strict(Client().get("/ui/login"))


def test_admin_pages_and_api_docs_have_the_policy(superuser):
    for path in ("/admin/", "/admin/heartbeats/service/", "/v2/docs/"):
        response = superuser.get(path)
        assert response.status_code == 200, path
        assert response["Content-Security-Policy"] == POLICY
        assert not INLINE_SCRIPT.search(response.content.decode()), path
    assert Client().get("/admin/login/")["Content-Security-Policy"] == POLICY
