#!/usr/bin/env bash
# Builds the Debian package of medic-agent with dpkg-deb, from the release binary.
#
#   packaging/build-deb.sh              build target/debian/medic-agent_VERSION-1_ARCH.deb
#   packaging/build-deb.sh --arch arm64 the same for arm64, from the cross-built binary
#                                       (build.sh release aarch64)
#   packaging/build-deb.sh --check      build, then install, remove and purge it on this
#                                       machine, verifying each step (root; refuses if
#                                       medic-agent is already installed, so a real
#                                       installation is never touched)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root"

check=
arch=$(dpkg --print-architecture)
while [ $# -gt 0 ]; do
  case "$1" in
    --check) check=1 ;;
    --arch) arch=${2:?--arch needs amd64 or arm64}; shift ;;
    *) sed -n '2,11p' "$0" >&2; exit 2 ;;
  esac
  shift
done

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
case "$arch" in
  amd64) build_arch=x86_64; bin=$root/target/release/medic-agent ;;
  arm64) build_arch=aarch64; bin=$root/target/aarch64-unknown-linux-gnu/release/medic-agent ;;
  *) echo "build-deb.sh: unsupported architecture $arch (amd64, arm64)" >&2; exit 2 ;;
esac
if [ -n "$check" ] && [ "$arch" != "$(dpkg --print-architecture)" ]; then
  echo "build-deb.sh: --check installs the package, so it needs a $arch machine" >&2
  exit 2
fi
revision=1
maintainer=${DEB_MAINTAINER:-"Medic maintainers <medic@localhost>"}
out_dir=$root/target/debian
deb=$out_dir/medic-agent_${version}-${revision}_${arch}.deb

[ -n "${SKIP_BUILD:-}" ] || ./build.sh release "$build_arch" >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/stage
install -Dm0755 "$bin" "$stage/usr/bin/medic-agent"
install -Dm0644 packaging/medic-agent.service "$stage/lib/systemd/system/medic-agent.service"
install -Dm0644 packaging/medic-agent.toml "$stage/etc/medic-agent/medic-agent.toml"
install -Dm0644 packaging/scripts.toml "$stage/etc/medic-agent/scripts.toml"
install -dm0755 "$stage/etc/medic-agent/scripts"
install -Dm0644 README.md "$stage/usr/share/doc/medic-agent/README.md"

# Library dependencies as dpkg computes them (e.g. the glibc that RELR relocations need).
mkdir -p "$work/shlibs/debian"
printf 'Source: medic-agent\n\nPackage: medic-agent\nArchitecture: any\n' >"$work/shlibs/debian/control"
depends=$(cd "$work/shlibs" && DEB_HOST_ARCH=$arch dpkg-shlibdeps -O -e "$stage/usr/bin/medic-agent" 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
depends="${depends:-libc6}"
# dpkg-shlibdeps does not know GLIBC_ABI_DT_RELR, which packed relocations (build.sh release)
# require: glibc 2.36 introduced it.
if objdump -p "$stage/usr/bin/medic-agent" 2>/dev/null | grep -q GLIBC_ABI_DT_RELR; then
  depends=$(sed 's/libc6 (>= [0-9.]*)/libc6 (>= 2.36)/' <<<"$depends")
fi
depends="$depends, passwd"

installed_kb=$(du -sk "$stage" | cut -f1)
mkdir -p "$stage/DEBIAN"
cat >"$stage/DEBIAN/control" <<CONTROL
Package: medic-agent
Version: ${version}-${revision}
Architecture: ${arch}
Maintainer: ${maintainer}
Installed-Size: ${installed_kb}
Depends: ${depends}
Section: admin
Priority: optional
Description: Medic agent: remote execution of host-approved scripts, cron job wrapper
 Long-polls the Medic server for remediation jobs and runs only scripts that this host
 registered, verified by sha256, under resource limits. Also wraps cron jobs
 (medic-agent exec) so that Medic records their start, end, exit code and output.
CONTROL
printf '/etc/medic-agent/medic-agent.toml\n/etc/medic-agent/scripts.toml\n' >"$stage/DEBIAN/conffiles"
install -m0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$stage/DEBIAN/"

mkdir -p "$out_dir"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "built $deb ($(stat -c %s "$deb") bytes)"
dpkg-deb --info "$deb" | sed -n 's/^ \(Depends\|Installed-Size\):/  \1:/p'

[ -n "$check" ] || exit 0

# ---- install / remove / purge check -------------------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
  echo "--check needs root" >&2
  exit 1
fi
if dpkg-query -W -f='${Status}' medic-agent 2>/dev/null | grep -q 'installed'; then
  echo "medic-agent is already installed here; --check will not touch it" >&2
  exit 1
fi
if getent passwd medic-agent >/dev/null; then
  echo "a medic-agent user already exists here; --check will not touch it" >&2
  exit 1
fi

fail() { echo "CHECK FAILED: $*" >&2; dpkg --purge medic-agent >/dev/null 2>&1 || true; exit 1; }
ok() { echo "  ok: $*"; }

echo "check: dpkg -i"
dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i"; }
[ "$(/usr/bin/medic-agent --version)" = "medic-agent $version" ] || fail "binary runs"
ok "/usr/bin/medic-agent --version"
getent passwd medic-agent >/dev/null || fail "user medic-agent created"
ok "system user medic-agent exists"
[ "$(stat -c %U:%a /var/lib/medic-agent/jobs)" = medic-agent:700 ] || fail "state directory"
ok "/var/lib/medic-agent/jobs owned by medic-agent, mode 700"
for f in /etc/medic-agent/medic-agent.toml /etc/medic-agent/scripts.toml \
  /lib/systemd/system/medic-agent.service; do
  [ -f "$f" ] || fail "$f installed"
done
ok "config, registry and systemd unit installed"
if systemd-analyze verify /lib/systemd/system/medic-agent.service >"$work/verify.log" 2>&1; then
  ok "systemd-analyze verify"
else
  echo "  note: systemd-analyze verify could not check the unit here:" >&2
  sed 's/^/    /' "$work/verify.log" >&2
fi
# The installed agent refuses to start without a key, naming the problem.
if runuser -u medic-agent -- /usr/bin/medic-agent run 2>"$work/run.log"; then
  fail "agent started without a key"
fi
grep -q 'api-key' "$work/run.log" || fail "missing key reported: $(cat "$work/run.log")"
ok "unconfigured agent exits non-zero naming the missing key file"
echo 'test-key' >/etc/medic-agent/api-key

echo "check: dpkg -r"
dpkg -r medic-agent >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -r"; }
[ ! -e /usr/bin/medic-agent ] || fail "binary removed"
[ ! -e /lib/systemd/system/medic-agent.service ] || fail "unit removed"
[ -f /etc/medic-agent/medic-agent.toml ] || fail "conffile kept after remove"
ok "binary and unit removed, configuration kept"

echo "check: dpkg --purge"
dpkg --purge medic-agent >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg --purge"; }
[ ! -e /etc/medic-agent ] || fail "/etc/medic-agent removed: $(ls -la /etc/medic-agent)"
[ ! -e /var/lib/medic-agent ] || fail "/var/lib/medic-agent removed"
! getent passwd medic-agent >/dev/null || fail "user removed"
dpkg-query -W medic-agent >/dev/null 2>&1 && fail "package forgotten by dpkg"
ok "configuration, state, user and package record gone"

echo "check: dpkg -i then --purge directly"
dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "second dpkg -i"; }
dpkg --purge medic-agent >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "purge"; }
[ ! -e /usr/bin/medic-agent ] && [ ! -e /etc/medic-agent ] && ! getent passwd medic-agent >/dev/null ||
  fail "purge from installed state"
ok "install + purge leaves nothing behind"
echo "package check passed"
