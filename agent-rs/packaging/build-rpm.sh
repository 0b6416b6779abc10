#!/usr/bin/env bash
# Builds the RPM of medic-agent with rpmbuild from packaging/rpm/medic-agent.spec, from the
# release tarball and vendored crates of packaging/dist.sh (offline).
#
#   packaging/build-rpm.sh                 target/rpm/medic-agent-VERSION-1.x86_64.rpm
#   packaging/build-rpm.sh --arch aarch64  the same for aarch64, cross-compiled (build.sh env
#                                          aarch64); its %check runs under qemu-user
#   SKIP_DIST=1 ...                        use the tarballs already in target/dist/
#
# On Debian/Ubuntu (rpm from the `rpm` package, installed with apt when run as root) the
# build dependencies cannot be checked against an RPM database (--nodeps) and the systemd
# macros come from packaging/rpm/non-rpm-host.macros.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root"

arch=$(uname -m)
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch=${2:?--arch needs x86_64 or aarch64}; shift ;;
    *) sed -n '2,13p' "$0" >&2; exit 2 ;;
  esac
  shift
done
case "$arch" in
  x86_64 | aarch64) ;;
  *) echo "build-rpm.sh: unsupported architecture $arch (x86_64, aarch64)" >&2; exit 2 ;;
esac

if ! command -v rpmbuild >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "build-rpm.sh: rpmbuild not found (apt-get install rpm, or run as root)" >&2
    exit 1
  fi
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends rpm >/dev/null
fi

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
[ -n "${SKIP_DIST:-}" ] || bash packaging/dist.sh >/dev/null

top=$root/target/rpmbuild
out=$root/target/rpm
mkdir -p "$top/SOURCES" "$out"
cp "target/dist/medic-agent-$version.tar.gz" "target/dist/medic-agent-$version-vendor.tar.gz" \
  "$top/SOURCES/"

opts=(-bb --define "_topdir $top" --define "_rpmdir $out" --define '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm')
if ! rpm -q rpm >/dev/null 2>&1; then
  # rpm without an RPM database of its own: Debian/Ubuntu. The macros go in as --define, one
  # per definition (continuation lines joined): rpmbuild --target drops --load'ed files.
  opts+=(--nodeps)
  while IFS= read -r -d '' def; do
    opts+=(--define "$def")
  done < <(sed -e '/^#/d' -e ':a' -e '/\\$/{N;s/\\\n/\n/;ba}' "$here/rpm/non-rpm-host.macros" |
    awk 'BEGIN { RS = "\n%" } NF { sub(/^%/, ""); sub(/\n$/, ""); printf "%s%c", $0, 0 }')
fi
if [ "$arch" = "$(uname -m)" ]; then
  opts+=(--define "cargo_cmd $(command -v cargo)")
else
  [ "$arch" = aarch64 ] || { echo "build-rpm.sh: cross builds only for aarch64" >&2; exit 2; }
  eval "$(bash build.sh env aarch64)"
  opts+=(--target aarch64 --define "cargo_cmd $CARGO")
fi

rpmbuild "${opts[@]}" packaging/rpm/medic-agent.spec >"$top/build-$arch.log" 2>&1 || {
  tail -40 "$top/build-$arch.log" >&2
  echo "build-rpm.sh: rpmbuild failed (log: $top/build-$arch.log)" >&2
  exit 1
}
rpm_file=$out/medic-agent-$version-1.$arch.rpm
[ -f "$rpm_file" ] || { echo "build-rpm.sh: $rpm_file not produced" >&2; exit 1; }
echo "built $rpm_file ($(stat -c %s "$rpm_file") bytes)"
