#!/usr/bin/env python3
"""Embedding throughput, side by side on one machine in one run: sentence-transformers
(PyTorch, F32 and BF16) against paperscope (each of its precisions), on the same texts.

Texts: the first N (1,000) records of ../shared/data/arxiv_clustering/clustering.jsonl,
title and abstract joined by paperscope's rule ("{title}. {abstract}", whitespace
collapsed), 256-token truncation, 2 threads for everyone.

For each configuration: one warm-up, then RUNS timed runs, interleaved round-robin across
configurations so that a noisy neighbour slows all of them alike; median reported. Times
cover tokenization, the forward pass, pooling and normalisation (what `encode` does);
paperscope runs in-process via `examples/embed_throughput.rs`, model loaded once.

Also measured, in the same run: the machine's F32 and BF16 matmul peaks on the model's
shapes (torch.matmul, 2 threads), so each engine's throughput can be read as a fraction
of the peak for the precision it used; and every configuration's minimum cosine against
sentence-transformers F32 (the reference), over the N texts and over the golden texts of
../shared/golden.

    benches/compare/setup.sh && target/compare-venv/bin/python benches/compare/embed.py

Prints a Markdown table; --json FILE writes everything measured.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(ROOT, "..", "shared")
HIDDEN, LAYERS, INTER = 384, 6, 1536


def paper_text(title, abstract):
    title, abstract = " ".join(title.split()), " ".join(abstract.split())
    if title and abstract:
        return f"{title} {abstract}" if title[-1] in ".?!" else f"{title}. {abstract}"
    return title or abstract


def flops_per_text(n):
    """Multiply-adds x 2 of one forward pass over n tokens: dense layers + attention."""
    dense = 2 * n * (4 * HIDDEN * HIDDEN + 2 * HIDDEN * INTER)
    attention = 2 * 2 * n * n * HIDDEN
    return LAYERS * (dense + attention)


class CpuMeter:
    """Cores' worth of CPU used by other processes during a run (/proc/stat minus ours)."""

    def __init__(self, pids=()):
        self.pids = pids

    @staticmethod
    def busy():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")

    def __enter__(self):
        self.t0, self.b0 = time.perf_counter(), self.busy()
        self.own0 = sum(os.times()[:4])  # self + waited-for children
        return self

    def stop(self, child_cpu=0.0):
        dt = time.perf_counter() - self.t0
        own = sum(os.times()[:4]) - self.own0 + child_cpu
        return dt, max(0.0, (self.busy() - self.b0 - own) / dt)

    def __exit__(self, *exc):
        return False


def matmul_peaks(threads):
    """GFLOP/s of torch.matmul on the model's dense shapes (512 rows), F32 and BF16."""
    torch.set_num_threads(threads)
    shapes = [(512, HIDDEN, 3 * HIDDEN), (512, HIDDEN, INTER), (512, INTER, HIDDEN)]
    peaks = {}
    for name, dtype in (("f32", torch.float32), ("bf16", torch.bfloat16)):
        best = 0.0
        for m, k, n in shapes:
            a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
            for _ in range(20):
                a @ b
            reps = 200
            t0 = time.perf_counter()
            for _ in range(reps):
                a @ b
            dt = (time.perf_counter() - t0) / reps
            best = max(best, 2 * m * k * n / dt / 1e9)
        peaks[name] = best
    return peaks


def min_cosine(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(1).min())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", default=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    ap.add_argument("--corpus", default=os.path.join(SHARED, "data", "arxiv_clustering", "clustering.jsonl"))
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--st-batch", type=int, default=32, help="sentence-transformers batch size")
    ap.add_argument("--paperscope", nargs="+", default=["onednn:bf16", "onednn:f32", "portable:f32"],
                    help="paperscope configurations, BACKEND:PRECISION")
    ap.add_argument("--json", help="write all measurements here")
    args = ap.parse_args()

    rows = [json.loads(line) for line in open(args.corpus)][: args.n]
    texts = [paper_text(r.get("title", ""), r.get("abstract", "")) for r in rows]
    golden = [json.loads(line) for line in open(os.path.join(SHARED, "golden", "minilm_golden.jsonl"))]
    tmp = tempfile.mkdtemp(prefix="paperscope-compare-")
    texts_path, golden_path = os.path.join(tmp, "texts.jsonl"), os.path.join(tmp, "golden.jsonl")
    with open(texts_path, "w") as f:
        f.writelines(json.dumps({"text": t}) + "\n" for t in texts)
    with open(golden_path, "w") as f:
        f.writelines(json.dumps({"text": g["text"]}) + "\n" for g in golden)

    subprocess.run(["cargo", "build", "--release", "-q", "--example", "embed_throughput"], cwd=ROOT, check=True)
    exe = os.path.join(ROOT, "target", "release", "examples", "embed_throughput")

    torch.set_num_threads(args.threads)
    st32 = SentenceTransformer(args.model_dir, device="cpu")
    st32.max_seq_length = 256
    st16 = SentenceTransformer(args.model_dir, device="cpu").to(torch.bfloat16)
    st16.max_seq_length = 256
    lengths = [min(256, len(ids)) for ids in st32.tokenizer(texts)["input_ids"]]
    tokens, flops = sum(lengths), sum(flops_per_text(n) for n in lengths)

    def st_encode(model):
        return lambda ts: model.encode(ts, batch_size=args.st_batch, normalize_embeddings=True,
                                       convert_to_tensor=True, show_progress_bar=False).float().numpy()

    configs = {"sentence-transformers f32": ("st", st_encode(st32), "f32"),
               "sentence-transformers bf16": ("st", st_encode(st16), "bf16")}
    for spec in args.paperscope:
        backend, precision = spec.split(":")
        configs[f"paperscope {backend} {precision}"] = ("ps", (backend, precision), precision)

    def run_paperscope(backend, precision, path, out):
        env = dict(os.environ, PAPERSCOPE_BACKEND=backend, PAPERSCOPE_PRECISION=precision,
                   RAYON_NUM_THREADS=str(args.threads), PAPERSCOPE_MODEL=args.model_dir)
        res = subprocess.run([exe, "--texts", path, "--runs", "1", "--out", out], env=env, check=True,
                             capture_output=True, text=True)
        r = json.loads(res.stdout)
        n = os.path.getsize(out) // (4 * HIDDEN)
        return r, np.fromfile(out, dtype=np.float32).reshape(n, HIDDEN)

    # Reference embeddings and golden checks (untimed).
    embeddings, golden_cos, backends = {}, {}, {}
    gold = np.array([g["embedding"] for g in golden], dtype=np.float32)
    for name, (kind, what, _) in configs.items():
        if kind == "st":
            embeddings[name] = what(texts)
            golden_cos[name] = min_cosine(what([g["text"] for g in golden]), gold)
        else:
            r, e = run_paperscope(*what, texts_path, os.path.join(tmp, "out.f32"))
            embeddings[name], backends[name] = e, r["backend"]
            golden_cos[name] = min_cosine(run_paperscope(*what, golden_path, os.path.join(tmp, "g.f32"))[1], gold)
    ref = embeddings["sentence-transformers f32"]

    peaks = matmul_peaks(args.threads)
    print(f"matmul peaks (torch, 2 threads): f32 {peaks['f32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s",
          file=sys.stderr)

    times = {name: [] for name in configs}
    others = {name: [] for name in configs}
    for r in range(args.runs):
        for name, (kind, what, _) in configs.items():
            with CpuMeter() as m:
                if kind == "st":
                    what(texts)
                    dt, other = m.stop()
                else:
                    res, _ = run_paperscope(*what, texts_path, os.path.join(tmp, "out.f32"))
                    # Time the embedding itself (the process also loads the model and warms up).
                    _, other = m.stop()
                    dt = res["median_s"]
            times[name].append(dt)
            others[name].append(round(other, 2))
            print(f"  run {r + 1} {name}: {dt:.2f} s ({tokens / dt:,.0f} tokens/s; other processes "
                  f"{other:.2f} cores)", file=sys.stderr, flush=True)

    results = {}
    for name, (kind, _, precision) in configs.items():
        med = statistics.median(times[name])
        results[name] = {"precision": precision, "runs_s": times[name], "median_s": med,
                         "tokens_per_s": tokens / med, "texts_per_s": len(texts) / med,
                         "min_cosine_vs_st_f32": min_cosine(embeddings[name], ref),
                         "golden_min_cosine": golden_cos[name],
                         "fraction_of_peak": flops / med / 1e9 / peaks[precision],
                         "other_procs_cores": others[name], "backend": backends.get(name)}
    st_best = max(v["tokens_per_s"] for k, v in results.items() if k.startswith("sentence"))
    st_f32 = results["sentence-transformers f32"]["tokens_per_s"]

    print(f"\n{len(texts)} texts, {tokens:,} tokens, {flops / tokens / 1e6:.1f} MFLOP/token; "
          f"median of {args.runs} runs; {args.threads} threads")
    print("| configuration | tokens/s | texts/s | vs ST f32 | vs fastest ST | of matmul peak | "
          f"min cosine vs ST f32 ({len(texts):,} / golden) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, v in results.items():
        print(f"| {name} | {v['tokens_per_s']:,.0f} | {v['texts_per_s']:.1f} | {v['tokens_per_s'] / st_f32:.2f}x "
              f"| {v['tokens_per_s'] / st_best:.2f}x | {100 * v['fraction_of_peak']:.0f}% ({v['precision']}) "
              f"| {v['min_cosine_vs_st_f32']:.6f} / {v['golden_min_cosine']:.6f} |")
    print(f"matmul peaks: f32 {peaks['f32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s "
          f"(torch.matmul, 512-row model shapes, {args.threads} threads)")
    worst_other = max(max(v["other_procs_cores"]) for v in results.values())
    print(f"other processes used up to {worst_other:.2f} cores during a run")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"texts": len(texts), "tokens": tokens, "flops": flops, "peaks_gflops": peaks,
                       "threads": args.threads, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
