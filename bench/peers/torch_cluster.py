"""Clustering peers for bench/cluster.bench.mjs, the way a Python user writes them.

  swav:   SwAV / AAHR Sinkhorn-Knopp codes (torch, fp32, no_grad; SwAV's distributed_sinkhorn on one
          process) and the swapped-prediction loss forward + backward (F.log_softmax, autograd).
          Scores O = V C^T computed in float64 from the two unit-Gaussian .npy files, rounded to fp32
          (the bench does the same in JS).
  kmeans: faiss.Kmeans (k-means++ is not faiss's init: it draws k random rows), niter iterations on
          all rows (max_points_per_centroid raised so faiss does not subsample), OpenMP threads = cores.

Prints one JSON line with times (ms) and values for the agreement checks.
"""
import argparse
import json
import os
import sys
import time

try:
    import numpy as np
except ImportError as e:
    print(json.dumps({"skipped": f"python module missing ({e})"}))
    sys.exit(0)


def scores(vpath, cpath, rows):
    v = np.load(vpath).astype(np.float64)
    c = np.load(cpath).astype(np.float64)
    return (v[:rows] @ c.T).astype(np.float32)


def swav(a):
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as e:
        print(json.dumps({"skipped": f"python module missing ({e}); pip install torch"}))
        return
    ov = torch.from_numpy(scores(a.v, a.c, a.b))
    ot = torch.from_numpy(scores(a.t, a.c, a.b))

    @torch.no_grad()
    def sinkhorn(out, eps, iters):
        q = torch.exp(out / eps).t()
        b = q.shape[1]
        k = q.shape[0]
        q /= torch.sum(q)
        for _ in range(iters):
            q /= torch.sum(q, dim=1, keepdim=True)
            q /= k
            q /= torch.sum(q, dim=0, keepdim=True)
            q /= b
        q *= b
        return q.t()

    def loss_fn(sv, st, qv, qt, tau):
        lv = -torch.mean(torch.sum(qt * F.log_softmax(sv / tau, dim=1), dim=1))
        lt = -torch.mean(torch.sum(qv * F.log_softmax(st / tau, dim=1), dim=1))
        return lv + lt

    def time_it(fn, inner):
        fn()
        times = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            times.append((time.perf_counter() - t0) * 1e3 / inner)
        return times

    qv = sinkhorn(ov, a.eps, a.iters)
    qt = sinkhorn(ot, a.eps, a.iters)

    def fwd_bwd():
        sv = ov.clone().requires_grad_(True)
        st = ot.clone().requires_grad_(True)
        loss = loss_fn(sv, st, qv, qt, a.tau)
        loss.backward()
        return loss, sv.grad, st.grad

    def step():
        cv = sinkhorn(ov, a.eps, a.iters)
        ct = sinkhorn(ot, a.eps, a.iters)
        sv = ov.clone().requires_grad_(True)
        st = ot.clone().requires_grad_(True)
        loss_fn(sv, st, cv, ct, a.tau).backward()

    t_sk = time_it(lambda: sinkhorn(ov, a.eps, a.iters), a.inner)
    t_loss = time_it(fwd_bwd, a.inner)
    t_step = time_it(step, a.inner)
    loss, gv, gt = fwd_bwd()
    print(json.dumps({
        "system": f"PyTorch {torch.__version__} CPU (fp32, autograd)",
        "threads": torch.get_num_threads(),
        "sinkhornMs": t_sk, "lossMs": t_loss, "stepMs": t_step,
        "codesV": qv.reshape(-1).tolist(), "loss": float(loss),
        "gradV": gv.reshape(-1).tolist(),
    }))


def kmeans(a):
    try:
        import faiss
    except ImportError as e:
        print(json.dumps({"skipped": f"python module missing ({e}); pip install faiss-cpu"}))
        return
    x = np.load(a.data)
    threads = os.cpu_count()
    faiss.omp_set_num_threads(threads)
    runs = []
    for r in range(a.repeats):
        km = faiss.Kmeans(x.shape[1], a.k, niter=a.niter, seed=1234 + r, max_points_per_centroid=10**9, verbose=False)
        t0 = time.perf_counter()
        km.train(x)
        total = (time.perf_counter() - t0) * 1e3
        stats = km.iteration_stats
        # The objective of the final centroids (faiss's obj[-1] is the one before the last update).
        d, _ = km.index.search(x, 1)
        runs.append({"totalMs": total, "iterMs": stats[-1]["time"] * 1e3 / len(stats), "searchMs": stats[-1]["time_search"] * 1e3,
                     "objLast": float(km.obj[-1]), "inertia": float(d.astype(np.float64).sum())})
    print(json.dumps({"system": f"faiss {faiss.__version__} Kmeans (random init, {threads} OpenMP threads)", "threads": threads, "runs": runs}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["swav", "kmeans"])
    p.add_argument("--v")
    p.add_argument("--t")
    p.add_argument("--c")
    p.add_argument("--b", type=int, default=256)
    p.add_argument("--eps", type=float, default=0.1)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--tau", type=float, default=0.1)
    p.add_argument("--inner", type=int, default=50)
    p.add_argument("--data")
    p.add_argument("--k", type=int, default=256)
    p.add_argument("--niter", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    swav(a) if a.mode == "swav" else kmeans(a)


main()
