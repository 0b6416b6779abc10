#!/usr/bin/env bash
# Checks the built packages, repositories and release sources of medic-agent (root; run by
# the test command after packaging/release.sh):
#
#   - each .deb and .rpm: architecture fields, file list, the binary's ELF machine, scriptlets,
#     rpm digests
#   - the amd64 .deb installs, is removed and purged on this machine (build-deb.sh --check)
#   - the x86_64 .rpm installs into a scratch root (rpm --root, without scriptlets: the scratch
#     root has no shell or useradd), runs from there, verifies and erases cleanly
#   - the APT repository (make-repos.sh, signed with a throwaway key) is usable by apt: update
#     from a file:// source in a throwaway apt configuration, install, purge
#   - the YUM repository's metadata lists both RPMs
#   - the Homebrew formula's sha256 is the release tarball's, and the tarball holds what the
#     formula and the spec build from; the formula builds with packaging/crates-io.lock,
#     which check-crates-io-lock.py checks against Cargo.lock and Debian's recorded checksums
#
#   packaging/check-packages.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
deb_amd64=target/debian/medic-agent_${version}-1_amd64.deb
deb_arm64=target/debian/medic-agent_${version}-1_arm64.deb
rpm_x86_64=target/rpm/medic-agent-${version}-1.x86_64.rpm
rpm_aarch64=target/rpm/medic-agent-${version}-1.aarch64.rpm
tarball=target/dist/medic-agent-${version}.tar.gz

if [ "$(id -u)" -ne 0 ]; then
  echo "check-packages.sh needs root (it installs and removes packages)" >&2
  exit 1
fi
for f in "$deb_amd64" "$deb_arm64" "$rpm_x86_64" "$rpm_aarch64" "$tarball"; do
  [ -f "$f" ] || { echo "check-packages.sh: $f missing (packaging/release.sh builds it)" >&2; exit 1; }
done

work=$(mktemp -d)
chmod 755 "$work" # apt's sandbox user reads the repository and lists from here
cleanup() {
  if dpkg-query -W -f='${Status}' medic-agent 2>/dev/null | grep installed >/dev/null &&
    [ -e "$work/installed-by-check" ]; then
    dpkg --purge medic-agent >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "CHECK FAILED: $*" >&2; exit 1; }
ok() { echo "  ok: $*"; }

# elf_machine FILE: the e_machine readelf names (AArch64, Advanced Micro Devices X86-64).
elf_machine() { readelf -h "$1" | sed -n 's/^ *Machine: *//p'; }

expected_files=(
  /usr/bin/medic-agent
  /etc/medic-agent/medic-agent.toml
  /etc/medic-agent/scripts.toml
  /etc/medic-agent/scripts
)

# ---- .deb ------------------------------------------------------------------------------------
check_deb() {
  local deb=$1 arch=$2 machine=$3 list f
  echo "check: $deb"
  [ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] || fail "$deb: Architecture is not $arch"
  [ "$(dpkg-deb -f "$deb" Version)" = "$version-1" ] || fail "$deb: Version"
  dpkg-deb -f "$deb" Depends | grep 'libc6 (>= 2\.[0-9]*)' >/dev/null || fail "$deb: Depends on libc6"
  ok "Package medic-agent, Architecture $arch, Version $version-1, Depends $(dpkg-deb -f "$deb" Depends)"
  list=$(dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's,^\.,,; s,/$,,')
  for f in "${expected_files[@]}" /lib/systemd/system/medic-agent.service; do
    grep -qx "$f" <<<"$list" || fail "$deb: $f not in the file list"
  done
  ok "file list: binary, systemd unit, configuration, registry, scripts directory"
  mkdir -p "$work/deb-$arch"
  dpkg-deb -x "$deb" "$work/deb-$arch"
  [ "$(elf_machine "$work/deb-$arch/usr/bin/medic-agent")" = "$machine" ] ||
    fail "$deb: binary is $(elf_machine "$work/deb-$arch/usr/bin/medic-agent"), not $machine"
  ok "/usr/bin/medic-agent is an ELF for $machine"
  dpkg-deb --ctrl-tarfile "$deb" | tar -tf - | grep '^\./postinst$' >/dev/null || fail "$deb: postinst"
  dpkg-deb -I "$deb" postinst | grep 'useradd --system' >/dev/null || fail "$deb: postinst creates the user"
  ok "postinst creates the medic-agent system user"
}
check_deb "$deb_amd64" amd64 "Advanced Micro Devices X86-64"
check_deb "$deb_arm64" arm64 AArch64

# ---- .rpm -----------------------------------------------------------------------------------
check_rpm() {
  local rpm_file=$1 arch=$2 machine=$3 list f
  echo "check: $rpm_file"
  rpm -K "$rpm_file" | grep 'digests OK' >/dev/null || fail "$rpm_file: rpm -K: $(rpm -K "$rpm_file")"
  ok "rpm -K: digests OK (unsigned)"
  [ "$(rpm -qp --qf '%{NAME} %{VERSION}-%{RELEASE} %{ARCH} %{OS}' "$rpm_file")" = \
    "medic-agent $version-1 $arch linux" ] || fail "$rpm_file: name, version, arch"
  ok "medic-agent $version-1, arch $arch"
  list=$(rpm -qpl "$rpm_file")
  for f in "${expected_files[@]}" /usr/lib/systemd/system/medic-agent.service \
    /var/lib/medic-agent/jobs; do
    grep -qx "$f" <<<"$list" || fail "$rpm_file: $f not in the file list"
  done
  rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm_file" |
    grep -x 'cn /etc/medic-agent/medic-agent.toml' >/dev/null || fail "$rpm_file: config(noreplace)"
  rpm -qplv "$rpm_file" | grep '^drwx------ .* medic-ag.* /var/lib/medic-agent/jobs$' >/dev/null ||
    fail "$rpm_file: jobs directory owned by medic-agent, mode 700"
  ok "file list: binary, unit, %config(noreplace) configuration, jobs directory (medic-agent, 700)"
  rpm -qp --scripts "$rpm_file" >"$work/scripts"
  grep -q 'useradd -r -g medic-agent' "$work/scripts" || fail "$rpm_file: %pre creates the user"
  grep -q 'systemctl --no-reload preset medic-agent.service' "$work/scripts" ||
    fail "$rpm_file: %post presets the unit"
  ! grep -q '%systemd' "$work/scripts" || fail "$rpm_file: unexpanded systemd macro"
  ok "scriptlets: user created in %pre, unit preset/disabled/restarted by the systemd macros"
  mkdir -p "$work/rpm-$arch"
  rpm2archive - <"$rpm_file" | tar -xzf - -C "$work/rpm-$arch" ./usr/bin/medic-agent
  [ "$(elf_machine "$work/rpm-$arch/usr/bin/medic-agent")" = "$machine" ] ||
    fail "$rpm_file: binary is not $machine"
  ok "/usr/bin/medic-agent is an ELF for $machine"
}
check_rpm "$rpm_x86_64" x86_64 "Advanced Micro Devices X86-64"
check_rpm "$rpm_aarch64" aarch64 AArch64

echo "check: $rpm_x86_64 in a scratch root"
sroot=$work/rpmroot
mkdir -p "$sroot"
rpm --root "$sroot" --initdb
rpm --root "$sroot" -i --nodeps --noscripts "$root/$rpm_x86_64" 2>"$work/rpm-i.log" ||
  fail "rpm -i: $(cat "$work/rpm-i.log")"
[ "$(rpm --root "$sroot" -q medic-agent)" = "medic-agent-$version-1.x86_64" ] || fail "rpm -q"
for f in "${expected_files[@]}" /usr/lib/systemd/system/medic-agent.service \
  /var/lib/medic-agent/jobs; do
  [ -e "$sroot$f" ] || fail "$f not installed"
done
ok "installed: rpm -q medic-agent-$version-1.x86_64, files in place"
[ "$("$sroot/usr/bin/medic-agent" --version)" = "medic-agent $version" ] || fail "binary runs"
ok "the installed binary runs: medic-agent --version"
# Without the user (no scriptlets here) rpm -V reports owner and group, nothing else.
rpm --root "$sroot" -V --nodeps medic-agent | grep -Ev '^\.{5}UG\.{2} ' >"$work/verify" || true
[ ! -s "$work/verify" ] || fail "rpm -V: $(cat "$work/verify")"
ok "rpm -V: sizes, digests and modes as packaged"
rpm --root "$sroot" -e --nodeps --noscripts medic-agent 2>"$work/rpm-e.log" ||
  fail "rpm -e: $(cat "$work/rpm-e.log")"
[ ! -e "$sroot/usr/bin/medic-agent" ] && [ ! -e "$sroot/etc/medic-agent" ] ||
  fail "rpm -e left files behind"
ok "rpm -e removes the binary and the unchanged configuration"

# ---- amd64 .deb on this machine ---------------------------------------------------------------
SKIP_BUILD=1 bash packaging/build-deb.sh --check

# ---- repositories ------------------------------------------------------------------------------
echo "check: APT and YUM repositories"
export GNUPGHOME=$work/gnupg
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key 'medic-agent repository check' \
  ed25519 sign 1d 2>/dev/null
key=$(gpg --batch --list-keys --with-colons | awk -F: '/^fpr/ { print $10; exit }')
REPO_GPG_KEY=$key bash packaging/make-repos.sh "$work/repo" >/dev/null
gpg --batch --dearmor <"$work/repo/medic-agent.asc" >"$work/repo-key.gpg"
gpgv --keyring "$work/repo-key.gpg" "$work/repo/apt/InRelease" 2>/dev/null ||
  fail "InRelease signature"
ok "apt: InRelease signed with the repository key"

if dpkg-query -W -f='${Status}' medic-agent 2>/dev/null | grep installed >/dev/null; then
  fail "medic-agent is installed here; the apt check will not touch it"
fi
aptdir=$work/aptconf
mkdir -p "$aptdir/lists/partial" "$aptdir/archives/partial"
echo "deb [signed-by=$work/repo-key.gpg] file://$work/repo/apt ./" >"$aptdir/sources.list"
apt_opts=(-o Dir::Etc::sourcelist="$aptdir/sources.list" -o Dir::Etc::sourceparts=/nonexistent
  -o Dir::State::Lists="$aptdir/lists" -o Dir::Cache::archives="$aptdir/archives"
  -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o DPkg::Lock::Timeout=600
  -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update >"$work/apt.log" 2>&1 || fail "apt-get update: $(cat "$work/apt.log")"
grep -q 'Ign\|Err' "$work/apt.log" && fail "apt-get update: $(cat "$work/apt.log")"
[ "$(apt-cache "${apt_opts[@]}" policy medic-agent | sed -n 's/^  Candidate: //p')" = "$version-1" ] ||
  fail "apt sees no candidate: $(apt-cache "${apt_opts[@]}" policy medic-agent)"
ok "apt-get update from the file:// repository, signature verified; candidate $version-1"
touch "$work/installed-by-check"
DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y --no-install-recommends \
  medic-agent >"$work/apt.log" 2>&1 || fail "apt-get install: $(cat "$work/apt.log")"
[ "$(dpkg-query -W -f='${Version} ${Architecture}' medic-agent)" = "$version-1 amd64" ] ||
  fail "installed version"
[ "$(/usr/bin/medic-agent --version)" = "medic-agent $version" ] || fail "installed binary runs"
getent passwd medic-agent >/dev/null || fail "user created"
ok "apt-get install medic-agent: installed, runs, user created"
dpkg --purge medic-agent >/dev/null 2>&1 || fail "purge after the apt install"
rm -f "$work/installed-by-check"
[ ! -e /usr/bin/medic-agent ] && ! getent passwd medic-agent >/dev/null || fail "purge"
ok "purged"

repomd=$work/repo/yum/repodata/repomd.xml
[ -f "$repomd" ] && [ -f "$repomd.asc" ] || fail "yum repodata or its signature missing"
gpg --batch --verify "$repomd.asc" "$repomd" 2>/dev/null || fail "repomd.xml signature"
primary=$(sed -n 's/.*<location href="\(repodata\/[^"]*primary.xml[^"]*\)".*/\1/p' "$repomd")
[ -n "$primary" ] || fail "no primary metadata in repomd.xml"
case "$primary" in
  *.gz) zcat "$work/repo/yum/$primary" ;;
  *.zst) zstd -dc "$work/repo/yum/$primary" ;;
  *.xz) xz -dc "$work/repo/yum/$primary" ;;
  *) cat "$work/repo/yum/$primary" ;;
esac >"$work/primary.xml"
for a in x86_64 aarch64; do
  grep -q "<arch>$a</arch>" "$work/primary.xml" || fail "yum metadata lacks $a"
  grep -q "href=\"medic-agent-$version-1.$a.rpm\"" "$work/primary.xml" || fail "yum location $a"
done
ok "yum: repomd.xml signed, primary metadata lists medic-agent for x86_64 and aarch64"

# ---- release tarball and Homebrew formula -------------------------------------------------------
echo "check: release tarball and Homebrew formula"
sha=$(sha256sum "$tarball" | cut -d' ' -f1)
grep -qx "  sha256 \"$sha\"" target/dist/medic-agent.rb || fail "formula sha256 is not the tarball's"
grep -qx "  url \".*/medic-agent-$version.tar.gz\"" target/dist/medic-agent.rb || fail "formula url"
! grep -q '@TARBALL_' target/dist/medic-agent.rb || fail "formula has unfilled tokens"
ok "formula: url .../medic-agent-$version.tar.gz, sha256 $sha"
if command -v ruby >/dev/null; then
  ruby -c target/dist/medic-agent.rb >/dev/null || fail "formula: ruby -c"
  ok "formula: ruby -c (syntax only; Homebrew and macOS are not available here)"
fi
tar -tzf "$tarball" >"$work/tarball.list"
for f in Cargo.toml Cargo.lock packaging/crates-io.lock src/main.rs \
  packaging/rpm/medic-agent.spec packaging/medic-agent.toml packaging/scripts.toml; do
  grep -qx "medic-agent-$version/$f" "$work/tarball.list" || fail "tarball lacks $f"
done
! grep -q '/packaging/homebrew/' "$work/tarball.list" || fail "tarball holds the formula"
ok "tarball: sources, both lock files, spec, default configuration (no formula)"
grep -q 'mv "packaging/crates-io.lock", "Cargo.lock"' target/dist/medic-agent.rb ||
  fail "formula does not build with the public-registry lock file"
grep -q 'std_cargo_args' target/dist/medic-agent.rb || fail "formula: cargo install without --locked"

echo "check: public-registry lock file"
python3 packaging/check-crates-io-lock.py || fail "packaging/crates-io.lock"
ok "crates-io.lock: checked against Cargo.lock and Debian's recorded checksums"
echo "package checks passed"
