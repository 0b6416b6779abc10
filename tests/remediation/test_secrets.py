"""Named secrets: sealed at rest, readable by the engine, masked everywhere, audited by name."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from medic.errors import MedicError
from remediation.audit.models import AuditEntry
from remediation.secrets import services
from remediation.secrets.models import Secret

pytestmark = pytest.mark.django_db
PLAIN = "s3cr3t-Pa$$word/with+chars"
ROOT = Path(__file__).resolve().parents[2]


def _key(kid: str) -> str:
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


def test_a_secret_is_stored_sealed_with_the_current_key(settings):
    settings.MEDIC_ENCRYPTION_KEYS = _key("k1")
    secret = services.secret_set(name="db_password", value=PLAIN, actor="key:ops#1")
    with connection.cursor() as cursor:
        cursor.execute("SELECT ciphertext, key_id FROM secrets_secret WHERE name = 'db_password'")
        ciphertext, key_id = cursor.fetchone()
    assert PLAIN not in ciphertext and ciphertext.startswith("enc:v1:k1:")
    assert key_id == secret.key_id == "k1"
    assert services.secret_value(name="db_password") == PLAIN
    assert services.secret_names() == {"db_password"}


def test_an_unknown_secret_raises_secret_not_found():
    with pytest.raises(services.SecretNotFound) as raised:
        services.secret_value(name="nope")
    assert isinstance(raised.value, MedicError)
    assert raised.value.status == 404 and raised.value.code == "secret_not_found"
    with pytest.raises(services.SecretNotFound):
        services.secret_delete(name="nope", actor="system")


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [("1abc", "long enough", "name"), ("has-dash", "long enough", "name"), ("ok", "abc", "value")],
)
def test_bad_names_and_too_short_values_are_refused(name, value, field):
    with pytest.raises(MedicError) as raised:
        services.secret_set(name=name, value=value, actor="system")
    assert raised.value.status == 422 and list(raised.value.fields) == [field]
    assert not Secret.objects.exists()


def test_masking_covers_every_stored_value_and_follows_changes():
    services.secret_set(name="token", value="tok-123456", actor="system")
    services.secret_set(name="token_long", value="tok-123456-and-more", actor="system")
    text = "a=tok-123456-and-more b=tok-123456 c=tok%2D123456"
    assert services.secrets_mask(text) == "a=•••••• b=•••••• c=tok%2D123456"
    # URL-encoded and JSON-escaped forms are masked too
    services.secret_set(name="pw", value='p@ss "word"/+', actor="system")
    assert services.secrets_mask("u=p%40ss%20%22word%22%2F%2B") == "u=••••••"
    assert services.secrets_mask(json.dumps({"p": 'p@ss "word"/+'})) == '{"p": "••••••"}'
    # a change is seen on the next read; the old value is no longer a secret
    services.secret_set(name="token", value="tok-999999", actor="system")
    assert services.secrets_mask("tok-123456 tok-999999") == "tok-123456 ••••••"
    services.secret_delete(name="token", actor="system")
    assert services.secrets_mask("tok-999999") == "tok-999999"
    assert services.secrets_mask("") == ""


def test_changes_are_audited_by_name_never_by_value(settings):
    settings.MEDIC_ENCRYPTION_KEYS = _key("k1")
    services.secret_set(name="api_token", value=PLAIN, actor="key:ops#1")
    services.secret_set(name="api_token", value=PLAIN + "-v2", actor="user:alice")
    services.secret_delete(name="api_token", actor="slack:U123")
    rows = list(AuditEntry.objects.order_by("id").values())
    assert [(r["event"], r["actor"], r["object_id"]) for r in rows] == [
        ("secret.created", "key:ops#1", "api_token"),
        ("secret.updated", "user:alice", "api_token"),
        ("secret.deleted", "slack:U123", "api_token"),
    ]
    assert rows[0]["details"] == {"name": "api_token", "key_id": "k1"}
    assert PLAIN not in json.dumps(rows, default=str)


def test_rotation_reseals_with_the_new_key(settings):
    old = _key("k1")
    settings.MEDIC_ENCRYPTION_KEYS = old
    services.secret_set(name="a_secret", value=PLAIN, actor="system")
    settings.MEDIC_ENCRYPTION_KEYS = f"{_key('k2')},{old}"
    assert services.secret_value(name="a_secret") == PLAIN  # the old key still opens it
    assert services.secrets_reencrypt(actor="cli:secrets_reencrypt") == ["a_secret"]
    assert Secret.objects.get(name="a_secret").key_id == "k2"
    assert services.secrets_reencrypt(actor="cli:secrets_reencrypt") == []
    settings.MEDIC_ENCRYPTION_KEYS = settings.MEDIC_ENCRYPTION_KEYS.split(",")[0]
    assert services.secret_value(name="a_secret") == PLAIN
    row = AuditEntry.objects.get(event="secret.reencrypted")
    assert row.details == {"name": "a_secret", "key_id": "k2", "previous_key_id": "k1"}


def test_rotation_reseals_row_by_row_and_resumes_after_an_interruption(settings):
    old = _key("k1")
    settings.MEDIC_ENCRYPTION_KEYS = _key("k9")
    services.secret_set(name="b_orphan", value=PLAIN, actor="system")
    settings.MEDIC_ENCRYPTION_KEYS = old
    services.secret_set(name="a_secret", value=PLAIN, actor="system")
    services.secret_set(name="c_secret", value=PLAIN + "-c", actor="system")
    settings.MEDIC_ENCRYPTION_KEYS = f"{_key('k2')},{old}"  # k9 is gone: b_orphan is unreadable
    with pytest.raises(services.SecretUnreadable) as exc:
        services.secrets_reencrypt(actor="cli:secrets_reencrypt")
    assert exc.value.fields == {"name": ["b_orphan"]}
    # a_secret was re-sealed in its own transaction and stays so; c_secret was not reached.
    keys = dict(Secret.objects.values_list("name", "key_id"))
    assert keys == {"a_secret": "k2", "b_orphan": "k9", "c_secret": "k1"}
    services.secret_set(name="b_orphan", value=PLAIN, actor="system")  # the fix: set it again
    assert services.secrets_reencrypt(actor="cli:secrets_reencrypt") == ["c_secret"]
    assert set(Secret.objects.values_list("key_id", flat=True)) == {"k2"}
    assert services.secret_value(name="c_secret") == PLAIN + "-c"
    resealed = AuditEntry.objects.filter(event="secret.reencrypted").order_by("id")
    assert [r.object_id for r in resealed] == ["a_secret", "c_secret"]


def test_a_secret_sealed_with_a_removed_key_is_unreadable_and_logged_by_name(settings, caplog):
    settings.MEDIC_ENCRYPTION_KEYS = _key("k1")
    services.secret_set(name="orphan", value=PLAIN, actor="system")
    settings.MEDIC_ENCRYPTION_KEYS = _key("k9")
    with caplog.at_level(logging.DEBUG), pytest.raises(services.SecretUnreadable):
        services.secret_value(name="orphan")
    assert any(getattr(r, "secret", None) == "orphan" for r in caplog.records)


def test_plaintext_never_reaches_the_logs(settings, caplog):
    settings.DEBUG = True  # Django then logs every SQL statement with its parameters
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    with caplog.at_level(logging.DEBUG):
        services.secret_set(name="db_password", value=PLAIN, actor="system")
        services.secret_value(name="db_password")
        services.secrets_mask(f"x {PLAIN} y")
        services.secret_set(name="db_password", value=PLAIN + "2", actor="system")
        services.secret_delete(name="db_password", actor="system")
    assert caplog.records  # the SQL was logged ...
    for record in caplog.records:  # ... and none of it carries the value
        assert PLAIN not in record.getMessage()
        assert PLAIN not in json.dumps(record.__dict__, default=str)


@pytest.mark.django_db(transaction=True)
def test_a_change_made_by_another_process_is_masked_on_the_next_read():
    services.secret_set(name="first", value="first-value", actor="system")
    assert services.secrets_mask("first-value other-value") == "•••••• other-value"
    db = django_settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgresql://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        ),
        "MEDIC_ENCRYPTION_KEYS": django_settings.MEDIC_ENCRYPTION_KEYS,
    }
    code = (
        "import django; django.setup()\n"
        "from remediation.secrets.services import secret_set\n"
        "secret_set(name='second', value='other-value', actor='system')\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=120)
    assert services.secrets_mask("first-value other-value") == "•••••• ••••••"
