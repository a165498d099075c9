"""PyTorch CPU peer: AAHR's biased graph attention layer, forward + backward with autograd, the same
work as vlkernels' biasedAttention + biasedAttentionBackward (bench/biased_attention.bench.mjs).

Layer (post-LN, FFN out of scope): Q/K/V = X W^T + b, per head S = Q_h K_h^T / sqrt(D/h) + bias,
bias = w*R where the mask is 1 (diagonal always), -inf elsewhere; P = softmax(S); O = concat_h P V_h;
Y = LayerNorm(X + O Wo^T + bo) (eps 1e-5). Backward of sum(Y * dY) for X, every weight and bias,
gamma, beta and R.

Modes: 'explicit' (the ops written out, attention matrix materialised: what the AAHR code does),
'mha' (nn.MultiheadAttention with a float attn_mask) and 'sdpa' (F.scaled_dot_product_attention with
a float mask). Inputs: one raw little-endian float32 file, in this order: X (n x D), Wq, Wk, Wv, Wo
(D x D each), bq, bk, bv, bo, gamma, beta (D each), R (n x n), mask (n x n, 0/1), dY (n x D).
Prints one JSON line (times in ms); with --out writes Y, dX, dWq, dWo, dbq, dgamma, dR (raw float32,
in that order) for the agreement check.
"""
import argparse
import json
import math
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
    p.add_argument("--inputs", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--d", type=int, required=True)
    p.add_argument("--heads", type=int, required=True)
    p.add_argument("--w", type=float, default=1.0)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--mode", choices=["explicit", "mha", "sdpa"], default="explicit")
    p.add_argument("--out")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    n, d, h = a.n, a.d, a.heads
    dh = d // h
    raw = np.fromfile(a.inputs, dtype="<f4")
    sizes = [n * d, d * d, d * d, d * d, d * d, d, d, d, d, d, d, n * n, n * n, n * d]
    parts, off = [], 0
    for s in sizes:
        parts.append(torch.from_numpy(raw[off:off + s].copy()))
        off += s
    x, wq, wk, wv, wo, bq, bk, bv, bo, gamma, beta, r, mask, dy = parts
    x, dy = x.view(n, d), dy.view(n, d)
    wq, wk, wv, wo = (t.view(d, d) for t in (wq, wk, wv, wo))
    r = r.view(n, n)
    conn = mask.view(n, n) != 0
    conn |= torch.eye(n, dtype=torch.bool)
    leaves = [x, wq, wk, wv, wo, bq, bk, bv, bo, gamma, beta, r]
    for t in leaves:
        t.requires_grad_(True)

    mha = None
    if a.mode == "mha":
        mha = torch.nn.MultiheadAttention(d, h, bias=True, batch_first=False)

    def forward():
        bias = torch.where(conn, a.w * r, torch.full_like(r, -math.inf))
        if a.mode == "explicit":
            q = (x @ wq.T + bq).view(n, h, dh).transpose(0, 1)
            k = (x @ wk.T + bk).view(n, h, dh).transpose(0, 1)
            v = (x @ wv.T + bv).view(n, h, dh).transpose(0, 1)
            s = q @ k.transpose(1, 2) / math.sqrt(dh) + bias
            o = (torch.softmax(s, dim=-1) @ v).transpose(0, 1).reshape(n, d)
            att = o @ wo.T + bo
        elif a.mode == "sdpa":
            q = (x @ wq.T + bq).view(n, h, dh).transpose(0, 1)
            k = (x @ wk.T + bk).view(n, h, dh).transpose(0, 1)
            v = (x @ wv.T + bv).view(n, h, dh).transpose(0, 1)
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=bias).transpose(0, 1).reshape(n, d)
            att = o @ wo.T + bo
        else:
            # The module's own parameters would be leaves of their own; pass ours through the functional form.
            att, _ = F.multi_head_attention_forward(
                x.unsqueeze(1), x.unsqueeze(1), x.unsqueeze(1), d, h,
                torch.cat([wq, wk, wv]), torch.cat([bq, bk, bv]), None, None, False, 0.0, wo, bo,
                training=True, need_weights=False, attn_mask=bias)
            att = att.squeeze(1)
        return F.layer_norm(x + att, (d,), gamma, beta, 1e-5)

    def step():
        for t in leaves:
            t.grad = None
        y = forward()
        y.backward(dy)
        return y

    step()  # warm-up
    times = []
    y = None
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        y = step()
        times.append((time.perf_counter() - t0) * 1e3)
    # Forward alone, for the split.
    fwd = []
    with torch.no_grad():
        for _ in range(max(1, a.repeats // 2)):
            t0 = time.perf_counter()
            forward()
            fwd.append((time.perf_counter() - t0) * 1e3)
    if a.out:
        outs = [y.detach(), x.grad, wq.grad, wo.grad, bq.grad, gamma.grad, r.grad]
        np.concatenate([t.detach().reshape(-1).numpy().astype("<f4") for t in outs]).tofile(a.out)
    print(json.dumps({
        "name": "torch",
        "system": f"PyTorch {torch.__version__} CPU ({a.mode}, autograd)",
        "threads": torch.get_num_threads(),
        "timesMs": times,
        "forwardMs": fwd,
    }))


main()
