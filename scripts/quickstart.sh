#!/usr/bin/env bash
# One command from a fresh clone to a searchable collection:
#   1. fetch the embedding model (scripts/fetch-model.sh, idempotent),
#   2. build paperscope (release),
#   3. index the bundled papers (data/emergent-papers.jsonl) into ./idx,
#   4. show a search and a "papers like this",
#   5. serve the index over HTTP until Ctrl-C.
# Env: PAPERSCOPE_INDEX (default idx), PAPERSCOPE_ADDR (default 127.0.0.1:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
IDX="${PAPERSCOPE_INDEX:-idx}"
scripts/fetch-model.sh
# oneDNN (libdnnl2) runs the embedder's matrix multiplies, in BF16 on AMX tiles where the
# CPU has them: several times faster. Optional: without it a pure-Rust engine is used.
if ! ldconfig -p 2>/dev/null | grep -q libdnnl.so.2 && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  { apt-get install -y -qq libdnnl2 || { apt-get update -qq && apt-get install -y -qq libdnnl2; }; } >/dev/null 2>&1 || true
fi
cargo build --release
BIN=target/release/paperscope
"$BIN" index --out "$IDX" data/emergent-papers.jsonl
echo; echo "\$ paperscope search --index $IDX -k 5 \"emergent misalignment after narrow finetuning\""
"$BIN" search --index "$IDX" -k 5 "emergent misalignment after narrow finetuning"
echo; echo "\$ paperscope similar --index $IDX -k 5 seed-007"
"$BIN" similar --index "$IDX" -k 5 seed-007
echo
ADDR="${PAPERSCOPE_ADDR:-127.0.0.1:8080}"
echo "open http://$ADDR/ in a browser (search, papers, for you, topics),"
echo "or try: curl 'http://$ADDR/v1/search?q=emergent+abilities+of+language+models&k=5'"
echo "add papers while it runs: $BIN add --index $IDX FILE.jsonl (the server follows each commit)"
exec "$BIN" serve --index "$IDX" --addr "$ADDR"
