"""Re-seal every stored secret under the newest encryption key (the first of
MEDIC_ENCRYPTION_KEYS). Safe beside running processes; see docs/deployment.md."""

from django.core.management.base import BaseCommand, CommandError

from medic import crypto
from medic.keyring import secrets_by_key, secrets_rotate, secrets_unreadable


class Command(BaseCommand):
    help = "Re-encrypt every stored secret with the newest key in MEDIC_ENCRYPTION_KEYS."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="only count stored secrets by key id"
        )

    def handle(self, *args, dry_run: bool, **options):
        newest = crypto.newest_key_id()
        before = secrets_by_key()
        self.stdout.write(
            "stored secrets by key: " + (_counts(before) or "none") + f"; newest key: {newest}"
        )
        unreadable = secrets_unreadable()
        if unreadable:
            raise CommandError(
                "cannot re-seal, these secrets do not open with the configured keys:\n"
                + "\n".join(f"  {item}" for item in unreadable)
            )
        if dry_run:
            return
        result = secrets_rotate()
        self.stdout.write(
            f"re-sealed {result.resealed} secrets under key {newest} "
            f"({result.current} already were); stored secrets by key: {_counts(secrets_by_key())}"
        )
        retired = sorted(set(before) - {newest})
        if retired:
            self.stdout.write(
                f"key(s) {', '.join(retired)} no longer seal anything: remove them from "
                "MEDIC_ENCRYPTION_KEYS once every process runs with the new list"
            )


def _counts(counts) -> str:
    return ", ".join(f"{kid}: {n}" for kid, n in sorted(counts.items()))
