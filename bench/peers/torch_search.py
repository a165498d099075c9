"""PyTorch CPU exact top-k: torch.topk(q @ g.T, k), the form a PyTorch user writes.

Bench peer. Tensors share the numpy buffers (torch.from_numpy, no copy). Queries Q x D, gallery N x D
-> indices Q x k, best first (topk returns them sorted).
"""
import peer_common as pc

NAME = "torch"

try:
    import numpy as np
    import torch
except ImportError as e:
    pc.skip(NAME, f"python module missing ({e}); pip install torch")


def main():
    args = pc.parse_args()
    g, q = pc.load(args)
    gt = torch.from_numpy(g)
    qt = torch.from_numpy(q)
    with torch.inference_mode():
        runs, check = pc.batched_runs(lambda q_, g_, k: torch.topk(q_ @ g_.T, k).indices, gt, qt, args)
        lat = pc.latency(lambda row, g_, k: torch.topk(g_ @ row, k).indices, gt, qt, args)
    pc.emit({
        "name": NAME,
        "system": f"PyTorch {torch.__version__} topk(q @ g.T)",
        "versions": {"torch": torch.__version__, "numpy": np.__version__},
        "threads": torch.get_num_threads(),
        "runs": runs,
        "latency": lat,
        "check": check,
    })


main()
