#!/usr/bin/env bash
# Remediation benchmark: SERVICES services (default 1000) go overdue in the same sweep; each
# matches a playbook whose first step is a webhook to a local receiver, and whose second is
# another webhook. Measures the time from the sweep until every execution has started and
# finished its first webhook step, until every execution completed, and the engine's step
# throughput, with WORKERS Celery worker processes (threads pool, CONCURRENCY each).
#
#   bash bench/remediation/run.sh [SERVICES] [WORKERS] [CONCURRENCY]     (1000 2 8)
#
# Starts a throwaway PostgreSQL and Redis on free loopback ports (like scripts/test.sh); the
# receiver answers 200 at once, so the figures are the engine's own cost. Run it on an idle
# machine. Everything is removed afterwards.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
SERVICES=${1:-1000}
WORKERS=${2:-2}
CONCURRENCY=${3:-8}
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || { echo "run 'make test' once first (it creates .venv)" >&2; exit 1; }

source scripts/throwaway.sh
WORK=$(mktemp -d /tmp/medic-bench-remediation.XXXXXX)
chmod 755 "$WORK"
PIDS=()

cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  throwaway_stop "$WORK"
  rm -rf "$WORK"
}
trap cleanup EXIT

throwaway_pg "$WORK" -c fsync=off -c synchronous_commit=off -c max_connections=300
throwaway_redis "$WORK"

export SECRET_KEY="bench-$("$PY" -c 'import secrets; print(secrets.token_urlsafe(40))')"
export MEDIC_ENCRYPTION_KEYS="bench:$("$PY" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
export ALLOWED_HOSTS="127.0.0.1,localhost"
export STATIC_ROOT="$WORK/static"
export MEDIC_LOG_LEVEL=WARNING
export PYTHONPATH="$ROOT"
# No limit or breaker may hide the engine's throughput.
export MEDIC_REMEDIATION_MAX_RUNNING=$((SERVICES * 2))
export MEDIC_PLAYBOOK_BREAKER_MAX_RUNS=$((SERVICES * 2))

stamp() { echo "==> $(date +%H:%M:%S) $*"; }
stamp "migrate"
"$PY" manage.py migrate -v 0

stamp "$WORKERS worker(s) x $CONCURRENCY threads (PostgreSQL :$PGPORT, Redis :$REDISPORT)"
for i in $(seq "$WORKERS"); do
  "$ROOT/.venv/bin/celery" -A medic worker --pool threads --concurrency "$CONCURRENCY" \
    --loglevel WARNING --without-heartbeat --without-gossip --without-mingle -n "bench$i@%h" \
    >"$WORK/worker-$i.log" 2>&1 &
  PIDS+=($!)
done

stamp "$SERVICES services overdue in one sweep"
"$PY" bench/remediation/drive.py --services "$SERVICES" \
  || { echo "benchmark failed; worker log:" >&2; tail -50 "$WORK/worker-1.log" >&2; exit 1; }
