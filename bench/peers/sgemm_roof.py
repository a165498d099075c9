"""The sgemm roof: numpy `q @ g.T` alone (no selection), the fp32 matrix-multiply ceiling of this machine.

Bench peer. Run by bench/run.mjs with OPENBLAS_CORETYPE=SkylakeX so OpenBLAS uses its AVX-512 kernels
(as shipped it picks AVX2 kernels on Zen 5). Queries Q x D times gallery^T D x N -> Q x N float32.
"""
import peer_common as pc

NAME = "sgemm-roof"

try:
    import numpy as np
except ImportError as e:
    pc.skip(NAME, f"python module numpy is missing ({e}); pip install numpy")


def main():
    args = pc.parse_args()
    g, q = pc.load(args)
    times, _ = pc.time_best(lambda: q @ g.T, args.repeats)
    pc.emit({
        "name": NAME,
        "system": f"numpy {np.__version__} q @ g.T alone",
        "versions": {"numpy": np.__version__},
        "runs": [{"k": None, "q": int(q.shape[0]), "timesMs": times, "bestMs": min(times)}],
    })


main()
