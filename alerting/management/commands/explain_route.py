from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from alerting.config_api import route_explanation
from alerting.models import NotificationEvent
from heartbeats.services import service_get
from medic.errors import MedicError


class Command(BaseCommand):
    help = (
        "Print which targets an alert for SERVICE would reach, and why, without sending anything."
    )

    def add_arguments(self, parser):
        parser.add_argument("service", help="id or heartbeat name")
        parser.add_argument("--at", help="ISO-8601 time with offset (default: now)")
        parser.add_argument("--event", default="trigger", choices=NotificationEvent.values)
        parser.add_argument("--priority", help="override the service's priority (p1..p5)")

    def handle(self, *args, service, at, event, priority, **options):
        when = timezone.now()
        if at:
            when = parse_datetime(at)
            if when is None or when.tzinfo is None:
                raise CommandError(
                    "--at needs an ISO-8601 time with an offset, e.g. 2026-11-27T22:00Z"
                )
        try:
            explanation = route_explanation(
                service_get(service), at=when, event=event, priority=priority
            )
        except MedicError as exc:
            raise CommandError(exc.message) from exc
        out = self.stdout
        out.write(
            f"{explanation['service']} — {event} at {when.isoformat()}, priority "
            f"{explanation['priority']}"
        )
        out.write("")
        out.write("Why:")
        for line in explanation["reasons"]:
            out.write(f"  {line}")
        out.write("")
        out.write("Would notify:")
        any_target = False
        for group in explanation["groups"]:
            name = group["rule"] or "default route"
            for i, target in enumerate(group["targets"]):
                any_target = True
                order = f"{i + 1}. " if group["mode"] == "until_success" else "- "
                via = f" (target {target['target']})" if target["target"] else ""
                out.write(
                    f"  [{name}, {group['mode']}] {order}{target['channel']} "
                    f"{target['destination']}{via}"
                )
        if not any_target:
            out.write("  nobody — see the reasons above")
