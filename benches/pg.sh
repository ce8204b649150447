#!/usr/bin/env bash
# The PostgreSQL store against the local index on the same papers, on this machine, in one
# run (README, "Scaling out"): writing into PostgreSQL, and search / similar QPS and
# latency over HTTP for the local index, one shard and two shards.
#
#   scripts/pg-cluster.sh start /tmp/paperscope-pg && eval "$(scripts/pg-cluster.sh env /tmp/paperscope-pg)"
#   benches/pg.sh [PAPERS]            # default 20000; results in target/bench/pg/
#
# Steps (each prints its figures; the load tables come from benches/load.py with wrk):
#  1. the local index of the first PAPERS arXiv records (built once, reused);
#  2. fresh databases `bench1` (shard 1) and `bench2` (shards 1 and 2); the local index's
#     records and vectors written into each (`index --from-index`: the write path without
#     embedding), timed: papers/s and the bytes PostgreSQL holds per paper;
#  3. 2,000 records indexed into PostgreSQL from the file (embedding included) and the same
#     into a local index, timed, so that the store's share of the cost is visible;
#  4. benches/load.py against the local index, then one shard, then two shards.
# The two shards are two servers on the same 2 cores: they show the fan-out's cost, not the
# capacity a second machine would add.
set -euo pipefail
cd "$(dirname "$0")/.."
papers=${1:-20000}
: "${PAPERSCOPE_PG_SHARDS:?start the cluster: scripts/pg-cluster.sh start DIR; eval \"\$(scripts/pg-cluster.sh env DIR)\"}"
: "${PAPERSCOPE_PG_BIN:?}"
data=../shared/data/arxiv_papers/papers.jsonl.gz
out=target/bench/pg
mkdir -p "$out"
# PAPERSCOPE_BIN: a built binary (e.g. the one `cargo test --release` left), else built here.
bin=${PAPERSCOPE_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release -q --bin paperscope
  bin=$PWD/target/release/paperscope
fi
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"

shard1=${PAPERSCOPE_PG_SHARDS%%,*}
shard2=${PAPERSCOPE_PG_SHARDS#*,}
with_db() { echo "${1%/*}/$2"; }
psql_at() { # URL SQL
  "$PAPERSCOPE_PG_BIN/psql" "$1" -qAt -c "$2"
}
fresh() { # URL DB -> URL of a fresh database DB on URL's server
  psql_at "$(with_db "$1" postgres)" "DROP DATABASE IF EXISTS $2 WITH (FORCE)" >/dev/null
  psql_at "$(with_db "$1" postgres)" "CREATE DATABASE $2" >/dev/null
  with_db "$1" "$2"
}

local_idx=$out/idx-$papers
if [ ! -f "$local_idx/manifest.json" ]; then
  echo "== local index of $papers papers"
  "$bin" index --out "$local_idx" --limit "$papers" "$data" --json | tee "$out/local-index.json"
fi

echo "== writing $papers papers (records + vectors, no embedding) into PostgreSQL"
one=$(fresh "$shard1" bench1)
two="$(fresh "$shard1" bench2),$(fresh "$shard2" bench2)"
for name in one two; do
  url=${!name}
  "$bin" index --out "$url" --from-index "$local_idx" --json >"$out/write-$name.json"
  python3 - "$out/write-$name.json" "$name" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"  {sys.argv[2]} shard(s): {r['papers']} papers in {r['seconds']:.1f} s = {r['papers_per_second']:.0f} papers/s")
EOF
done
bytes=$(psql_at "$(with_db "$shard1" bench1)" "SELECT pg_database_size('bench1')")
base=$(psql_at "$(with_db "$shard1" postgres)" "SELECT pg_database_size('template1')")
table=$(psql_at "$(with_db "$shard1" bench1)" "SELECT pg_total_relation_size('papers')")
hnsw=$(psql_at "$(with_db "$shard1" bench1)" "SELECT pg_relation_size(indexrelid) FROM pg_index WHERE indrelid = 'papers'::regclass AND pg_get_indexdef(indexrelid) LIKE '%hnsw%'")
echo "  storage (one shard): $(( (bytes - base) / papers )) B/paper in the database, $(( table / papers )) B/paper table + indexes, HNSW $(( hnsw / papers )) B/paper"
echo "  local index: $(( $(du -sb "$local_idx" | cut -f1) / papers )) B/paper on disk"

echo "== indexing 2000 records from the file, embedding included"
small=$(fresh "$shard1" bench_small)
/usr/bin/time -f "  into PostgreSQL: %e s, %M KiB max RSS" "$bin" index --out "$small" --limit 2000 "$data" --json >/dev/null
rm -rf "$out/idx-small"
/usr/bin/time -f "  into a local index: %e s, %M KiB max RSS" "$bin" index --out "$out/idx-small" --limit 2000 "$data" --json >/dev/null

duration=${PAPERSCOPE_BENCH_SECONDS:-10}
for name in local one two; do
  for mode in semantic keyword; do
    echo "== load: $name, /v1/search?mode=$mode"
    serve=()
    [ "$name" = one ] && serve=(--serve "$one")
    [ "$name" = two ] && serve=(--serve "$two")
    python3 benches/load.py --index "$local_idx" "${serve[@]}" --binary "$bin" --conns 1 \
      --endpoints search --mode $mode --duration "$duration" | grep '^| /v1' | sed "s/^/  /"
  done
done
for name in local one two; do
  echo "== load: $name"
  serve=()
  [ "$name" = one ] && serve=(--serve "$one")
  [ "$name" = two ] && serve=(--serve "$two")
  python3 benches/load.py --index "$local_idx" "${serve[@]}" --binary "$bin" --conns 1,16 \
    --duration "$duration" --json "$out/load-$name.json" | sed "s/^/  /"
done

echo "== SciFact train (809 judged queries), nDCG@10: local index vs PostgreSQL (2 shards)"
D=../shared/data/scifact_beir
sci=$out/scifact-idx
sci_pg="$(fresh "$shard1" bench_scifact),$(fresh "$shard2" bench_scifact)"
for mode in keyword semantic hybrid; do
  "$bin" eval retrieval --corpus $D/corpus.jsonl --queries $D/queries.jsonl \
    --qrels $D/qrels/train.tsv --index "$sci" --mode $mode 2>/dev/null | sed -n "1s/^/  local      $mode: /p"
done
"$bin" index --out "$sci_pg" --from-index "$sci" --json >/dev/null
for mode in keyword semantic hybrid; do
  "$bin" eval retrieval --corpus $D/corpus.jsonl --queries $D/queries.jsonl \
    --qrels $D/qrels/train.tsv --index "$sci_pg" --mode $mode 2>/dev/null | sed -n "1s/^/  PostgreSQL $mode: /p"
done
