#!/usr/bin/env bash
# Runs paperscope's whole test suite: fetches the model if needed (idempotent), then
# `cargo test --release` (tests run the real model; an unoptimised build is far slower).
# Needs ../shared beside the repository (real data and golden embeddings).
#
# Two passes over the same build: at this CPU's own level, then with the instruction sets
# lowered to AVX2 + FMA (PAPERSCOPE_CPU=avx2: no AVX-512, no AMX, no BF16 in oneDNN), the
# paths an AMD EPYC of the Zen 2/3 generations runs, so that both pass on any machine. Set
# PAPERSCOPE_CPU yourself (native, avx512, avx2, generic) to run one pass at that level.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-model.sh
if [ -n "${PAPERSCOPE_CPU:-}" ]; then
  echo "test.sh: one pass at PAPERSCOPE_CPU=$PAPERSCOPE_CPU" >&2
  exec cargo test --release "$@"
fi
echo "test.sh: pass 1 of 2, this CPU's own level ($(grep -o -m1 -E 'amx_bf16|avx512_bf16|avx512f|avx2' /proc/cpuinfo 2>/dev/null | sort -u | tr '\n' ' '))" >&2
cargo test --release "$@"
echo "test.sh: pass 2 of 2, PAPERSCOPE_CPU=avx2 (BF16 and AVX-512 paths off)" >&2
PAPERSCOPE_CPU=avx2 cargo test --release "$@"
