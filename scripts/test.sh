#!/usr/bin/env bash
# `make test`: the whole suite on real PostgreSQL and Redis, started here on free loopback ports
# and removed afterwards. Installs what is missing (apt when root, the Python deps in .venv).
# Extra arguments go to pytest, e.g. `make test ARGS="-k apikeys -x"`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

source scripts/throwaway.sh  # pg_bindir, free_port, throwaway_pg, ...

# --- system packages ----------------------------------------------------------------------------
need=()
command -v redis-server >/dev/null || need+=(redis-server)
[ -n "$(pg_bindir)" ] || need+=(postgresql)
command -v docker-compose >/dev/null || need+=(docker-compose)
# Browser tests (tests/dashboard/test_browser.py) drive Debian's Chromium through Playwright.
[ -x /usr/bin/chromium ] || need+=(chromium chromium-driver)
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

source scripts/venv.sh test
PY="$ROOT/.venv/bin/python"

# --- throwaway PostgreSQL and Redis ---------------------------------------------------------------
WORK=$(mktemp -d /tmp/medic-test.XXXXXX)
chmod 755 "$WORK"
cleanup() {
  throwaway_stop "$WORK"
  rm -rf "$WORK"
}
trap cleanup EXIT
# fsync off: throwaway test data only.
throwaway_pg "$WORK" -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
  -c max_connections=200
throwaway_redis "$WORK"
export SECRET_KEY="test-$("$PY" -c 'import secrets; print(secrets.token_urlsafe(40))')"
export ALLOWED_HOSTS="127.0.0.1,localhost,testserver"
export MEDIC_TEST_WORKDIR="$WORK"
export STATIC_ROOT="$WORK/static"
# Screenshots of the dashboard's main pages, kept after the run for review (git-ignored).
export MEDIC_SCREENSHOTS_DIR="${MEDIC_SCREENSHOTS_DIR:-$ROOT/tests/screenshots}"
echo "==> PostgreSQL on 127.0.0.1:$PGPORT, Redis on 127.0.0.1:$REDISPORT"

# --- static checks ------------------------------------------------------------------------------
echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> import-linter (dependency direction, no cycles inside an app, no private names)"
.venv/bin/lint-imports
echo "==> django checks, migrations, OpenAPI schema"
"$PY" manage.py check --fail-level WARNING
"$PY" manage.py makemigrations --check --dry-run >/dev/null \
  || { echo "models changed without a migration: run manage.py makemigrations" >&2; exit 1; }
"$PY" manage.py spectacular --validate --fail-on-warn --file "$WORK/openapi.yaml"
"$PY" manage.py collectstatic --no-input -v 0
echo "==> medic-agent: cargo fmt --check, clippy -D warnings, cargo test; release build (e2e)"
bash agent-rs/build.sh test && bash agent-rs/build.sh release
echo "==> docker-compose config"
SECRET_KEY=x POSTGRES_PASSWORD=x docker-compose -f docker-compose.yml config -q

# --- tests --------------------------------------------------------------------------------------
# One pytest-xdist process per core, each with its own PostgreSQL test database and Redis
# database (tests/xdist_isolation.py); a file's tests stay on one process (module fixtures
# start real servers). MEDIC_TEST_PROCESSES=0 runs everything in this process.
echo "==> pytest"
"$PY" -m pytest -p no:cacheprovider -n "${MEDIC_TEST_PROCESSES:-auto}" --dist loadfile "$@"
