"""The Django admin stays available to superusers, read-only for Medic's rows, secrets hidden."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_superuser_reads_every_model_without_secrets(superuser, world):
    index = superuser.get("/admin/").content.decode()
    for model in (
        "services",
        "alerts",
        "deliveries",
        "teams",
        "notification targets",
        "routing rules",
        "API keys",
        "audit events",
        "maintenance windows",
        "job runs",
    ):
        assert model.lower() in index.lower(), model
    target = world["target"]
    page = superuser.get(f"/admin/alerting/notificationtarget/{target.pk}/change/")
    assert page.status_code == 200
    assert target.secrets["signing_secret"] not in page.content.decode()
    key_page = superuser.get(f"/admin/medic/apikey/{world['key'].pk}/change/").content.decode()
    assert world["key"].hashed_key not in key_page
    assert superuser.get("/admin/heartbeats/service/add/").status_code == 403


def test_dashboard_roles_do_not_open_the_admin(operator, admin_user):
    for client in (operator, admin_user):
        response = client.get("/admin/")
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
