"""`archon bench`-style measurement of the operator API's write path: POST /v1/training/jobs latency as the fleet's
job count grows (issue #12: <= 10 ms whatever the fleet size). Run by scripts/bench against an `archon dev` fleet whose
nodes it cordons, so that every submitted job stays queued (valid, stored, nothing started).

Usage: bench_api.py <data-dir>/env <jobs>
"""
import json, os, statistics, sys, time, urllib.request
env = {}
for line in open(sys.argv[1]):
    if line.startswith("export ") and "=" in line:
        k, v = line[7:].strip().split("=", 1); env[k] = v.strip("'")
api, token = env["ARCHON_API"], env["ARCHON_TOKEN"]
def call(method, path, body=None):
    req = urllib.request.Request(api + path, method=method, data=body, headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()
    return (time.perf_counter() - t) * 1000
for n in ("n1", "n2"):
    call("POST", f"/v1/nodes/{n}/cordon", json.dumps({"reason": "latency benchmark"}).encode())
times = []
for i in range(int(sys.argv[2])):
    spec = {"id": f"lat-{i}", "name": "latency", "team": "bench", "command": ["python3", "examples/trainers/fault_trainer.py"],
            "config": {"batchSize": 32, "epochs": 1, "learningRate": 0.01, "resources": {"memoryBytes": 268435456, "cpuCores": 1}}}
    times.append(call("POST", "/v1/training/jobs", json.dumps(spec).encode()))
def pct(xs, p): xs = sorted(xs); return xs[min(len(xs) - 1, int(len(xs) * p))]
print("| jobs already known | submissions | p50 | p99 | max |\n|---|---:|---:|---:|---:|")
for lo, hi in sorted({(0, min(50, len(times))), (max(0, len(times) - 100), len(times))}):
    part = times[lo:hi]
    print(f"| {lo}-{hi} | {len(part)} | {pct(part, .5):.1f} ms | {pct(part, .99):.1f} ms | {max(part):.1f} ms |")
