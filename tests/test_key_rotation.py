"""Encryption key rotation and the stored-secrets startup check (medic.E010)."""

from __future__ import annotations

import base64
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError

from alerting import config as cfg
from alerting.models import NotificationTarget
from medic import crypto
from medic.models import AuditEvent

pytestmark = pytest.mark.django_db


def _key(kid: str, fill: bytes) -> str:
    return f"{kid}:{base64.b64encode(fill * 32).decode()}"


OLD, NEW, OTHER = _key("old", b"o"), _key("new", b"n"), _key("other", b"x")


def _target(name: str) -> NotificationTarget:
    target, _ = cfg.target_create(
        name=name,
        kind="webhook",
        config={"url": "https://hooks.example.com/medic"},
        secrets={"signing_secret": f"whsec_{name}", "secret_headers": {"X-Token": f"t-{name}"}},
        actor="t",
    )
    return target


def _plain(target: NotificationTarget) -> dict:
    target.refresh_from_db()
    return {
        "signing": crypto.decrypt(target.secrets["signing_secret"]),
        "header": crypto.decrypt(target.secrets["headers"]["X-Token"]),
        "keys": {
            crypto.key_id(target.secrets["signing_secret"]),
            crypto.key_id(target.secrets["headers"]["X-Token"]),
        },
    }


def test_rotation_reseals_every_secret_under_the_newest_key(settings):
    settings.MEDIC_ENCRYPTION_KEYS = OLD
    a, b = _target("a"), _target("b")
    assert _plain(a)["keys"] == {"old"}

    settings.MEDIC_ENCRYPTION_KEYS = f"{NEW},{OLD}"  # step 1: new key first, old still listed
    c = _target("c")  # written meanwhile by a running process: already under the new key
    out = io.StringIO()
    call_command("rotate_encryption_key", stdout=out)
    assert "re-sealed 4 secrets under key new (2 already were)" in out.getvalue()
    assert "key(s) old no longer seal anything" in out.getvalue()

    settings.MEDIC_ENCRYPTION_KEYS = NEW  # step 3: the old key retired
    for target, name in ((a, "a"), (b, "b"), (c, "c")):
        assert _plain(target) == {
            "signing": f"whsec_{name}",
            "header": f"t-{name}",
            "keys": {"new"},
        }
    call_command("check", databases=["default"])  # every stored secret opens
    assert AuditEvent.objects.filter(event="secrets.resealed").count() == 2

    out = io.StringIO()
    call_command("rotate_encryption_key", stdout=out)  # again: nothing to do
    assert "re-sealed 0 secrets under key new (6 already were)" in out.getvalue()


def test_dry_run_counts_and_changes_nothing(settings):
    settings.MEDIC_ENCRYPTION_KEYS = OLD
    a = _target("a")
    settings.MEDIC_ENCRYPTION_KEYS = f"{NEW},{OLD}"
    out = io.StringIO()
    call_command("rotate_encryption_key", "--dry-run", stdout=out)
    assert out.getvalue().strip() == "stored secrets by key: old: 2; newest key: new"
    assert _plain(a)["keys"] == {"old"}


def test_startup_check_names_the_missing_key(settings):
    settings.MEDIC_ENCRYPTION_KEYS = OLD
    _target("ops-webhook")
    settings.MEDIC_ENCRYPTION_KEYS = OTHER  # the old key was dropped before re-sealing
    with pytest.raises(SystemCheckError) as failed:
        call_command("check", databases=["default"])
    message = str(failed.value)
    assert "(medic.E010) notification target 'ops-webhook': secret 'signing_secret'" in message
    assert (
        "encryption key 'old'" in message
        and "Add the key 'old' to MEDIC_ENCRYPTION_KEYS" in message
    )
    with pytest.raises(CommandError, match="do not open with the configured keys"):
        call_command("rotate_encryption_key", stdout=io.StringIO())


def test_startup_check_names_a_wrong_key_with_the_same_id(settings):
    settings.MEDIC_ENCRYPTION_KEYS = OLD
    _target("ops-webhook")
    settings.MEDIC_ENCRYPTION_KEYS = _key("old", b"z")  # same id, different bytes
    with pytest.raises(SystemCheckError, match=r"encryption key 'old'.*wrong key or tampered"):
        call_command("check", databases=["default"])
