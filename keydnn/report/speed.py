"""speedup.csv: each workload x implementation timed in rounds that alternate between KeyDNN (this process) and
PyTorch (the worker process), with FLOPs/bytes from the registry's cost, achieved throughput, and the percent
of this machine's ceilings (copy bandwidth and fp32 GEMM) measured in the same run."""

from __future__ import annotations

import contextlib
import math
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np

from keydnn.bench.harness import Timing, _batch, measure
from keydnn.report.torch_side import TorchWorker, WorkerError
from keydnn.report.workloads import Workload, cost, keydnn_step

COLUMNS = ["workload", "source", "kind", "phase", "device", "implementation", "median_s", "p10_s", "p90_s",
           "rounds", "number", "flops", "bytes", "intensity", "gbps", "tflops", "pct_of_bw_ceiling",
           "pct_of_flops_ceiling", "pct_of_roofline", "ratio_vs_torch", "ratio_p10", "ratio_p90", "note"]


# ---- ceilings ----------------------------------------------------------------------------------------------
def best_ceilings(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The better of two ceiling measurements (start and end of the run): a ceiling is the most the machine
    reached, so a reading taken while a neighbour was busy does not lower it."""
    out = dict(a)
    for k in ("bandwidth_gbps", "flops_tflops"):
        out[k] = max(a[k], b[k])
    out["how"] = a["how"] + "; best of the start and the end of the run"
    return out


def cpu_ceilings(quick: bool) -> dict[str, Any]:
    """Copy bandwidth (np.copyto of 64 MiB: read + write) and NumPy float32 matmul throughput."""
    n = 16 << 20
    src, dst = np.ones(n, np.float32), np.empty(n, np.float32)
    copy = measure(lambda: np.copyto(dst, src), warmup=2, repeats=5 if quick else 11)
    m = 1024 if quick else 2048
    a, b = np.ones((m, m), np.float32), np.ones((m, m), np.float32)
    gemm = measure(lambda: a @ b, warmup=2, repeats=5 if quick else 11)
    return {"bandwidth_gbps": 2 * src.nbytes / min(copy.samples) / 1e9,
            "flops_tflops": 2 * m**3 / min(gemm.samples) / 1e12,
            "how": f"fastest of repeats: single-thread np.copyto of {src.nbytes >> 20} MiB float32 (2x bytes); "
                   f"NumPy float32 matmul {m}x{m}x{m}"}


def cuda_ceilings(device: str, quick: bool) -> dict[str, Any]:
    """Device-to-device copy bandwidth and fp32 GEMM (cuBLAS through KeyDNN's own kernel table)."""
    from keydnn.infrastructure.backends import cuda, cuda_table

    index = int(device.split(":")[1])
    tab = cuda_table(index)
    n = 64 << 20
    src, dst = tab.full((n,), 1.0, np.dtype(np.float32)), tab.empty((n,), np.dtype(np.float32))

    def sync() -> None:
        cuda.synchronize(index)

    copy = measure(lambda: tab.copyto(dst, src), warmup=3, repeats=11, sync=sync)
    m = 4096 if quick else 8192
    a = tab.full((m, m), 1.0, np.dtype(np.float32))
    b = tab.full((m, m), 1.0, np.dtype(np.float32))
    gemm = measure(lambda: tab.matmul(a, b), warmup=2, repeats=5 if quick else 11, sync=sync)
    from keydnn.infrastructure.backends.cuda import blas
    return {"bandwidth_gbps": 2 * 4 * n / min(copy.samples) / 1e9,
            "flops_tflops": 2 * m**3 / min(gemm.samples) / 1e12,
            "how": f"fastest of repeats: device copyto of {4 * n >> 20} MiB float32 (2x bytes); "
                   f"cuBLAS fp32 GEMM {m}^3, TF32 {'on' if blas.tf32_enabled() else 'off'}"}


# ---- timing ----------------------------------------------------------------------------------------------
class _Local:
    """A KeyDNN implementation of one workload: its step, sync and CPU kernel table."""

    def __init__(self, w: Workload, impl: str, device: str) -> None:
        self.impl, self.device = impl, device
        with self.context():
            self.fn = keydnn_step(w, device)
        self.sync: Callable[[], None] | None = None
        if device.startswith("cuda"):
            from keydnn.infrastructure.backends import cuda
            index = int(device.split(":")[1])
            self.sync = lambda: cuda.synchronize(index)
        self.number = 1

    def context(self) -> Any:
        from keydnn.infrastructure.backends import use_cpu_backend
        backend = {"keydnn-numpy": "numpy", "keydnn-native": "native"}.get(self.impl)
        return use_cpu_backend(backend) if backend else contextlib.nullcontext()

    def calibrate(self, min_time: float, warmup: int) -> None:
        """Warm up (at most ~2 s of calls), then size a batch to take at least ``min_time``."""
        with self.context():
            spent = 0.0
            for _ in range(warmup):
                spent += _batch(self.fn, self.sync, 1)
                if spent > 2.0:
                    break
            self.per_call = _batch(self.fn, self.sync, 1)
        self.number = max(1, min(1 << 16, int(min_time / max(self.per_call, 1e-9)) + 1))

    def round(self) -> float:
        with self.context():
            return _batch(self.fn, self.sync, self.number)


def _quantiles(xs: list[float]) -> tuple[float, float, float]:
    """Median, p10, p90 within the data (inclusive quantiles never extrapolate past the extremes)."""
    if len(xs) < 2:
        return (xs[0],) * 3 if xs else (math.nan,) * 3
    q = statistics.quantiles(xs, n=10, method="inclusive")
    return statistics.median(xs), q[0], q[-1]


def _timing(samples: list[float], number: int) -> Timing:
    median, p10, p90 = _quantiles(samples)
    return Timing(median, p10, p90, len(samples), number, tuple(samples))


def time_workload(w: Workload, device: str, impls: list[str], worker: TorchWorker | None, rounds: int,
                  min_time: float, warmup: int, budget: float = 20.0) -> dict[str, dict[str, Any]]:
    """impl -> {timing, note}: the KeyDNN implementations and the PyTorch one alternate every round (the side
    that goes first alternates too), so drift slows both alike and the ratio is taken within rounds. A workload
    whose round takes long runs fewer rounds (at least 3) to stay near ``budget`` seconds."""
    results: dict[str, dict[str, Any]] = {}
    locals_: list[_Local] = []
    for impl in impls:
        try:
            run = _Local(w, impl, device)
            run.calibrate(min_time, warmup)
            locals_.append(run)
        except Exception as exc:
            results[impl] = {"note": f"{type(exc).__name__}: {exc}"[:300]}
    torch_impl = "torch-cuda" if device.startswith("cuda") else "torch-cpu"
    key, torch_number, torch_per_call = f"{w.id}@{device}", 0, 0.0
    use_torch = worker is not None and worker.available
    if use_torch:
        try:
            worker.setup(key, w, device)
            answer = worker.call("calibrate", key=key, min_time=min_time)
            torch_number, torch_per_call = answer["number"], answer["per_call"]
        except WorkerError as exc:
            results[torch_impl] = {"note": str(exc)[:300]}
            use_torch = False
    samples: dict[str, list[float]] = {r.impl: [] for r in locals_}
    if use_torch:
        samples[torch_impl] = []
    per_round = sum(r.number * r.per_call for r in locals_) + (torch_number * torch_per_call if use_torch else 0)
    rounds = max(3, min(rounds, int(budget / max(per_round, 1e-9))))
    for k in range(rounds):
        def theirs() -> None:
            samples[torch_impl].append(worker.call("round", key=key)["seconds"])
        if use_torch and k % 2:
            theirs()
        for r in locals_:
            samples[r.impl].append(r.round())
        if use_torch and not k % 2:
            theirs()
    if use_torch:
        worker.call("drop", key=key)
    numbers = {r.impl: r.number for r in locals_} | ({torch_impl: torch_number} if use_torch else {})
    for impl, s in samples.items():
        results[impl] = {"timing": _timing(s, numbers[impl]), "note": ""}
    if use_torch:
        for r in locals_:
            ratios = [a / b for a, b in zip(samples[r.impl], samples[torch_impl])]
            results[r.impl]["ratio"] = _quantiles(ratios)
    return results


def rows_for(w: Workload, device: str, results: dict[str, dict[str, Any]],
             ceilings: dict[str, Any]) -> list[dict[str, Any]]:
    c = cost(w)
    rows = []
    for impl, res in results.items():
        row: dict[str, Any] = dict.fromkeys(COLUMNS, math.nan)
        row.update(workload=w.name, source=w.source, kind=w.kind, phase=w.phase, device=device,
                   implementation=impl, note=res.get("note", ""))
        t = res.get("timing")
        if t is not None:
            row.update(median_s=t.median, p10_s=t.p10, p90_s=t.p90, rounds=t.repeats, number=t.number)
        if c is not None:
            flops, nbytes = c
            row.update(flops=flops, bytes=nbytes, intensity=flops / nbytes if nbytes else math.nan)
            if t is not None:
                row.update(gbps=nbytes / t.median / 1e9, tflops=flops / t.median / 1e12)
                bw, peak = ceilings.get("bandwidth_gbps"), ceilings.get("flops_tflops")
                if bw and peak:
                    row["pct_of_bw_ceiling"] = 100 * row["gbps"] / bw
                    row["pct_of_flops_ceiling"] = 100 * row["tflops"] / peak
                    attainable = min(peak, row["intensity"] * bw / 1e3)  # TFLOP/s
                    row["pct_of_roofline"] = 100 * row["tflops"] / attainable
        if "ratio" in res:
            row["ratio_vs_torch"], row["ratio_p10"], row["ratio_p90"] = res["ratio"]
        rows.append(row)
    return rows
