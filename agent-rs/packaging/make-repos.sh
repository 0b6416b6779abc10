#!/usr/bin/env bash
# Package repositories for medic-agent from the built packages:
#
#   OUT/apt/  an APT repository (flat layout: Packages, Release, InRelease when signed)
#             made with apt-ftparchive from target/debian/*.deb
#   OUT/yum/  a YUM/DNF repository (repodata/ made with createrepo_c) from target/rpm/*.rpm
#
#   packaging/make-repos.sh OUT
#   REPO_GPG_KEY=KEYID packaging/make-repos.sh OUT   sign: InRelease and Release.gpg for apt,
#                                                    repodata/repomd.xml.asc for yum, and the
#                                                    public key as OUT/medic-agent.asc
#   GNUPGHOME=... selects the keyring that holds the key, as for gpg itself.
#
# Host OUT with any static web server; docs/agent.md ("Package repositories") shows the
# client side. apt-utils and createrepo-c are installed with apt when run as root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out=${1:?usage: make-repos.sh OUT}
mkdir -p "$out"
out=$(cd "$out" && pwd)

need=()
command -v apt-ftparchive >/dev/null || need+=(apt-utils)
command -v createrepo_c >/dev/null || need+=(createrepo-c)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "make-repos.sh: missing ${need[*]} (apt-get install them, or run as root)" >&2
    exit 1
  fi
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${need[@]}" >/dev/null
fi

shopt -s nullglob
debs=("$root"/target/debian/*.deb)
rpms=("$root"/target/rpm/*.rpm)
shopt -u nullglob
[ ${#debs[@]} -gt 0 ] || { echo "make-repos.sh: no .deb in target/debian" >&2; exit 1; }
[ ${#rpms[@]} -gt 0 ] || { echo "make-repos.sh: no .rpm in target/rpm" >&2; exit 1; }

sign=()
if [ -n "${REPO_GPG_KEY:-}" ]; then
  sign=(gpg --batch --quiet --yes --local-user "$REPO_GPG_KEY")
  gpg --batch --quiet --armor --export "$REPO_GPG_KEY" >"$out/medic-agent.asc"
fi

# ---- APT ---------------------------------------------------------------------------------------
# Flat repository: one directory, sources line `deb [signed-by=KEY] URL/apt ./`.
apt_dir=$out/apt
rm -rf "$apt_dir"
mkdir -p "$apt_dir"
cp "${debs[@]}" "$apt_dir/"
(
  cd "$apt_dir"
  apt-ftparchive packages . >Packages
  gzip -9nk Packages
  archs=$(sed -n 's/^Architecture: //p' Packages | sort -u | tr '\n' ' ')
  apt-ftparchive \
    -o APT::FTPArchive::Release::Origin=Medic \
    -o APT::FTPArchive::Release::Label=medic-agent \
    -o APT::FTPArchive::Release::Architectures="${archs% }" \
    -o APT::FTPArchive::Release::Description="medic-agent packages" \
    release . >Release.tmp
  mv Release.tmp Release
  if [ ${#sign[@]} -gt 0 ]; then
    "${sign[@]}" --clearsign -o InRelease Release
    "${sign[@]}" --armor --detach-sign -o Release.gpg Release
  fi
)

# ---- YUM/DNF -------------------------------------------------------------------------------------
yum_dir=$out/yum
rm -rf "$yum_dir"
mkdir -p "$yum_dir"
cp "${rpms[@]}" "$yum_dir/"
createrepo_c --quiet "$yum_dir"
if [ ${#sign[@]} -gt 0 ]; then
  "${sign[@]}" --armor --detach-sign -o "$yum_dir/repodata/repomd.xml.asc" \
    "$yum_dir/repodata/repomd.xml"
fi

echo "apt repository: $apt_dir ($(grep -c '^Package:' "$apt_dir/Packages") packages${sign:+, signed})"
echo "yum repository: $yum_dir (${#rpms[@]} packages${sign:+, signed})"
