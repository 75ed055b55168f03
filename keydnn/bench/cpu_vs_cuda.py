"""The seed's CPU-vs-CUDA benchmark scripts (scripts/bench_*_cpu_vs_cuda.py) as one runner: shared flags,
the same inputs on both devices, an optional sanity check that both agree, timing through the harness, and
a markdown table like the seed README's. On a machine without a usable GPU the CPU column is still measured
and the table says why the CUDA column is empty.

A script describes its workloads as ``Case(name, build)``: ``build(device)`` makes the inputs on ``device``
(from the same NumPy data for both devices) and returns a zero-argument step; the step's return value (a
Tensor or a tuple of them) is what ``--sanity`` compares.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from keydnn.bench.harness import Timing, _timing, measure, measure_interleaved, paired_ratio, publish, stamp_line

# --sanity tolerances: relative, and absolute as a fraction of the largest |CPU value| (cuDNN may pick
# Winograd or FFT algorithms, whose float32 error is larger than a direct sum's).
TOLERANCE = {"float32": (1e-3, 1e-4), "float64": (1e-7, 1e-9)}


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[str], Callable[[], Any]]


def parser(description: str, *, warmup: int, repeats: int) -> argparse.ArgumentParser:
    """The flags every seed script takes (its own shape flags are added by the script)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--warmup", type=int, default=warmup, help=f"untimed iterations first (default {warmup})")
    ap.add_argument("--repeats", type=int, default=repeats, help=f"timed iterations (default {repeats})")
    ap.add_argument("--sanity", action="store_true", help="assert that CPU and CUDA results agree")
    ap.add_argument("--seed", type=int, default=0, help="seed of the inputs and the layer weights")
    ap.add_argument("--device", type=int, default=0, help="CUDA device ordinal (default 0)")
    ap.add_argument("--out", default=None, help="also write the markdown table to this file")
    return ap


def ints(name: str, values: Sequence[int], count: tuple[int, int] = (1, 2)) -> tuple[int, ...]:
    """A flag given as 1 or 2 ints (--stride 2 or --stride 2 1) as a pair; SystemExit otherwise."""
    if not count[0] <= len(values) <= count[1]:
        raise SystemExit(f"--{name} takes {count[0]} to {count[1]} integers, got {list(values)}")
    return (values[0], values[0]) if len(values) == 1 else tuple(values)


def cuda_device(index: int) -> tuple[str | None, str]:
    """('cuda:index', '') when that device is usable, else (None, why not)."""
    try:
        from keydnn.infrastructure.backends import cuda
    except ImportError as exc:
        return None, f"CUDA backend not importable: {exc}"
    if not cuda.is_available():
        return None, cuda.unavailable_reason()
    if not 0 <= index < cuda.device_count():
        return None, f"--device {index}, but this machine has {cuda.device_count()} CUDA device(s)"
    return f"cuda:{index}", ""


def synchronizer(index: int) -> Callable[[], None]:
    """A callable that waits for the work queued on cuda:index (and raises any error a kernel recorded)."""
    from keydnn.infrastructure.backends import cuda

    return lambda: cuda.synchronize(index)


def _numpy(result: Any) -> list[np.ndarray]:
    items = result if isinstance(result, (tuple, list)) else (result,)
    return [np.asarray(t.to_numpy()) for t in items]


def check_agree(name: str, cpu: Any, cuda: Any, dtype: str) -> None:
    """AssertionError naming the case when the CUDA result differs from the CPU one beyond TOLERANCE."""
    rtol, atol = TOLERANCE[dtype]
    ref, got = _numpy(cpu), _numpy(cuda)
    assert len(ref) == len(got), f"{name}: {len(ref)} CPU results against {len(got)} CUDA results"
    for i, (r, g) in enumerate(zip(ref, got, strict=True)):
        scale = float(np.abs(r).max()) if r.size and r.dtype != bool else 1.0
        np.testing.assert_allclose(g, r, rtol=rtol, atol=atol * max(scale, 1.0),
                                   err_msg=f"--sanity: {name} result {i}: CUDA differs from CPU")


def fmt(seconds: float) -> str:
    """Seconds as the seed's tables print them: us below 1 ms, ms below 1 s."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.3f} s"


def p95(t: Timing) -> float:
    return statistics.quantiles(t.samples, n=20)[-1] if len(t.samples) >= 2 else t.median


def _async(fn: Callable[[], Any], sync: Callable[[], None], warmup: int, repeats: int) -> tuple[Timing, float]:
    """Per-call times without a synchronisation between calls (the seed's default for tensor ops: launch
    latency, Python included), and the time per call once the queue has drained (one sync at the end)."""
    for _ in range(warmup):
        fn()
    sync()
    samples = []
    start = time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    sync()
    return _timing(samples, 1), (time.perf_counter() - start) / repeats


def run(cases: Sequence[Case], args: argparse.Namespace, *, title: str, config: Sequence[str],
        sync_each_iter: bool = True, show_p95: bool = False) -> str:
    """Build, check and time every case on the CPU and (when usable) CUDA; publish and return the table."""
    import keydnn

    device, why = cuda_device(args.device)
    sync = synchronizer(args.device) if device is not None else None
    repeats, warmup = max(args.repeats, 1), max(args.warmup, 0)
    head = ["CPU", "CUDA", "Speedup"] if not show_p95 else ["CPU median", "CPU p95", "CUDA median", "CUDA p95",
                                                            "Speedup"]
    if show_p95 and device is not None and not sync_each_iter:
        head.insert(4, "CUDA incl. drain")
    rows, sane = [], 0
    for case in cases:
        keydnn.manual_seed(args.seed)
        cpu_step = case.build("cpu")
        cuda_step = None
        if device is not None:
            keydnn.manual_seed(args.seed)
            cuda_step = case.build(device)
            if args.sanity:
                check_agree(case.name, cpu_step(), cuda_step(), args.dtype)
                sane += 1
        drain = None
        if cuda_step is None:
            cpu, gpu = measure(cpu_step, warmup=warmup, repeats=repeats), None
        elif sync_each_iter:
            t = measure_interleaved({"cpu": (cpu_step, None), "cuda": (cuda_step, sync)}, warmup=warmup,
                                    repeats=repeats)
            cpu, gpu = t["cpu"], t["cuda"]
        else:
            cpu = measure(cpu_step, warmup=warmup, repeats=repeats)
            gpu, drain = _async(cuda_step, sync, warmup, repeats)
        ratio = None if gpu is None else paired_ratio(cpu, gpu) if drain is None else cpu.median / gpu.median
        speedup = f"**{ratio:.2f}x**" if ratio is not None else "-"
        if show_p95:
            cells = [fmt(cpu.median), fmt(p95(cpu)), fmt(gpu.median) if gpu else "-", fmt(p95(gpu)) if gpu else "-"]
            if drain is not None:
                cells.append(fmt(drain))
        else:
            cells = [fmt(cpu.median), fmt(gpu.median) if gpu else "-"]
        rows.append(f"| {case.name} | " + " | ".join([*cells, speedup]) + " |")
    from keydnn.infrastructure import backends

    cpu_backend = backends.cpu_backend_name()
    lines = [f"### {title}", "", stamp_line(), "", *[f"- {c}" for c in config],
             f"- dtype: {args.dtype}; warmup: {warmup} iterations; repeats: {repeats}; seed: {args.seed}",
             f"- CPU kernels: {cpu_backend}; CUDA device: {device or 'none'}"]
    if device is None:
        lines.append(f"- CUDA: not measured: {why}")
    if args.sanity:
        lines.append(f"- sanity: CPU and CUDA agree on all {sane} cases (rtol/atol {TOLERANCE[args.dtype]})"
                     if device is not None else "- sanity: not checked, CUDA is unavailable")
    if device is not None and sync_each_iter:
        lines.append("- CPU and CUDA batches alternate; CUDA is synchronised before each clock read; Speedup is "
                     "the median over rounds of CPU time over CUDA time")
    elif device is not None:
        lines.append("- CUDA is not synchronised between iterations (launch latency, as the seed measured it; "
                     "`--sync_each_iter` to wait for each); 'incl. drain' adds one final synchronisation")
    lines += ["", "| Operation | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head), *rows]
    text = "\n".join(lines)
    publish(text, args.out)
    return text


# ---- the two convolution scripts (Conv2d and Conv2dTranspose share flags and cases) -----------------------
def add_conv_flags(ap: argparse.ArgumentParser, *, hw: int, transpose: bool) -> None:
    for flag, default in (("--N", 8), ("--Cin", 64), ("--Cout", 128), ("--H", hw), ("--W", hw), ("--Kh", 3),
                          ("--Kw", 3)):
        ap.add_argument(flag, type=int, default=default)
    ap.add_argument("--stride", type=int, nargs="+", default=[1], help="1 or 2 ints (default 1)")
    ap.add_argument("--padding", type=int, nargs="+", default=[1], help="1 or 2 ints (default 1)")
    if transpose:
        ap.add_argument("--outpad", type=int, nargs="+", default=[0], help="output padding, 1 or 2 ints (default 0)")
    ap.add_argument("--bias", action=argparse.BooleanOptionalAction, default=True, help="(default: on)")


def conv_run(args: argparse.Namespace, *, transpose: bool) -> str:
    from keydnn import Tensor
    from keydnn.nn import Conv2d, Conv2dTranspose

    stride, padding = ints("stride", args.stride), ints("padding", args.padding)
    extra = {"output_padding": ints("outpad", args.outpad)} if transpose else {}
    layer_type = Conv2dTranspose if transpose else Conv2d
    x_np = np.random.default_rng(args.seed).standard_normal((args.N, args.Cin, args.H, args.W)).astype(args.dtype)

    def build(device: str) -> Callable[[], Any]:
        layer = layer_type(args.Cin, args.Cout, (args.Kh, args.Kw), stride=stride, padding=padding,
                           bias=args.bias, dtype=args.dtype, **extra).to(device)
        x = Tensor.from_numpy(x_np, device=device)
        return lambda: layer(x)

    name = layer_type.__name__
    shape = f"{args.N}x{args.Cin}x{args.H}x{args.W} -> {args.Cout} ({args.Kh}x{args.Kw})"
    pads = f"padding {padding}" + (f", output padding {extra['output_padding']}" if transpose else "")
    return run([Case(f"{name} forward {shape}", build)], args, title=f"{name} forward (CPU vs CUDA)",
               config=[f"N={args.N}, Cin={args.Cin}, Cout={args.Cout}, H={args.H}, W={args.W}; kernel "
                       f"{args.Kh}x{args.Kw}, stride {stride}, {pads}; bias {'on' if args.bias else 'off'}",
                       "timed: the layer's forward on an input already on the device (no host copies)"])
