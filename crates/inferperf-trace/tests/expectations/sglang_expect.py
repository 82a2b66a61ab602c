"""Independent computation of the SGLang MI300X expectations used by tests/sglang.rs.

Run once with plain python3 (standard library only):
    python3 crates/inferperf-trace/tests/expectations/sglang_expect.py
It loads each file whole with json (not our reader), then prints per file: GPU event totals,
the top-3 kernels by total time with their share of all GPU event time, and the per-stage split
(a GPU event belongs to the step[...] span whose [ts, ts+dur) contains the ts of the runtime
call with the same correlation id). Times are in ns (round(µs*1000)).
"""
import gzip, json, os, collections

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.normpath(os.path.join(here, "../../../../../shared/data/traces/sglang_mi300x"))
for f in ["sglang_Qwen3-8B_prefilldecode.json.gz", "sglang_Qwen3-8B_decode.json.gz"]:
    ev = json.load(gzip.open(os.path.join(root, f)))["traceEvents"]
    ns = lambda x: int(round(x * 1000))
    gpu = [e for e in ev if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
    total = sum(ns(e["dur"]) for e in gpu)
    by = collections.defaultdict(int)
    for e in gpu:
        by[e["name"]] += ns(e["dur"])
    top = sorted(by.items(), key=lambda kv: -kv[1])[:3]
    launch = {e["args"]["correlation"]: ns(e["ts"]) for e in ev
              if e.get("cat") in ("cuda_runtime", "cuda_driver") and "correlation" in e.get("args", {})}
    steps = [(ns(e["ts"]), ns(e["ts"]) + ns(e["dur"]), e["name"]) for e in ev
             if e.get("ph") == "X" and e.get("name", "").startswith("step[")]
    stage = collections.defaultdict(lambda: [0, 0])
    for e in gpu:
        t = launch.get(e["args"].get("correlation"))
        s = next((n for a, b, n in steps if t is not None and a <= t < b), None)
        key = "unattributed" if s is None else ("prefill" if "EXTEND" in s else "decode")
        stage[key][0] += 1
        stage[key][1] += ns(e["dur"])
    print(f, "gpu events", len(gpu), "total ns", total)
    for n, d in top:
        print("  top", d, round(100 * d / total, 2), n[:60])
    for k, (c, d) in sorted(stage.items()):
        print("  stage", k, c, d)
