"""KeyDNN's CPU core side by side with PyTorch CPU and plain NumPy: tiny-op autograd overhead, an MLP training
step with Adam, Linear 1024x1024 forward+backward and a LeNet-style CNN training step. Rounds are interleaved
(KeyDNN, PyTorch, NumPy, KeyDNN, ...) and each cell carries its spread.

    python scripts/bench_core_cpu.py [--repeats 21] [--isolation process|torch-first|keydnn-first|compare]
                                     [--out reports/cpu/core_bench.md]

``process`` (the default) runs each framework in a process of its own, so each runs at its standalone speed;
``torch-first`` / ``keydnn-first`` put all three in one process in that import order; ``compare`` runs all three
and adds a table of each framework's in-process time over its own-process time (1.00x: no cost of sharing).
KEYDNN_CPU_BACKEND=numpy gives the NumPy-reference KeyDNN column.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FRAMEWORKS = ("KeyDNN", "PyTorch", "NumPy")
# name, builder, calls per batch, target KeyDNN / PyTorch
TINY, MLP = "tiny add (autograd)", "MLP 64-128-128-10 Adam step, batch 64"
LINEAR, LENET = "Linear 1024x1024 fwd+bwd, batch 1024", "LeNet CNN step, SGD, batch 64, 1x28x28"
SPEC = {TINY: (2000, 3.0), MLP: (20, 1.0), LINEAR: (1, 1.1), LENET: (5, 1.5)}
ORDERS = {"torch-first": "PyTorch,KeyDNN,NumPy", "keydnn-first": "KeyDNN,NumPy,PyTorch"}


def tiny_add(fw: str) -> Callable[[], Any] | None:
    if fw == "KeyDNN":
        from keydnn import Tensor
        x, y = Tensor.ones((1,), requires_grad=True), Tensor.ones((1,), requires_grad=True)
        return lambda: x + y
    if fw == "PyTorch":
        import torch
        tx, ty = torch.ones(1, requires_grad=True), torch.ones(1, requires_grad=True)
        return lambda: tx + ty
    a, b = np.ones(1, np.float32), np.ones(1, np.float32)
    return lambda: a + b


def mlp_step(fw: str) -> Callable[[], Any] | None:
    from keydnn.bench import workloads
    return {"KeyDNN": workloads.keydnn_mlp_step, "PyTorch": workloads.torch_mlp_step,
            "NumPy": workloads.numpy_mlp_step}[fw]()


def lenet_step(fw: str) -> Callable[[], Any] | None:
    from keydnn.bench import workloads
    return {"KeyDNN": workloads.keydnn_lenet_step, "PyTorch": workloads.torch_lenet_step}.get(fw, lambda: None)()


def linear_fwd_bwd(fw: str, n: int = 1024) -> Callable[[], Any] | None:
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((n, n)).astype(np.float32)
    g_np = rng.standard_normal((n, n)).astype(np.float32)
    w_np = (rng.standard_normal((n, n)) / np.sqrt(n)).astype(np.float32)
    b_np = np.zeros(n, np.float32)
    if fw == "KeyDNN":
        from keydnn import Tensor
        from keydnn.infrastructure.nn import Linear
        lin = Linear(n, n)
        x, g = Tensor.from_numpy(x_np, requires_grad=True), Tensor.from_numpy(g_np)

        def keydnn_step():
            x.grad = lin.weight.grad = lin.bias.grad = None
            lin(x).backward(g)
        return keydnn_step
    if fw == "PyTorch":
        import torch
        tl = torch.nn.Linear(n, n)
        tx, tg = torch.from_numpy(x_np).requires_grad_(), torch.from_numpy(g_np)

        def torch_step():
            tx.grad = tl.weight.grad = tl.bias.grad = None
            tl(tx).backward(tg)
        return torch_step

    def numpy_step():
        _ = x_np @ w_np.T + b_np
        return g_np @ w_np, g_np.T @ x_np, g_np.sum(0)
    return numpy_step


BUILDERS = {TINY: tiny_add, MLP: mlp_step, LINEAR: linear_fwd_bwd, LENET: lenet_step}


def build(spec: str) -> dict[str, Callable[[], Any] | None]:
    """``"case|framework"`` -> step for the frameworks in ``spec`` (comma-separated, in import order)."""
    out: dict[str, Callable[[], Any] | None] = {}
    for fw in spec.split(","):
        if fw == "PyTorch":
            try:
                import torch  # noqa: F401
            except ImportError:
                continue
        for case, builder in BUILDERS.items():
            out[f"{case}|{fw}"] = builder(fw)
    return out


def measure_all(modes: list[str], repeats: int) -> tuple[dict, list[str]]:
    """case -> mode -> framework -> Timing, every mode's processes alive at once and interleaved in the same
    rounds (so the modes are compared within each round, not across minutes of a drifting machine)."""
    from keydnn.bench.isolated import Worker, measure_isolated
    specs = [(m, s) for m in modes for s in (FRAMEWORKS if m == "process" else [ORDERS[m]])]
    workers = [Worker(__file__, "build", s, tag=f"{m}/") for m, s in specs]
    try:
        libs = [f"{m} {s}: {', '.join(w.ask('libraries'))}" for (m, s), w in zip(specs, workers, strict=True)]
        results: dict = {}
        for case, (number, _) in SPEC.items():
            flat = measure_isolated(workers, case, warmup=max(3, number), number=number,
                                    repeats=repeats if case != LINEAR else max(5, repeats // 2))
            results[case] = {m: {k.split("/", 1)[1]: t for k, t in flat.items() if k.startswith(m + "/")}
                             for m in modes}
    finally:
        for w in workers:
            w.close()
    return results, libs


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e6:.2f} us" if seconds < 1e-3 else f"{seconds * 1e3:.3f} ms"


def _cell(t: Any) -> str:
    return f"{_fmt(t.median)} [{_fmt(t.p10)}-{_fmt(t.p90)}]" if t is not None else "n/a"


def round_ratios(a: Any, b: Any) -> tuple[float, float, float]:
    """Median, 10th and 90th percentile over rounds of a's batch time over b's (same round)."""
    r = sorted(x / y for x, y in zip(a.samples, b.samples, strict=True))
    q = statistics.quantiles(r, n=10, method="inclusive") if len(r) >= 2 else r * 9
    return statistics.median(r), q[0], q[-1]


def table(results: dict, mode: str) -> list[str]:
    rows = ["| Workload | KeyDNN | PyTorch | NumPy | KeyDNN / PyTorch | target |", "|---|---:|---:|---:|---:|---:|"]
    for case, (_, target) in SPEC.items():
        t = results[case][mode]
        ratio = "n/a"
        if "KeyDNN" in t and "PyTorch" in t:
            med, lo, hi = round_ratios(t["KeyDNN"], t["PyTorch"])
            ratio = f"{med:.2f}x [{lo:.2f}-{hi:.2f}]"
        rows.append(f"| {case} | {_cell(t.get('KeyDNN'))} | {_cell(t.get('PyTorch'))} | {_cell(t.get('NumPy'))} "
                    f"| {ratio} | <= {target:.1f}x |")
    return rows


def sharing_table(results: dict, modes: list[str]) -> list[str]:
    others = [m for m in modes if m != "process"]
    rows = ["| Workload | framework | " + " | ".join(f"{m} / own process" for m in others) + " |",
            "|---|---|" + "---:|" * len(others)]
    for case in SPEC:
        for fw in ("KeyDNN", "PyTorch"):
            base = results[case]["process"].get(fw)
            if base is None:
                continue
            cells = []
            for m in others:
                med, lo, hi = round_ratios(results[case][m][fw], base)
                cells.append(f"{med:.2f}x [{lo:.2f}-{hi:.2f}]")
            rows.append(f"| {case} | {fw} | " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--isolation", choices=["process", *ORDERS, "compare"], default="process")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    from keydnn.bench.harness import publish, stamp_line
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    modes = ["process", *ORDERS] if args.isolation == "compare" else [args.isolation]
    results, libs = measure_all(modes, args.repeats)
    after = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    lines = [stamp_line(), f"Platform: {platform.platform()}; KeyDNN CPU backend: "
             f"{os.environ.get('KEYDNN_CPU_BACKEND', 'native')}; load average before: {load}, after: {after}",
             f"Medians of {args.repeats} interleaved rounds (Linear: half as many) after warm-up, "
             "[10th-90th percentile]; a ratio is the median of per-round ratios [10th-90th percentile]. "
             "Every process below ran at once, their batches interleaved in the same rounds.", ""]
    for mode in modes:
        title = {"process": "each framework in its own process"}.get(mode, f"one process, {ORDERS.get(mode)}")
        lines += [f"## {title}", "", *table(results, mode), ""]
    lines += ["Runtimes loaded: " + "; ".join(libs), ""]
    if len(modes) > 1:
        lines += ["## Cost of sharing a process (time in one process / time in its own process, per round)", "",
                  *sharing_table(results, modes), ""]
    publish("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
