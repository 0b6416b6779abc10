from django.core.management.base import BaseCommand, CommandError

from medic.errors import MedicError
from remediation.agents import agent_create


class Command(BaseCommand):
    help = (
        "Create an agent and its API key (scope 'agent', bound to it). The key is printed once, "
        "alone on the last line."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="The agent's name (e.g. its host name).")
        parser.add_argument("--labels", default="", help="Comma-separated, e.g. env:prod,role:db")

    def handle(self, *args, name, labels, **options):
        try:
            issued = agent_create(
                name=name,
                labels=[x for x in labels.split(",") if x.strip()],
                actor="cli:create_agent_key",
            )
        except MedicError as exc:
            detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.fields.items())
            raise CommandError(detail or exc.message) from exc
        agent = issued.agent
        self.stderr.write(
            f"Created agent '{agent.name}' (labels: {', '.join(agent.labels) or 'none'}) with API "
            f"key #{agent.api_key_id}. Store the key in the agent's key_file now: it is not "
            "shown again."
        )
        self.stdout.write(issued.secret)
