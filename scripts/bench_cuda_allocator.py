"""The caching allocator under variable shapes: 300 Adam steps of an MLP (784-2048-2048-10, float32) with a
random batch size (1..1024, the same seeded sequence for both) each step, KeyDNN against PyTorch, each in its
own process on the same GPU. Reports reserved bytes at the end and at peak, peak allocated bytes, cudaMalloc
and cudaFree calls, and the median step time.

    python scripts/bench_cuda_allocator.py [--steps 300] [--out reports/gpu/allocator_h200.md]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SIZES = (784, 2048, 2048, 10)
MiB = 2**20


def batches(steps: int, seed: int = 0) -> list[int]:
    return [int(b) for b in np.random.default_rng(seed).integers(1, 1025, steps)]


def data(batch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(step)
    return rng.standard_normal((batch, SIZES[0]), dtype=np.float32), rng.integers(0, SIZES[-1], batch)


def run_keydnn(steps: int) -> dict:
    from keydnn import Tensor
    from keydnn.infrastructure.backends import cuda
    from keydnn.nn import Linear, ReLU, Sequential, SoftmaxCrossEntropy
    from keydnn.optim import Adam
    model = Sequential(Linear(SIZES[0], SIZES[1]), ReLU(), Linear(SIZES[1], SIZES[2]), ReLU(),
                       Linear(SIZES[2], SIZES[3])).to("cuda:0")
    loss_fn, opt = SoftmaxCrossEntropy(), Adam(model.parameters(), lr=1e-3)
    times = []
    for step, batch in enumerate(batches(steps)):
        x_np, y_np = data(batch, step)
        t0 = time.perf_counter()
        x, y = Tensor.from_numpy(x_np, device="cuda:0"), Tensor.from_numpy(y_np, device="cuda:0")
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        cuda.synchronize(0)
        times.append(time.perf_counter() - t0)
    s = cuda.memory_stats(0)
    return {"reserved": s["reserved_bytes"], "peak_reserved": s.get("peak_reserved_bytes"),
            "peak_allocated": s["peak_allocated_bytes"], "mallocs": s["num_cuda_malloc"],
            "frees": s["num_cuda_free"], "step_ms": statistics.median(times[10:]) * 1e3}


def run_torch(steps: int) -> dict:
    import torch
    nn = torch.nn
    model = nn.Sequential(nn.Linear(SIZES[0], SIZES[1]), nn.ReLU(), nn.Linear(SIZES[1], SIZES[2]), nn.ReLU(),
                          nn.Linear(SIZES[2], SIZES[3])).cuda()
    loss_fn, opt = nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for step, batch in enumerate(batches(steps)):
        x_np, y_np = data(batch, step)
        t0 = time.perf_counter()
        x, y = torch.from_numpy(x_np).cuda(), torch.from_numpy(y_np).cuda()
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    s = torch.cuda.memory_stats()
    return {"reserved": torch.cuda.memory_reserved(), "peak_reserved": torch.cuda.max_memory_reserved(),
            "peak_allocated": torch.cuda.max_memory_allocated(), "mallocs": s.get("segment.all.allocated"),
            "frees": s.get("segment.all.freed"), "step_ms": statistics.median(times[10:]) * 1e3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--out", default=None)
    ap.add_argument("--child", choices=["keydnn", "torch"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps((run_keydnn if args.child == "keydnn" else run_torch)(args.steps)))
        return
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = {}
    for fw in ("keydnn", "torch"):
        out = subprocess.run([sys.executable, __file__, "--child", fw, "--steps", str(args.steps)],
                             capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise SystemExit(f"{fw} failed:\n{out.stderr}")
        res[fw] = json.loads(out.stdout.strip().splitlines()[-1])
    from keydnn.bench.harness import publish, stamp_line

    def mib(v):
        return "n/a" if v is None else f"{v / MiB:.0f} MiB"
    rows = [("reserved at the end", mib(res["keydnn"]["reserved"]), mib(res["torch"]["reserved"])),
            ("peak reserved", mib(res["keydnn"]["peak_reserved"]), mib(res["torch"]["peak_reserved"])),
            ("peak allocated", mib(res["keydnn"]["peak_allocated"]), mib(res["torch"]["peak_allocated"])),
            ("cudaMalloc calls", res["keydnn"]["mallocs"], res["torch"]["mallocs"]),
            ("cudaFree calls", res["keydnn"]["frees"], res["torch"]["frees"]),
            ("median step", f"{res['keydnn']['step_ms']:.2f} ms", f"{res['torch']['step_ms']:.2f} ms")]
    ratio = res["keydnn"]["reserved"] / res["torch"]["reserved"]
    lines = ["# Caching allocator: MLP 784-2048-2048-10, Adam, random batch 1..1024 per step", "", stamp_line(),
             f"{args.steps} steps, each framework in its own process; the same batch sizes and data.", "",
             "| | KeyDNN | PyTorch |", "|---|---:|---:|", *[f"| {a} | {b} | {c} |" for a, b, c in rows], "",
             f"Reserved at the end, KeyDNN / PyTorch: {ratio:.2f}x (target <= 1.5x)."]
    publish("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
