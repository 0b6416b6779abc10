"""First-run set-up: the admin user and the admin key, printed once with what they are for."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from medic.models import ApiKey
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db


def _bootstrap() -> str:
    out = io.StringIO()
    call_command("medic_bootstrap", stdout=out)
    return out.getvalue()


def test_first_run_prints_the_password_for_the_portal_and_the_key_with_its_limit():
    ApiKey.objects.all().delete()
    get_user_model().objects.filter(is_superuser=True).delete()
    out = _bootstrap()
    assert "Admin user created: admin / " in out
    assert "portal at /ui/" in out
    secret = out.split("Admin API key created (shown once): ")[1].split()[0]
    assert "300 management requests a minute" in out

    key = ApiKey.objects.get(name="bootstrap-admin")
    assert key.scopes == ["admin"]
    assert key.rate_limits == {"management": 300}
    response = ApiClient(secret).get("/v2/services")
    assert response.status_code == 200
    assert response["X-RateLimit-Limit"] == "300"


def test_later_runs_print_nothing():
    _bootstrap()
    assert _bootstrap() == ""
