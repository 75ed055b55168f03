"""KeyDNN vs PyTorch on the GPU, side by side in one run: tiny-op overhead, elementwise bandwidth against
the copy ceiling, and the MLP and LeNet training steps. Prints a markdown table stamped with the GPU.

    python scripts/bench_cuda.py [--out reports/gpu/bench_cuda.md]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from keydnn.bench import measure_interleaved, paired_ratio
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

    # Each comparison runs KeyDNN's and PyTorch's batches alternately (measure_interleaved): the GPU hosts
    # drift by tens of percent in host speed within minutes, which a back-to-back comparison would report.
    a, b = Tensor.rand((1,), device=dev), Tensor.rand((1,), device=dev)
    ta, tb = torch.rand(1, device=dev), torch.rand(1, device=dev)
    t = measure_interleaved({"k": (lambda: a + b, sync_k), "t": (lambda: ta + tb, sync_t)},
                            number=2000, repeats=21)
    rows.append(("tiny add, async (us/op)", t["k"].us, t["t"].us, paired_ratio(t["k"], t["t"]), "<= 1.0x"))

    n = 64 * 2**20
    A, B = Tensor.rand((n,), device=dev), Tensor.rand((n,), device=dev)
    TA, TB = torch.rand(n, device=dev), torch.rand(n, device=dev)
    TC = torch.empty_like(TA)
    t = measure_interleaved({"k": (lambda: A + B, sync_k), "t": (lambda: TA + TB, sync_t),
                             "copy": (lambda: TC.copy_(TA), sync_t)}, repeats=21)
    gbs = lambda t, nbytes: nbytes / t.median / 1e9  # noqa: E731
    ceiling = gbs(t["copy"], 8 * n)
    rows.append(("add 64M float32 (GB/s)", gbs(t["k"], 12 * n), gbs(t["t"], 12 * n),
                 paired_ratio(t["k"], t["t"]), f">= 90% of copy {ceiling:.0f}"))

    for name, mk, mt in (("MLP 64-128-128-10 step, Adam, batch 64 (ms)", keydnn_mlp_step, torch_mlp_step),
                         ("LeNet step, SGD, batch 64, 1x28x28 (ms)", keydnn_lenet_step, torch_lenet_step)):
        t = measure_interleaved({"k": (mk(dev), sync_k), "t": (mt(dev), sync_t)}, warmup=20, repeats=31,
                                number=10)
        rows.append((name, t["k"].ms, t["t"].ms, paired_ratio(t["k"], t["t"]), "<= 1.0x"))

    lines = [f"# KeyDNN vs PyTorch {torch.__version__} on CUDA", "", stamp_line(), "",
             "| workload | KeyDNN | PyTorch | KeyDNN/PyTorch | target |", "|---|---:|---:|---:|---|"]
    for name, k, t, ratio, target in rows:
        lines.append(f"| {name} | {k:.2f} | {t:.2f} | {ratio:.2f}x | {target} |")
    from keydnn.infrastructure.backends.cuda import conv

    kinds = [type(plan).__name__ for plan in conv._plans.values()]
    lines.append("")
    lines.append(f"cuDNN convolution plans made: {kinds.count('_GraphPlan')} graph-API, {kinds.count('_Plan')} legacy"
                 + (f"; graph-API fallbacks: {sorted(set(conv.graph_fallbacks.values()))}"
                    if conv.graph_fallbacks else ""))
    lines.append("")
    lines.append("KeyDNN's and PyTorch's batches run alternately after warm-up, synchronised before each clock "
                 "read; the columns are medians, and KeyDNN/PyTorch is the median over rounds of KeyDNN's batch "
                 "time over PyTorch's (below 1.0x KeyDNN is faster, also for the GB/s row).")
    publish("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
