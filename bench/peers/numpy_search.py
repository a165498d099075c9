"""numpy exact top-k: matmul, argpartition, then sort of the k survivors, as a numpy user writes it.

Bench peer, numpy as shipped (no OpenBLAS override). Queries Q x D, gallery N x D -> indices Q x k,
best first. Q = 1 goes through the 1-D gemv form `g @ q`.
"""
import peer_common as pc

NAME = "numpy"

try:
    import numpy as np
except ImportError as e:
    pc.skip(NAME, f"python module numpy is missing ({e}); pip install numpy")


def top_k(s, k):
    # argpartition on s itself (largest k at the end) avoids materialising -s, a second Q x N matrix.
    n = s.shape[-1]
    idx = np.argpartition(s, n - k, axis=-1)[..., n - k:]
    top = np.take_along_axis(s, idx, axis=-1)
    order = np.argsort(-top, axis=-1, kind="stable")
    return np.take_along_axis(idx, order, axis=-1)


def main():
    args = pc.parse_args()
    g, q = pc.load(args)
    runs, check = pc.batched_runs(lambda q_, g_, k: top_k(q_ @ g_.T, k), g, q, args)
    lat = pc.latency(lambda row, g_, k: top_k(g_ @ row, k), g, q, args)
    pc.emit({
        "name": NAME,
        "system": f"numpy {np.__version__} matmul + argpartition",
        "versions": {"numpy": np.__version__},
        "runs": runs,
        "latency": lat,
        "check": check,
    })


main()
