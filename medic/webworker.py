"""gunicorn's worker class in production: uvicorn serving Medic's web front (medic/front.py).

    gunicorn medic.front:application --config deploy/gunicorn.conf.py

gunicorn supervises the processes (restarts, ``max_requests`` recycling, graceful reloads, the
worker timeout); in each one uvicorn's event loop (uvloop, with the httptools parser) reads whole
requests, the front answers heartbeats a batch at a time on one thread and runs every other
request on its thread pool (``MEDIC_FRONT_THREADS``). What uvicorn does on its own is turned off
where gunicorn's WSGI server did not do it either:

- no lifespan events (the front has none);
- no ``Server`` header;
- no rewriting of the client address from ``X-Forwarded-For``: Medic reads it itself, trusting
  as many hops as ``MEDIC_TRUSTED_PROXY_HOPS`` says (docs/deployment.md);
- an access log only when gunicorn's is configured (``GUNICORN_ACCESSLOG``).
"""

from __future__ import annotations

from uvicorn_worker import UvicornWorker


class Worker(UvicornWorker):
    CONFIG_KWARGS = {
        "loop": "auto",
        "http": "auto",
        "lifespan": "off",
        "server_header": False,
        "proxy_headers": False,
    }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.config.access_log = bool(self.cfg.accesslog)
