#!/usr/bin/env python3
"""Approximate nearest neighbours, side by side: paperscope's HNSW (hnsw_rs, through
paperscope's index) against hnswlib, on the same vectors, queries and parameters.

Vectors: those of a paperscope index (`vectors.f32`, e.g. the first 20,000 papers of
../shared/data/arxiv_papers). Queries: 1,000 papers of the same file that are not in the
index, embedded by `paperscope embed` (held out, like a new paper looking for its
neighbours). Truth: exact top-10 by inner product (the vectors are unit length).

Both engines build with M = 16, ef_construction = 200 on 2 threads (hnswlib's build is
timed here, paperscope's is the index manifest's `graph_seconds`), then answer all
queries on 2 threads at each ef; recall@10 and queries/s are printed for each, and, per
engine, the query rate at the smallest ef reaching recall@10 >= 0.99. Query rates are
medians of 3 rounds that alternate between the engines (the machine is shared and noisy).

    benches/compare/setup.sh
    paperscope index --out idx-20k --limit 20000 ../shared/data/arxiv_papers/papers.jsonl.gz
    target/compare-venv/bin/python benches/compare/ann.py --index idx-20k
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import tempfile
import time

import hnswlib
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
K = 10


def paper_text(title, abstract):
    title, abstract = " ".join((title or "").split()), " ".join((abstract or "").split())
    if title and abstract:
        return f"{title} {abstract}" if title[-1] in ".?!" else f"{title}. {abstract}"
    return title or abstract


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", required=True, help="a paperscope index directory")
    ap.add_argument("--papers", default=os.path.join(ROOT, "..", "shared", "data", "arxiv_papers", "papers.jsonl.gz"))
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ef", default="10,16,24,32,48,64,96,128,256")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians reported")
    ap.add_argument("--json", help="write all measurements here")
    args = ap.parse_args()
    efs = [int(x) for x in args.ef.split(",")]

    manifest = json.load(open(os.path.join(args.index, "manifest.json")))
    dim, m, efc = manifest["dim"], manifest["hnsw"]["m"], manifest["hnsw"]["ef_construction"]
    data = np.fromfile(os.path.join(args.index, "vectors.f32"), dtype=np.float32).reshape(-1, dim)
    indexed = {json.loads(line)["id"] for line in open(os.path.join(args.index, "papers.jsonl"))}

    # Held-out queries: the next papers of the file that are not in the index.
    texts = []
    with gzip.open(args.papers, "rt") as f:
        for line in f:
            r = json.loads(line)
            if r["id"] not in indexed and (r.get("title") or r.get("abstract")):
                texts.append(paper_text(r.get("title"), r.get("abstract")))
                if len(texts) == args.queries:
                    break
    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "paperscope", "--example", "ann_bench"],
                   cwd=ROOT, check=True)
    release = os.path.join(ROOT, "target", "release")
    out = subprocess.run([os.path.join(release, "paperscope"), "embed"], check=True, capture_output=True,
                         text=True, input="".join(json.dumps({"text": t}) + "\n" for t in texts)).stdout
    queries = np.array([json.loads(line)["embedding"] for line in out.splitlines()], dtype=np.float32)
    truth = np.argsort(-(queries @ data.T), axis=1)[:, :K]
    tmp = tempfile.mkdtemp(prefix="paperscope-ann-")
    qpath = os.path.join(tmp, "queries.f32")
    queries.tofile(qpath)

    # hnswlib, same parameters and threads.
    t0 = time.perf_counter()
    h = hnswlib.Index(space="ip", dim=dim)
    h.init_index(max_elements=len(data), M=m, ef_construction=efc, random_seed=100)
    h.set_num_threads(args.threads)
    h.add_items(data, np.arange(len(data)))
    hl_build = time.perf_counter() - t0

    def run_hnswlib():
        rows = []
        for ef in efs:
            h.set_ef(max(ef, K))
            h.knn_query(queries, k=K)  # warm-up
            t0, passes = time.perf_counter(), 0
            while passes == 0 or time.perf_counter() - t0 < 1.0:  # as paperscope's side: >= 1 s
                labels, _ = h.knn_query(queries, k=K)
                passes += 1
            secs = (time.perf_counter() - t0) / passes
            hits = sum(len(set(a) & set(b)) for a, b in zip(labels.tolist(), truth.tolist()))
            rows.append({"ef": ef, "recall@10": hits / (K * len(queries)), "qps": len(queries) / secs})
        return rows

    def run_paperscope():
        env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
        lines = subprocess.run([os.path.join(release, "examples", "ann_bench"), "--index", args.index,
                                "--queries", qpath, "--ef", args.ef], env=env, check=True,
                               capture_output=True, text=True).stdout.splitlines()
        return json.loads(lines[0])["graph_seconds"], [json.loads(line) for line in lines[1:]]

    # Rounds alternate between the engines; each ef's query rate is the median of the rounds.
    rounds = {"paperscope": [], "hnswlib": []}
    for _ in range(args.rounds):
        ps_build, rows = run_paperscope()
        rounds["paperscope"].append(rows)
        rounds["hnswlib"].append(run_hnswlib())

    def median_rows(runs):
        return [{"ef": ef, "recall@10": runs[0][i]["recall@10"],
                 "qps": statistics.median(r[i]["qps"] for r in runs),
                 "qps_runs": [r[i]["qps"] for r in runs]} for i, ef in enumerate(efs)]

    ps, hl = median_rows(rounds["paperscope"]), median_rows(rounds["hnswlib"])

    print(f"{len(data):,} vectors ({dim} dims), {len(queries):,} held-out queries, M={m}, "
          f"ef_construction={efc}, {args.threads} threads; queries/s: median of {args.rounds} alternating rounds")
    print(f"build: paperscope (hnsw_rs) {ps_build:.1f} s, hnswlib {hl_build:.1f} s")
    print("| ef | paperscope recall@10 | paperscope queries/s | hnswlib recall@10 | hnswlib queries/s |")
    print("|---:|---:|---:|---:|---:|")
    for p, q in zip(ps, hl):
        print(f"| {p['ef']} | {p['recall@10']:.4f} | {p['qps']:,.0f} | {q['recall@10']:.4f} | {q['qps']:,.0f} |")
    for name, rows in (("paperscope", ps), ("hnswlib", hl)):
        ok = [r for r in rows if r["recall@10"] >= 0.99]
        if ok:
            print(f"{name}: recall@10 >= 0.99 first at ef={ok[0]['ef']} "
                  f"({ok[0]['recall@10']:.4f}), {ok[0]['qps']:,.0f} queries/s")
        else:
            print(f"{name}: recall@10 < 0.99 at every ef tried")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"vectors": len(data), "queries": len(queries), "m": m, "ef_construction": efc,
                       "threads": args.threads, "build_s": {"paperscope": ps_build, "hnswlib": hl_build},
                       "paperscope": ps, "hnswlib": hl}, f, indent=1)


if __name__ == "__main__":
    main()
