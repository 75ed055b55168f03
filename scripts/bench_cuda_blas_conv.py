"""GPU benchmark: KeyDNN's cuBLAS GEMM and cuDNN conv2d kernels beside torch's, timed with CUDA events.

    PYTHONPATH=. python scripts/bench_cuda_blas_conv.py [--repeats 50] [--out reports/gpu/blas_conv_h100.md]

Each workload runs on identical device data in both libraries; after a warm-up, KeyDNN and torch alternate
in rounds and the table reports the median per call, TFLOP/s, the time ratio and the relative difference
of the two results (a wrong fast kernel would show there).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from keydnn.bench.harness import publish
from keydnn.infrastructure.backends.cuda import _cublas, _cudart, _cudnn, blas, conv, storage


class _TorchEvent:
    """torch.cuda.Event behind the record/elapsed_ms interface of KeyDNN's cudart Event."""

    def __init__(self) -> None:
        import torch
        self.event = torch.cuda.Event(enable_timing=True)

    def record(self) -> None:
        self.event.record()

    def elapsed_ms(self, end: _TorchEvent) -> float:
        end.event.synchronize()
        return self.event.elapsed_time(end.event)


def time_ms(fn: Callable[[], object], event: type, repeats: int) -> tuple[list[float], float]:
    """Per-call device times (an event pair around each call, read once all are queued), and host µs/call.

    When the host takes longer to issue a call than the device to run it, the device idles between the
    events and the device time grows to the host time: the host column says when that happens.
    """
    pairs = [(event(), event()) for _ in range(repeats)]
    t0 = time.perf_counter()
    for start, end in pairs:
        start.record()
        fn()
        end.record()
    host_us = (time.perf_counter() - t0) / repeats * 1e6
    return [s.elapsed_ms(e) for s, e in pairs], host_us


def side_by_side(ours: Callable[[], object], theirs: Callable[[], object], repeats: int, rounds: int = 3,
                 warmup: int = 10) -> tuple[float, float, float, float]:
    """(KeyDNN ms, torch ms, KeyDNN host µs, torch host µs), medians over the rounds."""
    for _ in range(warmup):
        ours()
        theirs()
    _cudart.synchronize()
    a: list[float] = []
    b: list[float] = []
    host_a: list[float] = []
    host_b: list[float] = []
    for _ in range(rounds):  # alternate so clock drift and heating hit both alike
        times, host = time_ms(ours, _cudart.Event, repeats)
        a, host_a = a + times, host_a + [host]
        times, host = time_ms(theirs, _TorchEvent, repeats)
        b, host_b = b + times, host_b + [host]
    return statistics.median(a), statistics.median(b), statistics.median(host_a), statistics.median(host_b)


def to_keydnn(t) -> storage.CudaArray:
    """A KeyDNN copy of a contiguous CUDA torch tensor (device to device)."""
    out = storage.empty(tuple(t.shape), np.dtype(str(t.dtype).removeprefix("torch.")), t.device.index or 0)
    _cudart.memcpy(out.ptr, t.data_ptr(), out.nbytes, _cudart.MEMCPY_D2D)
    return out


def to_torch(x: storage.CudaArray, like):
    import torch
    out = torch.empty(x.shape, dtype=like.dtype, device=like.device)
    torch.cuda.synchronize()
    _cudart.memcpy(out.data_ptr(), x.ptr, x.nbytes, _cudart.MEMCPY_D2D)
    return out


def rel_diff(ours, theirs) -> float:
    ours = ours.double()
    return float((ours - theirs.double()).norm() / theirs.double().norm())


def workloads(torch) -> list[tuple[str, str, float, Callable, Callable]]:
    """(name, precision, FLOPs, KeyDNN call, torch call); calls return their result."""
    g = torch.Generator(device="cuda").manual_seed(0)
    rows = []

    def gemm(shape_a, shape_b, dtype):
        a = torch.randn(shape_a, device="cuda", dtype=dtype, generator=g)
        b = torch.randn(shape_b, device="cuda", dtype=dtype, generator=g)
        ka, kb = to_keydnn(a), to_keydnn(b)
        flops = 2 * a.numel() * b.shape[-1]
        return flops, (lambda: blas.matmul(ka, kb)), (lambda: a @ b)

    def conv_case(direction):
        n, c, h, w, k = 8, 64, 112, 112, 128
        x = torch.randn((n, c, h, w), device="cuda", generator=g)
        wt = torch.randn((k, c, 3, 3), device="cuda", generator=g) * 0.05
        bias = torch.randn((k,), device="cuda", generator=g)
        gy = torch.randn((n, k, h, w), device="cuda", generator=g)
        kx, kw, kb, kgy = (to_keydnn(t) for t in (x, wt, bias, gy))
        p = ((1, 1), (1, 1), (1, 1), 1)
        flops = 2 * n * k * h * w * c * 9
        def aten(mask):
            return torch.ops.aten.convolution_backward(gy, x, wt, None, [1, 1], [1, 1], [1, 1], False, [0, 0],
                                                       1, mask)
        if direction == "forward":
            return flops, (lambda: conv.conv2d_forward(kx, kw, kb, *p)), \
                (lambda: torch.nn.functional.conv2d(x, wt, bias, 1, 1))
        if direction == "backward_input":
            return flops, (lambda: conv.conv2d_backward_input(kgy, kw, x.shape, *p)), \
                (lambda: aten([True, False, False])[0])
        return flops, (lambda: conv.conv2d_backward_weight(kgy, kx, wt.shape, *p)), \
            (lambda: aten([False, True, False])[1])

    for name, dtype, tf32, shapes in [
        ("GEMM 4096^3", torch.float32, False, ((4096, 4096), (4096, 4096))),
        ("GEMM 4096^3", torch.float32, True, ((4096, 4096), (4096, 4096))),
        ("GEMM 4096^3", torch.float64, False, ((4096, 4096), (4096, 4096))),
        ("batched GEMM 32x1024^3", torch.float32, False, ((32, 1024, 1024), (32, 1024, 1024))),
    ]:
        rows.append((name, dtype, tf32, *gemm(*shapes, dtype)))
    for direction in ("forward", "backward_input", "backward_weight"):
        for tf32 in (False, True) if direction == "forward" else (False,):
            rows.append((f"Conv2d {direction} 8x64x112x112 -> 128, 3x3 pad 1", torch.float32, tf32,
                         *conv_case(direction)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", type=Path, help="also write the markdown report here")
    args = parser.parse_args()
    import torch

    torch.backends.cudnn.benchmark = True  # torch's fastest conv path, as KeyDNN's Find*Ex
    lines = [f"# KeyDNN cuBLAS/cuDNN kernels vs torch on {_cudart.device_name(0)}", "",
             (f"{datetime.date.today()} | torch {torch.__version__} | cuBLAS {_cublas.version()} | "
              f"cuDNN {_cudnn.version()} | CUDA runtime/driver {_cudart.versions()} | "
              f"Python {platform.python_version()}"), "",
             (f"Median of {3 * args.repeats} calls per side (3 alternating rounds after 10 warm-ups), CUDA "
              "events around each call. 'fp32' is full float32 (cuBLAS default math, cuDNN FMA math; "
              "torch with allow_tf32 off); 'tf32' enables TF32 on both sides. Ratio = KeyDNN time / torch "
              "time."), "",
             ("Host µs = time to issue one call (with its two event records) on the CPU; where it exceeds "
              "the device time the GPU waits on Python/cuDNN, and the device time measured is the host's."),
             "",
             "| workload | precision | KeyDNN ms | torch ms | KeyDNN TFLOP/s | torch TFLOP/s | ratio "
             "| rel. diff | KeyDNN host µs | torch host µs |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, dtype, tf32, flops, ours, theirs in workloads(torch):
        blas.set_tf32(tf32)
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        diff = rel_diff(to_torch(ours(), theirs()), theirs())
        t_ours, t_theirs, host_ours, host_theirs = side_by_side(ours, theirs, args.repeats)
        precision = "tf32" if tf32 else str(dtype).removeprefix("torch.").replace("float", "fp")
        lines.append(f"| {name} | {precision} | {t_ours:.3f} | {t_theirs:.3f} | {flops / t_ours / 1e9:.1f} | "
                     f"{flops / t_theirs / 1e9:.1f} | {t_ours / t_theirs:.3f} | {diff:.1e} | "
                     f"{host_ours:.0f} | {host_theirs:.0f} |")
        print(lines[-1], flush=True)
    blas.set_tf32(False)
    lines += ["", "cuDNN plans KeyDNN picked (graph-API engines and the legacy Find pick, timed over repeats): "
              + ", ".join(f"{key[0]} {'fma' if key[7] == _cudnn.FMA_MATH else 'default'} math -> "
                          f"{conv.describe(plan)}" for key, plan in conv._plans.items())]
    print()
    publish("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
