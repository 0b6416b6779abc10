"""Print the PRD's success metrics for a period (docs/outcomes.md)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from remediation.reports import selectors, text
from remediation.reports.api import InvalidPeriod, period_from


class Command(BaseCommand):
    help = "Print MTTR, remediation coverage, alert accuracy and refusals for a period."

    def add_arguments(self, parser):
        parser.add_argument("--since", help="ISO 8601, inclusive (default: 30 days before until)")
        parser.add_argument("--until", help="ISO 8601, exclusive (default: now)")
        parser.add_argument("--team", help="only this team's services")
        parser.add_argument("--format", choices=("text", "json"), default="text")

    def handle(self, *args, **options):
        params = {k: options[k] for k in ("since", "until", "team") if options.get(k)}
        try:
            period = period_from(params)
        except InvalidPeriod as exc:
            raise CommandError(f"invalid period: {exc.fields}") from exc
        report = selectors.success_metrics(period)
        if options["format"] == "json":
            self.stdout.write(json.dumps(report, cls=DjangoJSONEncoder, indent=2))
        else:
            self.stdout.write(text.render(report), ending="")
