"""PyTorch CPU peer: one combiner training step (CLIP4Cir combiner, batch B, D; forward with
dropout 0.5, CE(100 * out . norm(target)^T, diag), backward, AdamW), the same work as
vlkernels' CombinerTrainer step. Prints one JSON line with the step times (ms)."""
import argparse
import json
import sys
import time

try:
    import torch
    import torch.nn.functional as F
    from torch_combiner import Combiner  # the one PyTorch re-implementation of the combiner
except ImportError as e:
    print(json.dumps({"name": "torch", "skipped": f"python module missing ({e})"}))
    sys.exit(0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--b", type=int, default=128)
    p.add_argument("--d", type=int, default=512)
    p.add_argument("--steps", type=int, default=7)
    a = p.parse_args()
    torch.manual_seed(0)
    m = Combiner(a.d, 4 * a.d, 8 * a.d)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    img, txt, tgt = (torch.randn(a.b, a.d) for _ in range(3))
    labels = torch.arange(a.b)
    times = []
    for s in range(a.steps + 1):
        t0 = time.perf_counter()
        out = m(img, txt)
        loss = F.cross_entropy(100 * out @ F.normalize(tgt, dim=-1).T, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if s > 0:
            times.append((time.perf_counter() - t0) * 1e3)
    print(json.dumps({"name": "torch", "system": f"PyTorch {torch.__version__} CPU", "threads": torch.get_num_threads(), "timesMs": times}))


main()
