"""PyTorch CPU peer of memoryInfoNce: MoCo's InfoNCE with a queue, forward + backward, the way the
MoCo / AAHR code writes it: l_pos = (q * k).sum(1), l_neg = q @ queue^T, logits = cat / tau,
cross_entropy against column 0, loss.backward() (the queue is a buffer, no gradient).

Bench peer for bench/memory_bank.bench.mjs. Inputs: queries, keys (B x D .npy), queue (K x D .npy).
Prints one JSON line: per-repeat times, the loss and the first rows of both gradients.
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
    p.add_argument("--queries", required=True)
    p.add_argument("--keys", required=True)
    p.add_argument("--queue", required=True)
    p.add_argument("--tau", type=float, default=0.07)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--check-rows", type=int, default=4)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    q0 = torch.from_numpy(np.load(a.queries))
    k0 = torch.from_numpy(np.load(a.keys))
    queue = torch.from_numpy(np.load(a.queue))

    def step():
        q = q0.clone().requires_grad_(True)
        k = k0.clone().requires_grad_(True)
        l_pos = (q * k).sum(dim=1, keepdim=True)
        l_neg = q @ queue.t()
        logits = torch.cat([l_pos, l_neg], dim=1) / a.tau
        labels = torch.zeros(q.shape[0], dtype=torch.long)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        return loss.item(), q.grad, k.grad

    step()  # warm-up
    times = []
    out = None
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        out = step()
        times.append((time.perf_counter() - t0) * 1e3)
    loss, dq, dk = out
    r = a.check_rows
    print(json.dumps({
        "name": "torch",
        "system": f"PyTorch {torch.__version__} CPU (matmul + cat + cross_entropy + backward)",
        "threads": torch.get_num_threads(),
        "timesMs": times,
        "loss": loss,
        "dq": dq[:r].reshape(-1).tolist(),
        "dk": dk[:r].reshape(-1).tolist(),
    }))


main()
