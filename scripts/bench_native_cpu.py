"""Native CPU kernels vs the NumPy reference vs PyTorch CPU, side by side in one run (median of repeats).

    python scripts/bench_native_cpu.py [--repeats 20] [--out reports/cpu/native_kernels.md] [--quick]

Times the kernels directly (no autograd) on float32. Torch is optional; its column is blank without it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keydnn.bench.harness import publish  # noqa: E402
from keydnn.infrastructure.backends import native_cpu  # noqa: E402
from keydnn.infrastructure.backends.native_cpu import conv as nconv  # noqa: E402
from keydnn.infrastructure.backends.native_cpu import norm as nnorm  # noqa: E402
from keydnn.infrastructure.backends.native_cpu import pool as npool  # noqa: E402
from keydnn.infrastructure.backends.numpy import conv as rconv  # noqa: E402
from keydnn.infrastructure.backends.numpy import norm as rnorm  # noqa: E402
from keydnn.infrastructure.backends.numpy import pool as rpool  # noqa: E402

try:
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
except ImportError:
    torch = None


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def conv_cases(quick: bool) -> list[tuple[str, dict]]:
    cases = [("conv2d 32x16x32x32 -> 32, 3x3 pad 1", dict(x=(32, 16, 32, 32), w=(32, 16, 3, 3), pad=1))]
    if not quick:
        cases.append(("seed conv2d 8x64x112x112 -> 128, 3x3 pad 1",
                      dict(x=(8, 64, 112, 112), w=(128, 64, 3, 3), pad=1)))
    return cases


def bench_conv(rows: list, label: str, spec: dict, repeats: int, rng: np.random.Generator,
               fwd_only: bool) -> None:
    x = rng.standard_normal(spec["x"], dtype=np.float32)
    w = rng.standard_normal(spec["w"], dtype=np.float32)
    b = rng.standard_normal(spec["w"][0], dtype=np.float32)
    geo = ((1, 1), (spec["pad"],) * 2, (1, 1), 1)
    gy = np.ones_like(nconv.conv2d_forward(x, w, b, *geo))

    def step(k):
        def run():
            k.conv2d_forward(x, w, b, *geo)
            k.conv2d_backward_input(gy, w, x.shape, *geo)
            k.conv2d_backward_weight(gy, x, w.shape, *geo)
            gy.sum(axis=(0, 2, 3))
        return run

    reps = max(3, repeats // 4) if fwd_only else repeats
    t_fwd = [median_ms(lambda k=k: k.conv2d_forward(x, w, b, *geo), reps) for k in (nconv, rconv)]
    t_step = None if fwd_only else [median_ms(step(k), repeats) for k in (nconv, rconv)]
    torch_fwd = torch_step = None
    if torch is not None:
        tx, tw, tb, tgy = (torch.from_numpy(a) for a in (x, w, b, gy))
        pad = spec["pad"]
        torch_fwd = median_ms(lambda: torch.nn.functional.conv2d(tx, tw, tb, padding=pad), reps)
        if not fwd_only:
            def torch_run():
                torch.nn.functional.conv2d(tx, tw, tb, padding=pad)
                torch.ops.aten.convolution_backward(tgy, tx, tw, [tw.shape[0]], [1, 1], [pad, pad], [1, 1],
                                                    False, [0, 0], 1, [True, True, True])
            torch_step = median_ms(torch_run, repeats)
    rows.append((f"{label} forward", *t_fwd, torch_fwd))
    if t_step is not None:
        rows.append((f"{label} forward+backward", *t_step, torch_step))


def bench_pool(rows: list, repeats: int, rng: np.random.Generator) -> None:
    x = rng.standard_normal((8, 32, 64, 64), dtype=np.float32)
    geo = ((2, 2), (2, 2), (0, 0))
    y, arg = npool.max_pool2d_forward(x, *geo)
    gy = rng.standard_normal(y.shape, dtype=np.float32)
    label = "pool2d 2x2 on 8x32x64x64"
    for name in ("max", "avg"):
        fwd = [median_ms(lambda k=k, n=name: getattr(k, f"{n}_pool2d_forward")(x, *geo), repeats)
               for k in (npool, rpool)]
        if name == "max":
            bwd = [median_ms(lambda k=k: k.max_pool2d_backward(gy, arg, x.shape), repeats)
                   for k in (npool, rpool)]
        else:
            bwd = [median_ms(lambda k=k: k.avg_pool2d_backward(gy, x.shape, *geo), repeats)
                   for k in (npool, rpool)]
        tf = tb = None
        if torch is not None:
            tx, tgy = torch.from_numpy(x), torch.from_numpy(gy)
            if name == "max":
                _, tidx = torch.nn.functional.max_pool2d(tx, 2, 2, return_indices=True)
                tf = median_ms(lambda: torch.nn.functional.max_pool2d(tx, 2, 2), repeats)
                tb = median_ms(lambda: torch.ops.aten.max_pool2d_with_indices_backward(
                    tgy, tx, [2, 2], [2, 2], [0, 0], [1, 1], False, tidx), repeats)
            else:
                tf = median_ms(lambda: torch.nn.functional.avg_pool2d(tx, 2, 2), repeats)
                tb = median_ms(lambda: torch.ops.aten.avg_pool2d_backward(
                    tgy, tx, [2, 2], [2, 2], [0, 0], False, True, None), repeats)
        cap = name.capitalize()
        rows.append((f"{cap}Pool2d {label[7:]} forward", *fwd, tf))
        rows.append((f"{cap}Pool2d {label[7:]} backward", *bwd, tb))


def bench_norm(rows: list, repeats: int, rng: np.random.Generator) -> None:
    x = rng.standard_normal((32, 64, 28, 28), dtype=np.float32)
    g, b = np.ones(64, np.float32), np.zeros(64, np.float32)
    gy = rng.standard_normal(x.shape, dtype=np.float32)
    _, mean, inv = nnorm.batch_norm_forward(x, g, b, 1e-5)
    fwd = [median_ms(lambda k=k: k.batch_norm_forward(x, g, b, 1e-5), repeats) for k in (nnorm, rnorm)]
    bwd = [median_ms(lambda k=k: k.batch_norm_backward(gy, x, g, mean, inv), repeats) for k in (nnorm, rnorm)]
    tf = tb = None
    if torch is not None:
        tx, tg, tbb, tgy = (torch.from_numpy(a) for a in (x, g, b, gy))
        tf = median_ms(lambda: torch.ops.aten.native_batch_norm(tx, tg, tbb, None, None, True, 0.1, 1e-5),
                       repeats)
        _, tm, ti = torch.ops.aten.native_batch_norm(tx, tg, tbb, None, None, True, 0.1, 1e-5)
        tb = median_ms(lambda: torch.ops.aten.native_batch_norm_backward(
            tgy, tx, tg, None, None, tm, ti, True, 1e-5, [True, True, True]), repeats)
    rows.append(("batch_norm 32x64x28x28 forward", *fwd, tf))
    rows.append(("batch_norm 32x64x28x28 backward", *bwd, tb))
    x2 = rng.standard_normal((4096, 512), dtype=np.float32)
    g2, b2 = np.ones(512, np.float32), np.zeros(512, np.float32)
    fwd = [median_ms(lambda k=k: k.layer_norm_forward(x2, g2, b2, 1, 1e-5), repeats) for k in (nnorm, rnorm)]
    _, m2, i2 = nnorm.layer_norm_forward(x2, g2, b2, 1, 1e-5)
    bwd = [median_ms(lambda k=k: k.layer_norm_backward(x2, x2, g2, m2, i2, 1), repeats)
           for k in (nnorm, rnorm)]
    tf = tb = None
    if torch is not None:
        tx2, tg2, tb2 = (torch.from_numpy(a) for a in (x2, g2, b2))
        tf = median_ms(lambda: torch.ops.aten.native_layer_norm(tx2, [512], tg2, tb2, 1e-5), repeats)
        _, tm2, ti2 = torch.ops.aten.native_layer_norm(tx2, [512], tg2, tb2, 1e-5)
        tb = median_ms(lambda: torch.ops.aten.native_layer_norm_backward(
            tx2, tx2, [512], tm2, ti2, tg2, tb2, [True, True, True]), repeats)
    rows.append(("layer_norm 4096x512 forward", *fwd, tf))
    rows.append(("layer_norm 4096x512 backward", *bwd, tb))


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}"


def render(rows: list, repeats: int) -> str:
    info = native_cpu.library_info()
    torch_v = torch.__version__ if torch is not None else "not installed"
    lines = [
        "# Native CPU kernels vs NumPy reference vs PyTorch CPU", "",
        f"Machine: {machine()}. float32, median of {repeats} runs after warm-up, one process "
        f"(`python scripts/bench_native_cpu.py`).",
        f"Native library: {info['compiler']}, flags `{' '.join(info['flags'])}`, "
        f"OpenMP threads {info['omp_max_threads']}. NumPy {np.__version__}; PyTorch {torch_v}.", "",
        "| kernel | native ms | NumPy ref ms | torch ms | native vs NumPy | native / torch |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, nat, ref, tor in rows:
        tor_s = f"{tor:.3f}" if tor is not None else ""
        ratio = f"{nat / tor:.2f}x" if tor else ""
        lines.append(f"| {name} | {nat:.3f} | {ref:.3f} | {tor_s} | {ref / nat:.1f}x faster | {ratio} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None, help="also write the markdown table here")
    ap.add_argument("--quick", action="store_true", help="skip the large seed conv2d case")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    rows: list = []
    for label, spec in conv_cases(args.quick):
        bench_conv(rows, label, spec, args.repeats, rng, fwd_only=label.startswith("seed"))
    bench_pool(rows, args.repeats, rng)
    bench_norm(rows, args.repeats, rng)
    table = render(rows, args.repeats)
    publish(table, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
