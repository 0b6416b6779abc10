# Sourced by bench/ingest/run.sh and bench/soak/run.sh (after scripts/throwaway.sh and
# scripts/venv.sh, with PY set).
#   bench_stack WORK   a throwaway PostgreSQL (durable defaults: fsync, synchronous_commit and
#                      full_page_writes on; max_connections=200) and Redis in WORK, and the
#                      environment Medic runs with on them; sets PG_PID and REDIS_PID
#   psql_q SQL         one query against the benchmark database, unaligned output
#   web_wait URL PID   wait until the server answers /health/live (exit 1 if PID died)

bench_stack() {
  local work=$1
  throwaway_pg "$work" -c max_connections=200
  throwaway_redis "$work"
  PG_PID=$(head -1 "$work/pg/postmaster.pid")
  REDIS_PID=$(cat "$work/redis.pid")
  export SECRET_KEY="bench-$("$PY" -c 'import secrets; print(secrets.token_urlsafe(40))')"
  export MEDIC_ENCRYPTION_KEYS="bench:$("$PY" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
  export ALLOWED_HOSTS="127.0.0.1,localhost"
  export STATIC_ROOT="$work/static"
}

psql_q() { "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -d medic -Atqc "$1"; }

web_wait() {
  local url=$1 pid=$2
  for _ in $(seq 150); do
    "$PY" -c "import urllib.request as u; u.urlopen('$url/health/live', timeout=1)" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}
