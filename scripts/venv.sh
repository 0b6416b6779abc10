# Sourced by run.sh and test.sh: create .venv and install the pinned dependencies when
# pyproject.toml changed since the last install.
set -euo pipefail
PYTHON=${PYTHON:-python3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
EXTRAS=${1:-}
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "Medic needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version 2>&1)." >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.installed${EXTRAS:+-$EXTRAS}"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  echo "==> installing dependencies${EXTRAS:+ ($EXTRAS)}"
  "$VENV/bin/pip" install --disable-pip-version-check -q -e "$ROOT${EXTRAS:+[$EXTRAS]}" 2>&1 \
    | grep -v "is ignored" || true
  "$VENV/bin/python" -c "import django, celery, rest_framework" \
    || { echo "dependency installation failed" >&2; exit 1; }
  touch "$stamp"
fi
