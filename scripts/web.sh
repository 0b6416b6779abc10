#!/usr/bin/env bash
# The embedded mode's web server (`make run` starts it beside the worker): gunicorn with two
# processes. Everything they share lives in MEDIC_VAR_DIR (the SQLite database, the rate-limit
# counters); nothing lives in the home directory, so two instances on one host stay apart (no
# control socket: nothing uses it, and its default path is one per user, not per instance).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
exec "$ROOT/.venv/bin/gunicorn" medic.wsgi:application --chdir "$ROOT" \
  --bind "127.0.0.1:${PORT:-8000}" --worker-class gthread --workers 2 --threads 4 \
  --no-control-socket --access-logfile - "$@"
