#!/usr/bin/env bash
# The living collection at scale (README, "A living collection"): build or migrate an
# index of all but the last N papers of DATA, then measure, each with wall time and peak
# memory (GNU time): every paper reachable, add the last N papers, re-index the unchanged
# collection, remove N papers, queries over 1 and over 20 segments, compaction.
#
#   benches/living.sh DATA.jsonl[.gz] WORKDIR [N]
#
# WORKDIR/idx is reused: an index there (format 1 or 2, same model) lends its vectors, so
# only a first run embeds the whole collection. Prints a Markdown table on stdout.
set -euo pipefail
data=$1
work=$2
n=${3:-1000}
bin=${PAPERSCOPE_BIN:-$(dirname "$0")/../target/release/paperscope}
mkdir -p "$work"
idx=$work/idx

# The split: base = all but the last N records, extra = the last N.
if [ ! -s "$work/base.jsonl" ]; then
  python3 - "$data" "$work" "$n" <<'EOF'
import gzip, sys
data, work, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
opener = gzip.open if data.endswith(".gz") else open
with opener(data, "rt") as f:
    lines = [l for l in f if l.strip()]
with open(f"{work}/base.jsonl", "w") as f:
    f.writelines(lines[:-n])
with open(f"{work}/extra.jsonl", "w") as f:
    f.writelines(lines[-n:])
EOF
fi
python3 -c "import json,sys; [print(json.loads(l)['id']) for l in open(sys.argv[1])]" \
  "$work/extra.jsonl" > "$work/extra-ids.txt"

row() { # label, command...: one table row with seconds, peak MB and the JSON summary's notes
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out.json" 2> "$work/err" || { cat "$work/err" >&2; exit 1; }
  read -r secs kb < "$work/time"
  local notes
  notes=$(python3 - "$work/out.json" <<'EOF'
import json, sys
try:
    s = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
except Exception:
    print(""); sys.exit()
keys = ["papers", "added", "removed", "unchanged", "embedded", "reused", "segments",
        "embed_seconds", "graph_seconds", "unreachable_before_repair", "unreachable",
        "recall@10", "min_recall", "ann_ms", "missed"]
print(", ".join(f"{k} {round(s[k], 3) if isinstance(s[k], float) else s[k]}" for k in keys if k in s))
EOF
)
  printf '| %s | %.1f | %d | %s |\n' "$label" "$secs" $((kb / 1024)) "$notes"
}

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores), $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| step | seconds | peak MB | result |"
echo "|---|---:|---:|---|"
row "index $(wc -l < "$work/base.jsonl") papers (vectors reused if $idx had them)" \
  "$bin" index --replace --json --out "$idx" "$work/base.jsonl"
row "every paper reachable (eval recall --all)" "$bin" eval recall --index "$idx" --all --json
row "recall@10, 2,000 sampled papers" "$bin" eval recall --index "$idx" --queries 2000 --json
row "add $n new papers" "$bin" add --json --index "$idx" "$work/extra.jsonl"
row "re-index the unchanged collection" \
  "$bin" index --json --out "$idx" "$work/base.jsonl" "$work/extra.jsonl"
row "remove $n papers" "$bin" remove --json --index "$idx" --ids-from "$work/extra-ids.txt"
row "compact" "$bin" compact --json --index "$idx"
row "queries, 1 segment (1,000 sampled papers)" "$bin" eval recall --index "$idx" --queries 1000 --json
# 19 more segments: copies of 50 papers each under new ids (same texts: no embedding).
for k in $(seq 1 19); do
  python3 - "$work/base.jsonl" "$work/copies-$k.jsonl" "$k" <<'EOF'
import json, sys
src, out, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(src) as f, open(out, "w") as o:
    for i, line in enumerate(f):
        if i % 2000 == k:
            r = json.loads(line)
            r["id"] = f"copy{k}-{r['id']}"
            o.write(json.dumps(r) + "\n")
EOF
  "$bin" add --no-merge --index "$idx" "$work/copies-$k.jsonl" 2> /dev/null
done
row "queries, 20 segments (1,000 sampled papers)" "$bin" eval recall --index "$idx" --queries 1000 --json
row "every paper reachable, 20 segments" "$bin" eval recall --index "$idx" --all --json
row "compact 20 segments into 1" "$bin" compact --json --index "$idx"
