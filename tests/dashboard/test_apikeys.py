"""API keys in the dashboard: admins only; the secret is shown once; rotate and revoke."""

from __future__ import annotations

import re

import pytest

from medic.apikeys import api_key_verify, key_cache
from medic.errors import NotAuthenticated
from medic.models import ApiKey, AuditEvent

pytestmark = pytest.mark.django_db


def _secret(response) -> str:
    match = re.search(r'data-testid="secret">(mdk_\w+)</code>', response.content.decode())
    assert match, response.content[:2000]
    return match.group(1)


def test_create_shows_the_secret_once(admin_user):
    response = admin_user.post(
        "/ui/api-keys/new",
        {"name": "billing cron", "scopes": ["write"], "expires": "90", "heartbeat_limit": "600"},
    )
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    secret = _secret(response)
    assert 'data-copy="#secret"' in response.content.decode()
    key = ApiKey.objects.get(name="billing cron")
    assert api_key_verify(secret).pk == key.pk
    assert key.scopes == ["write"] and key.rate_limits == {"heartbeat": 600}
    assert abs((key.expires_at - key.created_at).total_seconds() - 90 * 86400) < 60
    assert key.created_by == "user:ada"
    listing = admin_user.get("/ui/api-keys").content.decode()
    assert secret not in listing and f"mdk_{key.prefix}…" in listing
    assert "<th>Last used</th>" in listing


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x"}, "Tick at least one scope."),
        ({"scopes": ["read"]}, "This field is required."),
        ({"name": "x", "scopes": ["root"]}, "Select a valid choice. root is not one of"),
        (
            {"name": "x", "scopes": ["read"], "expires": "custom"},
            "Enter the number of days the key is valid.",
        ),
        (
            {"name": "x", "scopes": ["read"], "expires": "custom", "expires_days": "-1"},
            "Ensure this value is greater than or equal to 0.01.",
        ),
        (
            {"name": "x", "scopes": ["read"], "management_limit": "-3"},
            "Ensure this value is greater than or equal to 0.",
        ),
    ],
)
def test_create_form_says_what_to_fix(admin_user, data, message):
    response = admin_user.post("/ui/api-keys/new", data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ApiKey.objects.exists()


def test_rotate_and_revoke(admin_user, world):
    key = world["key"]
    response = admin_user.post(f"/ui/api-keys/{key.pk}/rotate")
    secret = _secret(response)
    key.refresh_from_db()
    assert key.rotated_at is not None and api_key_verify(secret).pk == key.pk
    assert admin_user.post(f"/ui/api-keys/{key.pk}/revoke").status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    key_cache.clear()
    with pytest.raises(NotAuthenticated):
        api_key_verify(secret)
    listing = admin_user.get("/ui/api-keys").content.decode()
    row = listing[listing.index('data-key="ci"') :]
    row = row[: row.index("</tr>")]
    assert ">revoked<" in row and "Rotate" not in row and "Revoke" not in row
    assert list(
        AuditEvent.objects.filter(object_id=str(key.pk)).values_list("event", flat=True)
    ) == [
        "api_key.revoked",
        "api_key.rotated",
        "api_key.created",
    ]


def test_rotating_a_revoked_key_is_refused(admin_user, world):
    key = world["key"]
    admin_user.post(f"/ui/api-keys/{key.pk}/revoke")
    response = admin_user.post(f"/ui/api-keys/{key.pk}/rotate")
    assert response.status_code == 404
    assert b"No active API key with this id." in response.content


def test_superuser_is_an_admin(superuser, world):
    assert superuser.get("/ui/api-keys").status_code == 200
    assert 'href="/admin/"' in superuser.get("/ui/").content.decode()
