"""Shared harness for the Python search peers: argument parsing, timing, JSON report on stdout.

Bench support layer. Inputs are the .npy files written by bench/lib/data.mjs (gallery N x D, queries Q x D,
float32, row-major); every peer times its search call only (index build and data loading excluded).
"""
import argparse
import json
import os
import statistics
import sys
import time


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--gallery", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--ks", default="10,100,1000", help="comma-separated k values for the batched runs")
    p.add_argument("--repeats", type=int, default=3, help="batched runs per k; the best is reported")
    p.add_argument("--latency-runs", type=int, default=30, help="Q = 1 runs; the median is reported")
    p.add_argument("--check", type=int, default=8, help="queries whose top-k indices are echoed for agreement")
    a = p.parse_args()
    a.ks = [int(k) for k in a.ks.split(",") if k]
    return a


def skip(name, reason):
    """Report a missing module as a skip, not a failure: CI machines do not carry the Python peers."""
    print(json.dumps({"name": name, "skipped": reason}))
    sys.exit(0)


def load(args):
    import numpy as np

    g = np.ascontiguousarray(np.load(args.gallery), dtype=np.float32)
    q = np.ascontiguousarray(np.load(args.queries), dtype=np.float32)
    return g, q


def time_best(fn, repeats):
    """Runs fn() `repeats` times; returns (times_ms, last_result)."""
    times = []
    out = None
    for _ in range(repeats):
        out = None  # free the previous result first, so its pages do not double the footprint
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times, out


def batched_runs(search, g, q, args):
    """search(q, g, k) -> (indices Q x k) for each k in args.ks; best-of-args.repeats each."""
    runs = []
    check = None
    for k in args.ks:
        times, idx = time_best(lambda: search(q, g, k), args.repeats)
        runs.append({"k": k, "q": int(q.shape[0]), "timesMs": times, "bestMs": min(times)})
        if check is None:
            check = {"k": k, "indices": [[int(i) for i in row] for row in idx[: args.check]]}
    return runs, check


def latency(search1, g, q, args, k=10):
    """search1(q_row, g, k) for one query: a few warm-up calls, then the median of args.latency_runs."""
    row = q[0]
    for _ in range(3):
        search1(row, g, k)
    times = []
    for _ in range(args.latency_runs):
        t0 = time.perf_counter()
        search1(row, g, k)
        times.append((time.perf_counter() - t0) * 1e3)
    return {"k": k, "runs": len(times), "medianMs": statistics.median(times), "minMs": min(times)}


def emit(report):
    report.setdefault("env", {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OMP_NUM_THREADS") if k in os.environ})
    print(json.dumps(report))
