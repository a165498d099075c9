"""NumPy and PyTorch CPU peers of bench/metrics.bench.mjs: Flickr30K / COCO-protocol Recall@{1,5,10}
in both directions from embeddings, the way evaluation scripts compute it: the full images x
captions score matrix by matmul, then argsort each row (i2t: best rank of the image's captions,
caption c belonging to image c // per) and each column (t2i: rank of the caption's image).

Inputs: raw little-endian float32 files images.f32 (n x d) and captions.f32 (n * per x d) in --dir,
written by the bench from one seed. Threads: 2 for both (OMP / OpenBLAS / MKL variables are set
before numpy loads; torch.set_num_threads). Prints one JSON line: times (ms) and recalls per peer.
"""
import argparse
import json
import os
import sys
import time


def recalls(ranks, ks=(1, 5, 10)):
    return [100.0 * float((ranks < k).mean()) for k in ks]


def numpy_run(np, img, cap, per, chunk):
    s = img @ cap.T  # n x n*per
    n, m = s.shape
    i2t = np.empty(n, dtype=np.int64)
    for r0 in range(0, n, chunk):
        order = np.argsort(-s[r0:r0 + chunk], axis=1)  # captions by descending score
        owner = order // per
        rows = np.arange(r0, min(n, r0 + chunk))[:, None]
        i2t[r0:r0 + chunk] = np.argmax(owner == rows, axis=1)  # first position of an own caption
    st = np.ascontiguousarray(s.T)
    del s
    t2i = np.empty(m, dtype=np.int64)
    for c0 in range(0, m, chunk):
        order = np.argsort(-st[c0:c0 + chunk], axis=1)
        target = (np.arange(c0, min(m, c0 + chunk)) // per)[:, None]
        t2i[c0:c0 + chunk] = np.argmax(order == target, axis=1)
    return i2t, t2i


def torch_run(torch, img, cap, per, chunk):
    s = img @ cap.T
    n, m = s.shape
    i2t = torch.empty(n, dtype=torch.int64)
    for r0 in range(0, n, chunk):
        order = torch.argsort(s[r0:r0 + chunk], dim=1, descending=True)
        rows = torch.arange(r0, min(n, r0 + chunk))[:, None]
        i2t[r0:r0 + chunk] = torch.argmax((order // per == rows).to(torch.uint8), dim=1)
    st = s.T.contiguous()
    del s
    t2i = torch.empty(m, dtype=torch.int64)
    for c0 in range(0, m, chunk):
        order = torch.argsort(st[c0:c0 + chunk], dim=1, descending=True)
        target = (torch.arange(c0, min(m, c0 + chunk)) // per)[:, None]
        t2i[c0:c0 + chunk] = torch.argmax((order == target).to(torch.uint8), dim=1)
    return i2t, t2i


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--per", type=int, default=5)
    p.add_argument("--d", type=int, required=True)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--chunk", type=int, default=500)
    a = p.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(a.threads)
    try:
        import numpy as np
    except ImportError as e:
        print(json.dumps({"skipped": f"numpy missing ({e})"}))
        return
    img = np.fromfile(os.path.join(a.dir, "images.f32"), dtype="<f4").reshape(a.n, a.d)
    cap = np.fromfile(os.path.join(a.dir, "captions.f32"), dtype="<f4").reshape(a.n * a.per, a.d)
    out = {"threads": a.threads}

    def timed(fn):
        times, res = [], None
        for _ in range(a.repeats):
            res = None
            t0 = time.perf_counter()
            res = fn()
            times.append((time.perf_counter() - t0) * 1e3)
        return times, res

    times, (i2t, t2i) = timed(lambda: numpy_run(np, img, cap, a.per, a.chunk))
    out["numpy"] = {"version": np.__version__, "timesMs": times, "i2t": recalls(i2t), "t2i": recalls(t2i)}
    try:
        import torch
    except ImportError as e:
        out["torch"] = {"skipped": f"torch missing ({e})"}
    else:
        torch.set_num_threads(a.threads)
        ti, tc = torch.from_numpy(img), torch.from_numpy(cap)
        with torch.no_grad():
            times, (i2t, t2i) = timed(lambda: torch_run(torch, ti, tc, a.per, a.chunk))
        out["torch"] = {"version": torch.__version__, "timesMs": times, "i2t": recalls(i2t.numpy()), "t2i": recalls(t2i.numpy())}
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
