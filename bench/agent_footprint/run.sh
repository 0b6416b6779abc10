#!/usr/bin/env bash
# medic-agent footprint: builds the release binary offline, then measures the stripped binary's
# size and the agent's resident memory while it is blocked in a long poll, over plain HTTP and
# over TLS (a throwaway CA). Targets: binary <= 1.5 MiB, idle RSS <= 3.5 MiB.
#
#   bash bench/agent_footprint/run.sh          build, then measure over HTTP and over TLS
#   SKIP_BUILD=1 bash bench/agent_footprint/run.sh
#   BENCH_ARCH=aarch64 bash bench/agent_footprint/run.sh   the arm64 binary under qemu-user
#                                              (cross-built offline; root installs the toolchain)
#
# The measuring itself is agent-rs/bench_footprint.sh (one transport per run; its header lists
# more knobs). Figures: docs/performance.md, "medic-agent footprint".
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export BENCH_ARCH=${BENCH_ARCH:-x86_64}
[ -n "${SKIP_BUILD:-}" ] || bash "$ROOT/agent-rs/build.sh" release "$BENCH_ARCH" >/dev/null
echo "== $BENCH_ARCH, over HTTP"
SKIP_BUILD=1 bash "$ROOT/agent-rs/bench_footprint.sh"
echo "== $BENCH_ARCH, over TLS"
SKIP_BUILD=1 BENCH_TLS=1 bash "$ROOT/agent-rs/bench_footprint.sh"
