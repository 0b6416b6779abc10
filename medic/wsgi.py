import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medic.settings")
django_application = get_wsgi_application()

from medic.bodies import BodyFraming  # noqa: E402 (needs the settings configured)
from medic.fastroute import HeartbeatRoute  # noqa: E402

application = BodyFraming(HeartbeatRoute(django_application))
