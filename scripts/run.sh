#!/usr/bin/env bash
# `make run`: Medic on the embedded default — SQLite in var/, a filesystem Celery broker, web +
# worker + beat in one terminal. Ctrl-C stops everything this script started.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source scripts/venv.sh
PORT=${PORT:-8000}
export MEDIC_EMBEDDED=1
# MEDIC_VAR_DIR: another data directory (the docs' example runner starts a throwaway instance).
export MEDIC_VAR_DIR=${MEDIC_VAR_DIR:-$ROOT/var}
mkdir -p "$MEDIC_VAR_DIR/broker/queue" "$MEDIC_VAR_DIR/broker/processed"
PY="$ROOT/.venv/bin/python"

"$PY" manage.py migrate --no-input -v 0
"$PY" manage.py medic_bootstrap

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "==> stopping Medic"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  # Nothing in the embedded mode needs a long goodbye: tasks are idempotent and re-run, and
  # heartbeats are answered in milliseconds. Whatever still runs after 3 s is stopped outright.
  for _ in $(seq 30); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

"$ROOT/.venv/bin/celery" -A medic worker --beat --pool threads --concurrency 4 \
  --loglevel INFO --schedule "$MEDIC_VAR_DIR/celerybeat-schedule" &
pids+=($!)
PORT=$PORT bash scripts/web.sh &
pids+=($!)
echo "==> Medic is starting on http://127.0.0.1:$PORT"
echo "==> portal: /ui/ (sign in as admin with the password printed on the first run),"
echo "    API docs: /v2/docs/, Django admin: /admin/; API calls use the printed key"
echo "==> Ctrl-C stops it"
wait -n "${pids[@]}"
