"""gunicorn settings for production. Override with GUNICORN_* environment variables.

Sized for heartbeat ingest on a small host; the measurements behind each value are in
docs/performance.md (`make bench-ingest` reproduces them).
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Threads, not one process per connection: kept-alive connections (reverse proxies, agents)
# cost a socket rather than a worker, and gunicorn can face clients directly (a slow client ties
# up a thread, not a process; the sync worker needs a buffering proxy in front).
worker_class = "gthread"
# One worker per core, eight threads each. On 2 cores shared with PostgreSQL, 2 workers did more
# heartbeats per CPU-second, with a shorter tail, than 4: fewer processes fighting for the cores,
# fewer database connections. Eight threads rather than four since the heartbeat group commit
# (heartbeats/groupcommit.py): the beats a worker's threads hold at one moment are committed
# together, and with four threads the batches stayed too small to pay (docs/performance.md,
# "Levers"). Give a bigger host one worker per core (GUNICORN_WORKERS).
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
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
