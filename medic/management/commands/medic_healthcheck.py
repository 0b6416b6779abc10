"""Exit 0 when a worker or beat is healthy, 1 otherwise (docker-compose health checks)."""

from django.core.management.base import BaseCommand, CommandError

from medic.healthchecks import check_beat, check_worker


class Command(BaseCommand):
    help = "Health check of the Celery worker on this host, or of beat (the sweep it schedules)."
    requires_system_checks: list = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("process", choices=["worker", "beat"])
        parser.add_argument("--timeout", type=float, default=5.0, help="worker: ping timeout")
        parser.add_argument("--node", help="worker: node name (default celery@<hostname>)")
        parser.add_argument(
            "--max-age", type=float, default=60.0, help="beat: seconds since the last sweep pass"
        )

    def handle(self, *args, process: str, timeout: float, node, max_age: float, **options):
        if process == "worker":
            ok, detail = check_worker(timeout, node)
        else:
            ok, detail = check_beat(max_age)
        if not ok:
            raise CommandError(detail)
        self.stdout.write(detail)
