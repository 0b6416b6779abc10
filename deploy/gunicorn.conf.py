"""gunicorn settings for production. Override with GUNICORN_* environment variables.

Sized for heartbeat ingest on a small host; the measurements behind each value are in
docs/performance.md (`make bench-ingest` reproduces them).
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# uvicorn workers serving Medic's web front (medic/front.py, medic/webworker.py): each worker's
# event loop reads whole requests (a slow client costs a socket, not a thread), answers
# heartbeats a batch at a time on one thread of its own (their beats stored with one statement,
# their rate limits charged with one round trip) and runs every other request on a pool of
# threads. Under gthread each heartbeat cost two thread hand-offs and pure-Python HTTP parsing,
# and the web process topped out near 1,300/s on 2 cores; this answers 2,000+ (docs/performance.md).
worker_class = "medic.webworker.Worker"
# One worker per core. On 2 cores shared with PostgreSQL, 2 workers did more heartbeats per
# CPU-second than 3 or 4: fewer processes fighting for the cores, fewer database connections.
# Give a bigger host one worker per core (GUNICORN_WORKERS).
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# Threads per worker for the requests that are not heartbeats (portal, API, exports):
# MEDIC_FRONT_THREADS, which GUNICORN_THREADS still sets. Each holds a database connection.
os.environ.setdefault("MEDIC_FRONT_THREADS", os.environ.get("GUNICORN_THREADS", "8"))
keepalive = 75
timeout = 60
graceful_timeout = 30
# Workers are still recycled (a guard against slow leaks), but rarely: a fresh worker costs about
# a second of CPU (imports, first key verification, new connections), which at 20,000 requests
# came back every half-minute at full ingest rate.
max_requests = 100_000
max_requests_jitter = 10_000
# No access log unless asked for: a log line per heartbeat is CPU spent on every one of them.
accesslog = os.environ.get("GUNICORN_ACCESSLOG", None)
# gunicorn's control socket (gunicornc) only when asked for: its default path is under $HOME,
# which the image's user does not have, and two instances on one host would share it.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True
