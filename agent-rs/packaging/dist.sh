#!/usr/bin/env bash
# Release sources of medic-agent, in target/dist/:
#
#   medic-agent-VERSION.tar.gz         the agent-rs folder as committed (git ls-files), packed
#                                      reproducibly: the same files give the same bytes
#   medic-agent-VERSION-vendor.tar.gz  vendor/: the crate sources Cargo.lock names, taken from
#                                      Debian's librust-*-dev packages, for offline builds
#                                      (the RPM spec builds from it)
#   medic-agent.rb                     the Homebrew formula with url and sha256 of the tarball
#   SHA256SUMS
#
#   packaging/dist.sh       (or: build.sh dist)
#   DIST_URL=https://example.com/releases packaging/dist.sh   where the tarball will be hosted
#                                      (the formula's url; default: the project's release URL)
#
# The Homebrew formula is not part of the source tarball: it carries the tarball's checksum.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root"

REGISTRY=/usr/share/cargo/registry
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
name=medic-agent-$version
out=$root/target/dist
url_base=${DIST_URL:-https://medic.example.com/releases}
mkdir -p "$out"

# Reproducible: sorted names, one fixed timestamp (the last commit of this folder, or
# SOURCE_DATE_EPOCH), numeric root ownership, normalised modes, gzip without name and time.
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct -- . 2>/dev/null || echo 0)}
tar_opts=(--sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner
  --mode='u+w,go-w,a+rX' --format=gnu)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ---- source tarball ---------------------------------------------------------------------------
git ls-files -z -- . ':!packaging/homebrew' >"$work/files"
if [ ! -s "$work/files" ]; then
  echo "dist.sh: no tracked files under agent-rs (not a git checkout?)" >&2
  exit 1
fi
tar "${tar_opts[@]}" --null -T "$work/files" --transform "s,^,$name/," -cf - | gzip -9n \
  >"$out/$name.tar.gz"

# ---- vendored crate sources -------------------------------------------------------------------
# Every package of Cargo.lock, as cargo's directory source wants it (name-version/ with its
# .cargo-checksum.json), including crates for other targets: cargo checks the whole lock.
mkdir -p "$work/$name/vendor"
awk '/^\[\[package\]\]/ { n = ""; v = ""; s = 0 }
     /^name = /    { n = $3 }
     /^version = / { v = $3 }
     /^source = /  { s = 1 }
     /^$/ && s     { gsub(/"/, "", n); gsub(/"/, "", v); print n "-" v; s = 0 }
     END           { if (s) { gsub(/"/, "", n); gsub(/"/, "", v); print n "-" v } }' \
  Cargo.lock >"$work/crates"
while read -r crate; do
  if [ ! -f "$REGISTRY/$crate/Cargo.toml" ]; then
    echo "dist.sh: $crate is not in $REGISTRY (run build.sh once as root to install it)" >&2
    exit 1
  fi
  cp -rL "$REGISTRY/$crate" "$work/$name/vendor/$crate"
done <"$work/crates"
tar "${tar_opts[@]}" -C "$work/$name" -cf - vendor | gzip -6n >"$out/$name-vendor.tar.gz"

# ---- Homebrew formula -------------------------------------------------------------------------
sha=$(sha256sum "$out/$name.tar.gz" | cut -d' ' -f1)
sed -e "s|^  url \".*\"|  url \"$url_base/$name.tar.gz\"|" \
  -e "s|^  sha256 \".*\"|  sha256 \"$sha\"|" \
  packaging/homebrew/medic-agent.rb >"$out/medic-agent.rb"
grep -q "sha256 \"$sha\"" "$out/medic-agent.rb" || {
  echo "dist.sh: could not set the formula's sha256" >&2
  exit 1
}

(cd "$out" && sha256sum "$name.tar.gz" "$name-vendor.tar.gz" medic-agent.rb >SHA256SUMS)
echo "dist: $out"
sed 's/^/  /' "$out/SHA256SUMS"
