#!/usr/bin/env python3
"""Abandoned work on `paperscope serve`: what is left behind when clients stop waiting.

    python3 benches/abandon.py BINARY INDEX PORT

Starts BINARY serve on INDEX with a 300 ms request time limit, fires 64 concurrent
explained searches (most time out), reads the model queue gauge 8 s later (it must be 0:
every abandoned job released), then requests /v1/topics (auto k), which times out, and
prints the server's CPU time in the 20 s after the answer (abandoned clustering should
stop at its next step). Loopback only; bounded in requests and time.
"""
import sys, subprocess, time, threading, urllib.request, urllib.parse, re, os
binp, idx, port = sys.argv[1], sys.argv[2], sys.argv[3]
srv = subprocess.Popen([binp, "serve", "--index", idx, "--addr", f"127.0.0.1:{port}", "--timeout-ms", "300", "--no-warm-topics"],
                       stderr=subprocess.DEVNULL, env=dict(os.environ, PAPERSCOPE_MODEL=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models", "all-MiniLM-L6-v2")))
base = f"http://127.0.0.1:{port}"
for _ in range(300):
    try: urllib.request.urlopen(base + "/health", timeout=1).read(); break
    except OSError: time.sleep(0.1)
def cpu():
    with open(f"/proc/{srv.pid}/stat") as f: p = f.read().split()
    return (int(p[13]) + int(p[14])) / os.sysconf("SC_CLK_TCK")
def get(path):
    try: return urllib.request.urlopen(base + path, timeout=30).status
    except urllib.error.HTTPError as e: return e.code
    except Exception as e: return str(e)
qs = ["emergent misalignment in language models", "graph neural networks for molecules", "kagome metals"]
threads = [threading.Thread(target=lambda i=i: get("/v1/search?" + urllib.parse.urlencode({"q": qs[i % 3] + f" {i}", "k": 20, "explain": "true"}))) for i in range(64)]
[t.start() for t in threads]; [t.join() for t in threads]
time.sleep(8)
m = urllib.request.urlopen(base + "/metrics").read().decode()
print("after 64 explained searches at a 300 ms limit:", [l for l in m.splitlines() if l.startswith("paperscope_embed_queue_jobs")])
c0 = cpu(); st = get("/v1/topics"); t0 = time.time()
time.sleep(20); c1 = cpu()
print(f"topics (auto k) status {st}; server CPU in the 20 s after the answer: {c1 - c0:.1f} s")
srv.terminate(); srv.wait()
