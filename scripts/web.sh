#!/usr/bin/env bash
# The embedded mode's web server (`make run` starts it beside the worker): two uvicorn processes
# whose event loops read each request whole before one of their threads runs it (medic/front.py,
# medic/webserve.py), so a few slow clients cannot take every thread, as they could under a
# threaded WSGI server with no proxy in front. Everything the processes share lives in
# MEDIC_VAR_DIR (the SQLite database, the rate-limit store); nothing lives in the home directory,
# so two instances on one host stay apart. Production runs gunicorn behind a buffering proxy
# instead (docs/deployment.md).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m medic.webserve --host 127.0.0.1 --port "${PORT:-8000}" \
  --processes 2 "$@"
