"""The WSGI entry point: Django, with the heartbeat ingest handler mounted in front of it for
``POST /v2/heartbeat/...`` (heartbeats/ingest.py), behind the body framing layer
(medic/bodies.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medic.settings")
django_application = get_wsgi_application()

from heartbeats.ingest import handler, mount  # noqa: E402 (needs the settings configured)
from medic.bodies import BodyFraming  # noqa: E402

ingest = handler(django_application)
application = BodyFraming(mount(django_application, ingest))
