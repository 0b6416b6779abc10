"""How the audit log masks secrets: the secrets package registers its masker here from its
``AppConfig.ready``. The audit log does not import the secrets package, because the secrets
package records its own changes in the audit log (one direction, no cycle)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Masker = Callable[[Any], Any]
_factory: Callable[[], Masker] | None = None


def masker_register(factory: Callable[[], Masker]) -> None:
    """``factory()`` returns a function masking every stored secret in a value (strings in
    nested dicts and lists); called once per audit row or export."""
    global _factory
    _factory = factory


def masker() -> Masker:
    # Never fall back to "no masking": an audit row written without it could hold plaintext.
    if _factory is None:
        raise RuntimeError("no secrets masker registered (is remediation.secrets installed?)")
    return _factory()


def mask_data(data: Any) -> Any:
    return masker()(data)
