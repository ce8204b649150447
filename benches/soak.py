#!/usr/bin/env python3
"""Mixed-load soak of `paperscope serve`: plain searches and similar alongside heavy
requests (explained searches, query topics, /v1/embed of 64 long texts), at 64 concurrent
connections, on loopback, bounded in count.

    python3 benches/soak.py --index IDX [--requests 10000] [--bin target/release/paperscope]

Prints per kind: requests, statuses, p50/p99 latency; the server's RSS before and after;
and what /metrics says once the load is over (the model queue and requests in flight must
be back to 0). Expected statuses: 200, and 503 for heavy requests refused while the model
queue or the topics slot is full (or past the time limit); anything else is counted as
unexpected. The mix: 70% search, 20% similar, 4% explained search, 3% query topics, 3%
embed (64 texts of 2,000 characters).
"""
import argparse, collections, concurrent.futures as cf, json, os, random, re, subprocess, sys, time
import urllib.error, urllib.parse, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", required=True)
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--addr", default="127.0.0.1:18090")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "paperscope"))
    args = ap.parse_args()
    records = [json.loads(l) for l in open(os.path.join(args.index, "papers.jsonl"))]
    ids = [r["id"] for r in records]
    titles = [" ".join(r["title"].split()) for r in records if r.get("title")]
    long_text = " ".join(r.get("abstract", "") for r in records[:20])[:2000]
    rng = random.Random(7)
    kinds = ["search"] * 70 + ["similar"] * 20 + ["explain"] * 4 + ["topics"] * 3 + ["embed"] * 3
    plan = [rng.choice(kinds) for _ in range(args.requests)]

    server = subprocess.Popen([args.bin, "serve", "--index", args.index, "--addr", args.addr,
                               "--no-warm-topics"],
                              stderr=subprocess.DEVNULL,
                              env=dict(os.environ, PAPERSCOPE_MODEL=os.path.join(ROOT, "models", "all-MiniLM-L6-v2")))
    base = f"http://{args.addr}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        rss_before = rss_mib(server.pid)

        def one(i_kind):
            i, kind = i_kind
            r = random.Random(i)
            if kind == "search":
                req = base + "/v1/search?" + urllib.parse.urlencode({"q": r.choice(titles), "k": 10})
            elif kind == "similar":
                req = base + f"/v1/papers/{urllib.parse.quote(r.choice(ids))}/similar?k=10"
            elif kind == "explain":
                req = base + "/v1/search?" + urllib.parse.urlencode({"q": r.choice(titles), "k": 10, "explain": "true"})
            elif kind == "topics":
                req = base + "/v1/topics?" + urllib.parse.urlencode({"q": r.choice(titles)[:60]})
            else:
                body = json.dumps({"inputs": [long_text] * 64}).encode()
                req = urllib.request.Request(base + "/v1/embed", data=body, headers={"content-type": "application/json"})
            start = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    resp.read()
                    status = resp.status
            except urllib.error.HTTPError as e:
                e.read()
                status = e.code
            except Exception as e:  # a connection error is an unexpected outcome too
                status = type(e).__name__
            return kind, status, (time.perf_counter() - start) * 1000

        t0 = time.time()
        with cf.ThreadPoolExecutor(args.connections) as pool:
            results = list(pool.map(one, enumerate(plan)))
        wall = time.time() - t0
        time.sleep(2)
        rss_after = rss_mib(server.pid)
        metrics = urllib.request.urlopen(base + "/metrics").read().decode()
    finally:
        server.terminate()
        server.wait()

    by = collections.defaultdict(list)
    for kind, status, ms in results:
        by[kind].append((status, ms))
    unexpected = 0
    print(f"{args.requests:,} requests at {args.connections} connections in {wall:.1f} s, "
          f"{len(records):,} papers; client and server share this machine's cores")
    print("| kind | requests | 200 | 503 | other | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind in ["search", "similar", "explain", "topics", "embed"]:
        rows = by.get(kind, [])
        if not rows:
            continue
        ok = sum(1 for s, _ in rows if s == 200)
        busy = sum(1 for s, _ in rows if s == 503)
        other = len(rows) - ok - busy
        # Plain search and similar must never be refused: only heavy work may be.
        if kind in ("search", "similar"):
            other += busy
        unexpected += other
        lat = sorted(ms for s, ms in rows if s == 200) or [0.0]
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
        print(f"| {kind} | {len(rows):,} | {ok:,} | {busy:,} | {other:,} | {p(0.5):.1f} | {p(0.99):.1f} |")
    gauges = {m.group(1): m.group(2) for m in re.finditer(
        r"^paperscope_(embed_queue_jobs|embed_queue_tokens|http_requests_in_flight) (\S+)$", metrics, re.M)}
    print(f"server RSS: {rss_before:.0f} MiB before, {rss_after:.0f} MiB after; after the load: {gauges}")
    print(f"unexpected outcomes: {unexpected}")
    sys.exit(1 if unexpected else 0)


if __name__ == "__main__":
    main()
