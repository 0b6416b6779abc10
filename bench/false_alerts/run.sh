#!/usr/bin/env bash
# False-alert benchmark: replays a simulated month of heartbeats from many services through the
# real heartbeat path and the real sweep on a controllable clock (see README.md next to this file).
#
#   bash bench/false_alerts/run.sh [--services 1000] [--days 30] [--seed 1] [--start 2026-03-01]
#                                   [--workers 2] [--verbose]
#
# Starts a throwaway PostgreSQL on a free loopback port (as scripts/test.sh does; no Redis: no
# notification target is configured, so no delivery is ever created, and anything enqueued goes
# to an in-memory Celery broker), migrates, runs replay.py and removes everything on exit.
# Exit status: 0 when the target is met and every check passes, 1 when not, 2 (or another
# non-zero status) when the environment cannot be set up.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

source scripts/throwaway.sh  # pg_bindir, throwaway_pg, ...
if [ -z "$(pg_bindir)" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "==> apt-get install postgresql"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  fi
  if [ -z "$(pg_bindir)" ]; then
    echo "missing PostgreSQL server binaries (install postgresql, or run as root)" >&2
    exit 2
  fi
fi

source scripts/venv.sh ""  # (its first argument names pip extras: none)
PY="$ROOT/.venv/bin/python"

# --- throwaway PostgreSQL -----------------------------------------------------------------------
WORK=$(mktemp -d)
chmod 755 "$WORK"
cleanup() {
  throwaway_stop "$WORK"
  rm -rf "$WORK"
}
trap cleanup EXIT
# fsync off: throwaway data; this benchmark measures decisions, not durability.
throwaway_pg "$WORK" -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
  -c max_connections=50

export SECRET_KEY="bench-$("$PY" -c 'import secrets; print(secrets.token_urlsafe(40))')"
export MEDIC_ENCRYPTION_KEYS="bench:$("$PY" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
export DJANGO_SETTINGS_MODULE=medic.settings
# No notification target at all: alerts open, no delivery row is written.
export SLACK_BOT_TOKEN="" SLACK_DEFAULT_CHANNEL="" PAGERDUTY_ROUTING_KEY=""
export REDIS_URL="" CELERY_BROKER_URL="memory://localhost/" CELERY_TASK_ALWAYS_EAGER=0
export MEDIC_LOG_LEVEL=WARNING
unset MEDIC_EMBEDDED DEBUG
echo "==> PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT (throwaway)"

"$PY" manage.py migrate --no-input -v 0
"$PY" bench/false_alerts/replay.py "$@"
