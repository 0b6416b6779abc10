import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from medic.apikeys import api_key_create
from medic.models import ApiKey


class Command(BaseCommand):
    help = (
        "First-run set-up: create an admin user and an admin API key when none exist, and print "
        "their secrets once. Does nothing on later runs."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        User = get_user_model()
        if not User.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(16)
            User.objects.create_superuser(username=username, email="", password=password)
            self.stdout.write(
                self.style.SUCCESS(f"Admin user created: {username} / {password}  (shown once)")
            )
        if not ApiKey.objects.exists():
            issued = api_key_create(name="bootstrap-admin", scopes=["admin"], actor="bootstrap")
            self.stdout.write(
                self.style.SUCCESS(f"Admin API key created (shown once): {issued.secret}")
            )
