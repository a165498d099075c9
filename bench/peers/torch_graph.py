"""PyTorch CPU peer of bench/graph.bench.mjs: AAHR's in-batch graph pieces the way a PyTorch user
writes them (float32, autograd): gaussian relevance R = exp(-cdist(x, x) / sigma), and one GCN layer
Y = leaky_relu(A @ (x @ W) + b, 0.2) forward + backward (dY given) with gradients for x, W, b and A.

Inputs: raw little-endian float32 files in --dir (x: n x d, w: d x d, b: d, a: n x n, dy: n x d,
dr: n x n), written by the bench from one seed, so both sides compute on the same numbers (A is the
bench's masked adjacency, so a mask tie cannot flip between the two). Prints one JSON line: times
(ms) per part and the outputs as float32 files in --dir for the agreement check.
"""
import argparse
import json
import os
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
    p.add_argument("--dir", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--d", type=int, required=True)
    p.add_argument("--sigma", type=float, default=1.0)
    p.add_argument("--slope", type=float, default=0.2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    n, d = a.n, a.d

    def load(name, shape):
        return torch.from_numpy(np.fromfile(os.path.join(a.dir, name + ".f32"), dtype="<f4").reshape(shape).copy())

    x0, w0, b0 = load("x", (n, d)), load("w", (d, d)), load("b", (d,))
    a0, dy, dr = load("a", (n, n)), load("dy", (n, d)), load("dr", (n, n))

    def relevance_fwd():
        with torch.no_grad():
            return torch.exp(-torch.cdist(x0, x0) / a.sigma)

    def relevance_fwd_bwd():
        x = x0.clone().requires_grad_(True)
        r = torch.exp(-torch.cdist(x, x) / a.sigma)
        r.backward(dr)
        return r.detach(), x.grad

    def gcn_fwd_bwd():
        x = x0.clone().requires_grad_(True)
        w = w0.clone().requires_grad_(True)
        b = b0.clone().requires_grad_(True)
        adj = a0.clone().requires_grad_(True)
        y = torch.nn.functional.leaky_relu(adj @ (x @ w) + b, a.slope)
        y.backward(dy)
        return y.detach(), x.grad, w.grad, b.grad, adj.grad

    def timed(fn):
        fn()  # warm-up
        times, out = [], None
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            out = fn()
            times.append((time.perf_counter() - t0) * 1e3)
        return times, out

    t_rel, r = timed(relevance_fwd)
    t_relb, (_, dx_rel) = timed(relevance_fwd_bwd)
    t_gcn, (y, dx, dw, db, da) = timed(gcn_fwd_bwd)
    # float64 references (not timed) of the same computations, the yardstick for both sides.
    x64 = x0.double().requires_grad_(True)
    r64 = torch.exp(-torch.cdist(x64, x64) / a.sigma)
    r64.backward(dr.double())
    w64 = w0.double().requires_grad_(True)
    b64 = b0.double().requires_grad_(True)
    a64 = a0.double().requires_grad_(True)
    xg64 = x0.double().requires_grad_(True)
    y64 = torch.nn.functional.leaky_relu(a64 @ (xg64 @ w64) + b64, a.slope)
    y64.backward(dy.double())
    # The same float64 gradients through vlkernels' LeakyReLU kinks (its Y's signs, file yvlk): where a
    # P lies within fp32 rounding of 0 the two float32 sides may take different branches, and this
    # reference then checks vlkernels' gradients strictly on its own branch.
    yv = os.path.join(a.dir, "yvlk.f32")
    if os.path.exists(yv):
        yvlk = torch.from_numpy(np.fromfile(yv, dtype="<f4").reshape(n, d).copy())
        with torch.no_grad():
            h64 = x0.double() @ w0.double()
            dp = dy.double() * torch.where(yvlk > 0, 1.0, a.slope).double()
            dh = a0.double().T @ dp
            same = [("dx", dh @ w0.double().T), ("dw", x0.double().T @ dh), ("db", dp.sum(0)), ("da", dp @ h64.T)]
        for name, t in same:
            t.numpy().astype("<f8").tofile(os.path.join(a.dir, "f64v_" + name + ".f64"))
    outs = [("r", r), ("dxrel", dx_rel), ("y", y), ("dx", dx), ("dw", dw), ("db", db), ("da", da)]
    refs = [("r", r64), ("dxrel", x64.grad), ("y", y64), ("dx", xg64.grad), ("dw", w64.grad), ("db", b64.grad),
            ("da", a64.grad)]
    for prefix, items in (("torch_", outs), ("f64_", refs)):
        for name, t in items:
            t.detach().numpy().astype("<f8" if prefix == "f64_" else "<f4").tofile(
                os.path.join(a.dir, prefix + name + (".f64" if prefix == "f64_" else ".f32")))
    print(json.dumps({
        "name": "torch",
        "system": f"PyTorch {torch.__version__} CPU (autograd, float32)",
        "threads": torch.get_num_threads(),
        "relevanceMs": t_rel,
        "relevanceFwdBwdMs": t_relb,
        "gcnFwdBwdMs": t_gcn,
    }))


main()
