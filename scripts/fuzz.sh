#!/usr/bin/env bash
# `make fuzz`: schemathesis over every v2 operation of a live Medic (gunicorn on a throwaway
# PostgreSQL and Redis), authenticated with an admin key whose rate limits are high enough that
# fuzzing is not a wall of 429s, with all checks and a fixed seed. Excluded, and tested by hand in
# tests/ instead: api_keys_revoke and api_keys_rotate (they would destroy the fuzzer's own key)
# and scripts_run (it runs commands on the host). FUZZ_EXAMPLES sets the examples per operation
# (10 here; the test command runs it with 5 in the background of pytest). scripts/schemathesis.toml
# holds the rest: the operations whose cross-field rules answer a documented 422, no replay of
# earlier failures.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source scripts/venv.sh test
PY="$ROOT/.venv/bin/python"
source scripts/throwaway.sh

WORK=$(mktemp -d /tmp/medic-fuzz.XXXXXX)
chmod 755 "$WORK"
WEB_PID=""
cleanup() {
  [ -n "$WEB_PID" ] && kill "$WEB_PID" 2>/dev/null && wait "$WEB_PID" 2>/dev/null
  throwaway_stop "$WORK"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap "exit 143" TERM INT  # so that the EXIT trap stops the servers
throwaway_pg "$WORK" -c fsync=off -c synchronous_commit=off
throwaway_redis "$WORK"
export SECRET_KEY="fuzz-$("$PY" -c 'import secrets; print(secrets.token_urlsafe(40))')"
export ALLOWED_HOSTS="127.0.0.1,localhost"
# The fuzzer also probes without a key; that budget is per address and would turn every later
# anonymous probe into 429 (documented, but not what the check is about).
export MEDIC_RATE_LIMIT_UNAUTHENTICATED=0
"$PY" manage.py migrate --no-input -v 0
KEY=$("$PY" manage.py create_api_key --name fuzzer --scopes admin \
  --rate-limit heartbeat=1000000 --rate-limit management=1000000 | grep -o 'mdk_[A-Za-z0-9_-]*')
"$PY" manage.py spectacular --format openapi-json --validate --fail-on-warn --file "$WORK/schema.json"

PORT=$(free_port)
"$ROOT/.venv/bin/gunicorn" medic.front:application --config deploy/gunicorn.conf.py \
  --bind "127.0.0.1:$PORT" >"$WORK/web.log" 2>&1 &
WEB_PID=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PORT/health/live" >/dev/null && break
  sleep 0.2
done

echo "==> schemathesis on 127.0.0.1:$PORT"
status=0
"$ROOT/.venv/bin/st" --config-file scripts/schemathesis.toml run "$WORK/schema.json" --url "http://127.0.0.1:$PORT" \
  -H "Authorization: Bearer $KEY" --checks all -n "${FUZZ_EXAMPLES:-10}" -w 2 \
  --phases examples,coverage,fuzzing --seed 1234 --suppress-health-check all \
  --continue-on-failure --no-color \
  --exclude-operation-id api_keys_revoke --exclude-operation-id api_keys_rotate \
  --exclude-operation-id scripts_run || status=$?
if grep -q "Internal Server Error" "$WORK/web.log"; then
  echo "server errors in the web log:" >&2
  grep -A30 "Internal Server Error" "$WORK/web.log" | head -120 >&2
  status=1
fi
exit $status
