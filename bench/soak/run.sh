#!/usr/bin/env bash
# `make bench-soak`: heartbeat ingest held at 80% of the measured capacity for 10 minutes, with
# the sweep (celery beat, every 5 s) and a worker running, on a throwaway PostgreSQL (durable
# defaults) and Redis. Passes when:
#   - 0 errors (non-2xx answers, socket errors, requests without an answer);
#   - every accepted heartbeat is stored (the heartbeat table grew by exactly the 2xx count);
#   - no false alert: no service.down event and no service down, although every service has a
#     two-minute interval and no grace (a beat lost or held up that long would show);
#   - the sweep ran throughout (its passes counted by the worker's own metrics);
# and prints the resident memory (RSS) of every process once warmed up (BENCH_SOAK_RSS_AT seconds
# into the soak: imports, caches, the beat's child process and PostgreSQL's shared buffers have
# settled by then) and at the end, so a leak shows as growth between the two.
#
# Knobs (environment):
#   BENCH_SOAK_DURATION=600 (s)   BENCH_SOAK_SHARE=0.8   BENCH_SOAK_PROBE=10 (s at full speed to
#   measure capacity)   BENCH_SOAK_RATE=  (heartbeats/s to offer; skips the probe)
#   BENCH_SOAK_RSS_AT=60 (s into the soak for the first memory sample)
#   BENCH_SOAK_SHORT=1            60 s soak, 5 s probe, first sample at 15 s: checks the script,
#                                 proves little
#   BENCH_SERVICES=1000  BENCH_CONNECTIONS=16 (one value)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

DURATION=${BENCH_SOAK_DURATION:-600}
PROBE=${BENCH_SOAK_PROBE:-10}
RSS_AT=${BENCH_SOAK_RSS_AT:-60}
if [ "${BENCH_SOAK_SHORT:-0}" = 1 ]; then DURATION=60 PROBE=5 RSS_AT=15; fi
SHARE=${BENCH_SOAK_SHARE:-0.8}
RATE=${BENCH_SOAK_RATE:-}
SERVICES=${BENCH_SERVICES:-1000}
CONNS=${BENCH_CONNECTIONS:-16}
PREFIX="soak-"
DRAIN=3

source scripts/throwaway.sh
source scripts/venv.sh
PY="$ROOT/.venv/bin/python"
for tool in wrk redis-server; do
  command -v "$tool" >/dev/null || { echo "missing $tool (make bench-ingest installs it)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/medic-soak.XXXXXX)
chmod 755 "$WORK"
pids=()
cleanup() {
  set +e
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
  throwaway_stop "$WORK"
  rm -rf "$WORK"
}
trap cleanup EXIT

source bench/ingest/stack.sh
bench_stack "$WORK"

"$PY" manage.py migrate --no-input -v 0
"$PY" manage.py collectstatic --no-input -v 0
echo "==> seeding $SERVICES services (interval 2 min, no grace)"
"$PY" bench/ingest/seed.py "$SERVICES" "$PREFIX" 2 >/dev/null
BENCH_KEY=$("$PY" manage.py create_api_key --name soak --scopes write \
  --rate-limit heartbeat=1000000 2>/dev/null | tail -1)
export BENCH_KEY BENCH_SERVICES="$SERVICES" BENCH_PREFIX="$PREFIX"

PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
# The production configuration, except that workers are not recycled: at ~1,000 heartbeats/s a
# worker reaches max_requests (~100,000) within minutes, and a replaced worker's memory says
# nothing about a leak. Here the same two workers serve the whole soak.
GUNICORN_BIND="127.0.0.1:$PORT" "$ROOT/.venv/bin/gunicorn" medic.front:application \
  --config deploy/gunicorn.conf.py --max-requests 0 >"$WORK/gunicorn.log" 2>&1 &
GUNICORN_PID=$!
pids+=("$GUNICORN_PID")
web_wait "$URL" "$GUNICORN_PID" || { cat "$WORK/gunicorn.log" >&2; exit 1; }

wrk_run() { # connections seconds rate output (rate 0: as fast as answers come)
  BENCH_SECONDS="$2" BENCH_RATE="$3" wrk -t 1 -c "$1" -d "$(($2 + DRAIN))s" --timeout 5s \
    --latency -s bench/ingest/heartbeat.lua "$URL" >"$4"
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" "$2"; }

echo "==> warm-up: every service gets its first beat, then 5 s at 64 connections"
"$PY" - "$URL" <<'PRIME'
import http.client, os, sys, urllib.parse
url = urllib.parse.urlsplit(sys.argv[1])
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
headers = {"Authorization": f"Bearer {os.environ['BENCH_KEY']}", "Content-Type": "application/json"}
for i in range(int(os.environ["BENCH_SERVICES"])):
    conn.request("POST", f"/v2/heartbeat/{os.environ['BENCH_PREFIX']}{i:04d}", b"{}", headers)
    response = conn.getresponse()
    response.read()
    if response.status != 201:
        sys.exit(f"first beat of service {i}: {response.status}")
PRIME
wrk_run 64 5 0 "$WORK/warmup.txt"
if [ -z "$RATE" ]; then
  echo "==> capacity: $CONNS connections at full speed, ${PROBE}s"
  wrk_run "$CONNS" "$PROBE" 0 "$WORK/probe.txt"
  capacity=$(field rps "$WORK/probe.txt")
  RATE=$("$PY" -c "print(round($capacity * $SHARE))")
  echo "    $capacity heartbeats/s; soak offers ${SHARE} x that = $RATE/s"
fi

# The worker serves its metrics on a free loopback port, without a key: the sweep passes are
# counted there.
METRICS="127.0.0.1:$(free_port)"
MEDIC_WORKER_METRICS_ADDR="$METRICS" MEDIC_WORKER_METRICS_REQUIRE_KEY=0 MEDIC_LOG_FORMAT=text "$ROOT/.venv/bin/celery" -A medic worker --beat --pool threads --concurrency 4 \
  --loglevel INFO --without-heartbeat --without-gossip --without-mingle \
  --schedule "$WORK/beat-schedule" >"$WORK/worker.log" 2>&1 &
WORKER_PID=$!
pids+=("$WORKER_PID")
sleep 5

rss() { # "name pid rss_mb" for every process of the soak
  local pid
  for pid in $(pgrep -P "$GUNICORN_PID"); do echo "gunicorn-worker $pid"; done
  echo "gunicorn-master $GUNICORN_PID"
  echo "celery-worker+beat $WORKER_PID"
  for pid in $(pgrep -P "$WORKER_PID"); do echo "celery-child $pid"; done
  echo "redis $REDIS_PID"
  echo "postgres(all) $PG_PID"
}
rss_of() { # pid [tree]
  if [ "${2:-}" = tree ]; then
    local total=0 p
    for p in "$1" $(pgrep -P "$1"); do
      total=$((total + $(awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
    done
    echo "$total"
  else
    awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
  fi
}
sweep_count() {
  "$PY" -c "
import re, time, urllib.request
for _ in range(60):  # the worker may still be starting
    try:
        text = urllib.request.urlopen('http://$METRICS/metrics', timeout=5).read().decode()
        break
    except OSError:
        time.sleep(0.5)
found = re.search(r'^medic_sweep_duration_seconds_count (\S+)', text, re.M)
print(int(float(found.group(1))) if found else 0)"
}
sweeps_before=$(sweep_count)
before=$(psql_q "SELECT count(*) FROM heartbeats_heartbeat")
downs_before=$(psql_q "SELECT count(*) FROM events_domainevent WHERE kind = 'service.down'")
echo "==> soak: $RATE heartbeats/s offered ($CONNS connections, sent on a fixed schedule), ${DURATION}s"
wrk_run "$CONNS" "$DURATION" "$RATE" "$WORK/soak.txt" &
WRK_PID=$!
sleep "$RSS_AT"
declare -A rss_start=()
while read -r name pid; do
  if [ "$name" = "postgres(all)" ]; then rss_start[$name/$pid]=$(rss_of "$pid" tree)
  else rss_start[$name/$pid]=$(rss_of "$pid"); fi
done < <(rss)

wait "$WRK_PID"
sleep 6 # one more sweep after the last beat
after=$(psql_q "SELECT count(*) FROM heartbeats_heartbeat")
downs=$(($(psql_q "SELECT count(*) FROM events_domainevent WHERE kind = 'service.down'") - downs_before))
down_now=$(psql_q "SELECT count(*) FROM heartbeats_service WHERE status = 'down'")
sweeps=$(($(sweep_count) - sweeps_before))

echo "    memory (RSS, MB), ${RSS_AT}s into the soak -> end:"
while read -r name pid; do
  if [ "$name" = "postgres(all)" ]; then end=$(rss_of "$pid" tree); else end=$(rss_of "$pid"); fi
  start=${rss_start[$name/$pid]:-0}
  printf '      %-20s %7s  %7.1f -> %7.1f  (%+.1f)\n' "$name" "$pid" "$(bc -l <<<"$start/1024")" \
    "$(bc -l <<<"$end/1024")" "$(bc -l <<<"($end-$start)/1024")"
done < <(rss)

ok=$(field ok "$WORK/soak.txt") non2xx=$(field non2xx "$WORK/soak.txt") sent=$(field sent "$WORK/soak.txt")
socket=$(($(field connect "$WORK/soak.txt") + $(field read "$WORK/soak.txt") + $(field write "$WORK/soak.txt") + $(field timeout "$WORK/soak.txt")))
unanswered=$((sent - ok - non2xx))
errors=$((non2xx + socket + (unanswered > 0 ? unanswered : 0)))
stored=$((after - before))
echo "    achieved $(field rps "$WORK/soak.txt")/s, p50 $(field p50_ms "$WORK/soak.txt") ms," \
  "p99 $(field p99_ms "$WORK/soak.txt") ms, max $(field max_ms "$WORK/soak.txt") ms"
echo "    errors $errors; 2xx $ok, rows stored $stored; service.down events $downs, services down" \
  "$down_now; sweeps run $sweeps"
fail=0
[ "$errors" = 0 ] || { echo "FAILED: errors" >&2; fail=1; }
[ "$stored" = "$ok" ] || { echo "FAILED: rows stored ($stored) != 2xx ($ok)" >&2; fail=1; }
[ "$downs" = 0 ] && [ "$down_now" = 0 ] || { echo "FAILED: false alerts" >&2; fail=1; }
if [ "$sweeps" -lt $((DURATION / 10)) ]; then
  echo "FAILED: the sweep ran $sweeps times; the worker's log ends with:" >&2
  tail -20 "$WORK/worker.log" >&2
  fail=1
fi
[ "$fail" = 0 ] && echo "soak passed"
exit "$fail"
