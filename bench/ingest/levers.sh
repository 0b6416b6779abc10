#!/usr/bin/env bash
# The database side of the ingest levers (docs/performance.md, "Levers"), measured with pgbench
# on a throwaway PostgreSQL with durable defaults and the benchmark's 1,000 services, the
# variants interleaved so that each round sees the same load:
#   reference  one INSERT + UPDATE transaction per beat (what `make bench-ingest` compares with)
#   statement  Medic's one-statement beat in autocommit (heartbeats/services.py)
#   group8     8 beats' writes committed in one transaction (group commit)
#   hot        the UPDATE without the indexed deadline (a HOT update)
# Prints heartbeats/s per variant and round (tps, x 8 for group8).
# Knobs: BENCH_LEVER_ROUNDS=2  BENCH_LEVER_SECONDS=10  BENCH_LEVER_CLIENTS=16
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
ROUNDS=${BENCH_LEVER_ROUNDS:-2}
SECONDS_EACH=${BENCH_LEVER_SECONDS:-10}
CLIENTS=${BENCH_LEVER_CLIENTS:-16}

source scripts/throwaway.sh
source scripts/venv.sh
PY="$ROOT/.venv/bin/python"
source bench/ingest/stack.sh
WORK=$(mktemp -d /tmp/medic-levers.XXXXXX)
chmod 755 "$WORK"
cleanup() { set +e; throwaway_stop "$WORK"; rm -rf "$WORK"; }
trap cleanup EXIT
bench_stack "$WORK"
"$PY" manage.py migrate --no-input -v 0
"$PY" bench/ingest/seed.py 1000 bench- >/dev/null
# Every service up, as after the benchmark's warm-up.
psql_q "UPDATE heartbeats_service SET status = 'up', last_heartbeat_at = now()" >/dev/null
first=$(psql_q "SELECT min(id) FROM heartbeats_service")
last=$(psql_q "SELECT max(id) FROM heartbeats_service")

declare -A per=([reference]=1 [statement]=1 [group8]=8 [hot]=1)
printf '%-6s %-10s %12s\n' round variant "beats/s"
for round in $(seq "$ROUNDS"); do
  for variant in reference statement group8 hot; do
    script=bench/ingest/levers/$variant.sql
    [ "$variant" = reference ] && script=bench/ingest/reference.sql
    tps=$("$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -n -c "$CLIENTS" -j 1 \
      -T "$SECONDS_EACH" -D first="$first" -D last="$last" -f "$script" medic 2>&1 |
      sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | tail -1)
    printf '%-6s %-10s %12.0f\n' "$round" "$variant" "$("$PY" -c "print($tps * ${per[$variant]})")"
  done
done
