#!/usr/bin/env bash
# Delivery burst benchmark: 200 services fail in the same sweep; two real Celery workers deliver
# 400 pages to local stand-ins that rate-limit like Slack (one message per second per channel,
# 429 + Retry-After) and PagerDuty (events per window per routing key, 429). Measures the time
# from the alerts opening to the last page delivered, and checks every page went out once.
#
#   bash bench/deliveries/run.sh [real|ci]     (default: real)
#
# `real`: 10 team channels of 20 services, PagerDuty allowing 120 events per minute, Medic's
# default pace. `ci`: the profile the test suite runs (20 channels, 100 PagerDuty events per
# 10 s, a faster PagerDuty pace). The scenario is tests/e2e/test_delivery_burst.py; this script
# runs it on a throwaway PostgreSQL and Redis (scripts/test.sh's helpers) and prints the result.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
PROFILE="${1:-real}"

source scripts/throwaway.sh  # pg_bindir, throwaway_pg, throwaway_redis, ...
if [ -z "$(pg_bindir)" ] || ! command -v redis-server >/dev/null; then
  echo "missing PostgreSQL or Redis server binaries (scripts/test.sh installs them as root)" >&2
  exit 2
fi
source scripts/venv.sh test
PY="$ROOT/.venv/bin/python"

WORK=$(mktemp -d)
chmod 755 "$WORK"
cleanup() {
  throwaway_stop "$WORK"
  rm -rf "$WORK"
}
trap cleanup EXIT
throwaway_pg "$WORK" -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
  -c max_connections=100
throwaway_redis "$WORK"
export SECRET_KEY="bench-$("$PY" -c 'import secrets; print(secrets.token_urlsafe(40))')"
export ALLOWED_HOSTS="127.0.0.1,localhost,testserver"
export MEDIC_TEST_WORKDIR="$WORK" STATIC_ROOT="$WORK/static"
export MEDIC_BURST_PROFILE="$PROFILE" MEDIC_BURST_RESULT="$WORK/result.json"
echo "==> profile $PROFILE; PostgreSQL on 127.0.0.1:$PGPORT, Redis on 127.0.0.1:$REDISPORT"
"$PY" -m pytest -p no:cacheprovider -q tests/e2e/test_delivery_burst.py
echo "==> result"
cat "$WORK/result.json"
echo
