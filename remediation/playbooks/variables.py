"""Resolving ``${...}`` in step fields.

Every value is rendered twice: once for real (secrets in plaintext, only ever handed to the
request or the script) and once masked (what is stored, logged and audited). The masked
rendering replaces each ``${SECRET.x}`` with the mask itself, so nothing recorded depends on
the secret store recognising a plaintext afterwards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from remediation.playbooks import compliance
from remediation.playbooks.spec import VARIABLE_RE


class UnresolvedVariable(Exception):
    pass


@dataclass
class Scope:
    builtins: dict[str, str]
    trigger: dict
    steps: dict[str, dict] = field(default_factory=dict)

    def lookup(self, name: str, *, reveal: bool) -> str:
        name = name.strip()
        if name in self.builtins:
            return self.builtins[name]
        head, _, rest = name.partition(".")
        if head == "TRIGGER":
            return _text(self.trigger.get(rest))
        if head == "STEPS":
            step, _, field_ = rest.partition(".")
            return _text((self.steps.get(step) or {}).get(field_))
        if head == "SECRET":
            if not reveal:
                return compliance.MASK
            return compliance.secret_value(rest)
        raise UnresolvedVariable(name)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def render(value, scope: Scope, *, reveal: bool):
    """Render strings inside a JSON-like value; ``$$`` is a literal ``$``."""
    if isinstance(value, str):
        parts = value.split("$$")
        rendered = [
            VARIABLE_RE.sub(lambda m: scope.lookup(m.group(1), reveal=reveal), part)
            for part in parts
        ]
        return "$".join(rendered)
    if isinstance(value, dict):
        return {
            render(k, scope, reveal=reveal): render(v, scope, reveal=reveal)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [render(v, scope, reveal=reveal) for v in value]
    return value


def uses_secret(value) -> bool:
    from remediation.playbooks.spec import variables_in

    return any(v.strip().startswith("SECRET.") for v in variables_in(value))
