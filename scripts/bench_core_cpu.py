"""KeyDNN's CPU core side by side with PyTorch CPU and plain NumPy, in one run: tiny-op autograd overhead, an
MLP training step with Adam, Linear 1024x1024 forward+backward and a LeNet-style CNN training step. Prints a
markdown table and the machine.

    python scripts/bench_core_cpu.py [--repeats 31] [--quick]     (KEYDNN_CPU_BACKEND=numpy for the reference)
"""

from __future__ import annotations

import argparse
import os
import platform
from collections.abc import Callable
from typing import Any

import numpy as np

from keydnn import Tensor
from keydnn.bench.harness import measure, stamp_line
from keydnn.bench.workloads import keydnn_lenet_step, keydnn_mlp_step, numpy_mlp_step, torch_lenet_step, torch_mlp_step
from keydnn.infrastructure.backends import cpu_backend_name
from keydnn.infrastructure.nn import Linear

TARGETS = {"tiny add (autograd)": 3.0, "MLP 64-128-128-10 Adam step, batch 64": 1.0,
           "Linear 1024x1024 fwd+bwd, batch 1024": 1.1, "LeNet CNN step, SGD, batch 64, 1x28x28": 1.5}


def tiny_add() -> dict[str, Callable[[], Any]]:
    x, y = Tensor.ones((1,), requires_grad=True), Tensor.ones((1,), requires_grad=True)
    a, b = np.ones(1, np.float32), np.ones(1, np.float32)
    out = {"KeyDNN": lambda: x + y, "NumPy": lambda: a + b}
    try:
        import torch
        tx, ty = torch.ones(1, requires_grad=True), torch.ones(1, requires_grad=True)
        out["PyTorch"] = lambda: tx + ty
    except ImportError:
        pass
    return out


def mlp_step() -> dict[str, Callable[[], Any]]:
    out = {"KeyDNN": keydnn_mlp_step(), "NumPy": numpy_mlp_step()}
    try:
        out["PyTorch"] = torch_mlp_step()
    except ImportError:
        pass
    return out


def lenet_step() -> dict[str, Callable[[], Any]]:
    out = {"KeyDNN": keydnn_lenet_step()}
    try:
        out["PyTorch"] = torch_lenet_step()
    except ImportError:
        pass
    return out


def linear_fwd_bwd(n: int = 1024) -> dict[str, Callable[[], Any]]:
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((n, n)).astype(np.float32)
    g_np = rng.standard_normal((n, n)).astype(np.float32)
    lin = Linear(n, n)
    x, g = Tensor.from_numpy(x_np, requires_grad=True), Tensor.from_numpy(g_np)
    w_np, b_np = lin.weight.to_numpy().copy(), lin.bias.to_numpy().copy()

    def keydnn_step():
        x.grad = lin.weight.grad = lin.bias.grad = None
        lin(x).backward(g)

    def numpy_step():
        _ = x_np @ w_np.T + b_np
        return g_np @ w_np, g_np.T @ x_np, g_np.sum(0)

    out = {"KeyDNN": keydnn_step, "NumPy": numpy_step}
    try:
        import torch
        tl = torch.nn.Linear(n, n)
        tx, tg = torch.from_numpy(x_np).requires_grad_(), torch.from_numpy(g_np)

        def torch_step():
            tx.grad = tl.weight.grad = tl.bias.grad = None
            tl(tx).backward(tg)
        out["PyTorch"] = torch_step
    except ImportError:
        pass
    return out


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds * 1e6:.2f} us" if seconds < 1e-3 else f"{seconds * 1e3:.3f} ms"


def run(repeats: int, quick: bool) -> str:
    cases = [("tiny add (autograd)", tiny_add, {"number": 2000, "repeats": repeats}),
             ("MLP 64-128-128-10 Adam step, batch 64", mlp_step, {"number": 20, "repeats": repeats}),
             ("Linear 1024x1024 fwd+bwd, batch 1024", linear_fwd_bwd,
              {"number": 1, "repeats": max(5, repeats // (4 if quick else 2))}),
             ("LeNet CNN step, SGD, batch 64, 1x28x28", lenet_step, {"number": 5, "repeats": repeats})]
    rows = ["| Workload | KeyDNN | PyTorch | NumPy | KeyDNN / PyTorch | target |",
            "|---|---:|---:|---:|---:|---:|"]
    for name, build, kw in cases:
        fns = build()
        t = {k: measure(fn, warmup=max(3, kw["number"]), **kw).median for k, fn in fns.items()}
        ratio = f"{t['KeyDNN'] / t['PyTorch']:.2f}x" if "PyTorch" in t else "n/a"
        rows.append(f"| {name} | {_fmt(t.get('KeyDNN'))} | {_fmt(t.get('PyTorch'))} | {_fmt(t.get('NumPy'))} "
                    f"| {ratio} | <= {TARGETS[name]:.1f}x |")
    threads = ""
    try:
        import torch
        threads = f"; torch threads {torch.get_num_threads()}"
    except ImportError:
        pass
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    header = [stamp_line(),
              f"Platform: {platform.platform()}; KeyDNN CPU backend: {cpu_backend_name()}{threads}; "
              f"load average before: {load}; medians of {repeats} repeats after warm-up", ""]
    return "\n".join(header + rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--quick", action="store_true", help="fewer repeats of the large Linear case")
    args = parser.parse_args()
    print(run(args.repeats, args.quick))


if __name__ == "__main__":
    main()
