#!/usr/bin/env bash
# Builds and checks everything a medic-agent release consists of (root, Debian/Ubuntu x86_64):
#
#   1. arm64: the whole test suite under qemu-user, then the stripped binary (build.sh)
#   2. x86_64: the stripped binary
#   3. both binaries within the size target (1.5 MiB), sizes printed
#   4. release tarball, vendored crates, Homebrew formula (dist.sh)
#   5. .deb for amd64 and arm64 (build-deb.sh), .rpm for x86_64 and aarch64 (build-rpm.sh)
#   6. check-packages.sh: metadata, file lists, installs, APT/YUM repositories, formula
#
#   packaging/release.sh              all of it
#   packaging/release.sh --no-check   build only (1 to 5)
#
# The test command (scripts/test.sh) runs it in the background while the Python tests run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root"

check=1
case "${1:-}" in
  "") ;;
  --no-check) check= ;;
  *) sed -n '2,13p' "$0" >&2; exit 2 ;;
esac

MAX_BYTES=$((3 * 1024 * 1024 / 2))
step() { echo "==> $1 (at ${SECONDS}s)"; }

step "arm64: test suite under qemu-user"
bash build.sh test aarch64
step "arm64: release binary"
bash build.sh release aarch64
step "x86_64: release binary"
bash build.sh release

for bin in target/release/medic-agent target/aarch64-unknown-linux-gnu/release/medic-agent; do
  size=$(stat -c %s "$bin")
  awk -v f="$bin" -v b="$size" 'BEGIN { printf "binary size: %s %d bytes (%.2f MiB)\n", f, b, b / 1048576 }'
  [ "$size" -le "$MAX_BYTES" ] || { echo "$bin is over the 1.5 MiB target" >&2; exit 1; }
done

step "release tarball, vendored crates, Homebrew formula"
bash packaging/dist.sh
step ".deb amd64 and arm64"
SKIP_BUILD=1 bash packaging/build-deb.sh --arch amd64
SKIP_BUILD=1 bash packaging/build-deb.sh --arch arm64
step ".rpm x86_64 and aarch64"
SKIP_DIST=1 bash packaging/build-rpm.sh --arch x86_64
SKIP_DIST=1 bash packaging/build-rpm.sh --arch aarch64

if [ -n "$check" ]; then
  step "package checks"
  bash packaging/check-packages.sh
fi
echo "==> medic-agent release built$([ -n "$check" ] && echo " and checked") in ${SECONDS}s"
