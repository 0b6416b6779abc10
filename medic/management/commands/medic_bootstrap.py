import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from medic.apikeys import api_key_create
from medic.models import ApiKey

# The first key is what a new operator sets Medic up with (services, teams, targets, rules) while
# following the docs: a burst the default 20 management requests a minute cannot take. Its own
# limit is higher, still bounded; keys for tools and hosts keep the defaults.
BOOTSTRAP_MANAGEMENT_LIMIT = 300


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
            self.stdout.write(
                "  Sign in with it to the portal at /ui/ (and the Django admin at /admin/)."
            )
        if not ApiKey.objects.exists():
            issued = api_key_create(
                name="bootstrap-admin",
                scopes=["admin"],
                rate_limits={"management": BOOTSTRAP_MANAGEMENT_LIMIT},
                actor="bootstrap",
            )
            self.stdout.write(
                self.style.SUCCESS(f"Admin API key created (shown once): {issued.secret}")
            )
            self.stdout.write(
                "  Send it as `Authorization: Bearer <key>` to the API; it may make "
                f"{BOOTSTRAP_MANAGEMENT_LIMIT} management requests a minute (other keys: "
                "MEDIC_RATE_LIMIT_MANAGEMENT, 20)."
            )
