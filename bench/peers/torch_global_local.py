"""PyTorch CPU peers for bench/global_local.bench.mjs (seed 004 / issue 7), written the way a PyTorch
user would, on the same .npy inputs, torch.set_num_threads(2) by default:

  expand: query-time expansion, queries Q x D and gallery N x D (unit rows, so cosine = dot):
          S = Q G^T, (s, i) = topk(S, m), w = softmax(s / T), q' = normalize(Q + sum_j w_j G[i_j]),
          then topk(q' G^T, k).
  scan:   SCAN t2i LogSumExp scores of candidate pairs from a region bank (N x R x D), words
          (Q x L x D), candidate rows c(q, j) = (q * 7919 + j * 13) % N, j < C: per chunk of
          queries, gather the candidates' regions, A0 = einsum('qld,qcrd->qclr'), LeakyReLU 0.1,
          L2-normalise over words, alpha = softmax(lambda1 A) over regions, attended =
          einsum('qclr,qcrd->qcld'), r = cosine(word, attended), score = logsumexp(lambda2 r) / lambda2,
          top-k over the candidates.

Prints one JSON line: times, and values for the agreement check.
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


def timed(run, repeats):
    with torch.inference_mode():
        out = run()  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = run()
            times.append((time.perf_counter() - t0) * 1e3)
    return out, times


def expand(a):
    q = torch.from_numpy(np.load(a.queries))
    g = torch.from_numpy(np.load(a.gallery))

    def run():
        s, i = torch.topk(q @ g.T, a.m, dim=1)
        w = torch.softmax(s / a.temperature, dim=1)
        qe = F.normalize(q + torch.einsum("qm,qmd->qd", w, g[i]), dim=1)
        v, j = torch.topk(qe @ g.T, a.k, dim=1)
        return qe, v, j

    (qe, v, j), times = timed(run, a.repeats)
    return times, {"indices": j[:64].tolist(), "scores": v[:64].tolist(), "expanded": qe[:8].tolist()}


def scan(a):
    words = torch.from_numpy(np.load(a.words))
    bank = torch.from_numpy(np.load(a.regions))
    Q, L, D = a.q, a.l, words.shape[1]
    R = a.r
    N = bank.shape[0] // R
    words = words.reshape(Q, L, D)
    bank = bank.reshape(N, R, D)
    qi = torch.arange(Q).unsqueeze(1)
    ji = torch.arange(a.c).unsqueeze(0)
    cand = (qi * 7919 + ji * 13) % N  # Q x C

    def run():
        scores = torch.empty(Q, a.c)
        for s in range(0, Q, a.chunk):
            e = min(Q, s + a.chunk)
            w = words[s:e]                       # q x L x D
            reg = bank[cand[s:e]]                # q x C x R x D
            A0 = torch.einsum("qld,qcrd->qclr", w, reg)
            A = F.leaky_relu(A0, 0.1)
            A = A / (A.norm(dim=2, keepdim=True) + 1e-8)
            alpha = torch.softmax(a.lambda1 * A, dim=3)
            att = torch.einsum("qclr,qcrd->qcld", alpha, reg)
            num = (w.unsqueeze(1) * att).sum(-1)
            den = (w.norm(dim=-1).unsqueeze(1) * att.norm(dim=-1)).clamp(min=1e-8)
            r = num / den                        # q x C x L
            scores[s:e] = torch.logsumexp(a.lambda2 * r, dim=2) / a.lambda2
        v, i = torch.topk(scores, a.k, dim=1)
        return scores, v, i

    (scores, v, i), times = timed(run, a.repeats)
    return times, {"scores": scores[:16].reshape(-1).tolist(), "positions": i[:64].tolist()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("op", choices=["expand", "scan"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--queries")
    p.add_argument("--gallery")
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--temperature", type=float, default=0.1)
    p.add_argument("--words")
    p.add_argument("--regions")
    p.add_argument("--q", type=int)
    p.add_argument("--l", type=int)
    p.add_argument("--r", type=int)
    p.add_argument("--c", type=int)
    p.add_argument("--lambda1", type=float, default=9.0)
    p.add_argument("--lambda2", type=float, default=6.0)
    p.add_argument("--chunk", type=int, default=25, help="queries per einsum chunk")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    times, check = (expand if a.op == "expand" else scan)(a)
    print(json.dumps({
        "name": "torch",
        "system": f"PyTorch {torch.__version__} CPU",
        "threads": torch.get_num_threads(),
        "timesMs": times,
        "check": check,
    }))


main()
