"""``manage.py import_v1 --dsn postgresql://...``: copy a Medic v1 database into this one.

See docs/migrating-from-v1.md. Safe to repeat: a second run over the same data changes nothing.
"""

import os

from django.core.management.base import BaseCommand, CommandError

from compat.importer import V1_TIMEZONE, V1ImportError, v1_import


class Command(BaseCommand):
    help = (
        "Import services, heartbeats, alerts, teams, schedules, targets, scripts, job runs, "
        "maintenance windows, secrets, API keys, playbooks and remediation history from a Medic "
        "v1 PostgreSQL database, and report what is not imported and why. "
        "Idempotent; start with --dry-run."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dsn",
            required=True,
            help="libpq connection string or URL of the v1 database, e.g. "
            "postgresql://medic@v1-db:5432/medic (a password may come from PGPASSWORD or "
            "~/.pgpass instead of the URL).",
        )
        parser.add_argument("--schema", default="medic", help="v1's schema (default: medic).")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Do everything in a transaction that is rolled back; report what would change.",
        )
        parser.add_argument(
            "--heartbeat-days",
            type=int,
            default=None,
            metavar="DAYS",
            help="Copy heartbeats of the last DAYS days (default: MEDIC_HEARTBEAT_RETENTION_DAYS; "
            "0 copies all of them).",
        )
        parser.add_argument(
            "--v1-timezone",
            default=V1_TIMEZONE,
            help="The zone v1's worker wrote alert open/close times in as wall-clock time "
            f"(default: {V1_TIMEZONE}, v1's).",
        )
        parser.add_argument(
            "--v1-secrets-key-file",
            default=None,
            metavar="PATH",
            help="A file holding v1's MEDIC_SECRETS_KEY (base64), to import v1's secrets; the "
            "MEDIC_V1_SECRETS_KEY environment variable works too. Without it secrets are "
            "reported, not imported.",
        )
        parser.add_argument(
            "--keep-v1-mode",
            action="store_true",
            help="Import v1's playbooks active, as v1 ran them (default: shadow mode, so nothing "
            "runs before it is reviewed).",
        )
        parser.add_argument(
            "--batch-size", type=int, default=5000, help="Rows per read and insert (default 5000)."
        )

    def handle(self, *args, dsn, schema, dry_run, heartbeat_days, batch_size, **options):
        secrets_key = os.environ.get("MEDIC_V1_SECRETS_KEY") or None
        if options["v1_secrets_key_file"]:
            try:
                with open(options["v1_secrets_key_file"]) as handle:
                    secrets_key = handle.read().strip()
            except OSError as exc:
                raise CommandError(f"Cannot read the v1 secrets key file: {exc}") from exc
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if heartbeat_days is not None and heartbeat_days < 0:
            raise CommandError("--heartbeat-days must be 0 (everything) or more.")
        verbose = options["verbosity"] >= 1
        try:
            summary = v1_import(
                dsn=dsn,
                schema=schema,
                dry_run=dry_run,
                heartbeat_days=heartbeat_days,
                batch_size=batch_size,
                v1_timezone=options["v1_timezone"],
                secrets_key=secrets_key,
                keep_v1_mode=options["keep_v1_mode"],
                progress=self.stderr.write if verbose else None,
            )
        except V1ImportError as exc:
            raise CommandError(str(exc)) from exc
        for warning in summary.warnings:
            self.stderr.write(f"warning: {warning}")
        if summary.omitted_warnings:
            self.stderr.write(f"warning: {summary.omitted_warnings} more warning(s) not shown.")
        prefix = "Dry run, nothing was written. " if dry_run else ""
        self.stdout.write(f"{prefix}Imported from schema '{schema}':")
        for table, counts in summary.tables().items():
            self.stdout.write(f"  {(table + ':').ljust(11)} {counts}")
        for table, count in summary.not_imported.items():
            self.stdout.write(f"  {(table + ':').ljust(11)} {count} row(s) not imported")
        self.stdout.write(
            f"  derived state (last heartbeat, status, deadline) changed for "
            f"{summary.recomputed} service(s)"
        )
