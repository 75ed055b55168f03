"""KeyDNN vs PyTorch on the GPU, side by side in one run: tiny-op overhead, elementwise bandwidth against
the copy ceiling, and the MLP and LeNet training steps. Prints a markdown table stamped with the GPU.

    python scripts/bench_cuda.py [--out reports/gpu/bench_cuda.md]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from keydnn.bench import measure
from keydnn.bench.harness import publish, stamp_line
from keydnn.bench.workloads import keydnn_lenet_step, keydnn_mlp_step, torch_lenet_step, torch_mlp_step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import torch

    from keydnn import Tensor
    from keydnn.infrastructure.backends import cuda

    dev = "cuda:0"
    sync_k = lambda: cuda.synchronize(0)  # noqa: E731
    sync_t = torch.cuda.synchronize
    rows = []

    a, b = Tensor.rand((1,), device=dev), Tensor.rand((1,), device=dev)
    ta, tb = torch.rand(1, device=dev), torch.rand(1, device=dev)
    tk = measure(lambda: a + b, number=2000, repeats=15, sync=sync_k)
    tt = measure(lambda: ta + tb, number=2000, repeats=15, sync=sync_t)
    rows.append(("tiny add, async (us/op)", tk.us, tt.us, "<= 1.0x"))

    n = 64 * 2**20
    A, B = Tensor.rand((n,), device=dev), Tensor.rand((n,), device=dev)
    TA, TB = torch.rand(n, device=dev), torch.rand(n, device=dev)
    TC = torch.empty_like(TA)
    tk = measure(lambda: A + B, repeats=21, sync=sync_k)
    tt = measure(lambda: TA + TB, repeats=21, sync=sync_t)
    tc = measure(lambda: TC.copy_(TA), repeats=21, sync=sync_t)
    gbs = lambda t, nbytes: nbytes / t.median / 1e9  # noqa: E731
    ceiling = gbs(tc, 8 * n)
    rows.append(("add 64M float32 (GB/s)", gbs(tk, 12 * n), gbs(tt, 12 * n), f">= 90% of copy {ceiling:.0f}"))

    for name, mk, mt in (("MLP 64-128-128-10 step, Adam, batch 64 (ms)", keydnn_mlp_step, torch_mlp_step),
                         ("LeNet step, SGD, batch 64, 1x28x28 (ms)", keydnn_lenet_step, torch_lenet_step)):
        sk, st = mk(dev), mt(dev)
        tk = measure(sk, warmup=20, repeats=31, number=10, sync=sync_k)
        tt = measure(st, warmup=20, repeats=31, number=10, sync=sync_t)
        rows.append((name, tk.ms, tt.ms, "<= 1.0x"))

    lines = [f"# KeyDNN vs PyTorch {torch.__version__} on CUDA", "", stamp_line(), "",
             "| workload | KeyDNN | PyTorch | KeyDNN/PyTorch | target |", "|---|---:|---:|---:|---|"]
    for name, k, t, target in rows:
        ratio = k / t if "GB/s" not in name else t / k
        lines.append(f"| {name} | {k:.2f} | {t:.2f} | {ratio:.2f}x | {target} |")
    from keydnn.infrastructure.backends.cuda import conv

    kinds = [type(plan).__name__ for plan in conv._plans.values()]
    lines.append("")
    lines.append(f"cuDNN convolution plans made: {kinds.count('_GraphPlan')} graph-API, {kinds.count('_Plan')} legacy"
                 + (f"; graph-API fallbacks: {sorted(set(conv.graph_fallbacks.values()))}"
                    if conv.graph_fallbacks else ""))
    lines.append("")
    lines.append("Times are medians of repeated batches after warm-up, synchronised before each clock read; "
                 "for GB/s the ratio column is PyTorch's time over KeyDNN's (>1 means PyTorch is slower).")
    publish("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
