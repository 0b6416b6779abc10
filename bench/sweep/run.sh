#!/usr/bin/env bash
# `make bench-sweep`: the sweep's cost with 100,000 services, when nothing is due and per due
# service (bench/sweep/sweep.py), on a throwaway PostgreSQL with durable defaults and a Redis.
# First with 10,000 services, then with 100,000: the empty sweep must not grow with the fleet.
#
# Knobs: BENCH_SWEEP_SIZES="10000 100000"  BENCH_SWEEP_DUE=0,10,100,1000  BENCH_SWEEP_REPEAT=7
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
SIZES=${BENCH_SWEEP_SIZES:-"10000 100000"}
DUE=${BENCH_SWEEP_DUE:-0,10,100,1000}
REPEAT=${BENCH_SWEEP_REPEAT:-7}

source scripts/throwaway.sh
source scripts/venv.sh
PY="$ROOT/.venv/bin/python"
WORK=$(mktemp -d /tmp/medic-sweep.XXXXXX)
chmod 755 "$WORK"
cleanup() { set +e; throwaway_stop "$WORK"; rm -rf "$WORK"; }
trap cleanup EXIT
throwaway_pg "$WORK"
throwaway_redis "$WORK"
export SECRET_KEY="bench-sweep-$("$PY" -c 'import secrets; print(secrets.token_urlsafe(40))')"
export MEDIC_ENCRYPTION_KEYS="bench:$("$PY" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
"$PY" manage.py migrate --no-input -v 0
for size in $SIZES; do
  echo "==> $size services"
  "$PY" bench/sweep/sweep.py --services "$size" --due "$DUE" --repeat "$REPEAT"
done
