"""GitOps for playbooks without a second source of truth.

    manage.py playbooks apply DIR [--dry-run] [--reason TEXT]
        creates or updates a playbook from every *.yaml / *.yml file in DIR (one document each),
        printing the diff of each change; with --dry-run it validates and prints, saving nothing.
    manage.py playbooks export DIR
        writes the current version of every playbook to DIR/<name>.yaml, exactly as saved.

Applying is all or nothing: if any file is invalid, nothing is saved and every problem is
printed with its file and line.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from medic.errors import MedicError
from remediation.playbooks import selectors, services
from remediation.playbooks.models import Playbook
from remediation.playbooks.spec import PlaybookInvalid


class _DryRun(Exception):
    pass


class Command(BaseCommand):
    help = "Apply playbooks from a directory of YAML files, or export them to one."

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        apply = sub.add_parser("apply", help="Create or update playbooks from DIR/*.yaml.")
        apply.add_argument("directory")
        apply.add_argument("--dry-run", action="store_true", help="Validate and diff only.")
        apply.add_argument("--reason", default="", help="Kept with every version written.")
        apply.add_argument("--actor", default="manage.py playbooks apply")
        export = sub.add_parser("export", help="Write every playbook to DIR/<name>.yaml.")
        export.add_argument("directory")

    def handle(self, *args, **options) -> None:
        directory = Path(options["directory"])
        if options["action"] == "export":
            self._export(directory)
        else:
            self._apply(directory, options["dry_run"], options["reason"], options["actor"])

    def _export(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        count = 0
        for playbook in selectors.playbook_list():
            version = selectors.version_get(playbook)
            (directory / f"{playbook.name}.yaml").write_text(version.source)
            count += 1
        self.stdout.write(f"exported {count} playbook(s) to {directory}")

    def _apply(self, directory: Path, dry_run: bool, reason: str, actor: str) -> None:
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory")
        files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
        problems: list[str] = []
        summary = {"created": 0, "updated": 0, "unchanged": 0}
        try:
            with transaction.atomic():
                for path in files:
                    before = self._current_source(path)
                    try:
                        saved = services.playbook_save(
                            document=path.read_text(), actor=actor, reason=reason
                        )
                    except PlaybookInvalid as exc:
                        for p in exc.problems:
                            where = f"{path}:{p.line}" if p.line else str(path)
                            problems.append(f"{where}: {p.path or 'document'}: {p.message}")
                        continue
                    except MedicError as exc:
                        problems.append(f"{path}: {exc.message}")
                        continue
                    if not saved.changed:
                        summary["unchanged"] += 1
                        continue
                    summary["created" if saved.created else "updated"] += 1
                    self.stdout.write(
                        f"{'create' if saved.created else 'update'} {saved.playbook.name} "
                        f"-> v{saved.version.version}"
                    )
                    self.stdout.write(
                        saved.version.diff if before is not None else saved.version.source
                    )
                if problems:
                    raise CommandError(
                        "invalid playbook(s), nothing applied:\n" + "\n".join(problems)
                    )
                if dry_run:
                    raise _DryRun
        except _DryRun:
            self.stdout.write("dry run: nothing saved")
        self.stdout.write(
            f"{summary['created']} created, {summary['updated']} updated, "
            f"{summary['unchanged']} unchanged"
        )

    @staticmethod
    def _current_source(path: Path) -> str | None:
        import yaml

        try:
            name = (yaml.safe_load(path.read_text()) or {}).get("name")
        except (yaml.YAMLError, AttributeError):
            return None
        playbook = Playbook.objects.filter(name=name).first() if isinstance(name, str) else None
        return selectors.version_get(playbook).source if playbook else None
