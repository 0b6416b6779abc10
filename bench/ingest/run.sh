#!/usr/bin/env bash
# `make bench-ingest`: heartbeat ingest throughput of the production-style server.
#
# Starts a throwaway PostgreSQL and Redis on free loopback ports (the way scripts/test.sh does),
# migrates, seeds 1,000 services and one write-scoped API key, checks that the lean heartbeat
# path still answers like the documented DRF view (bench/ingest/contract.py), starts gunicorn
# with deploy/gunicorn.conf.py, then drives authenticated POST /v2/heartbeat/{service} with wrk
# at 16 and 64 connections for 20 s each. Prints requests/s, p50, p99 and errors per run, the
# CPU each heartbeat cost (web workers, PostgreSQL, wrk) and how much of the machine other
# processes took meanwhile, and checks that the heartbeat table grew by exactly the number of
# 2xx answers. Then, on the same cluster, it measures the raw database reference (pgbench, 16
# clients, one INSERT + UPDATE transaction per beat: bench/ingest/reference.sql) and prints
# Medic's rate at 16 connections, the reference and their ratio, the figure that compares
# across machines. Everything it started is stopped and removed on exit. Figures and how to read
# them: docs/performance.md.
#
# Knobs (environment):
#   BENCH_CONNECTIONS="16 64"  BENCH_DURATION=20 (s per run)  BENCH_SERVICES=1000
#   BENCH_WARMUP=5 (s, not counted)  BENCH_WRK_THREADS=1
#   BENCH_KEY_RATE_LIMIT=1000000   heartbeats per minute for the key: enforced (one Redis round
#                               trip per heartbeat, as for any limited key) but never reached;
#                               0 = unlimited key, no Redis on the path
#   BENCH_QUIET=0.25:120        before each run wait up to 120 s for the machine to be less than
#                               25% busy (shared machines); empty = do not wait
#   BENCH_PROFILE=1             py-spy flame graph of the web workers during the first run
#   BENCH_STRICT=1              exit 1 when the 16-connection target is missed
#   BENCH_REFERENCE=1           0: skip the pgbench reference (and the ratio)
#   BENCH_TARGET=2000           heartbeats/s the 16-connection run is judged against
#   BENCH_SERVER=production     the server to drive: production (deploy/gunicorn.conf.py: uvicorn
#                               workers serving medic.front), gthread (the production server
#                               before it: gthread workers serving medic.wsgi), granian (WSGI;
#                               pip install granian==2.8.7 first)
#   GUNICORN_WORKERS, GUNICORN_THREADS, ...: as in deploy/gunicorn.conf.py
# Raw wrk output, the summary and the gunicorn log are kept in bench/results/ (git-ignored).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

CONNECTIONS=${BENCH_CONNECTIONS:-"16 64"}
DURATION=${BENCH_DURATION:-20}
SERVICES=${BENCH_SERVICES:-1000}
WARMUP=${BENCH_WARMUP:-5}
WRK_THREADS=${BENCH_WRK_THREADS:-1}
KEY_RATE_LIMIT=${BENCH_KEY_RATE_LIMIT:-1000000}
QUIET=${BENCH_QUIET-0.25:120}
DRAIN=3 # wrk runs this much longer than the window, so every request sent gets its answer
PREFIX="bench-"
RESULTS="$ROOT/bench/results"
mkdir -p "$RESULTS"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)

source scripts/throwaway.sh  # pg_bindir, free_port, throwaway_pg, ...

REFERENCE=${BENCH_REFERENCE:-1}
TARGET=${BENCH_TARGET:-2000}

# --- system packages (as scripts/test.sh, plus wrk) ----------------------------------------------
need=()
command -v redis-server >/dev/null || need+=(redis-server)
[ -n "$(pg_bindir)" ] || need+=(postgresql)
command -v wrk >/dev/null || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "==> apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "missing system packages: ${need[*]} (install them, or run as root)" >&2
    exit 1
  fi
fi

source scripts/venv.sh
PY="$ROOT/.venv/bin/python"

# --- throwaway PostgreSQL and Redis ---------------------------------------------------------------
# As scripts/test.sh, with one deliberate difference: PostgreSQL keeps its durable defaults
# (fsync, synchronous_commit and full_page_writes on), so every heartbeat is a durable commit.
WORK=$(mktemp -d /tmp/medic-bench.XXXXXX)
chmod 755 "$WORK"
GUNICORN_PID=""

cleanup() {
  set +e
  if [ -n "$GUNICORN_PID" ]; then
    kill -TERM "$GUNICORN_PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$GUNICORN_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$GUNICORN_PID" 2>/dev/null
  fi
  if [ -n "${BOUNCER_PID:-}" ]; then kill -TERM "$BOUNCER_PID" 2>/dev/null; fi
  throwaway_stop "$WORK"
  rm -rf "$WORK"
}
trap cleanup EXIT

source bench/ingest/stack.sh
bench_stack "$WORK"
pgversion=$(basename "$(dirname "$PGBIN")")
echo "==> PostgreSQL $pgversion on 127.0.0.1:$PGPORT (fsync on), Redis on 127.0.0.1:$REDISPORT"

# --- schema, services, key, contract --------------------------------------------------------------
"$PY" manage.py migrate --no-input -v 0
"$PY" manage.py collectstatic --no-input -v 0
echo "==> seeding $SERVICES services"
seeded=$("$PY" bench/ingest/seed.py "$SERVICES" "$PREFIX" 2>"$WORK/seed.err" | tail -1) || { cat "$WORK/seed.err" >&2; exit 1; }
[ "$seeded" = "$SERVICES" ] || { echo "seeding made $seeded services, not $SERVICES" >&2; exit 1; }
BENCH_KEY=$("$PY" manage.py create_api_key --name bench --scopes write \
  --rate-limit "heartbeat=$KEY_RATE_LIMIT" 2>/dev/null | tail -1)
export BENCH_KEY BENCH_SERVICES="$SERVICES" BENCH_PREFIX="$PREFIX"
echo "==> contract: lean path = DRF view, one-statement beat = general path, ingest handler = Django"
"$PY" bench/ingest/contract.py >"$WORK/contract.txt" || { cat "$WORK/contract.txt" >&2; exit 1; }
tail -1 "$WORK/contract.txt" | sed 's/^/    /'

# --- PgBouncer (optional) -----------------------------------------------------------------------
if [ "${BENCH_PGBOUNCER:-0}" = 1 ]; then
  command -v pgbouncer >/dev/null || { echo "BENCH_PGBOUNCER=1: apt-get install pgbouncer" >&2; exit 1; }
  BOUNCER_PORT=$(free_port)
  BOUNCER="$WORK/pgbouncer"
  mkdir -p "$BOUNCER"
  if [ "$(id -u)" = 0 ]; then chown postgres "$BOUNCER"; fi  # it refuses to run as root
  cat >"$BOUNCER/pgbouncer.ini" <<INI
[databases]
medic = host=127.0.0.1 port=$PGPORT dbname=medic user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = ${BENCH_PGBOUNCER_POOL:-8}
max_client_conn = 1000
ignore_startup_parameters = extra_float_digits
logfile = $BOUNCER/pgbouncer.log
pidfile = $BOUNCER/pgbouncer.pid
INI
  chmod 644 "$BOUNCER/pgbouncer.ini"
  as_pg pgbouncer -d "$BOUNCER/pgbouncer.ini"
  for _ in $(seq 50); do [ -s "$BOUNCER/pgbouncer.pid" ] && break; sleep 0.1; done
  BOUNCER_PID=$(cat "$BOUNCER/pgbouncer.pid")
  export DATABASE_URL="postgresql://postgres@127.0.0.1:$BOUNCER_PORT/medic"
  export DATABASE_TRANSACTION_POOLING=1
  echo "==> PgBouncer $(pgbouncer --version | head -1 | cut -d' ' -f2), transaction mode, pool ${BENCH_PGBOUNCER_POOL:-8}, on 127.0.0.1:$BOUNCER_PORT"
fi

# --- gunicorn -----------------------------------------------------------------------------------
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
# BENCH_SERVER: the production server (default), or an earlier/alternative one to compare.
case "${BENCH_SERVER:-production}" in
  production) # as deploy/gunicorn.conf.py runs it: uvicorn workers serving medic.front
    GUNICORN_BIND="127.0.0.1:$PORT" "$ROOT/.venv/bin/gunicorn" medic.front:application \
      --config deploy/gunicorn.conf.py >"$WORK/gunicorn.log" 2>&1 &
    workers="gunicorn + uvicorn workers (medic.front), ${GUNICORN_WORKERS:-2} workers, heartbeats batched per worker" ;;
  gthread) # the production server before medic.front: gthread workers serving medic.wsgi
    GUNICORN_BIND="127.0.0.1:$PORT" "$ROOT/.venv/bin/gunicorn" medic.wsgi:application \
      --config deploy/gunicorn.conf.py --worker-class gthread --threads "${GUNICORN_THREADS:-8}" \
      >"$WORK/gunicorn.log" 2>&1 &
    workers="gunicorn gthread (medic.wsgi), ${GUNICORN_WORKERS:-2} workers x ${GUNICORN_THREADS:-8} threads" ;;
  granian) # needs `pip install granian==2.8.7`
    "$ROOT/.venv/bin/granian" --interface wsgi --host 127.0.0.1 --port "$PORT" --no-ws \
      --workers "${GUNICORN_WORKERS:-2}" --blocking-threads "${GUNICORN_THREADS:-8}" \
      medic.wsgi:application >"$WORK/gunicorn.log" 2>&1 &
    workers="granian wsgi (medic.wsgi), ${GUNICORN_WORKERS:-2} workers x ${GUNICORN_THREADS:-8} blocking threads" ;;
  *) echo "BENCH_SERVER: production, gthread or granian" >&2; exit 2 ;;
esac
GUNICORN_PID=$!
web_wait "$URL" "$GUNICORN_PID" || { cat "$WORK/gunicorn.log" >&2; exit 1; }
echo "==> server ($workers) on $URL"

# A field of the last BENCH/CPU line, e.g. `get p99_ms`.
get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
heartbeats() { psql_q "SELECT count(*) FROM heartbeats_heartbeat"; }
settled_heartbeats() { # the count once nothing is being written any more (stragglers finished)
  local a b
  a=$(heartbeats)
  for _ in $(seq 60); do
    sleep 0.5
    b=$(heartbeats)
    [ "$a" = "$b" ] && break
    a=$b
  done
  echo "$a"
}
run_wrk() { # connections window output [quiet]
  local quiet=()
  if [ -n "${4:-}" ]; then quiet=(--wait-quiet "$4"); fi
  BENCH_SECONDS="$2" "$PY" bench/ingest/cpuwatch.py "${quiet[@]}" \
    --tree "gunicorn=$GUNICORN_PID" --tree "postgres=$PG_PID" --tree "redis=$REDIS_PID" \
    ${BOUNCER_PID:+--tree "pgbouncer=$BOUNCER_PID"} -- \
    wrk -t "$WRK_THREADS" -c "$1" -d "$(($2 + DRAIN))s" --timeout 5s --latency \
    -s bench/ingest/heartbeat.lua "$URL" >"$3"
}

# Warm-up, not counted: each worker verifies the key once (argon2) and opens its database
# connections, and every service has had its first beat (new -> up).
echo "==> warm-up ${WARMUP}s"
run_wrk 64 "$WARMUP" "$WORK/warmup.txt"

profile_pid=""
declare -a rows=() wal_lines=()
fail=0
first=1
for c in $CONNECTIONS; do
  before=$(settled_heartbeats)
  wal_before=$(psql_q "SELECT pg_current_wal_lsn()")
  if [ "$first" = 1 ] && [ "${BENCH_PROFILE:-0}" = 1 ]; then
    spy=$(command -v py-spy || echo "$ROOT/.venv/bin/py-spy")
    if [ -x "$spy" ]; then
      "$spy" record --pid "$GUNICORN_PID" --subprocesses --nonblocking --duration "$DURATION" \
        --rate 250 --output "$RESULTS/profile-$STAMP-c$c.svg" >/dev/null 2>&1 &
      profile_pid=$!
    else
      echo "BENCH_PROFILE=1 needs py-spy (pip install py-spy); no profile" >&2
    fi
  fi
  echo "==> $c connections, ${DURATION}s"
  out="$RESULTS/wrk-$STAMP-c$c.txt"
  run_wrk "$c" "$DURATION" "$out" "$QUIET"
  if [ -n "$profile_pid" ]; then wait "$profile_pid" || true; profile_pid=""; fi
  first=0
  sed -n '/Latency Distribution/,/Requests\/sec/p' "$out" | sed 's/^/    /'
  after=$(settled_heartbeats)
  wal=$(psql_q "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$wal_before')")
  line=$(grep '^CPU ' "$out") || { cat "$out" >&2; exit 1; }
  web=$(get gunicorn) db=$(get postgres) redis=$(get redis) load=$(get load)
  bouncer=$(get pgbouncer) && redis="$redis + ${bouncer:-0}"
  others=$(get others) capacity=$(get capacity)
  line=$(grep '^BENCH ' "$out") || { cat "$out" >&2; exit 1; }
  ok=$(get ok) non2xx=$(get non2xx) sent=$(get sent)
  socket=$(($(get connect) + $(get read) + $(get write) + $(get timeout)))
  unanswered=$((sent - ok - non2xx))
  errors=$((non2xx + socket + (unanswered > 0 ? unanswered : 0)))
  delta=$((after - before))
  if [ "$delta" = "$ok" ]; then check="ok"; else check="MISMATCH"; fail=1; fi
  cpu=$("$PY" -c "
ok = max($ok, 1)
print(f'{1e3 * $web / ok:.2f}+{1e3 * ($db + $redis) / ok:.2f}+{1e3 * $load / ok:.2f}')")
  share=$("$PY" -c "print(f'{100 * $others / $capacity:.0f}%')")
  rows+=("$(printf '%-5s %8s %7s %7s %7s %6s %7s %7s  %-8s %-18s %6s' "$c" "$(get rps)" \
    "$(get p50_ms)" "$(get p99_ms)" "$(get max_ms)" "$errors" "$ok" "$delta" "$check" "$cpu" \
    "$share")")
  if [ "$(get codes)" != "-" ]; then echo "    non-2xx statuses: $(get codes)"; fi
  if [ "$socket" -gt 0 ]; then
    echo "    socket errors: connect $(get connect), read $(get read), write $(get write)," \
      "timeout $(get timeout)"
  fi
  if [ "$c" = 16 ]; then target_line=$line target_errors=$errors; fi
  wal_lines+=("$(printf '%-5s %6.0f' "$c" "$("$PY" -c "print($wal / max($delta, 1))")")")
done

# --- the raw database reference: pgbench on the same cluster, same tables, 16 clients -------------
reference=""
if [ "$REFERENCE" = 1 ]; then
  first_id=$(psql_q "SELECT min(id) FROM heartbeats_service WHERE heartbeat_name LIKE '$PREFIX%'")
  last_id=$(psql_q "SELECT max(id) FROM heartbeats_service WHERE heartbeat_name LIKE '$PREFIX%'")
  echo "==> raw PostgreSQL reference: pgbench, 16 clients, INSERT + UPDATE per transaction, ${DURATION}s"
  if [ -n "$QUIET" ]; then "$PY" bench/ingest/cpuwatch.py --wait-quiet "$QUIET" -- true >/dev/null; fi
  "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -n -c 16 -j "$WRK_THREADS" \
    -T "$DURATION" -D first="$first_id" -D last="$last_id" -f bench/ingest/reference.sql medic \
    >"$RESULTS/pgbench-$STAMP.txt" 2>&1 || { cat "$RESULTS/pgbench-$STAMP.txt" >&2; exit 1; }
  reference=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$RESULTS/pgbench-$STAMP.txt" | tail -1)
fi

summary="$RESULTS/summary-$STAMP.txt"
{
  echo
  echo "Medic heartbeat ingest: POST /v2/heartbeat/{service}, $SERVICES services, ${DURATION}s per run"
  echo "server: $workers; PostgreSQL $pgversion, fsync on; $(nproc) CPUs for all of it, wrk included"
  echo
  printf '%-5s %8s %7s %7s %7s %6s %7s %7s  %-8s %-18s %6s\n' conns "req/s" "p50 ms" "p99 ms" \
    "max ms" errors "2xx" "rows +" "rows=2xx" "CPU ms web+db+wrk" others
  printf '%s\n' "${rows[@]}"
  echo
  echo
  echo "conns WAL bytes per heartbeat"
  printf '%s\n' "${wal_lines[@]}"
  echo "heartbeat table with its indexes: $(psql_q "SELECT pg_total_relation_size('heartbeats_heartbeat') / greatest(count(*), 1) FROM heartbeats_heartbeat") bytes per row"
  echo
  echo "CPU ms: CPU time per heartbeat in the web workers, PostgreSQL (+Redis) and wrk;"
  echo "others: share of the machine that processes outside the benchmark used during the run."
} | tee "$summary"

if [ -n "${target_line:-}" ]; then
  line=$target_line
  if [ -n "$reference" ]; then
    "$PY" -c "
medic, raw = $(get rps), $reference
print(f'ratio: Medic {medic:,.0f} heartbeats/s at 16 connections / raw PostgreSQL {raw:,.0f} '
      f'tx/s (pgbench, 16 clients, INSERT + UPDATE) = {medic / raw:.2f}')" | tee -a "$summary"
  fi
  met=$("$PY" -c "print(int($(get rps) >= $TARGET and $(get p99_ms) < 50 and $target_errors == 0))")
  verdict=$([ "$met" = 1 ] && echo "met" || echo "MISSED")
  echo "target (16 connections: >= $TARGET/s, p99 < 50 ms, no errors): $verdict" | tee -a "$summary"
  if [ "$met" != 1 ] && [ "${BENCH_STRICT:-0}" = 1 ]; then fail=1; fi
fi
cp "$WORK/gunicorn.log" "$RESULTS/gunicorn-$STAMP.log"
if [ "$fail" != 0 ]; then
  echo "FAILED: see $summary" >&2
  exit 1
fi
