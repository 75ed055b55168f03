"""Timing with warm-up, repeats and medians; device synchronisation for asynchronous backends; a stamp of
the machine a number came from (CPU model, GPU name through nvidia-ml-py when installed)."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Timing:
    """Seconds per call: median and spread over ``repeats`` batches of ``number`` calls each."""

    median: float
    p10: float
    p90: float
    repeats: int
    number: int
    samples: tuple[float, ...] = ()  # seconds per call of each batch, in the order they ran

    @property
    def us(self) -> float:
        return self.median * 1e6

    @property
    def ms(self) -> float:
        return self.median * 1e3


def measure(fn: Callable[[], Any], *, warmup: int = 5, repeats: int = 21, number: int = 1,
            sync: Callable[[], None] | None = None, min_time: float = 0.0) -> Timing:
    """Time ``fn``; ``sync`` (e.g. a CUDA synchronize) runs before each clock read so asynchronous work is
    counted. ``number`` calls per batch amortise the clock for sub-microsecond work; with ``min_time`` the
    batch grows until one batch takes at least that long."""
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    if min_time > 0:
        while _batch(fn, sync, number) * number < min_time and number < 1 << 20:
            number *= 2
    return _timing([_batch(fn, sync, number) for _ in range(repeats)], number)


def _batch(fn: Callable[[], Any], sync: Callable[[], None] | None, number: int) -> float:
    """Seconds per call of one batch of ``number`` calls, synchronised before the clock is read."""
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    if sync:
        sync()
    return (time.perf_counter() - t0) / number


def _timing(samples: list[float], number: int) -> Timing:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=10, method="inclusive") if len(ordered) >= 2 else ordered * 9
    return Timing(statistics.median(ordered), q[0], q[-1], len(samples), number, tuple(samples))


def measure_interleaved(fns: dict[str, tuple[Callable[[], Any], Callable[[], None] | None]], *,
                        warmup: int = 5, repeats: int = 21, number: int = 1) -> dict[str, Timing]:
    """Time several callables (name -> (fn, sync)) in alternating batches, A B C A B C ..., so that a host
    whose speed drifts during the run (frequency changes, a busy neighbour) slows all of them alike: the
    comparison the benchmark reports is then made within each round, not across minutes."""
    for fn, sync in fns.values():
        for _ in range(warmup):
            fn()
        if sync:
            sync()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, (fn, sync) in fns.items():
            samples[name].append(_batch(fn, sync, number))
    return {name: _timing(s, number) for name, s in samples.items()}


def paired_ratio(a: Timing, b: Timing) -> float:
    """Median over rounds of a's batch time over b's, for timings from one ``measure_interleaved`` call."""
    if len(a.samples) != len(b.samples) or not a.samples:
        return a.median / b.median
    return statistics.median(x / y for x, y in zip(a.samples, b.samples, strict=True))


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu_names() -> list[str]:
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
        names = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h).total / 2**30
            driver = pynvml.nvmlSystemGetDriverVersion()
            names.append(f"{name.decode() if isinstance(name, bytes) else name} ({mem:.0f} GiB, "
                         f"driver {driver.decode() if isinstance(driver, bytes) else driver})")
        pynvml.nvmlShutdown()
        return names
    except pynvml.NVMLError:
        return []


def environment_stamp() -> dict[str, Any]:
    """Where a measurement was taken: CPU model and cores, Python, NumPy, torch, GPUs."""
    import numpy as np

    stamp: dict[str, Any] = {"cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                             "numpy": np.__version__}
    try:
        import torch
        stamp["torch"] = torch.__version__
    except ImportError:
        stamp["torch"] = None
    stamp["gpus"] = _gpu_names()
    return stamp


def stamp_line() -> str:
    s = environment_stamp()
    gpu = f"; GPU: {', '.join(s['gpus'])}" if s["gpus"] else ""
    return (f"Machine: {s['cpu']}, {s['cores']} cores; Python {s['python']}, NumPy {s['numpy']}, "
            f"torch {s['torch']}{gpu}")


def publish(text: str, out: Any = None) -> None:
    """Print a benchmark's report and, when ``out`` (a path) is given, write it there as well."""
    print(text)
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if text.endswith("\n") else text + "\n")
