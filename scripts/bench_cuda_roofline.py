"""Memory-bound CUDA kernels at large sizes against the device-to-device copy ceiling, KeyDNN beside PyTorch.

For every memory-bound kernel family (elementwise, reductions, softmax / log-softmax, layer and batch norm,
pooling and its backward, the optimizer updates, gather and its scatter-add backward) one large float32
problem: the bytes it must move at least (each input read once, each output written once), its device time
(CUDA events around a batch of calls, median over batches), the bandwidth that makes, and that bandwidth as a
share of the same process's copy ceiling (a 256 MiB device-to-device copy). KeyDNN runs its kernel table
(storage level: no autograd); PyTorch the ATen op that does the same work. Each framework runs in its own
worker process (neither imports the other), rounds alternate (K T K T ...), and a row's time is the median
over rounds. The issue's bar: >= 90% of the copy ceiling.

    python scripts/bench_cuda_roofline.py [--rounds 3] [--out reports/gpu/roofline_h200.md]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from keydnn.bench.events import BatchTimer, batch_timer  # noqa: E402

F = 4  # bytes per float32
N = 64 * 2**20  # elements of the elementwise problems (256 MiB per array)
R, C = 8192, 8192  # rows x columns of the row-wise problems
BN = (64, 256, 64, 64)  # NCHW of the batch-norm and pooling problems (256 MiB)
V, D, NIDX = 65536, 256, 262144  # embedding table rows, width, lookups (256 MiB gathered)
P, PN = 100, 1 << 20  # optimizer: parameters x elements each (400 MiB of parameters)
BNE = int(np.prod(BN))

# name -> (problem, minimum bytes moved)
ROWS: dict[str, tuple[str, int]] = {
    "copy (the ceiling)": (f"{N} f32", 2 * N * F),
    "add": (f"{N} + {N}", 3 * N * F),
    "multiply by scalar": (f"{N}", 2 * N * F),
    "relu": (f"{N}", 2 * N * F),
    "relu backward": (f"{N}", 3 * N * F),
    "sigmoid": (f"{N}", 2 * N * F),
    "exp": (f"{N}", 2 * N * F),
    "sum, all": (f"{N}", N * F),
    "sum over rows (axis 1)": (f"{R}x{C}", R * C * F),
    "sum over columns (axis 0)": (f"{R}x{C}", R * C * F),
    "max over rows (axis 1)": (f"{R}x{C}", R * C * F),
    "transpose copy": (f"{R}x{C}", 2 * R * C * F),
    "softmax rows": (f"{R}x{C}", 2 * R * C * F),
    "softmax backward": (f"{R}x{C}", 3 * R * C * F),
    "log_softmax rows": (f"{R}x{C}", 2 * R * C * F),
    "layer_norm forward": (f"{R}x{C} over {C}", 2 * R * C * F),
    "layer_norm backward": (f"{R}x{C} over {C}", 3 * R * C * F),
    "batch_norm forward (training)": ("x".join(map(str, BN)), 2 * BNE * F),
    "batch_norm backward": ("x".join(map(str, BN)), 3 * BNE * F),
    "max_pool2d 2x2 forward": ("x".join(map(str, BN)), BNE * F + BNE // 4 * F),
    "max_pool2d 2x2 backward": ("x".join(map(str, BN)), BNE // 4 * F + BNE * F),
    "avg_pool2d 2x2 forward": ("x".join(map(str, BN)), BNE * F + BNE // 4 * F),
    "avg_pool2d 2x2 backward": ("x".join(map(str, BN)), BNE // 4 * F + BNE * F),
    "sgd step, momentum": (f"{P} x {PN}", 5 * P * PN * F),
    "adam step": (f"{P} x {PN}", 7 * P * PN * F),
    "gather rows (embedding)": (f"{NIDX} of {V}x{D}", 2 * NIDX * D * F + NIDX * 8),
    "scatter-add rows (its backward)": (f"{NIDX} into {V}x{D}", V * D * F + 2 * NIDX * D * F + NIDX * 8),
}
# Kernels whose minimum traffic the kernel does not attempt, and why (stated beside their rows).
WHY = {
    "max_pool2d 2x2 forward": "both frameworks also write the argmax (int64, twice the output's bytes), not counted",
    "max_pool2d 2x2 backward": "reads the argmax too (int64), not counted",
    "scatter-add rows (its backward)": "atomic adds: each gathered row is read and added into the output",
}


def _keydnn_rows() -> tuple[dict[str, Callable[[], object]], BatchTimer]:
    from keydnn.infrastructure.backends import cuda

    kt = cuda.table(0)
    f32 = np.float32
    rng = np.random.default_rng(0)
    a, b, out = kt.uniform((N,), -1.0, 1.0, f32, 1), kt.uniform((N,), -1.0, 1.0, f32, 2), kt.empty((N,), f32)
    m, g = kt.reshape(a, (R, C)), kt.reshape(b, (R, C))
    sm = kt.softmax(m, 1)
    gamma, beta = kt.uniform((C,), 0.5, 1.5, f32, 3), kt.uniform((C,), -0.5, 0.5, f32, 4)
    _, ln_mean, ln_inv = kt.layer_norm_forward(m, gamma, beta, 1, 1e-5)
    x4, gy4 = kt.reshape(a, BN), kt.reshape(b, BN)
    bg, bb = kt.uniform((BN[1],), 0.5, 1.5, f32, 5), kt.uniform((BN[1],), -0.5, 0.5, f32, 6)
    _, bn_mean, bn_inv = kt.batch_norm_forward(x4, bg, bb, 1e-5)
    pooled, argmax = kt.max_pool2d_forward(x4, (2, 2), (2, 2), (0, 0))
    gp = kt.uniform(pooled.shape, -1.0, 1.0, f32, 7)
    params = [kt.uniform((PN,), -1.0, 1.0, f32, 10 + i) for i in range(P)]
    grads = [kt.uniform((PN,), -1.0, 1.0, f32, 200 + i) for i in range(P)]
    bufs = [kt.zeros((PN,), f32) for _ in range(P)]
    vs = [kt.zeros((PN,), f32) for _ in range(P)]
    table = kt.uniform((V, D), -1.0, 1.0, f32, 8)
    idx = kt.from_host(rng.integers(0, V, NIDX).astype(np.int64))
    rows_g = kt.uniform((NIDX, D), -1.0, 1.0, f32, 9)
    fns = {
        "copy (the ceiling)": lambda: kt.copyto(out, a),
        "add": lambda: kt.add(a, b, out=out),
        "multiply by scalar": lambda: kt.multiply(a, 2.0, out=out),
        "relu": lambda: kt.relu(a),
        "relu backward": lambda: kt.relu_backward(b, a),
        "sigmoid": lambda: kt.sigmoid(a),
        "exp": lambda: kt.exp(a),
        "sum, all": lambda: kt.sum(a, None, False),
        "sum over rows (axis 1)": lambda: kt.sum(m, (1,), False),
        "sum over columns (axis 0)": lambda: kt.sum(m, (0,), False),
        "max over rows (axis 1)": lambda: kt.max(m, (1,), False),
        "transpose copy": lambda: kt.ascontiguousarray(kt.transpose(m, (1, 0))),
        "softmax rows": lambda: kt.softmax(m, 1),
        "softmax backward": lambda: kt.softmax_backward(sm, g, 1),
        "log_softmax rows": lambda: kt.log_softmax(m, 1),
        "layer_norm forward": lambda: kt.layer_norm_forward(m, gamma, beta, 1, 1e-5),
        "layer_norm backward": lambda: kt.layer_norm_backward(g, m, gamma, ln_mean, ln_inv, 1),
        "batch_norm forward (training)": lambda: kt.batch_norm_forward(x4, bg, bb, 1e-5),
        "batch_norm backward": lambda: kt.batch_norm_backward(gy4, x4, bg, bn_mean, bn_inv),
        "max_pool2d 2x2 forward": lambda: kt.max_pool2d_forward(x4, (2, 2), (2, 2), (0, 0)),
        "max_pool2d 2x2 backward": lambda: kt.max_pool2d_backward(gp, argmax, BN),
        "avg_pool2d 2x2 forward": lambda: kt.avg_pool2d_forward(x4, (2, 2), (2, 2), (0, 0)),
        "avg_pool2d 2x2 backward": lambda: kt.avg_pool2d_backward(gp, BN, (2, 2), (2, 2), (0, 0)),
        "sgd step, momentum": lambda: kt.sgd_step(params, grads, bufs, 1e-3, 0.9, 0.0, False, 0.0),
        "adam step": lambda: kt.adam_step(params, grads, bufs, vs, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False),
        "gather rows (embedding)": lambda: kt.getitem(table, (idx,)),
        "scatter-add rows (its backward)": lambda: kt.index_add((V, D), f32, (idx,), rows_g),
    }
    return fns, batch_timer("keydnn")


def _torch_rows() -> tuple[dict[str, Callable[[], object]], BatchTimer]:
    import torch

    aten = torch.ops.aten
    dev = "cuda:0"
    gen = torch.Generator(device=dev).manual_seed(0)

    def u(*shape, lo=-1.0, hi=1.0):
        return torch.rand(*shape, device=dev, generator=gen) * (hi - lo) + lo

    a, b, out = u(N), u(N), torch.empty(N, device=dev)
    m, g = a.view(R, C), b.view(R, C)
    sm = torch.softmax(m, 1)
    gamma, beta = u(C, lo=0.5, hi=1.5), u(C, lo=-0.5, hi=0.5)
    _, ln_mean, ln_rstd = aten.native_layer_norm(m, [C], gamma, beta, 1e-5)
    x4, gy4 = a.view(BN), b.view(BN)
    bg, bb = u(BN[1], lo=0.5, hi=1.5), u(BN[1], lo=-0.5, hi=0.5)
    _, bn_mean, bn_inv = aten.native_batch_norm(x4, bg, bb, None, None, True, 0.1, 1e-5)
    pooled, argmax = aten.max_pool2d_with_indices(x4, [2, 2], [2, 2])
    gp = u(*pooled.shape)
    params = [torch.nn.Parameter(u(PN)) for _ in range(P)]
    for p in params:
        p.grad = u(PN)
    sgd = torch.optim.SGD(params, lr=1e-3, momentum=0.9, fused=True)
    adam = torch.optim.Adam(params, lr=1e-3, fused=True)
    table = u(V, D)
    idx = torch.randint(0, V, (NIDX,), device=dev, generator=gen)
    rows_g = u(NIDX, D)
    fns = {
        "copy (the ceiling)": lambda: out.copy_(a),
        "add": lambda: torch.add(a, b, out=out),
        "multiply by scalar": lambda: torch.mul(a, 2.0, out=out),
        "relu": lambda: torch.relu(a),
        "relu backward": lambda: aten.threshold_backward(b, a, 0),
        "sigmoid": lambda: torch.sigmoid(a),
        "exp": lambda: torch.exp(a),
        "sum, all": lambda: a.sum(),
        "sum over rows (axis 1)": lambda: m.sum(1),
        "sum over columns (axis 0)": lambda: m.sum(0),
        "max over rows (axis 1)": lambda: m.amax(1),
        "transpose copy": lambda: m.t().contiguous(),
        "softmax rows": lambda: torch.softmax(m, 1),
        "softmax backward": lambda: aten._softmax_backward_data(g, sm, 1, torch.float32),
        "log_softmax rows": lambda: torch.log_softmax(m, 1),
        "layer_norm forward": lambda: aten.native_layer_norm(m, [C], gamma, beta, 1e-5),
        "layer_norm backward": lambda: aten.native_layer_norm_backward(g, m, [C], ln_mean, ln_rstd, gamma, beta,
                                                                       [True, True, True]),
        "batch_norm forward (training)": lambda: aten.native_batch_norm(x4, bg, bb, None, None, True, 0.1, 1e-5),
        "batch_norm backward": lambda: aten.native_batch_norm_backward(gy4, x4, bg, None, None, bn_mean, bn_inv,
                                                                       True, 1e-5, [True, True, True]),
        "max_pool2d 2x2 forward": lambda: aten.max_pool2d_with_indices(x4, [2, 2], [2, 2]),
        "max_pool2d 2x2 backward": lambda: aten.max_pool2d_with_indices_backward(gp, x4, [2, 2], [2, 2], [0, 0],
                                                                                [1, 1], False, argmax),
        "avg_pool2d 2x2 forward": lambda: aten.avg_pool2d(x4, [2, 2], [2, 2]),
        "avg_pool2d 2x2 backward": lambda: aten.avg_pool2d_backward(gp, x4, [2, 2], [2, 2], [0, 0], False, True,
                                                                    None),
        "sgd step, momentum": sgd.step,
        "adam step": adam.step,
        "gather rows (embedding)": lambda: table.index_select(0, idx),
        "scatter-add rows (its backward)": lambda: torch.zeros(V, D, device=dev).index_add_(0, idx, rows_g),
    }
    return fns, batch_timer("torch")


def worker(framework: str, calls: int, batches: int) -> dict[str, float]:
    """Median milliseconds per call of every row in this process."""
    fns, timer = _keydnn_rows() if framework == "keydnn" else _torch_rows()
    result = {}
    for name in ROWS:
        fn = fns[name]
        timer(fn, 2)  # warm-up: kernel loads, allocator caches, optimizer state
        result[name] = statistics.median(timer(fn, calls) for _ in range(batches))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=10, help="calls per timed batch")
    ap.add_argument("--batches", type=int, default=5, help="timed batches per row and round")
    ap.add_argument("--only", choices=("keydnn", "torch"), default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--worker", choices=("keydnn", "torch"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.calls, args.batches)))
        return
    from keydnn.bench.harness import publish, stamp_line

    frameworks = [args.only] if args.only else ["keydnn", "torch"]
    times: dict[str, dict[str, list[float]]] = {fw: {n: [] for n in ROWS} for fw in frameworks}
    for _ in range(args.rounds):
        for fw in frameworks:
            done = subprocess.run([sys.executable, __file__, "--worker", fw, "--calls", str(args.calls),
                                   "--batches", str(args.batches)], capture_output=True, text=True,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
            if done.returncode != 0:
                raise SystemExit(f"{fw} worker failed:\n{done.stderr[-3000:]}")
            for name, ms in json.loads(done.stdout.strip().splitlines()[-1]).items():
                times[fw][name].append(ms)
    med = {fw: {n: statistics.median(v) for n, v in rows.items()} for fw, rows in times.items()}

    def gbs(fw: str, name: str) -> float:
        return ROWS[name][1] / (med[fw][name] * 1e-3) / 1e9

    lines = ["# Memory-bound CUDA kernels at large sizes: bandwidth against the copy ceiling", "", stamp_line(), "",
             "| kernel | problem (float32) | min. bytes | " + " | ".join(
                 f"{'KeyDNN' if fw == 'keydnn' else 'PyTorch'} ms | GB/s | % of copy" for fw in frameworks)
             + (" | KeyDNN / PyTorch time |" if len(frameworks) == 2 else " |"),
             "|---|---|---:|" + "---:|---:|---:|" * len(frameworks) + ("---:|" if len(frameworks) == 2 else "")]
    below = []
    for name, (problem, nbytes) in ROWS.items():
        cells = []
        for fw in frameworks:
            share = gbs(fw, name) / gbs(fw, "copy (the ceiling)") * 100
            cells.append(f"{med[fw][name]:.3f} | {gbs(fw, name):.0f} | {share:.0f}%")
            if fw == "keydnn" and share < 90 and name != "copy (the ceiling)":
                below.append((name, share))
        ratio = f" | {med['keydnn'][name] / med['torch'][name]:.2f}x" if len(frameworks) == 2 else ""
        lines.append(f"| {name} | {problem} | {nbytes / 2**20:.0f} MiB | " + " | ".join(cells) + ratio + " |")
    lines += ["", f"Medians over {args.rounds} rounds (each framework in its own process, rounds alternating) of the "
              f"median of {args.batches} batches of {args.calls} calls, CUDA events; min. bytes: each input read "
              "once, each output written once. % of copy is against the same process's 256 MiB device-to-device "
              "copy.", ""]
    if below:
        lines.append("KeyDNN kernels under 90% of the copy ceiling:")
        lines += [f"- {name}: {share:.0f}%" + (f" ({WHY[name]})" if name in WHY else "") for name, share in below]
    publish("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
