"""PyTorch side of the GPU benchmark (bench/gpu/run.sh -> gpu.bench.mjs -> this file).

Measures, on the same GPU and in the same run as vlkernels:
  * the card's matmul peaks: bf16 (the bar's denominator), fp32 with TF32 off and TF32, square matmuls
    timed with CUDA events; the bf16 peak is the best median over --peak-sizes;
  * W1 (the .npy files node wrote: 100,000 x 512 gallery, 1,000 queries, k = 10) and the large case
    (generated here on the GPU from a fixed seed and saved as .npy for node: 1,000,000 x 768, 10,000
    queries, k = 100): torch.topk(q @ g.T, k) in fp32 (TF32 off) and in bf16, each
      resident:  q and g already on the GPU (bf16: already cast), search only;
      from host: q and g start as fp32 CPU tensors (pageable, as node's are), H2D + search + D2H of
                 the top-k indices and scores;
    the large case runs in query chunks (the Q x N score matrix would not fit), as a PyTorch user
    would; plus the bf16 matmul alone (no selection) on the large shape, for context.
Times are wall clock around torch.cuda.synchronize(), median of --repeats after --warmup calls.

Writes one JSON file (--out). Without a usable GPU it writes {"skipped": "no CUDA device: ..."} and
exits 3; without torch, exit 2. Needs only torch (numpy is optional: .npy files are read and
written through torch.from_file). --device cpu runs the same code on the CPU (a harness self-test
of the bench, never a result).
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

T0 = time.monotonic()


def log(msg):
    print(f"[torch_peer {time.strftime('%H:%M:%S')} +{time.monotonic() - T0:5.1f}s] {msg}", file=sys.stderr, flush=True)


def write_json(path, obj):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="JSON report path")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="cpu: harness self-test only")
    p.add_argument("--w1-gallery", help=".npy, N x D float32 (written by bench/lib/data.mjs)")
    p.add_argument("--w1-queries", help=".npy, Q x D float32")
    p.add_argument("--w1-k", type=int, default=10)
    p.add_argument("--large-dir", help="where the large case's .npy files go (generated here)")
    p.add_argument("--large-n", type=int, default=1_000_000)
    p.add_argument("--large-d", type=int, default=768)
    p.add_argument("--large-q", type=int, default=10_000)
    p.add_argument("--large-k", type=int, default=100)
    p.add_argument("--large-seed", type=int, default=20261125)
    p.add_argument("--peak-sizes", default="8192,16384", help="square bf16 matmul sizes; the peak is the best")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--check", type=int, default=8, help="queries whose top-k ids are reported for agreement")
    p.add_argument("--chunk-bytes", type=float, default=8 * 2**30, help="cap on one chunk's score matrix")
    p.add_argument("--budget-s", type=float, default=240, help="stop repeating (min 3 runs) past this")
    return p.parse_args()


# ---- .npy without numpy ---------------------------------------------------------------------------
def npy_header(rows, cols):
    d = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, cols)
    pad = (64 - (10 + len(d) + 1) % 64) % 64
    d = d + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + len(d).to_bytes(2, "little") + d.encode("latin1")


def read_npy(torch, path):
    """A C-order float32 2-D .npy file as a CPU tensor (a private mapping: pages are read on demand)."""
    with open(path, "rb") as f:
        pre = f.read(10)
        if pre[:6] != b"\x93NUMPY":
            raise ValueError(f"{path}: not a .npy file")
        if pre[6] != 1:
            raise ValueError(f"{path}: .npy version {pre[6]} (expected 1)")
        hlen = int.from_bytes(pre[8:10], "little")
        header = f.read(hlen).decode("latin1")
    import ast

    meta = ast.literal_eval(header.strip())
    if meta["descr"] != "<f4" or meta["fortran_order"] or len(meta["shape"]) != 2:
        raise ValueError(f"{path}: expected a C-order float32 matrix, header {header.strip()}")
    rows, cols = meta["shape"]
    off = 10 + hlen
    size = os.path.getsize(path)
    if size != off + rows * cols * 4:
        raise ValueError(f"{path}: {size} bytes, expected {off + rows * cols * 4}")
    raw = torch.from_file(path, shared=False, size=size, dtype=torch.uint8)
    return raw[off:].view(torch.float32).view(rows, cols)


def write_npy(torch, path, t):
    """Writes a 2-D float32 tensor (any device) as .npy through a shared file mapping."""
    rows, cols = t.shape
    head = npy_header(rows, cols)
    total = len(head) + rows * cols * 4
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.truncate(total)
    mapped = torch.from_file(tmp, shared=True, size=total, dtype=torch.uint8)
    mapped[: len(head)] = torch.tensor(list(head), dtype=torch.uint8)
    body = mapped[len(head):].view(torch.float32).view(rows, cols)
    step = max(1, (256 << 20) // (cols * 4))  # 256 MB per D2H copy
    for s in range(0, rows, step):
        body[s : s + step].copy_(t[s : s + step])
    del body, mapped
    os.replace(tmp, path)


# ---- timing ---------------------------------------------------------------------------------------
class Timer:
    def __init__(self, torch, device, repeats, warmup, deadline):
        self.torch, self.device, self.repeats, self.warmup, self.deadline = torch, device, repeats, warmup, deadline

    def sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def run(self, fn):
        """Median-of-repeats wall time (ms) of fn(); fewer runs (at least 3) once past the deadline."""
        out = None
        for _ in range(self.warmup):
            out = None
            out = fn()
            self.sync()
        times = []
        for i in range(self.repeats):
            if i >= 3 and time.monotonic() > self.deadline:
                break
            out = None
            self.sync()
            t0 = time.perf_counter()
            out = fn()
            self.sync()
            times.append((time.perf_counter() - t0) * 1e3)
        return {"timesMs": times, "medianMs": statistics.median(times), "minMs": min(times)}, out


def matmul_peak(torch, device, dtype, sizes, deadline):
    """Square matmuls timed with CUDA events (wall clock on the CPU): per size the median over 5 batches."""
    shapes = []
    for n in sizes:
        gen = torch.Generator(device=device).manual_seed(n)
        a = torch.randn((n, n), generator=gen, device=device, dtype=torch.float32).to(dtype)
        b = torch.randn((n, n), generator=gen, device=device, dtype=torch.float32).to(dtype)
        c = a @ b
        # Warm-up of at least ~0.3 s so clocks settle, and an iteration count giving ~50 ms batches.
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        iters = 0
        while time.perf_counter() - t0 < 0.3 or iters < 3:
            c = torch.matmul(a, b, out=c)
            iters += 1
            if device == "cuda" and iters % 4 == 0:
                torch.cuda.synchronize()
            if iters >= 2000:
                break
        if device == "cuda":
            torch.cuda.synchronize()
        per = (time.perf_counter() - t0) / iters
        batch = max(1, min(200, int(0.05 / max(per, 1e-6))))
        ms = []
        for _ in range(5):
            if device == "cuda":
                e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                e0.record()
                for _ in range(batch):
                    torch.matmul(a, b, out=c)
                e1.record()
                e1.synchronize()
                ms.append(e0.elapsed_time(e1) / batch)
            else:
                t = time.perf_counter()
                for _ in range(batch):
                    torch.matmul(a, b, out=c)
                ms.append((time.perf_counter() - t) * 1e3 / batch)
            if time.monotonic() > deadline and len(ms) >= 2:
                break
        med = statistics.median(ms)
        shapes.append({"m": n, "n": n, "k": n, "batch": batch, "msPerMatmul": ms, "medianMs": med,
                       "tflops": 2 * n**3 / (med * 1e-3) / 1e12})
        del a, b, c
    best = max(shapes, key=lambda s: s["tflops"])
    return {"dtype": str(dtype).replace("torch.", ""), "shapes": shapes, "tflops": best["tflops"],
            "bestShape": f"{best['m']}x{best['n']}x{best['k']}"}


def topk_chunked(torch, q, g, k, chunk):
    """torch.topk(q @ g.T, k) over query chunks of `chunk` rows; (values, indices) Q x k."""
    if chunk >= q.shape[0]:
        return torch.topk(q @ g.T, k, dim=1)
    vals, idx = [], []
    for s in range(0, q.shape[0], chunk):
        v, i = torch.topk(q[s : s + chunk] @ g.T, k, dim=1)
        vals.append(v)
        idx.append(i)
    return torch.cat(vals), torch.cat(idx)


def run_case(torch, name, q_host, g_host, k, timer, device, check, chunk_bytes):
    """Times the four torch forms on one case; returns the case's JSON."""
    Q, D = q_host.shape
    N = g_host.shape[0]
    flop = 2.0 * Q * N * D
    if device == "cuda":
        free, _ = torch.cuda.mem_get_info()
        cap = min(chunk_bytes, 0.3 * free)
    else:
        cap = min(chunk_bytes, 1 << 30)
    chunk32 = max(1, min(Q, int(cap // (N * 4))))
    chunk16 = max(1, min(Q, int(cap // (N * 2))))
    log(f"{name}: Q={Q} N={N} D={D} k={k}; chunks of {chunk32} (fp32) / {chunk16} (bf16) queries")

    qd = q_host.to(device)
    gd = g_host.to(device)
    qd16 = qd.to(torch.bfloat16)
    gd16 = gd.to(torch.bfloat16)
    runs = []

    def record(rid, label, form, dtype, stats, out):
        idx = out[1][:check].cpu().tolist()
        stats.update({"id": rid, "label": label, "form": form, "dtype": dtype,
                      "tflops": flop / (stats["medianMs"] * 1e-3) / 1e12, "check": {"k": k, "indices": idx}})
        runs.append(stats)
        log(f"{name}: {label}: median {stats['medianMs']:.3f} ms over {len(stats['timesMs'])} runs "
            f"({stats['tflops']:.1f} TFLOP/s effective)")

    stats, out = timer.run(lambda: topk_chunked(torch, qd, gd, k, chunk32))
    record("torch-fp32", "torch fp32 (TF32 off) topk(q @ g.T), resident", "resident", "fp32", stats, out)
    stats, out = timer.run(lambda: topk_chunked(torch, qd16, gd16, k, chunk16))
    record("torch-bf16", "torch bf16 topk(q @ g.T), resident", "resident", "bf16", stats, out)

    def from_host32():
        v, i = topk_chunked(torch, q_host.to(device), g_host.to(device), k, chunk32)
        return v.cpu(), i.cpu()

    def from_host16():
        v, i = topk_chunked(torch, q_host.to(device).to(torch.bfloat16), g_host.to(device).to(torch.bfloat16), k, chunk16)
        return v.float().cpu(), i.cpu()

    del qd, gd  # from-host forms allocate their own copies each call
    if device == "cuda":
        torch.cuda.empty_cache()
    stats, out = timer.run(from_host32)
    record("torch-fp32-host", "torch fp32 (TF32 off), from host: H2D + topk(q @ g.T) + D2H", "from-host", "fp32", stats, out)
    stats, out = timer.run(from_host16)
    record("torch-bf16-host", "torch bf16, from host: H2D + cast + topk(q @ g.T) + D2H", "from-host", "bf16", stats, out)

    # Context: the bf16 matmul alone on this shape (same chunks, no selection).
    def mm_only():
        last = None
        for s in range(0, Q, chunk16):
            last = qd16[s : s + chunk16] @ gd16.T
        return None, last

    stats, _ = timer.run(mm_only)
    stats.update({"id": "torch-bf16-matmul-only", "label": "torch bf16 q @ g.T alone (no selection), resident",
                  "form": "resident", "dtype": "bf16", "tflops": flop / (stats["medianMs"] * 1e-3) / 1e12})
    runs.append(stats)
    log(f"{name}: bf16 matmul alone: median {stats['medianMs']:.3f} ms ({stats['tflops']:.1f} TFLOP/s)")
    del qd16, gd16
    if device == "cuda":
        torch.cuda.empty_cache()
    return {"q": Q, "n": N, "d": D, "k": k, "flop": flop, "chunkQueries": {"fp32": chunk32, "bf16": chunk16}, "runs": runs}


def make_large(torch, args, device):
    """The large case: unit-Gaussian rows from torch's generator on the device (fixed seed), as .npy."""
    n, d, q = args.large_n, args.large_d, args.large_q
    os.makedirs(args.large_dir, exist_ok=True)
    tag = f"v1-s{args.large_seed}-{device}"
    paths = {"gallery": os.path.join(args.large_dir, f"vlk-gpu-large-{tag}-g-{n}x{d}.npy"),
             "queries": os.path.join(args.large_dir, f"vlk-gpu-large-{tag}-q-{q}x{d}.npy")}
    out = {}
    for key, rows, seed in (("gallery", n, args.large_seed), ("queries", q, args.large_seed + 1)):
        path = paths[key]
        want = len(npy_header(rows, d)) + rows * d * 4
        if os.path.exists(path) and os.path.getsize(path) == want:
            log(f"large {key}: reusing {path}")
            t = read_npy(torch, path).clone()
        else:
            gen = torch.Generator(device=device).manual_seed(seed)
            t = torch.randn((rows, d), generator=gen, device=device, dtype=torch.float32)
            t.div_(t.norm(dim=1, keepdim=True))
            t0 = time.monotonic()
            write_npy(torch, path, t)
            log(f"large {key}: generated (seed {seed}) and wrote {path} ({want / 2**30:.2f} GiB) in {time.monotonic() - t0:.1f} s")
            t = t.cpu()
        out[key] = t
    return out["queries"], out["gallery"], paths


def main():
    args = parse_args()
    deadline = T0 + args.budget_s
    report = {"tool": "bench/gpu/torch_peer.py", "device": args.device, "python": platform.python_version()}
    try:
        import torch
    except ImportError as e:
        report["skipped"] = f"torch not importable: {e}"
        write_json(args.out, report)
        log(report["skipped"])
        sys.exit(2)
    report["versions"] = {"torch": torch.__version__, "cuda": torch.version.cuda,
                          "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None}
    if args.device == "cuda":
        if not torch.cuda.is_available():
            why = "torch.cuda.is_available() is False"
            if torch.version.cuda is None:
                why += f" (this torch {torch.__version__} is a CPU-only build)"
            else:
                try:
                    why += f", device count {torch.cuda.device_count()}"
                except Exception as e:  # noqa: BLE001: whatever the runtime says is the reason
                    why += f" ({e})"
            report["skipped"] = f"no CUDA device: {why}"
            write_json(args.out, report)
            log(report["skipped"])
            sys.exit(3)
        props = torch.cuda.get_device_properties(0)
        report["gpu"] = {"name": torch.cuda.get_device_name(0), "capability": f"{props.major}.{props.minor}",
                         "totalMemoryGiB": props.total_memory / 2**30, "multiprocessors": props.multi_processor_count}
    else:
        report["gpu"] = {"name": f"CPU self-test ({platform.processor() or platform.machine()})"}
        report["note"] = "--device cpu: harness self-test, not a GPU result"
    # fp32 means fp32: no TF32 in matmuls (the exact comparator of the bars).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    report["settings"] = {"allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                          "float32_matmul_precision": torch.get_float32_matmul_precision(),
                          "repeats": args.repeats, "warmup": args.warmup, "timing": "wall clock around cuda.synchronize(), median"}
    log(f"torch {torch.__version__} (CUDA {torch.version.cuda}) on {report['gpu']['name']}")

    with torch.inference_mode():
        sizes = [int(s) for s in args.peak_sizes.split(",") if s]
        report["peak"] = {"bf16": matmul_peak(torch, args.device, torch.bfloat16, sizes, deadline)}
        log(f"bf16 matmul peak: {report['peak']['bf16']['tflops']:.1f} TFLOP/s ({report['peak']['bf16']['bestShape']})")
        report["peak"]["fp32"] = matmul_peak(torch, args.device, torch.float32, sizes[:1], deadline)
        torch.backends.cuda.matmul.allow_tf32 = True
        report["peak"]["tf32"] = matmul_peak(torch, args.device, torch.float32, sizes[:1], deadline)
        torch.backends.cuda.matmul.allow_tf32 = False
        log(f"fp32 (TF32 off) matmul: {report['peak']['fp32']['tflops']:.1f} TFLOP/s; TF32: {report['peak']['tf32']['tflops']:.1f}")
        write_json(args.out, report)  # partial results survive a kill

        timer = Timer(torch, args.device, args.repeats, args.warmup, deadline)
        report["cases"] = {}
        if args.w1_gallery and args.w1_queries:
            g = read_npy(torch, args.w1_gallery).clone()
            q = read_npy(torch, args.w1_queries).clone()
            report["cases"]["w1"] = run_case(torch, "w1", q, g, args.w1_k, timer, args.device, args.check, args.chunk_bytes)
            report["cases"]["w1"]["files"] = {"gallery": args.w1_gallery, "queries": args.w1_queries}
            del g, q
            write_json(args.out, report)
        if args.large_dir and args.large_n > 0:
            q, g, paths = make_large(torch, args, args.device)
            report["largeFiles"] = paths
            write_json(args.out, report)  # node can start from the files even if timing is cut short
            report["cases"]["large"] = run_case(torch, "large", q, g, args.large_k, timer, args.device, args.check, args.chunk_bytes)
            report["cases"]["large"]["files"] = paths
            report["cases"]["large"]["seed"] = args.large_seed
            del g, q
    report["elapsedS"] = time.monotonic() - T0
    write_json(args.out, report)
    log(f"done in {report['elapsedS']:.1f} s -> {args.out}")


if __name__ == "__main__":
    main()
