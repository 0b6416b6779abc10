#!/usr/bin/env bash
# Builds medic-agent from Debian's packaged crate sources: no public crate registry needed.
#
#   ./build.sh            debug build
#   ./build.sh release    stripped release binary in target/release/medic-agent
#   ./build.sh test       cargo fmt --check, cargo clippy -D warnings, cargo test
#   ./build.sh cargo ARGS run any cargo command against the Debian source
#
# Cargo.lock in this folder was resolved against that source and carries its placeholder
# checksums; it does not work with the public registry (see README, "Building elsewhere").
set -euo pipefail
cd "$(dirname "$0")"

REGISTRY=/usr/share/cargo/registry
CRATE_PACKAGES=(
  librust-rustls-dev librust-rustls-pemfile-dev librust-rustls-native-certs-dev
  librust-serde-dev librust-serde-derive-dev librust-serde-json-dev librust-toml-dev
  librust-sha2-dev librust-libc-dev librust-openssl-probe-dev
)

ensure_crates() {
  local missing=() p
  for p in "${CRATE_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "build.sh: missing crate packages: ${missing[*]}" >&2
    echo "build.sh: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "build.sh: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# debian_cargo SUBCOMMAND ARGS...: the source options go after the subcommand so that
# external subcommands (clippy) hand them on to the cargo they start.
debian_cargo() {
  local sub=$1
  shift
  cargo "$sub" --offline \
    --config 'source.crates-io.replace-with="debian"' \
    --config "source.debian.directory=\"$REGISTRY\"" \
    "$@"
}

uses_rust_lld() {
  local v host minor
  v=$(rustc -vV) || return 1
  host=$(sed -n 's/^host: //p' <<<"$v")
  minor=$(sed -n 's/^release: 1\.\([0-9]*\).*/\1/p' <<<"$v")
  [ "$host" = x86_64-unknown-linux-gnu ] && [ "${minor:-0}" -ge 90 ]
}

if ! command -v cargo >/dev/null; then
  echo "build.sh: cargo not found (rustup's toolchain, with rustfmt and clippy, is expected)" >&2
  exit 1
fi
ensure_crates

case "${1:-build}" in
  build)
    debian_cargo build --locked
    ;;
  release)
    # Footprint link options: RELR-packed relocations (the binary then needs glibc >= 2.36)
    # and identical-code folding. Both need lld, rustc's default linker on x86_64 Linux since
    # 1.90; elsewhere, or with RUSTFLAGS already set, the release profile alone applies.
    if [ -z "${RUSTFLAGS:-}" ] && uses_rust_lld; then
      export RUSTFLAGS="-C link-arg=-Wl,-z,pack-relative-relocs -C link-arg=-Wl,--icf=all"
    fi
    debian_cargo build --release --locked
    bin=target/release/medic-agent
    echo "$bin: $(stat -c %s "$bin") bytes"
    ;;
  test)
    cargo fmt --check
    debian_cargo clippy --locked --all-targets -- -D warnings
    debian_cargo test --locked
    ;;
  cargo)
    shift
    debian_cargo "$@"
    ;;
  *)
    sed -n '2,9p' "$0" >&2
    exit 2
    ;;
esac
