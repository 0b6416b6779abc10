#!/usr/bin/env bash
# Builds medic-agent from Debian's packaged crate sources: no public crate registry needed.
#
#   ./build.sh                  debug build
#   ./build.sh release          stripped release binary in target/release/medic-agent
#   ./build.sh test             cargo fmt --check, cargo clippy -D warnings, cargo test
#   ./build.sh release aarch64  arm64 Linux, cross-compiled: the stripped binary lands in
#                               target/aarch64-unknown-linux-gnu/release/medic-agent
#   ./build.sh test aarch64     the whole test suite built for arm64 and run under qemu-user
#   ./build.sh dist             release tarball, vendored crates, Homebrew formula in
#                               target/dist/ (packaging/dist.sh)
#   ./build.sh env aarch64      prints the arm64 cross-build environment (for eval)
#   ./build.sh deps             installs all of the packages the above need (root)
#   ./build.sh cargo ARGS       run any cargo command against the Debian source
#
# The arm64 targets use Debian's rustc-web/cargo-web (which ship the arm64 standard library),
# gcc-aarch64-linux-gnu as linker and qemu-user with binfmt_misc for the tests; run as root
# they install these with apt and register the binfmt handler.
#
# Cargo.lock in this folder was resolved against that source and carries its placeholder
# checksums; it does not work with the public registry (see README, "Elsewhere").
set -euo pipefail
cd "$(dirname "$0")"

REGISTRY=/usr/share/cargo/registry
CRATE_PACKAGES=(
  librust-rustls-dev librust-rustls-pemfile-dev librust-rustls-native-certs-dev
  librust-serde-dev librust-serde-derive-dev librust-serde-json-dev librust-toml-dev
  librust-sha2-dev librust-libc-dev librust-openssl-probe-dev
)
# arm64: a rustc that ships the aarch64 standard library, a cross linker/C compiler (ring),
# and user-mode emulation for the tests.
ARM64_TRIPLE=aarch64-unknown-linux-gnu
ARM64_PACKAGES=(
  rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross
  qemu-user qemu-user-binfmt
)

# ensure_packages PACKAGE...: installs the missing ones with apt (root), else names them.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "build.sh: missing packages: ${missing[*]}" >&2
    echo "build.sh: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "build.sh: installing ${missing[*]}" >&2
  local p_arch
  for p in "${missing[@]}"; do
    p_arch=${p#*:}
    if [ "$p_arch" != "$p" ] && ! dpkg --print-foreign-architectures | grep -qx "$p_arch"; then
      dpkg --add-architecture "$p_arch"
    fi
  done
  # Waits for a concurrent apt/dpkg run instead of failing on its lock.
  local apt=(apt-get -o DPkg::Lock::Timeout=600)
  "${apt[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# debian_cargo SUBCOMMAND ARGS...: the source options go after the subcommand so that
# external subcommands (clippy) hand them on to the cargo they start. CARGO picks the cargo
# (rustup's by default; Debian's for arm64).
debian_cargo() {
  local sub=$1
  shift
  "${CARGO:-cargo}" "$sub" --offline \
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

# Registers qemu-aarch64 with binfmt_misc so that arm64 programs started by the tests (the
# agent binary, spawned by the integration tests) run transparently.
ensure_binfmt_aarch64() {
  local dir=/proc/sys/fs/binfmt_misc
  [ -e "$dir/qemu-aarch64" ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "build.sh: qemu-aarch64 is not registered with binfmt_misc (run as root)" >&2
    exit 1
  fi
  [ -e "$dir/register" ] || mount -t binfmt_misc binfmt_misc "$dir"
  if [ ! -e "$dir/qemu-aarch64" ]; then
    # The rule file holds one registration line for the register file.
    grep -v '^#' /usr/lib/binfmt.d/qemu-aarch64.conf >"$dir/register"
  fi
}

# Environment for the arm64 cross build with Debian's toolchain (rustup's first in PATH is
# not touched: the paths are explicit).
arm64_env() {
  ensure_packages "${ARM64_PACKAGES[@]}"
  export CARGO=/usr/bin/cargo RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
  # Not `-L /usr/aarch64-linux-gnu`: programs run with the arm64 libc the system installed
  # (libc6:arm64); the cross libc's ld.so with it makes threaded programs hang.
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64
  # A build directory of its own, so that the arm64 build and tests can run while the x86_64
  # ones do (cargo locks a build directory's host profile for cross builds too).
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/cross}
}

# Tests that cannot hold under qemu-user, with why. They are skipped by name (cargo test
# lists them as filtered out) and named in the output, never reported as passed.
EMULATION_SKIPS=(
  # qemu-user does not pass RLIMIT_AS on to the kernel (it emulates the guest's address
  # space), and the scripts the agent starts are host programs, so they run without it: a
  # pass there would not be the limit's doing.
  "memory_hog_is_stopped_by_rlimit_as"
  "address_space_limit_is_applied"
)

release_aarch64() {
  arm64_env
  debian_cargo build --release --locked --target "$ARM64_TRIPLE"
  bin=target/$ARM64_TRIPLE/release/medic-agent
  install -D -m0755 "$CARGO_TARGET_DIR/$ARM64_TRIPLE/release/medic-agent" "$bin"
  echo "$bin: $(stat -c %s "$bin") bytes"
}

test_aarch64() {
  arm64_env
  ensure_binfmt_aarch64
  local skips=() t
  for t in "${EMULATION_SKIPS[@]}"; do
    echo "build.sh: not run under emulation: $t (qemu-user does not enforce RLIMIT_AS)" >&2
    skips+=(--skip "$t")
  done
  debian_cargo test --locked --target "$ARM64_TRIPLE" -- "${skips[@]}"
}

need_cargo() {
  if ! command -v cargo >/dev/null; then
    echo "build.sh: cargo not found (rustup's toolchain, with rustfmt and clippy, is expected)" >&2
    exit 1
  fi
}

case "${1:-build}" in
  build)
    need_cargo
    ensure_packages "${CRATE_PACKAGES[@]}"
    debian_cargo build --locked
    ;;
  release)
    ensure_packages "${CRATE_PACKAGES[@]}"
    case "${2:-}" in
      aarch64 | arm64)
        release_aarch64
        exit 0
        ;;
      "" | x86_64 | amd64) ;;
      *) echo "build.sh: unknown architecture ${2}" >&2; exit 2 ;;
    esac
    need_cargo
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
    ensure_packages "${CRATE_PACKAGES[@]}"
    case "${2:-}" in
      aarch64 | arm64)
        test_aarch64
        exit 0
        ;;
      "" | x86_64 | amd64) ;;
      *) echo "build.sh: unknown architecture ${2}" >&2; exit 2 ;;
    esac
    need_cargo
    cargo fmt --check
    debian_cargo clippy --locked --all-targets -- -D warnings
    debian_cargo test --locked
    ;;
  deps)
    # Everything the targets above and packaging/release.sh install on demand, at once: run
    # before starting several of them in parallel, so that they do not race for apt's locks.
    ensure_packages "${CRATE_PACKAGES[@]}" "${ARM64_PACKAGES[@]}" rpm apt-utils createrepo-c
    ;;
  dist)
    ensure_packages "${CRATE_PACKAGES[@]}"
    bash packaging/dist.sh
    ;;
  env)
    # `eval "$(build.sh env aarch64)"`: the cross-build environment for other tools
    # (packaging/build-rpm.sh), with the toolchain installed and binfmt_misc set up.
    [ "${2:-}" = aarch64 ] || { echo "build.sh env: only aarch64" >&2; exit 2; }
    arm64_env >&2
    ensure_binfmt_aarch64 >&2
    for v in CARGO RUSTC RUSTDOC CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER \
      CC_aarch64_unknown_linux_gnu CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER; do
      printf 'export %s=%q\n' "$v" "${!v}"
    done
    ;;
  cargo)
    need_cargo
    ensure_packages "${CRATE_PACKAGES[@]}"
    shift
    debian_cargo "$@"
    ;;
  *)
    sed -n '2,22p' "$0" >&2
    exit 2
    ;;
esac
