#!/usr/bin/env bash
# Agent long-poll benchmark: one agent-gateway process (uvicorn) holding N concurrent long polls
# from N agents (one API key each), then jobs queued to random agents.
#
#   bash bench/agents/run.sh [AGENTS] [JOBS]        (defaults 1000 and 200)
#
# Starts a throwaway PostgreSQL and Redis on free loopback ports (like scripts/test.sh), prints
# the gateway's resident memory before and while the polls wait, its thread count, and the
# queue-to-delivery latency (p50/p99/max). Everything is removed afterwards.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
AGENTS=${1:-1000}
JOBS=${2:-200}
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || { echo "run 'make test' once first (it creates .venv)" >&2; exit 1; }

source scripts/throwaway.sh
WORK=$(mktemp -d /tmp/medic-bench-agents.XXXXXX)
chmod 755 "$WORK"
GWPORT=$(free_port)
GW_PID=""

cleanup() {
  set +e
  [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null
  throwaway_stop "$WORK"
  rm -rf "$WORK"
}
trap cleanup EXIT

# One socket per agent on each side.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

throwaway_pg "$WORK" -c fsync=off -c synchronous_commit=off -c max_connections=200
throwaway_redis "$WORK"

export SECRET_KEY="bench-$("$PY" -c 'import secrets; print(secrets.token_urlsafe(40))')"
export MEDIC_ENCRYPTION_KEYS="bench:$("$PY" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
export ALLOWED_HOSTS="127.0.0.1,localhost"
export STATIC_ROOT="$WORK/static"
export MEDIC_LOG_LEVEL=WARNING
export PYTHONPATH="$ROOT"

stamp() { echo "==> $(date +%H:%M:%S) $*"; }
stamp "migrate, create $AGENTS agents (one API key each)"
"$PY" manage.py migrate -v 0
"$PY" bench/agents/seed.py "$AGENTS" "$WORK/keys"

stamp "agent gateway on 127.0.0.1:$GWPORT (PostgreSQL :$PGPORT, Redis :$REDISPORT)"
"$ROOT/.venv/bin/uvicorn" remediation.gateway:application --host 127.0.0.1 --port "$GWPORT" \
  --no-access-log --timeout-graceful-shutdown 2 --timeout-keep-alive 75 --backlog 4096 >"$WORK/gateway.log" 2>&1 &
GW_PID=$!
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$GWPORT/health/live" >/dev/null 2>&1 && break
  sleep 0.1
done

stamp "$AGENTS agents register and long-poll, then $JOBS jobs are queued"
"$PY" bench/agents/loadgen.py --port "$GWPORT" --pid "$GW_PID" --keys "$WORK/keys" --jobs "$JOBS" \
  || { echo "benchmark failed; gateway log:" >&2; tail -50 "$WORK/gateway.log" >&2; exit 1; }
stamp "done"
