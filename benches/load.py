#!/usr/bin/env python3
"""HTTP load benchmark of `paperscope serve` with wrk (Debian package `wrk`).

Starts the release binary on an index (e.g. the first 20,000 papers of
../shared/data/arxiv_papers), then drives, on loopback, for DURATION seconds each:

  /v1/search?q=...&k=10             200 distinct queries (titles of papers not in the
                                    index), rotated: every request embeds its query
  /v1/papers/{id}/similar?k=10      1,000 distinct ids of the index, rotated

at 1, 16 and 64 concurrent connections (`--endpoints` adds the web app's pages for the
same queries and ids: `page` = `/?q=...`, the search page's HTML, and `paper` =
`/papers/{id}`, the paper page with its 10 similar papers; `--conns` picks the
connection counts), and prints requests/s and the p50/p99 latencies
wrk reports, plus the server's resident memory before the first and after the last run
(tens of thousands of requests). wrk runs on the same 2 cores as the server: the figures
are for the pair, as a user on one laptop would see them.

    paperscope index --out idx-20k --limit 20000 ../shared/data/arxiv_papers/papers.jsonl.gz
    python3 benches/load.py --index idx-20k

`--serve URLS` serves PostgreSQL shards holding the same papers instead (queries and ids
still come from --index; see benches/pg.sh); `--binary` runs a built binary as it is.
"""
import argparse
import glob
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        kb = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    return kb / 1024


def lua(paths):
    body = ",\n".join(json.dumps(p) for p in paths)
    return f"""local paths = {{
{body}
}}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
"""


def to_ms(value, unit):
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def run_wrk(url, script, conns, duration):
    out = subprocess.run(["wrk", f"-t{min(conns, 2)}", f"-c{conns}", f"-d{duration}s", "--latency",
                          "-s", script, url], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    pct = {p: to_ms(v, u) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "requests": total, "p50_ms": pct.get("50"), "p99_ms": pct.get("99"),
            "non_2xx": int(errors.group(1)) if errors else 0}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", required=True)
    ap.add_argument("--papers", default=os.path.join(ROOT, "..", "shared", "data", "arxiv_papers", "papers.jsonl.gz"))
    ap.add_argument("--addr", default="127.0.0.1:18080")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--json", help="write all measurements here")
    ap.add_argument("--endpoints", default="search,similar",
                    help="comma-separated: search, similar, page (/?q=), paper (/papers/{id})")
    ap.add_argument("--conns", default="1,16,64", help="comma-separated connection counts")
    ap.add_argument("--serve", help="what `serve --index` gets (default: --index), e.g. postgres:// shards")
    ap.add_argument("--binary", help="a built paperscope binary (default: cargo build --release)")
    ap.add_argument("--mode", help="search mode of /v1/search (default: the server's, hybrid)")
    args = ap.parse_args()

    # Format 2 keeps records per segment (seg-*/papers.jsonl); format 1 at the top.
    records = sorted(glob.glob(os.path.join(args.index, "seg-*", "papers.jsonl"))) or [
        os.path.join(args.index, "papers.jsonl")]
    lines = [line for r in records for line in open(r)]
    ids = [json.loads(line)["id"] for line in lines[:1000]]
    indexed = {json.loads(line)["id"] for line in lines}
    queries = []
    with gzip.open(args.papers, "rt") as f:
        for line in f:
            r = json.loads(line)
            if r["id"] not in indexed and r.get("title"):
                queries.append(" ".join(r["title"].split()))
                if len(queries) == 200:
                    break
    tmp = tempfile.mkdtemp(prefix="paperscope-load-")
    scripts = {}
    endpoints = args.endpoints.split(",")
    conn_counts = [int(c) for c in args.conns.split(",")]
    mode = {"mode": args.mode} if args.mode else {}
    all_paths = {
        "search": [f"/v1/search?{urllib.parse.urlencode({'q': q, 'k': 10, **mode})}" for q in queries],
        "similar": [f"/v1/papers/{urllib.parse.quote(i, safe='')}/similar?k=10" for i in ids],
        "page": [f"/?{urllib.parse.urlencode({'q': q})}" for q in queries],
        "paper": [f"/papers/{urllib.parse.quote(i, safe='')}" for i in ids],
    }
    for name in endpoints:
        paths = all_paths[name]
        scripts[name] = os.path.join(tmp, f"{name}.lua")
        with open(scripts[name], "w") as f:
            f.write(lua(paths))

    binary = args.binary
    if not binary:
        subprocess.run(["cargo", "build", "--release", "-q", "--bin", "paperscope"], cwd=ROOT, check=True)
        binary = os.path.join(ROOT, "target", "release", "paperscope")
    serve = [binary, "serve", "--index", args.serve or args.index, "--addr", args.addr]
    if not args.serve:
        serve.append("--no-warm-topics")
    server = subprocess.Popen(serve, stderr=subprocess.DEVNULL)
    base = f"http://{args.addr}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        # One request of each kind first: a benchmark of error responses measures nothing
        # (e.g. an index built without the keyword index answers hybrid search with 503).
        for name in endpoints:
            path = all_paths[name][0]
            try:
                urllib.request.urlopen(base + path, timeout=30).read()
            except urllib.error.HTTPError as e:
                sys.exit(f"{name} fails before the benchmark: HTTP {e.code} {e.read().decode()}")
        rss_before = rss_mib(server.pid)
        results, requests = [], 0
        for name in endpoints:
            for conns in conn_counts:
                r = run_wrk(base, scripts[name], conns, args.duration)
                requests += r["requests"]
                results.append({"endpoint": name, "connections": conns, **r})
                print(f"  {name} c={conns}: {r['rps']:,.0f} req/s, p50 {r['p50_ms']:.2f} ms, "
                      f"p99 {r['p99_ms']:.2f} ms, non-2xx {r['non_2xx']}", file=sys.stderr, flush=True)
        rss_after = rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait()

    health = len(indexed)
    print(f"{health:,} papers; {args.duration} s per run; wrk and the server share this machine's cores")
    print("| endpoint | connections | requests/s | p50 ms | p99 ms | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        path = {"search": "/v1/search", "similar": "/v1/papers/{id}/similar", "page": "/?q= (HTML)",
                "paper": "/papers/{id} (HTML)"}[r["endpoint"]]
        print(f"| {path} | {r['connections']} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
              f"{r['non_2xx']} |")
    print(f"server RSS: {rss_before:.0f} MiB before, {rss_after:.0f} MiB after {requests:,} requests")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"papers": health, "results": results, "rss_mib_before": rss_before,
                       "rss_mib_after": rss_after, "requests": requests}, f, indent=1)


if __name__ == "__main__":
    main()
