#!/usr/bin/env bash
# Runs paperscope's whole test suite: fetches the model if needed (idempotent), then
# `cargo test --release` (tests run the real model; an unoptimised build is far slower).
# Needs ../shared beside the repository (real data and golden embeddings).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-model.sh
exec cargo test --release "$@"
