#!/usr/bin/env bash
# One command from a fresh clone to a searchable collection:
#   1. fetch the embedding model (scripts/fetch-model.sh, idempotent),
#   2. build paperscope (release),
#   3. index the bundled papers (data/emergent-papers.jsonl) into ./idx,
#   4. show a search and a "papers like this".
# Env: PAPERSCOPE_INDEX (default idx).
set -euo pipefail
cd "$(dirname "$0")/.."
IDX="${PAPERSCOPE_INDEX:-idx}"
scripts/fetch-model.sh
cargo build --release
BIN=target/release/paperscope
"$BIN" index --out "$IDX" data/emergent-papers.jsonl
echo; echo "\$ paperscope search --index $IDX -k 5 \"emergent misalignment after narrow finetuning\""
"$BIN" search --index "$IDX" -k 5 "emergent misalignment after narrow finetuning"
echo; echo "\$ paperscope similar --index $IDX -k 5 seed-007"
"$BIN" similar --index "$IDX" -k 5 seed-007
