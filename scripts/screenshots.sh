#!/usr/bin/env bash
# Screenshots of the web app for the README, at desktop (1440 px) and phone (375 px)
# width, with headless Chromium (Debian: apt-get install chromium): the search page, a
# results page, a paper page, /for-you (two likes imported through its share link) and
# /topics. Builds an index of the seed papers plus 400 arXiv records, serves it on a free
# loopback port, writes docs/screenshots/*.png. Rerunnable; nothing leaves the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
chromium=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chromium" ] || { echo "screenshots: chromium not installed (apt-get install chromium)" >&2; exit 1; }
out=docs/screenshots
work=target/screenshots
mkdir -p "$out" "$work"
# PAPERSCOPE_BIN: a paperscope binary to use instead of building one.
bin=${PAPERSCOPE_BIN:-target/release/paperscope}
[ -n "${PAPERSCOPE_BIN:-}" ] || cargo build --release -q --bin paperscope
# (zcat ends on SIGPIPE when head has its lines: not a failure.)
{ zcat ../shared/data/arxiv_papers/papers.jsonl.gz || true; } | head -n 400 > "$work/arxiv-400.jsonl"
[ "$(wc -l < "$work/arxiv-400.jsonl")" = 400 ] || { echo "screenshots: cannot read ../shared/data/arxiv_papers" >&2; exit 1; }
"$bin" index --out "$work/idx" data/emergent-papers.jsonl "$work/arxiv-400.jsonl" 2>/dev/null
"$bin" serve --index "$work/idx" --addr 127.0.0.1:0 2> "$work/serve.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 300); do
  base=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.log" || true)
  [ -n "$base" ] && break
  sleep 0.2
done
[ -n "$base" ] || { cat "$work/serve.log" >&2; exit 1; }
shot() { # name url width height
  "$chromium" --headless=new --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --virtual-time-budget=15000 --window-size="$3,$4" --screenshot="$out/$1.png" "$2" >/dev/null 2>&1
  echo "$out/$1.png: $(stat -c %s "$out/$1.png") bytes"
}
pages=(
  "search|$base/"
  "results|$base/?q=emergent+misalignment+after+narrow+finetuning"
  "paper|$base/papers/seed-007"
  "for-you|$base/for-you#likes=seed-007,seed-009"
  "topics|$base/topics?q=emergent&k=5"
)
for p in "${pages[@]}"; do
  name=${p%%|*} url=${p#*|}
  shot "$name-desktop" "$url" 1440 1000
  shot "$name-phone" "$url" 375 812
done
