#!/usr/bin/env bash
# Audit export: peak memory of the exporting process at growing table sizes (it should not
# grow with the rows), and rows per second, for JSON Lines and CSV. Throwaway PostgreSQL.
#   bash bench/audit_export/run.sh [SIZES...]   (default: 20000 200000)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
source scripts/venv.sh test
PY="$ROOT/.venv/bin/python"
source scripts/throwaway.sh
WORK=$(mktemp -d /tmp/medic-bench-audit.XXXXXX)
chmod 755 "$WORK"
trap 'throwaway_stop "$WORK"; rm -rf "$WORK"' EXIT
throwaway_pg "$WORK" -c fsync=off -c synchronous_commit=off
export SECRET_KEY="bench-$("$PY" -c "import secrets; print(secrets.token_urlsafe(40))")" ALLOWED_HOSTS=testserver MEDIC_LOG_LEVEL=WARNING STATIC_ROOT="$WORK/static"
"$PY" manage.py migrate -v0
for size in "${@:-20000 200000}"; do
  for n in $size; do
    "$PY" bench/audit_export/export.py seed "$n"
    for fmt in json csv; do
      "$PY" bench/audit_export/export.py run "$fmt"
    done
  done
done
