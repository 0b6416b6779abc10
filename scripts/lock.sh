#!/usr/bin/env bash
# Regenerate requirements.lock: every runtime dependency of pyproject.toml, transitive ones
# included, pinned with their sha256 hashes. The Dockerfile installs exactly this file
# (pip --require-hashes); tests/production/ checks that it agrees with pyproject.toml.
# Run it after changing [project] dependencies.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
UV_VERSION=0.9.5
if ! .venv/bin/uv --version 2>/dev/null | grep -q "^uv $UV_VERSION"; then
  .venv/bin/pip install --disable-pip-version-check -q "uv==$UV_VERSION"
fi
.venv/bin/uv pip compile pyproject.toml --quiet --generate-hashes --universal \
  --python-version 3.11 --no-strip-extras --custom-compile-command "scripts/lock.sh" \
  -o requirements.lock
