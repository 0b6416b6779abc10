"""Loaded with `-p` before Django's settings: a throwaway MEDIC_ENCRYPTION_KEYS when the
environment has none (production settings require one). scripts/test.sh exports its own; this
keeps a bare `pytest` working. Real processes started by tests inherit it."""

from __future__ import annotations

import base64
import os

if not os.environ.get("MEDIC_ENCRYPTION_KEYS") and not os.environ.get("MEDIC_ENCRYPTION_KEYS_FILE"):
    os.environ["MEDIC_ENCRYPTION_KEYS"] = "test:" + base64.b64encode(os.urandom(32)).decode()
