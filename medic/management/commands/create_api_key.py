from django.core.management.base import BaseCommand, CommandError

from medic.apikeys import api_key_create
from medic.errors import MedicError


class Command(BaseCommand):
    help = "Create an API key. The secret is printed once, alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--scopes", required=True, help="Comma-separated: admin, write, read (e.g. read,write)"
        )
        parser.add_argument("--expires-in", type=float, metavar="DAYS", default=None)
        parser.add_argument(
            "--rate-limit",
            action="append",
            default=[],
            metavar="CLASS=N",
            help="Per-minute limit for this key, e.g. heartbeat=1000 (0: unlimited). Repeatable.",
        )

    def handle(self, *args, name, scopes, expires_in, rate_limit, **options):
        limits = {}
        for item in rate_limit:
            kind, sep, value = item.partition("=")
            if not sep or not value.strip().isdigit():
                raise CommandError(f"--rate-limit {item!r}: use CLASS=N, e.g. heartbeat=1000")
            limits[kind.strip()] = int(value)
        try:
            issued = api_key_create(
                name=name,
                scopes=scopes,
                expires_in_days=expires_in,
                rate_limits=limits,
                actor="cli:create_api_key",
            )
        except MedicError as exc:
            detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.fields.items())
            raise CommandError(detail or exc.message) from exc
        key = issued.key
        expiry = f", expires {key.expires_at:%Y-%m-%d %H:%M} UTC" if key.expires_at else ""
        self.stderr.write(
            f"Created API key #{key.pk} '{key.name}' with scopes {','.join(key.scopes)}{expiry}. "
            "Store the key now: it is not shown again."
        )
        self.stdout.write(issued.secret)
