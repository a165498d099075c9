"""PyTorch CPU peer of clipLoss: CLIP's symmetric InfoNCE with a learnable temperature, forward +
backward, the way open_clip writes it: F.normalize both sets, logits = exp(t).clamp(max=100) I T^T,
(cross_entropy(logits, arange) + cross_entropy(logits^T, arange)) / 2, loss.backward().

Bench peer for bench/clip_loss.bench.mjs. Inputs: images, texts (B x D .npy), the logit scale t.
Prints one JSON line: per-repeat times, the loss, dL/dt and the first rows of both gradients.
"""
import argparse
import json
import sys
import time

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:
    print(json.dumps({"name": "torch", "skipped": f"python module missing ({e}); pip install torch numpy"}))
    sys.exit(0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--images", required=True)
    p.add_argument("--texts", required=True)
    p.add_argument("--logit-scale", type=float, required=True)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--check-rows", type=int, default=4)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    i0 = torch.from_numpy(np.load(a.images))
    t0_ = torch.from_numpy(np.load(a.texts))

    def step():
        img = i0.clone().requires_grad_(True)
        txt = t0_.clone().requires_grad_(True)
        t = torch.tensor(a.logit_scale, dtype=torch.float32, requires_grad=True)
        logits = t.exp().clamp(max=100) * F.normalize(img, dim=1) @ F.normalize(txt, dim=1).t()
        labels = torch.arange(img.shape[0])
        loss = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))
        loss.backward()
        return loss.item(), t.grad.item(), img.grad, txt.grad

    step()  # warm-up
    times = []
    out = None
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        out = step()
        times.append((time.perf_counter() - t0) * 1e3)
    loss, dt, di, dtx = out
    r = a.check_rows
    print(json.dumps({
        "name": "torch",
        "system": f"PyTorch {torch.__version__} CPU (normalize + matmul + 2 cross_entropy + backward)",
        "threads": torch.get_num_threads(),
        "timesMs": times,
        "loss": loss,
        "dt": dt,
        "di": di[:r].reshape(-1).tolist(),
        "dtx": dtx[:r].reshape(-1).tolist(),
    }))


main()
