"""PyTorch CPU token-max search peer: S[i, j] = max_t q_i . Z[j, t], top-k per query, the way a
PyTorch user writes it: chunked einsum over the targets, amax over the tokens, topk over the
targets, then a merge of the chunks' top-k.

Bench peer for bench/token_max_search.bench.mjs. Inputs: token gallery (N*K x D .npy, K consecutive
rows per target), queries (Q x D .npy). Prints one JSON line: best time, the median, and the indices
of the first queries for an agreement check.
"""
import argparse
import json
import sys
import time

try:
    import numpy as np
    import torch
except ImportError as e:
    print(json.dumps({"name": "torch", "skipped": f"python module missing ({e}); pip install torch numpy"}))
    sys.exit(0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--gallery", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--tokens", type=int, required=True)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--chunk", type=int, default=2048, help="targets per einsum chunk")
    a = p.parse_args()
    g = torch.from_numpy(np.load(a.gallery))
    q = torch.from_numpy(np.load(a.queries))
    t = a.tokens
    n = g.shape[0] // t
    z = g.reshape(n, t, g.shape[1])

    def run():
        best_v, best_i = None, None
        for s in range(0, n, a.chunk):
            e = min(n, s + a.chunk)
            sims = torch.einsum("qd,ntd->qnt", q, z[s:e]).amax(dim=2)  # Q x chunk
            v, i = torch.topk(sims, min(a.k, e - s), dim=1)
            i = i + s
            if best_v is None:
                best_v, best_i = v, i
            else:
                cv = torch.cat([best_v, v], dim=1)
                ci = torch.cat([best_i, i], dim=1)
                best_v, order = torch.topk(cv, a.k, dim=1)
                best_i = torch.gather(ci, 1, order)
        return best_v, best_i

    with torch.inference_mode():
        run()  # warm-up
        times = []
        out = None
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            out = run()
            times.append((time.perf_counter() - t0) * 1e3)
    print(json.dumps({
        "name": "torch",
        "system": f"PyTorch {torch.__version__} CPU (einsum + amax + topk, chunks of {a.chunk} targets)",
        "threads": torch.get_num_threads(),
        "timesMs": times,
        "bestMs": min(times),
        "check": out[1][:8].tolist(),
    }))


main()
