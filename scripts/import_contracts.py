"""import-linter contract type: no app imports another app's private names.

``from alerting.transports import _VAR`` reaches into alerting's internals: the leading
underscore says "not part of alerting's interface". Built-in contracts see modules, not names,
so this one reads the ``from ... import`` statements that import-linter's graph points at.
A private *module* (``alerting._impl``) imported from another app counts too.
"""

from __future__ import annotations

import ast
import functools
import importlib.util

from importlinter import Contract, ContractCheck, fields, output


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@functools.cache
def _from_imports(module: str) -> list[tuple[str, int, list[str]]]:
    """(imported module, line, names) of every ``from x import a, b`` in ``module``."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return []
    with open(spec.origin, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), spec.origin)
    package = module if spec.submodule_search_locations else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.append((base, node.lineno, [alias.name for alias in node.names]))
    return found


class PrivateNamesContract(Contract):
    type_name = "private_names"

    apps = fields.ListField(subfield=fields.StringField())

    def check(self, graph, verbose: bool) -> ContractCheck:
        apps = set(self.apps)  # type: ignore[arg-type]
        violations: list[str] = []
        for app in sorted(apps):
            for importer in sorted({app} | graph.find_descendants(app)):
                for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                    if imported.split(".")[0] not in apps - {app}:
                        continue
                    if any(_private(part) for part in imported.split(".")):
                        violations.append(f"{importer} imports private module {imported}")
                for base, line, names in _from_imports(importer):
                    if base.split(".")[0] not in apps - {app}:
                        continue
                    for name in names:
                        if _private(name):
                            violations.append(
                                f"{importer}:{line} imports private name {name} from {base}"
                            )
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for violation in check.metadata["violations"]:
            output.print_error(f"- {violation}", bold=False)
        output.new_line()
