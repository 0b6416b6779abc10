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
# The docs' examples (tests/docs) are curl and jq command lines.
command -v curl >/dev/null || need+=(curl)
command -v jq >/dev/null || need+=(jq)
# Browser tests (tests/dashboard/browser/) drive Debian's Chromium through Playwright.
[ -x /usr/bin/chromium ] || need+=(chromium chromium-driver)
# The production smoke test (tests/production/): the TLS front and Prometheus; promtool also
# runs the alert-rule tests below.
command -v nginx >/dev/null || need+=(nginx)
command -v promtool >/dev/null || need+=(prometheus)
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

# --- medic-agent for arm64 and its packages, in the background --------------------------------
# The arm64 build and its tests under qemu-user, both binaries' sizes, the .deb/.rpm for both
# architectures, the APT/YUM repositories and the Homebrew formula: agent-rs/packaging/release.sh.
# It needs root (apt, dpkg -i); it runs alongside everything below, in a process group of its
# own, and is waited for at the end. SKIP_AGENT_RELEASE=1 leaves it out (e.g. with a -k filter).
AGENT_RELEASE_LOG=$(mktemp /tmp/medic-agent-release.XXXXXX)
agent_release_pid=
stop_agent_release() {
  if [ -n "$agent_release_pid" ] && kill -0 "$agent_release_pid" 2>/dev/null; then
    kill -- "-$agent_release_pid" 2>/dev/null || true
  fi
}
if [ -n "${SKIP_AGENT_RELEASE:-}" ]; then
  echo "==> medic-agent arm64 build and packages: skipped (SKIP_AGENT_RELEASE)"
elif [ "$(id -u)" = 0 ]; then
  bash agent-rs/build.sh deps # apt here, before anything runs in parallel
  setsid bash agent-rs/packaging/release.sh >"$AGENT_RELEASE_LOG" 2>&1 &
  agent_release_pid=$!
  trap stop_agent_release EXIT
  echo "==> medic-agent arm64 build, tests under qemu, packages: started (log $AGENT_RELEASE_LOG)"
else
  echo "==> medic-agent arm64 build and packages: skipped (needs root)" >&2
fi

# The user the worker runs local scripts as (as in the image; tests/production/ checks that a
# script cannot read the worker's secrets).
if [ "$(id -u)" = 0 ] && ! id medic-sandbox >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin medic-sandbox
fi

source scripts/venv.sh test
PY="$ROOT/.venv/bin/python"

# --- throwaway PostgreSQL and Redis ---------------------------------------------------------------
WORK=$(mktemp -d /tmp/medic-test.XXXXXX)
chmod 755 "$WORK"
cleanup() {
  stop_agent_release
  if [ -n "${fuzz_pid:-}" ] && kill -0 "$fuzz_pid" 2>/dev/null; then
    kill -- "-$fuzz_pid" 2>/dev/null || true
  fi
  throwaway_stop "$WORK"
  rm -rf "$WORK"
}
trap cleanup EXIT
# fsync off: throwaway test data only.
throwaway_pg "$WORK" -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
  -c max_connections=200
throwaway_redis "$WORK"
export SECRET_KEY="test-$("$PY" -c 'import secrets; print(secrets.token_urlsafe(40))')"
export MEDIC_ENCRYPTION_KEYS="test:$("$PY" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
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
echo "==> docker-compose config (with .env.example as .env)"
mkdir "$WORK/compose" && cp .env.example "$WORK/compose/.env"
docker-compose -f docker-compose.yml --project-directory "$WORK/compose" config -q
# Every runnable example of README.md and docs/ against a fresh `make run` (docs/writing-docs.md).
echo "==> docs: examples of README.md and docs/ against a throwaway make-run instance"
# A failure here fails the command after pytest has run too.
docs_status=0
"$PY" -m tests.docs.runner || docs_status=$?

# --- schemathesis over the v2 API, in the background ---------------------------------------------
# scripts/fuzz.sh against a live gunicorn with its own PostgreSQL and Redis: every v2 operation
# (but the three it names), all checks, a fixed seed, FUZZ_EXAMPLES examples per operation (the
# longer `make fuzz` runs more). It must end with no server error and no schema violation.
# SKIP_FUZZ=1 leaves it out (e.g. with a -k filter).
FUZZ_LOG=$(mktemp /tmp/medic-fuzz-log.XXXXXX)
fuzz_pid=
if [ -n "${SKIP_FUZZ:-}" ]; then
  echo "==> schemathesis: skipped (SKIP_FUZZ)"
else
  FUZZ_EXAMPLES=${FUZZ_EXAMPLES:-5} setsid bash scripts/fuzz.sh >"$FUZZ_LOG" 2>&1 &
  fuzz_pid=$!
  echo "==> schemathesis over the v2 API: started (log $FUZZ_LOG)"
fi

# --- tests --------------------------------------------------------------------------------------
# One pytest-xdist process per core, each with its own PostgreSQL test database and Redis
# database (tests/xdist_isolation.py); a file's tests stay on one process (module fixtures
# start real servers). MEDIC_TEST_PROCESSES=0 runs everything in this process.
echo "==> pytest"
pytest_rc=0
"$PY" -m pytest -p no:cacheprovider -n "${MEDIC_TEST_PROCESSES:-auto}" --dist loadfile "$@" || pytest_rc=$?

if [ -n "$agent_release_pid" ]; then
  echo "==> medic-agent arm64 build, tests under qemu, packages (waiting)"
  agent_release_rc=0
  wait "$agent_release_pid" || agent_release_rc=$?
  agent_release_pid=
  cat "$AGENT_RELEASE_LOG"
  rm -f "$AGENT_RELEASE_LOG"
  if [ "$agent_release_rc" -ne 0 ]; then
    echo "medic-agent release build or package checks failed (exit $agent_release_rc)" >&2
    exit 1
  fi
fi
if [ -n "$fuzz_pid" ]; then
  echo "==> schemathesis over the v2 API (waiting)"
  fuzz_rc=0
  wait "$fuzz_pid" || fuzz_rc=$?
  fuzz_pid=
  if [ "$fuzz_rc" -ne 0 ]; then
    cat "$FUZZ_LOG"  # every failure with its reproduction, not only the summary
  else
    tail -n 40 "$FUZZ_LOG"
  fi
  rm -f "$FUZZ_LOG"
  if [ "$fuzz_rc" -ne 0 ]; then
    echo "schemathesis found server errors or schema violations (exit $fuzz_rc)" >&2
    exit 1
  fi
fi
if [ "$docs_status" != 0 ]; then
  echo "docs: examples failed (see \"FAILED\" above)" >&2
  exit "$docs_status"
fi
exit "$pytest_rc"
