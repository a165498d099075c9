"""FAISS IndexFlatIP: exact inner-product search (BLAS block + heap per query), faiss-cpu from pip.

Bench peer. Gallery N x D added once (excluded from timing); search(queries Q x D, k) -> indices Q x k.
"""
import peer_common as pc

NAME = "faiss"

try:
    import numpy as np
    import faiss
except ImportError as e:
    pc.skip(NAME, f"python module missing ({e}); pip install faiss-cpu")


def main():
    args = pc.parse_args()
    g, q = pc.load(args)
    index = faiss.IndexFlatIP(g.shape[1])
    index.add(g)
    runs, check = pc.batched_runs(lambda q_, _g, k: index.search(q_, k)[1], g, q, args)
    lat = pc.latency(lambda row, _g, k: index.search(row.reshape(1, -1), k)[1], g, q, args)
    pc.emit({
        "name": NAME,
        "system": f"FAISS {faiss.__version__} IndexFlatIP",
        "versions": {"faiss": faiss.__version__, "numpy": np.__version__},
        "threads": faiss.omp_get_max_threads(),
        "runs": runs,
        "latency": lat,
        "check": check,
    })


main()
