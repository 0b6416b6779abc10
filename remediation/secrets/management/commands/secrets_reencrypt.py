from django.core.management.base import BaseCommand

from remediation.secrets.services import secrets_reencrypt


class Command(BaseCommand):
    help = (
        "Seal every named secret with the first key of MEDIC_ENCRYPTION_KEYS (run after "
        "prepending a new key; afterwards the old key can be removed). Prints the names."
    )

    def handle(self, *args, **options):
        names = secrets_reencrypt(actor="cli:secrets_reencrypt")
        for name in names:
            self.stdout.write(name)
        self.stderr.write(f"{len(names)} secret(s) re-sealed.")
