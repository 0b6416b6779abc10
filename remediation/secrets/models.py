"""Named secrets (``${SECRET.<name>}`` in playbooks), sealed with AES-256-GCM by medic.crypto.

Only the ciphertext and the id of the key that sealed it are stored. ``SecretsGeneration`` is a
single row whose token changes in the same transaction as any secret: every process compares it
with the token of its cache of decrypted values (remediation.secrets.selectors) and reloads on a
difference, so a change is seen by every process on its next read.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class Secret(models.Model):
    name = models.CharField(max_length=128, unique=True)
    # "enc:v1:<key id>:<base64>" (medic/crypto.py); never the plaintext.
    ciphertext = models.TextField()
    key_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=150, blank=True, default="")
    updated_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SecretsGeneration(models.Model):
    """One row (pk 1). A random token rather than a counter: a change rolled back in one process
    and another committed elsewhere can never leave two different sets under the same token."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    token = models.UUIDField(default=uuid.uuid4)

    def __str__(self) -> str:
        return str(self.token)
