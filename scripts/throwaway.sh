# Sourced by scripts/test.sh and the benchmarks: a throwaway PostgreSQL and Redis on free
# loopback ports, in a work folder that the caller removes. Needs PY (the venv's python).
#
#   pg_bindir                       where initdb and pg_ctl are (empty when not installed)
#   throwaway_pg WORK [-c opts...]  initdb + start in WORK/pg, create database "medic";
#                                   sets PGBIN, PGPORT, DATABASE_URL. Extra arguments go to
#                                   postgres (durability settings, max_connections, ...).
#   throwaway_redis WORK            start Redis, wait for it; sets REDISPORT, REDIS_URL
#   throwaway_stop WORK             stop both (safe to call at any point, e.g. from a trap)

# The newest Debian cluster binaries, else where pg_config says, else on the PATH.
pg_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
  dir=$(pg_config --bindir 2>/dev/null || true)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
  dir=$(dirname "$(command -v initdb 2>/dev/null || echo none/none)")
  if [ -x "$dir/initdb" ]; then echo "$dir"; fi
}

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# PostgreSQL refuses to run as root: as root, run its tools as the postgres user.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

throwaway_pg() {
  local work=$1
  shift
  PGBIN=$(pg_bindir)
  [ -n "$PGBIN" ] || { echo "missing PostgreSQL server binaries (install postgresql)" >&2; return 2; }
  PGPORT=$(free_port)
  if [ "$(id -u)" = 0 ]; then
    install -d -o postgres -g postgres -m 700 "$work/pg" "$work/pgrun"
  else
    mkdir -m 700 "$work/pg" "$work/pgrun"
  fi
  as_pg "$PGBIN/initdb" -D "$work/pg" --auth=trust --no-sync -U postgres >/dev/null
  as_pg "$PGBIN/pg_ctl" -D "$work/pg" -l "$work/pgrun/postgres.log" -w start \
    -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $work/pgrun $*" >/dev/null
  "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres medic
  export DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/medic"
}

throwaway_redis() {
  local work=$1
  REDISPORT=$(free_port)
  redis-server --port "$REDISPORT" --bind 127.0.0.1 --daemonize yes --save '' --appendonly no \
    --pidfile "$work/redis.pid" --logfile "$work/redis.log"
  for _ in $(seq 50); do redis-cli -p "$REDISPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export REDIS_URL="redis://127.0.0.1:$REDISPORT/0"
}

throwaway_stop() {
  local work=$1
  if [ -n "${PGBIN:-}" ] && [ -f "$work/pg/postmaster.pid" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1
  fi
  [ -f "$work/redis.pid" ] && kill "$(cat "$work/redis.pid")" 2>/dev/null
  return 0
}
